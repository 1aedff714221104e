"""Hub scoring: per-wearer baseline, arousal, regulation, pairwise synchrony against surrogates, the Compassion
Metric as a trajectory, and the cove palette (docs/ARCHITECTURE.md, "Scoring")."""

from lifepalette.scoring.fields import FIELDS
from lifepalette.scoring.scorer import CoveScorer, normalise_groups

__all__ = ["FIELDS", "CoveScorer", "normalise_groups"]
