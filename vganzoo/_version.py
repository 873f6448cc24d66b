"""The version of vganzoo (one place; the package root and pyproject-built metadata agree)."""

__version__ = "0.1.0"
