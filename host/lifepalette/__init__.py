"""Life Palette host tools: hub, simulator, virtual badges and developer tools."""

__version__ = "0.1.0"
