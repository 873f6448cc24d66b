"""Third-party plugins through Python entry points.

A distribution adds models and components without touching vganzoo by declaring entry points::

    [project.entry-points."vganzoo.models"]
    toy-gan = "vganzoo_toy.models"            # name = module (or module:object) that registers it

    [project.entry-points."vganzoo.components"]
    "generator/toy" = "vganzoo_toy.models"     # kind/name

Listing reads only the entry-point metadata. The module is imported the first time one of its
names is used; while it imports, every ``register_model`` / ``register_component`` call is recorded
under the distribution's name. A plugin's module imported directly (``import vganzoo_toy.models``)
registers under its distribution too (the one whose entry points import that top-level package), and
a later load of that entry point stands on those registrations. A plugin that fails to import fails
only its own names; its error is kept in :func:`errors`. Entry points are re-read on queries (never
cached at import; a scan is reused for two seconds, since building one model looks several names
up), so a package installed after ``import vganzoo`` is seen; :func:`reload` forgets plugin state,
scans and failures.

``VGANZOO_DISABLE_PLUGIN_AUTOLOAD=1`` turns discovery off.

This module sits on the registry: importing it connects the two (``registry.set_plugin_hook``); the
registry never imports it.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.metadata as metadata
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

from . import registry
from .errors import PluginError

__all__ = ["PluginFailure", "autoload_enabled", "current_distribution", "entry_points", "errors", "reload"]

GROUPS = {"models": "vganzoo.models", "components": "vganzoo.components"}
_current_dist: contextvars.ContextVar[tuple[str, list] | None] = contextvars.ContextVar(
    "vganzoo_plugin_dist", default=None
)
_lock = threading.RLock()
_loaded: set[tuple[str, str]] = set()  # (dist, entry-point value) already imported
# What each entry point registered when first imported: a module imports once per process, so
# after reload() its registrations are restored from here instead of re-running its decorators.
_registered_by_ep: dict[tuple[str, str], list] = {}
_failures: dict[tuple[str, str], PluginFailure] = {}
# Registrations a plugin's module made when imported directly (``import vganzoo_toy.models`` before
# vganzoo loaded it): attributed to its distribution, and what a later load of it stands on, since
# importing the module again registers nothing.
_registered_directly: dict[str, list] = {}


@dataclass(frozen=True)
class PluginFailure:
    """One plugin entry point that could not be loaded."""

    distribution: str
    group: str
    name: str
    value: str
    error: BaseException
    traceback: str

    def __str__(self) -> str:
        return (
            f"{self.distribution}: entry point {self.name!r} = {self.value!r} ({self.group}) "
            f"failed: {self.error!r}"
        )


def autoload_enabled() -> bool:
    return os.environ.get("VGANZOO_DISABLE_PLUGIN_AUTOLOAD", "").strip().lower() not in {
        "1",
        "true",
        "yes",
        "on",
    }


def current_distribution() -> str | None:
    """The distribution whose entry point is being imported right now (None outside a plugin load)."""
    current = _current_dist.get()
    return current[0] if current else None


def record_registration(spec: object) -> None:
    """Called by the registry for every plugin registration: made while a plugin imports, or by a
    plugin's module imported directly (see :func:`distribution_of_module`)."""
    current = _current_dist.get()
    if current is not None:
        current[1].append(spec)
    else:
        with _lock:
            _registered_directly.setdefault(spec.source, []).append(spec)


def distribution_of_module(module: str) -> str | None:
    """The plugin distribution whose entry points import the top-level package of ``module``
    (None for vganzoo's own modules, user code, or a package no plugin declares)."""
    top = module.partition(".")[0]
    if not top or top in {"vganzoo", "__main__"}:
        return None
    owners = {
        dist
        for kind in GROUPS
        for dist, ep in entry_points(kind)
        if ep.value.partition(":")[0].strip().partition(".")[0] == top
    }
    return owners.pop() if len(owners) == 1 else None


@contextlib.contextmanager
def registering_as(dist: str) -> Iterator[list]:
    """Record registrations made inside the block as coming from distribution ``dist``."""
    collected: list = []
    token = _current_dist.set((dist, collected))
    try:
        yield collected
    finally:
        _current_dist.reset(token)


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) or (dist.metadata["Name"] if dist is not None else None)
    return (name or "unknown").replace("_", "-").lower()


