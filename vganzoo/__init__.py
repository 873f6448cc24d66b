"""vganzoo: a maintained model zoo of video GANs.

    >>> import vganzoo
    >>> vganzoo.list_models("*gan*")
    >>> model = vganzoo.create("mocogan-rnn")        # random weights, never touches the network
    >>> videos = model.sample(4, seed=0)             # (4, 3, 16, 64, 64) in [-1, 1]

Importing this package compiles nothing and touches no network: model families, the compiled
extension and huggingface_hub are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import plugins, registry
from ._version import __version__
from .errors import (
    AmbiguousNameError,
    InvalidConfigError,
    PluginError,
    UnknownComponentError,
    UnknownModelError,
    VganzooError,
)
from .registry import (
    get_component,
    list_components,
    list_models,
    list_pretrained,
    register_component,
    register_model,
)

__all__ = [
    "AmbiguousNameError",
    "InvalidConfigError",
    "PluginError",
    "UnknownComponentError",
    "UnknownModelError",
    "VganzooError",
    "VideoGAN",
    "__version__",
    "create",
    "get_component",
    "list_components",
    "list_models",
    "list_pretrained",
    "load",
    "model_info",
    "plugins",
    "push_to_hub",
    "register_component",
    "register_model",
    "save_pretrained",
]

# name -> module that defines it; imported on first attribute access (keeps `import vganzoo` fast)
_LAZY = {
    "VideoGAN": "vganzoo.models.base",
    "create": "vganzoo.hub",  # registry.create after a memory check (hub reaches resources)
    "load": "vganzoo.hub",
    "model_info": "vganzoo.hub",
    "save_pretrained": "vganzoo.hub",
    "push_to_hub": "vganzoo.hub",
}
_LAZY_MODULES = {
    "files",
    "ops",
    "nn",
    "models",
    "hub",
    "videoio",
    "losses",
    "train",
    "data",
    "metrics",
    "convert",
    "cli",
    "sampling",
}


def _load_builtins() -> None:
    """Import the built-in families, losses and datasets; each module registers what it defines."""
    from . import data, losses  # noqa: F401  (importing them registers their components)
    from .models import load_builtin_families

    load_builtin_families()


registry.set_builtins_loader(_load_builtins)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _LAZY_MODULES:
        return importlib.import_module(f"vganzoo.{name}")
    raise AttributeError(f"module 'vganzoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _LAZY_MODULES)
