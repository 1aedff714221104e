"""Life Palette host tools: hub, simulator, virtual badges and developer tools.

For notebooks: `read_features(path)` gives a feature file (Parquet or JSON lines) as a `pyarrow.Table`, and
`score_table(table, groups)` scores it exactly as `lifepalette score` does. Both load lazily, so importing the
package stays cheap for the CLI.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["read_features", "score_table"]


def __getattr__(name: str) -> Any:
    if name == "read_features":
        from lifepalette.feature_table import read_features

        return read_features
    if name == "score_table":
        from lifepalette.hub.timeline import score_table

        return score_table
    raise AttributeError(f"module 'lifepalette' has no attribute {name!r}")