# Reading entry points scans every installed distribution (~70 ms here) and building one model looks
# names up several times: a scan is reused for this long, and while sys.path is the same.
ENTRY_POINTS_TTL_S = 2.0
_scans: dict[tuple[str, tuple[str, ...]], tuple[float, list[tuple[str, metadata.EntryPoint]]]] = {}


def entry_points(kind: str) -> list[tuple[str, metadata.EntryPoint]]:
    """(distribution, entry point) pairs of group ``kind`` ("models" or "components"), read fresh
    (a scan at most :data:`ENTRY_POINTS_TTL_S` old, of the same sys.path; :func:`reload` forgets it)."""
    if not autoload_enabled():
        return []
    key, now = (kind, tuple(sys.path)), time.monotonic()
    scanned = _scans.get(key)
    if scanned is not None and now - scanned[0] < ENTRY_POINTS_TTL_S:
        return list(scanned[1])
    out = []
    seen = set()
    for ep in metadata.entry_points(group=GROUPS[kind]):
        dist = _dist_name(ep)
        if dist == "vganzoo":  # our own families register directly at import
            continue
        key = (dist, ep.name, ep.value)
        if key in seen:  # the same distribution found twice on sys.path
            continue
        seen.add(key)
        out.append((dist, ep))
    _scans[(kind, tuple(sys.path))] = (now, out)
    return list(out)


def entry_point_names(kind: str) -> set[str]:
    return {ep.name for _, ep in entry_points(kind)}


def entry_point_dists(kind: str, name: str) -> set[str]:
    return {dist for dist, ep in entry_points(kind) if ep.name == name}


def load_plugin_name(kind: str, name: str, dist: str) -> None:
    """Import the entry point(s) of ``dist`` that declare ``name``; raise PluginError on failure."""
    for ep_dist, ep in entry_points(kind):
        if ep_dist != dist or ep.name != name:
            continue
        key = (dist, ep.value)
        with _lock:
            if key in _loaded:
                continue
            failure = _failures.get((dist, ep.value))
            if failure is None and key in _registered_by_ep:
                registry.restore(_registered_by_ep[key])
                _loaded.add(key)
                continue
            if failure is None:
                try:
                    with registering_as(dist) as collected:
                        ep.load()
                    if not collected:  # imported directly earlier: its registrations were made then
                        collected = list(_registered_directly.get(dist, ()))
                        registry.restore(collected)
                    _registered_by_ep[key] = collected
                    _loaded.add(key)
                    continue
                except KeyboardInterrupt:
                    raise
                except (
                    BaseException
                ) as exc:  # any import-time error (even sys.exit) of a plugin is its own failure
                    failure = PluginFailure(
                        dist, GROUPS[kind], ep.name, ep.value, exc, traceback.format_exc()
                    )
                    _failures[(dist, ep.value)] = failure
        raise PluginError(
            f"plugin {dist!r} failed to load {name!r} from {ep.value!r}: "
            f"{type(failure.error).__name__}: {failure.error}. "
            "Fix or uninstall that package; vganzoo.plugins.errors() has the traceback."
        ) from failure.error


def errors() -> list[PluginFailure]:
    """Failures of plugins that were tried so far (empty when all loaded)."""
    with _lock:
        return list(_failures.values())


def reload() -> None:
    """Forget plugin registrations and failures; the next query re-reads entry points."""
    with _lock:
        _loaded.clear()
        _failures.clear()
        _scans.clear()
        registry.reset_plugins()


class _Hook:
    """The registry's view of this module (see :class:`vganzoo.registry.PluginHook`)."""

    current_distribution = staticmethod(current_distribution)
    distribution_of_module = staticmethod(distribution_of_module)
    record_registration = staticmethod(record_registration)
    entry_point_names = staticmethod(entry_point_names)
    entry_point_dists = staticmethod(entry_point_dists)
    load_plugin_name = staticmethod(load_plugin_name)


registry.set_plugin_hook(_Hook())
