"""SLIP framing (RFC 1055) for frames on the badge's USB serial, with text log lines interleaved.

slip_encode(frame) -> END + escaped frame + END.   END = 0xC0, ESC = 0xDB; C0 -> DB DC, DB -> DB DD.
SlipDecoder().feed(data) -> list of events: ("frame", bytes) or ("text", bytes line without the newline).
Outside a frame, bytes are text (ASCII log lines, never 0xC0) split at newlines. Sans-I/O: no serial port here.
"""

# the encoder and the byte values live in protocol/slip_encoder.py (all a badge loads); re-exported here
from protocol.slip_encoder import END, ESC, ESC_END, ESC_ESC, slip_encode  # noqa: F401

MAX_FRAME = 512
MAX_LINE = 1024


class SlipDecoder:
    """Incremental decoder; `errors` counts frames dropped for a bad escape or excessive length."""

    def __init__(self, max_frame=MAX_FRAME, max_line=MAX_LINE):
        self.max_frame = max_frame
        self.max_line = max_line
        self._in_frame = False
        self._esc = False
        self._bad = False
        self._buf = bytearray()
        self._text = bytearray()
        self.errors = 0

    def feed(self, data):
        events = []
        for b in data:
            if self._in_frame:
                self._frame_byte(b, events)
            elif b == END:
                if self._text:  # a log line cut short by a frame: hand it over as it is
                    events.append(("text", bytes(self._text)))
                    self._text = bytearray()
                self._in_frame = True
            elif b == 0x0A:
                line = self._text
                if line and line[-1] == 0x0D:
                    line = line[:-1]
                events.append(("text", bytes(line)))
                self._text = bytearray()
            else:
                self._text.append(b)
                if len(self._text) >= self.max_line:
                    events.append(("text", bytes(self._text)))
                    self._text = bytearray()
        return events

    def _frame_byte(self, b, events):
        if b == END:
            if self._buf or self._bad:
                if self._bad:
                    self.errors += 1
                else:
                    events.append(("frame", bytes(self._buf)))
                self._in_frame = False
            # an empty frame (END END) is a resync point: stay inside and wait for data
            self._buf = bytearray()
            self._esc = False
            self._bad = False
            return
        if self._bad:
            return
        if self._esc:
            self._esc = False
            if b == ESC_END:
                b = END
            elif b == ESC_ESC:
                b = ESC
            else:
                self._bad = True
                return
        elif b == ESC:
            self._esc = True
            return
        self._buf.append(b)
        if len(self._buf) > self.max_frame:
            self._bad = True
