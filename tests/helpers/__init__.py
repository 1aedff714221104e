"""Helpers shared by several test modules (import as `from helpers.<module> import ...`)."""
