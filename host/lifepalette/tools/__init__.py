"""Badge tooling behind `lifepalette build`, `flash`, `monitor` and `doctor` (README.md, "Badge tools")."""
