"""`lifepalette sim`: a synthetic cove with known truth, scored, checked and plotted."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lifepalette.errors import UsageError

SCENARIOS = ("calm", "dialogue", "confrontation", "healing")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sim",
        help="simulate a cove with known truth, score it, check validity and fairness, plot",
        description="Generate a seeded cohort (latent arousal from a scenario timeline, dialogue partners coupled "
        "with known strength, individual and group differences), produce 1 Hz features (feature level) or badge "
        "signals through the badge kernels (signal level), score them like the hub, and write features.parquet "
        "(one row per wearer-second; features.jsonl with --jsonl), "
        "scores.json, report.json (truth, estimates, validity and fairness figures) and PNG plots to --out.",
    )
    p.add_argument("--wearers", type=int, default=30, help="number of wearers (default 30)")
    p.add_argument("--minutes", type=float, default=30.0, help="session length in minutes (default 30)")
    p.add_argument("--scenario", default="healing", choices=SCENARIOS,
                   help="session timeline (default healing: arrival, dialogue, confrontation, recovery, healing)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same cohort)")
    p.add_argument("--level", default="feature", choices=("feature", "signal"),
                   help="feature: 1 Hz records directly (fast); signal: sensor samples through the badge kernels")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")
    p.add_argument("--jsonl", action="store_true",
                   help="write the features as JSON lines (features.jsonl) instead of features.parquet")
    p.add_argument("--no-features", action="store_true", help="do not write the feature file")
    p.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.wearers < 2 or args.wearers > 100_000:
        raise UsageError("--wearers must be between 2 and 100000")
    if not 1.0 <= args.minutes <= 24 * 60:
        raise UsageError("--minutes must be between 1 and 1440")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    from lifepalette.scoring.scorer import BASELINE_LEARN_S
    from lifepalette.scoring.synchrony import SPAN_S

    if args.minutes * 60 < BASELINE_LEARN_S + 2 * SPAN_S:
        print(f"lifepalette sim: note: sessions under {(BASELINE_LEARN_S + 2 * SPAN_S) / 60:.1f} minutes end before "
              "baselines are learnt and synchrony windows fill; expect few or no scores", file=sys.stderr)
    from lifepalette.sim.run import simulate, write_outputs

    result = simulate(args.wearers, args.minutes, args.scenario, args.seed, args.level)
    try:
        fmt = None if args.no_features else "jsonl" if args.jsonl else "parquet"
        written = write_outputs(result, out, features=fmt, plots=not args.no_plots)
    except OSError as exc:
        raise UsageError(f"cannot write to {out}: {exc.strerror or exc}") from None
    rep = result.report
    summary = {"out": str(out), "files": written, "validity": rep["validity"],
               "fairness_disparity": rep["fairness"]["disparity"], "privacy_ok": rep["privacy"]["ok"]}
    json.dump(summary, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0
