"""Life Palette wire protocol v1 and badge kernels: MicroPython first, imported unchanged by the host (PROTOCOL.md)."""
