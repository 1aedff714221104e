# The badge's feature kernels: protocol.kernels.pipeline.Pipeline itself (push_ppg/eda/acc/temp as samples arrive,
# step(values) once per second into the telemetry value list, reset() when consent is revoked), made from the
# config's rates. No wrapper object: the sampler and the badge call the kernels directly.
from protocol.kernels.pipeline import Pipeline


def Features(rates, eda_cal=None):  # noqa: N802 (reads as the constructor it stands for)
    return Pipeline(rates["ppg"], rates["eda"], rates["acc"], rates["temp"], eda_cal)
