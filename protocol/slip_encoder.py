"""SLIP encoding (RFC 1055) of one frame, the badge's half of protocol/slip.py (which re-exports it next to the
hub's decoder). A module of its own so a badge, which only encodes, never loads the decoder: on a badge whose
firmware is .mpy files on the filesystem, loaded bytecode stays on the heap for the whole run.

slip_encode(frame) -> END + escaped frame + END.   END = 0xC0, ESC = 0xDB; C0 -> DB DC, DB -> DB DD.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


END = const(0xC0)
ESC = const(0xDB)
ESC_END = const(0xDC)
ESC_ESC = const(0xDD)


def slip_encode(frame):
    out = bytearray()
    out.append(END)
    for b in frame:
        if b == END:
            out.append(ESC)
            out.append(ESC_END)
        elif b == ESC:
            out.append(ESC)
            out.append(ESC_ESC)
        else:
            out.append(b)
    out.append(END)
    return bytes(out)
