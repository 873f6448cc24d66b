"""Built-in model families, one file each (its modules, recipes, weight specs and registration).

Importing this package gives the public types; the families themselves are imported (and so
registered) by :func:`load_builtin_families`, which the registry runs before its first lookup.
"""

from __future__ import annotations

import importlib

from .base import DiscriminatorOutput, VideoGAN, check_labels

# Each family file registers its generators, discriminators and models at import.
BUILTIN_FAMILIES: tuple[str, ...] = ("mocogan", "tgan", "dvdgan", "vgan", "stylegan_v")


def load_builtin_families() -> None:
    """Import every built-in family module (each registers itself)."""
    for family in BUILTIN_FAMILIES:
        importlib.import_module(f"{__name__}.{family}")


__all__ = ["BUILTIN_FAMILIES", "DiscriminatorOutput", "VideoGAN", "check_labels", "load_builtin_families"]
