"""Build throw-away plugin distributions on sys.path for the plugin tests.

A "distribution" here is a package folder plus a ``*.dist-info`` with METADATA and
entry_points.txt: exactly what pip leaves behind, so importlib.metadata finds it the same way.
"""

from __future__ import annotations

import contextlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

from vganzoo import plugins, registry


def make_distribution(root: Path, dist: str, module: str, source: str, models=(), components=()) -> Path:
    """Write distribution ``dist`` with top-level module ``module`` (its code ``source``) under root.

    ``models`` are model names and ``components`` ``kind/name`` strings declared as entry points
    pointing at ``module``. Returns the folder to put on sys.path.
    """
    site = root / f"site-{dist}"
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    lines = []
    if models:
        lines.append("[vganzoo.models]")
        lines += [f"{name} = {module}" for name in models]
    if components:
        lines.append("[vganzoo.components]")
        lines += [f"{name} = {module}" for name in components]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return site


class PluginSandbox:
    """Adds distributions to sys.path and undoes everything (paths, modules, registrations)."""

    def __init__(self, root: Path):
        self.root = root
        self.paths: list[str] = []
        self.modules: list[str] = []
        self.dists: list[str] = []

    def add(self, dist: str, module: str, source: str, models=(), components=()) -> None:
        site = make_distribution(self.root, dist, module, source, models, components)
        sys.path.insert(0, str(site))
        self.paths.append(str(site))
        self.modules.append(module)
        self.dists.append(dist)
        plugins.reload()

    def close(self) -> None:
        for path in self.paths:
            if path in sys.path:
                sys.path.remove(path)
        for module in self.modules:
            sys.modules.pop(module, None)
        plugins.reload()
        # forget what the throw-away modules registered so later tests start clean
        # (only the sandbox's own: an installed plugin loaded earlier, whose module stays imported, is
        # restored from its record on the next load)
        for key in [k for k in plugins._registered_by_ep if k[0] in self.dists]:
            del plugins._registered_by_ep[key]
        for dist in self.dists:
            plugins._registered_directly.pop(dist, None)
        with registry.core._lock:
            for name in [n for n, s in registry.core._models.items() if s.factory.__module__ in self.modules]:
                del registry.core._models[name]


@contextlib.contextmanager
def registry_state_restored(*packages: str) -> Iterator[None]:
    """Everything registered or loaded inside the block is forgotten at its end: the registry's
    tables (built-ins loaded first, so they are kept), the plugin layer's state, sys.path, and the
    modules of top-level ``packages`` imported meanwhile."""
    registry.core._ensure_builtins()
    core = registry.core
    tables = ["_models", "_components", "_plugin_models", "_plugin_components", "_warned_shadowed"]
    state = ["_loaded", "_registered_by_ep", "_registered_directly", "_failures"]
    # the per-distribution tables are nested dicts: copy their inner dicts, never the specs
    saved_tables = {
        name: {k: dict(v) if isinstance(v, dict) else v for k, v in getattr(core, name).items()}
        if isinstance(getattr(core, name), dict)
        else set(getattr(core, name))
        for name in tables
    }
    saved_state = {name: getattr(plugins, name).copy() for name in state}
    path, modules = list(sys.path), set(sys.modules)
    try:
        yield
    finally:
        with core._lock:
            for name, value in saved_tables.items():
                table = getattr(core, name)
                table.clear()
                table.update(value)
            for name, value in saved_state.items():
                current = getattr(plugins, name)
                current.clear()
                current.update(value)
            plugins._scans.clear()
        sys.path[:] = path
        for module in set(sys.modules) - modules:
            if module.partition(".")[0] in packages:
                sys.modules.pop(module, None)


TOY_MODEL_SOURCE = """
import torch
from torch import nn
import vganzoo
from vganzoo.models.base import DiscriminatorOutput, VideoGAN

class Gen(nn.Module):
    num_classes = 0
    def __init__(self, frames, size):
        super().__init__()
        self.frames, self.size = frames, size
        self.fc = nn.Linear(4, 3 * frames * size * size)
    def sample_latents(self, n, *, generator, labels=None):
        return {{"z": torch.randn(n, 4, generator=generator)}}
    def forward(self, z):
        return self.fc(z).tanh().view(z.shape[0], 3, self.frames, self.size, self.size)

class Disc(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
    def forward(self, video, labels=None):
        return DiscriminatorOutput(video.flatten(1).mean(1, keepdim=True) * self.w)

@vganzoo.register_model("{name}", family="{family}", default_config={{"frames": 2, "size": 4}})
def build(frames, size):
    "{doc}"
    return VideoGAN(Gen(frames, size), {{"video": Disc()}})
"""


def toy_source(name: str, family: str = "test", doc: str = "a test model") -> str:
    return TOY_MODEL_SOURCE.format(name=name, family=family, doc=doc)
