# Timer-driven sampling. The HAL's timer ticks at the PPG rate (the fastest stream); every other stream is sampled on
# the ticks a Bresenham schedule picks, so each stream gets exactly its rate per second with no drift and no
# allocation. Samples go straight into the feature pipeline's preallocated buffers.
# Sensor power follows consent: power(False) shuts every sensor down (MAX3010x SHDN, LIS3DH power-down, EDA and
# NTC excitation off) and is called within the sample tick in which consent is revoked or paused.


class Schedule:
    """Fires `rate` times per `base` ticks, evenly spread."""

    def __init__(self, base, rate):
        self.base = base
        self.rate = rate
        self.acc = 0

    def due(self):
        self.acc += self.rate
        if self.acc >= self.base:
            self.acc -= self.base
            return True
        return False


class Sensors:
    """The badge's drivers (any may be None if absent or failed at setup)."""

    def __init__(self, ppg=None, acc=None, eda=None, ntc=None):
        self.ppg = ppg
        self.acc = acc
        self.eda = eda
        self.ntc = ntc


class Sampler:
    def __init__(self, sensors, features, rates):
        self.sensors = sensors
        self.features = features
        base = rates["ppg"]
        self.base = base
        self.eda_s = Schedule(base, rates["eda"])
        self.acc_s = Schedule(base, rates["acc"])
        self.temp_s = Schedule(base, rates["temp"])
        self.xyz = [0, 0, 0]
        self.last_ppg = 0
        self.powered = False
        self.counts = [0, 0, 0, 0]  # samples taken per stream: ppg, eda, acc, temp
        self.errors = 0

    def power(self, on):
        s = self.sensors
        for dev in (s.ppg, s.acc, s.eda, s.ntc):
            if dev is None:
                continue
            try:
                if on:
                    dev.wake()
                else:
                    dev.shutdown()
            except OSError:
                self.errors += 1
        self.powered = on

    def tick(self, capturing):
        """One timer tick. The schedules advance on every tick so the streams stay in phase with the timer."""
        eda_due = self.eda_s.due()
        acc_due = self.acc_s.due()
        temp_due = self.temp_s.due()
        if not capturing:
            return
        s = self.sensors
        f = self.features
        try:
            if s.ppg is not None:
                v = s.ppg.read_mean()
                if v < 0:
                    v = self.last_ppg  # the chip's clock is slightly slower than ours: hold the last sample
                self.last_ppg = v
                f.push_ppg(v)
                self.counts[0] += 1
            if eda_due and s.eda is not None:
                f.push_eda(s.eda.read())
                self.counts[1] += 1
            if acc_due and s.acc is not None:
                xyz = self.xyz
                s.acc.read_into(xyz)
                f.push_acc(xyz[0], xyz[1], xyz[2])
                self.counts[2] += 1
            if temp_due and s.ntc is not None:
                f.push_temp(s.ntc.read())
                self.counts[3] += 1
        except OSError:
            self.errors += 1  # a glitch on the bus costs one sample; quality flags catch lasting faults
