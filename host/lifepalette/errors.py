"""Errors a user can cause. The CLI prints them as one line, never as a traceback."""


class LifePaletteError(Exception):
    """A failure the user can act on; `exit_code` is what the CLI returns."""

    exit_code = 1


class UsageError(LifePaletteError):
    """Bad arguments or unusable input files: exit 2, like argparse."""

    exit_code = 2
