# Glue to the integer feature kernels (protocol.kernels.pipeline.Pipeline): push samples as they arrive, step() once
# per second into the telemetry value list (indexed like protocol.records.TELEMETRY_FIELDS). If the kernels are not
# installed on this badge, every physiology field reads n/a and the quality byte is 0. The record layout, n/a values
# and packer are protocol/telemetry.py's (the lean core protocol.records re-exports).
from protocol.telemetry import clear_physio

try:
    from protocol.kernels.pipeline import Pipeline
except ImportError:
    Pipeline = None  # type: ignore[misc,assignment]


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
