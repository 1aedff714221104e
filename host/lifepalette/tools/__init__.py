"""Badge tooling behind `lifepalette build`, `flash`, `monitor` and `doctor` (DESIGN.md §7-§8)."""
