# Glue to the integer feature kernels (protocol.kernels.pipeline.Pipeline): push samples as they arrive, step() once
# per second into the telemetry value list (indexed like protocol.records.TELEMETRY_FIELDS). If the kernels are not
# installed on this badge, every physiology field reads n/a and the quality byte is 0.
# The record layout and n/a values are protocol/records.py's (a CPython test checks pack_into against
# records.pack_telemetry_into); the badge does not import records itself, to save ~12 KB of heap.
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


try:
    from protocol.kernels.pipeline import Pipeline
except ImportError:
    Pipeline = None  # type: ignore[misc,assignment]

N_FIELDS = 11
RECORD_LEN = 13
_HR_NA = const(0)
_RMSSD_NA = const(255)
_SCL_NA = const(0xFFFF)
_SCR_NA = const(255)
_MOTION_NA = const(255)
COLOUR_AGE_NA = 255
Q_SKIN = 1
Q_HR = 2
Q_EDA = 4


def pack_into(rec, values):
    """The 13-byte telemetry record from the 11 values (scl is u16 LE; reserved byte 12 is 0)."""
    rec[0] = values[0]
    rec[1] = values[1]
    scl = values[2]
    rec[2] = scl & 0xFF
    rec[3] = (scl >> 8) & 0xFF
    for i in range(3, 11):
        rec[i + 1] = values[i] & 0xFF
    rec[12] = 0
    return rec


def clear_physio(values):
    """Set every physiology field and the quality byte to n/a."""
    values[0] = _HR_NA
    values[1] = _RMSSD_NA
    values[2] = _SCL_NA
    values[3] = _SCR_NA
    values[4] = _MOTION_NA
    values[10] = 0  # quality


class Features:
    def __init__(self, rates, eda_cal=None):
        self.available = Pipeline is not None
        self.steps = 0
        if self.available:
            self.p = Pipeline(ppg_rate=rates["ppg"], eda_rate=rates["eda"], acc_rate=rates["acc"],
                              temp_rate=rates["temp"], eda_cal=eda_cal)
            self.push_ppg = self.p.push_ppg
            self.push_eda = self.p.push_eda
            self.push_acc = self.p.push_acc
            self.push_temp = self.p.push_temp
        else:
            self.p = None

    # used when the kernels are missing
    def push_ppg(self, v):
        pass

    def push_eda(self, v):
        pass

    def push_acc(self, x, y, z):
        pass

    def push_temp(self, v):
        pass

    def step(self, values):
        """Fill the physiology fields and quality of `values` for the last second."""
        self.steps += 1
        if self.p is None:
            clear_physio(values)
            return values
        self.p.step(values)
        return values

    def reset(self):
        if self.p is not None:
            self.p.reset()
