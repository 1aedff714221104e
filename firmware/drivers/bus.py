# The I2C bus as the drivers see it: each transfer is tried up to TRIES times (a NACK or a timeout is usually a
# glitch: a noisy wire, a sensor busy for a moment), and every retry and every final failure is counted. The
# drivers call it exactly as they would call machine.I2C.
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


TRIES = const(3)


class Bus:
    def __init__(self, i2c):
        self.i2c = i2c
        self.retried = 0
        self.failed = 0

    def _failed(self, attempt):
        if attempt == TRIES - 1:
            self.failed += 1
            return True
        self.retried += 1
        return False

    def readfrom_mem_into(self, addr, reg, buf):
        for attempt in range(TRIES):
            try:
                self.i2c.readfrom_mem_into(addr, reg, buf)
                return
            except OSError:
                if self._failed(attempt):
                    raise

    def writeto_mem(self, addr, reg, buf):
        for attempt in range(TRIES):
            try:
                self.i2c.writeto_mem(addr, reg, buf)
                return
            except OSError:
                if self._failed(attempt):
                    raise

    def scan(self):
        return self.i2c.scan()


def bring_up(make, addrs, log):
    """The first of `addrs` where make(addr).setup() succeeds (it checks the chip's ID register), or None."""
    last = None
    for addr in addrs:
        dev = make(addr)
        try:
            dev.setup()
            return dev
        except Exception as exc:  # noqa: BLE001 -- SensorError (wrong ID) or OSError (no answer after retries)
            last = exc
    log("sensor missing: " + str(last))
    return None
