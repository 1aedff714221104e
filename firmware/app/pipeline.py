# The badge's feature kernels: protocol.kernels.pipeline.Pipeline itself (push_ppg/eda/acc/temp as samples arrive,
# step(values) once per second into the telemetry value list, reset() when consent is revoked), made from the
# config's rates with the PPG kernel at the chip's own rate (drivers.max30102.CHIP_HZ) and the motion kernel at the
# LIS3DH's (drivers.lis3dh.ODR_HZ; both read from their FIFOs, every sample once). No wrapper object: the
# sampler and the badge call the kernels directly; the sampler adds what only the badge knows (the chip's measured
# rate, PPG skin contact) to the values after step(): Sampler.correct.
from protocol.kernels.pipeline import Pipeline

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


_PPG_HZ = const(50)
_ACC_HZ = const(25)


def Features(rates, eda_cal=None):  # noqa: N802 (reads as the constructor it stands for)
    # half a second of PPG buffered before the kernel runs it
    return Pipeline(_PPG_HZ, rates["eda"], _ACC_HZ, rates["temp"], eda_cal, True, 25)
