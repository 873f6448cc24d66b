"""Built-in model families, one file each; importing this package registers them all."""

from __future__ import annotations

import importlib
from pathlib import Path

from .base import DiscriminatorOutput, VideoGAN, check_labels

# Each family file registers its generators, discriminators and models at import.
# (Only the family files present are imported, so branches can land one at a time.)
BUILTIN_FAMILIES: tuple[str, ...] = tuple(
    f for f in ("mocogan", "tgan", "dvdgan", "vgan") if (Path(__file__).parent / f"{f}.py").is_file()
)

for _family in BUILTIN_FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")

__all__ = ["DiscriminatorOutput", "VideoGAN", "check_labels", "BUILTIN_FAMILIES"]
