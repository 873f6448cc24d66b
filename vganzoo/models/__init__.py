"""Built-in model families, one file each; importing this package registers them all."""

from __future__ import annotations

import importlib

from .base import DiscriminatorOutput, VideoGAN, check_labels

# Each family file registers its generators, discriminators and models at import.
BUILTIN_FAMILIES: tuple[str, ...] = ("mocogan", "tgan", "dvdgan", "vgan", "stylegan_v")

for _family in BUILTIN_FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")

__all__ = ["BUILTIN_FAMILIES", "DiscriminatorOutput", "VideoGAN", "check_labels"]
