# Finishes a firmware switch that `lifepalette flash` began (MicroPython and CPython).
#
# Flash copies new files to STAGE/ and verifies them on the badge; nothing live changes until it writes the journal
# JOURNAL (atomically: JOURNAL + ".tmp", then rename). Each journal line is "M path" (move STAGE/path over path)
# or "D path" (delete a file the new firmware no longer has). Every step is idempotent, so a switch cut short by a
# reset or an unplugged cable is rolled forward by the next `finish()`: boot.py calls it before importing anything
# else, and flash calls it too. A staging folder without a journal is an interrupted copy: the previous firmware
# stays live and the next flash reuses the staged files that still verify.
#
# Paths are relative to the badge's root (the current directory at boot) because absolute renames are broken on the
# unix port's rooted VfsPosix, which the virtual badge uses.
import os

STAGE = ".lp_new"
JOURNAL = ".lp_switch"


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _is_dir(path):
    try:
        return (os.stat(path)[0] & 0x4000) != 0
    except OSError:
        return False


def _make_parents(path):
    parts = path.split("/")
    prefix = ""
    for part in parts[:-1]:
        prefix = prefix + "/" + part if prefix else part
        if not _is_dir(prefix):
            os.mkdir(prefix)


def _move(src, dst):
    _make_parents(dst)
    try:
        os.rename(src, dst)
    except OSError:
        # FAT (and some littlefs builds) refuse to rename over an existing file: delete first. The journal still
        # lists this move, so a reset between the two calls is finished at the next boot.
        os.remove(dst)
        os.rename(src, dst)


def _remove_tree(path):
    if not _is_dir(path):
        if _exists(path):
            os.remove(path)
        return
    for name in os.listdir(path):
        _remove_tree(path + "/" + name)
    os.rmdir(path)


def read_journal():
    """The journal's (op, path) steps, or None when no switch is pending."""
    if not _exists(JOURNAL):
        return None
    steps = []
    with open(JOURNAL) as f:
        for line in f.read().split("\n"):
            line = line.strip()
            if len(line) > 2 and line[1] == " " and line[0] in "MD":
                steps.append((line[0], line[2:]))
    return steps


def finish():
    """Roll a pending switch forward; returns the number of steps applied, or -1 when none was pending."""
    steps = read_journal()
    if steps is None:
        return -1
    applied = 0
    for op, path in steps:
        if op == "M":
            src = STAGE + "/" + path
            if _exists(src):
                _move(src, path)
                applied += 1
        elif _exists(path):
            os.remove(path)
            applied += 1
    os.remove(JOURNAL)
    _remove_tree(STAGE)
    return applied
