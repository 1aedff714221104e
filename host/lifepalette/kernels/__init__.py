"""numpy batch twins of the badge kernels in protocol/kernels (bit-identical; see each module)."""

from lifepalette.kernels.pipeline import run_pipeline

__all__ = ["run_pipeline"]
