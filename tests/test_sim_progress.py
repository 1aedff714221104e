"""The simulator's progress bar: on stderr only once a run has taken 2 s, so quick runs stay quiet."""

import io

from lifepalette.sim.progress import Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_is_drawn_once_the_run_is_older_than_the_threshold():
    stream = Tty()
    bar = Progress(10, "scoring", stream=stream, show_after_s=0.0)
    for _ in range(10):
        bar.update()
    bar.close()
    assert "scoring" in stream.getvalue() and "100.0%" in stream.getvalue() and stream.getvalue().endswith("\n")


def test_quick_runs_and_non_terminals_stay_quiet():
    quick, pipe = Tty(), io.StringIO()
    for stream, after in ((quick, 3600.0), (pipe, 0.0)):
        bar = Progress(10, "scoring", stream=stream, show_after_s=after)
        for _ in range(10):
            bar.update()
        bar.close()
    assert quick.getvalue() == "" and pipe.getvalue() == ""
