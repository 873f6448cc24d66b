"""Pretrained weights: specs, download from the Hugging Face Hub, verification, save and push.

Placeholder until the hub issue lands: only the random-weight path exists.
"""

from __future__ import annotations

from typing import Any

from . import registry


def load(name: str, **kwargs: Any) -> Any:
    """Build ``name`` and load its pretrained weights (the hub issue fills this in)."""
    raise NotImplementedError("vganzoo.load: pretrained weights are not available yet; use vganzoo.create(name)")


def save_pretrained(model: Any, directory: str) -> None:
    raise NotImplementedError("vganzoo.save_pretrained is not available yet")


def push_to_hub(model: Any, repo_id: str, **kwargs: Any) -> None:
    raise NotImplementedError("vganzoo.push_to_hub is not available yet")


__all__ = ["load", "save_pretrained", "push_to_hub", "registry"]
