"""The registry's tables and lookup: specs, registration, name resolution, listing, and the hooks."""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import json
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from ..errors import (
    AmbiguousNameError,
    InvalidConfigError,
    PluginError,
    UnknownComponentError,
    UnknownModelError,
)

COMPONENT_KINDS = ("generator", "discriminator", "loss", "dataset")
FOLDER_DATASET = "folder"  # the dataset component that reads a folder of videos
BUILTIN_SOURCE = "vganzoo"
# Where an unknown model's error points; the command line says `vganzoo list` instead.
LIST_MODELS_HINT = "(vganzoo.list_models() lists them all)"
_MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_COMPONENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-/]*$")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


@dataclasses.dataclass(frozen=True)
class PretrainedSpec:
    """Where one pretrained weight set lives and how to verify it.

    Attributes:
        tag: the part after the dot in ``arch.tag``.
        repo_id: Hugging Face Hub repository (``org/name``), or None for bundled-only weights.
        revision: a pinned 40-hex commit for built-ins (a branch name is allowed for plugins).
        files: component name -> file name, e.g. ``{"generator": "generator.safetensors"}``;
            ``config.json`` is always part of a weight set and is listed under ``"config"``.
        sha256: file name -> lower-case hex sha256; a file is accepted only if it matches.
        bundled: a folder inside the installed package (relative to the ``vganzoo`` package
            directory) holding the same files, for weight sets that must work offline.
        metadata: dataset, resolution, frames, fps, license, paper, training command, metrics.
    """

    tag: str
    repo_id: str | None = None
    revision: str | None = None
    files: Mapping[str, str] = dataclasses.field(default_factory=dict)
    sha256: Mapping[str, str] = dataclasses.field(default_factory=dict)
    bundled: str | None = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "files": dict(self.files),
            "sha256": dict(self.sha256),
            "bundled": self.bundled,
            "metadata": dict(self.metadata),
        }


@dataclasses.dataclass
class ModelSpec:
    """Everything the registry knows about one model name."""

    name: str
    factory: Callable[..., Any]
    family: str
    paper: str = ""
    description: str = ""
    default_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    recipe: dict[str, Any] = dataclasses.field(default_factory=dict)
    # named recipes: "paper" (the original training loop, the default ``recipe``) and variants
    recipes: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # values for keys that configs saved before the key existed lack (their old behaviour), where
    # the default config gives new models another value
    saved_config_defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    pretrained: dict[str, PretrainedSpec] = dataclasses.field(default_factory=dict)
    default_tag: str | None = None
    source: str = BUILTIN_SOURCE  # "vganzoo" for built-ins, else the distribution that registered it

    @property
    def qualified_name(self) -> str:
        return f"{self.source}::{self.name}"


@dataclasses.dataclass
class ComponentSpec:
    kind: str
    name: str
    factory: Callable[..., Any]
    source: str = BUILTIN_SOURCE


# ----------------------------------------------------------------------------------------------
# Tables. "primary" holds built-ins and anything registered directly by user code; plugin
# registrations (made while a plugin's entry point is being imported) go to per-distribution
# tables so that clashes can be reported instead of silently overwritten.
# ----------------------------------------------------------------------------------------------
_lock = threading.RLock()
_models: dict[str, ModelSpec] = {}
_plugin_models: dict[str, dict[str, ModelSpec]] = {}  # name -> dist -> spec
_components: dict[tuple[str, str], ComponentSpec] = {}
_plugin_components: dict[tuple[str, str], dict[str, ComponentSpec]] = {}
_warned_shadowed: set[tuple[str, str]] = set()


# ----------------------------------------------------------------------------------------------
# Hooks (installed by the package root; see the module docstring)
# ----------------------------------------------------------------------------------------------
class PluginHook(Protocol):
    """What the registry asks of the plugin layer (:mod:`vganzoo.plugins` implements it)."""

    def current_distribution(self) -> str | None: ...  # registering now (None outside a plugin load)
    def distribution_of_module(self, module: str) -> str | None: ...  # plugin owning module, if any
    def record_registration(self, spec: ModelSpec | ComponentSpec) -> None: ...  # made while it imports
    def entry_point_names(self, kind: str) -> set[str]: ...  # declared in group kind (models, components)
    def entry_point_dists(self, kind: str, name: str) -> set[str]: ...  # distributions declaring name
    def load_plugin_name(self, kind: str, name: str, dist: str) -> None: ...  # import it, or PluginError


class _NoPlugins:
    """The hook before (or without) :mod:`vganzoo.plugins`: no plugin names at all."""

    def current_distribution(self) -> str | None:
        return None

    def distribution_of_module(self, module: str) -> str | None:
        return None

    def record_registration(self, spec: ModelSpec | ComponentSpec) -> None:
        pass

    def entry_point_names(self, kind: str) -> set[str]:
        return set()

    def entry_point_dists(self, kind: str, name: str) -> set[str]:
        return set()

    def load_plugin_name(self, kind: str, name: str, dist: str) -> None:
        pass


_plugins: PluginHook = _NoPlugins()
_builtins_loader: Callable[[], None] | None = None
_builtins_state = "pending"  # "pending" -> "loading" -> "loaded"


def set_plugin_hook(hook: PluginHook) -> None:
    """Connect the entry-point side (done by :mod:`vganzoo.plugins` when it is imported)."""
    global _plugins
    _plugins = hook


def set_builtins_loader(loader: Callable[[], None]) -> None:
    """Set the function that imports the built-in families, losses and datasets (the package root's)."""
    global _builtins_loader, _builtins_state
    with _lock:
        _builtins_loader = loader
        _builtins_state = "pending"


def _ensure_builtins() -> None:
    """Run the built-ins loader once (registration happens as its modules import)."""
    global _builtins_state
    if _builtins_state == "loaded" or _builtins_loader is None:
        return
    with _lock:  # another thread that is loading them: wait; the loading thread itself re-enters
        if _builtins_state != "pending":
            return
        _builtins_state = "loading"  # a family module looking names up while it imports sees the rest later
        try:
            _builtins_loader()
        except BaseException:
            _builtins_state = "pending"
            raise
        _builtins_state = "loaded"


def _registering_source(factory: Callable[..., Any]) -> str:
    """Who registers ``factory``: the plugin being loaded, else the plugin distribution whose
    package defines it (its module imported directly, before vganzoo loaded it), else built-in."""
    dist = _plugins.current_distribution()
    if dist is None:
        dist = _plugins.distribution_of_module(getattr(factory, "__module__", None) or "")
    return dist or BUILTIN_SOURCE


def reset_plugins() -> None:
    """Forget every plugin registration (see :func:`vganzoo.plugins.reload`)."""
    with _lock:
        _plugin_models.clear()
        _plugin_components.clear()
        _warned_shadowed.clear()


def check_json(config: Mapping[str, Any], what: str) -> None:
    """``config`` must be JSON: plain values, and finite numbers (NaN and infinity are not JSON, and
    would reach a factory as a size)."""
    try:
        json.dumps(config, allow_nan=False)
    except TypeError as exc:
        raise InvalidConfigError(
            f"{what} must be JSON-serialisable (plain numbers, strings, lists, dicts): {exc}"
        ) from None
    except ValueError:
        bad = [k for k, v in config.items() if _not_finite(v)]
        raise InvalidConfigError(
            f"{what}: {', '.join(map(repr, bad)) or 'a value'} must be a finite number, not NaN or infinity"
        ) from None


def _not_finite(value: Any) -> bool:
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    if isinstance(value, Mapping):
        return any(_not_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_not_finite(v) for v in value)
    return False


def register_model(
    name: str,
    *,
    family: str | None = None,
    paper: str = "",
    default_config: Mapping[str, Any] | None = None,
    recipe: Mapping[str, Any] | None = None,
    pretrained: Iterable[PretrainedSpec] | Mapping[str, PretrainedSpec] | None = None,
    default_tag: str | None = None,
    overwrite: bool = False,
    recipes: Mapping[str, Mapping[str, Any]] | None = None,
    saved_config_defaults: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``factory(**config) -> VideoGAN`` under ``name``.

    ``default_config`` lists every accepted keyword with its default; :func:`create` rejects
    any other keyword. The factory receives the full merged config.

    ``recipes`` names training recipes (``"paper"``: the original loop, then variants); the first is
    the default ``recipe`` unless ``recipe`` is given (a lone ``recipe`` is named ``"default"``).
    ``saved_config_defaults`` gives keys added to ``default_config`` after configs were saved without
    them the value that rebuilds those saved models as they were (see :func:`complete_saved_config`).
    """
    if not _MODEL_NAME.match(name):
        raise ValueError(
            f"register_model: name {name!r} must be lower-case letters, digits, '-' or '_' "
            "(a '.' is reserved for pretrained tags)"
        )
    config = dict(default_config or {})
    check_json(config, f"default_config of {name!r}")
    if isinstance(pretrained, Mapping):
        tags = dict(pretrained)
    else:
        tags = {p.tag: p for p in (pretrained or ())}
    for tag in tags:
        if not _TAG.match(tag):
            raise ValueError(f"register_model: pretrained tag {tag!r} of {name!r} is not a valid tag")
    if default_tag is None and tags:
        default_tag = next(iter(tags))
    named = {str(k): dict(v) for k, v in (recipes or {}).items()}
    for recipe_name in named:
        if not _TAG.match(recipe_name):
            raise ValueError(f"register_model: recipe name {recipe_name!r} of {name!r} is not a valid name")
    if recipe is None and named:
        recipe = next(iter(named.values()))
    if not named and recipe is not None:
        named = {"default": dict(recipe)}
    legacy = dict(saved_config_defaults or {})
    unknown = sorted(set(legacy) - set(config))
    if unknown:
        raise ValueError(f"register_model: saved_config_defaults of {name!r} names unknown keys {unknown}")

    def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
        source = _registering_source(factory)
        spec = ModelSpec(
            name=name,
            factory=factory,
            family=family or name,
            paper=paper,
            description=(factory.__doc__ or "").strip().split("\n")[0],
            default_config=config,
            recipe=dict(recipe or {}),
            recipes=named,
            saved_config_defaults=legacy,
            pretrained=tags,
            default_tag=default_tag,
            source=source,
        )
        with _lock:
            if source == BUILTIN_SOURCE:
                if name in _models and not overwrite and _models[name].factory is not factory:
                    raise ValueError(
                        f"register_model: {name!r} is already registered (pass overwrite=True to replace it)"
                    )
                _models[name] = spec
            else:
                _plugin_models.setdefault(name, {})[source] = spec
                _plugins.record_registration(spec)
        return factory

    return decorator


def register_component(
    kind: str, name: str, *, overwrite: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a generator, discriminator or loss class/factory under ``name``.

    Discriminator and generator factories are called with the model's shared keywords
    (``resolution``, ``frames``, ``channels``, ``width``, ``num_classes``) plus their own, and must
    raise :class:`~vganzoo.errors.InvalidConfigError` for combinations they cannot handle.
    """
    if kind not in COMPONENT_KINDS:
        raise ValueError(f"register_component: kind must be one of {COMPONENT_KINDS}, got {kind!r}")
    if not _COMPONENT_NAME.match(name):
        raise ValueError(
            f"register_component: name {name!r} must be lower-case letters, digits, '-', '_' or '/'"
        )

    def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
        source = _registering_source(factory)
        spec = ComponentSpec(kind=kind, name=name, factory=factory, source=source)
        with _lock:
            if source == BUILTIN_SOURCE:
                old = _components.get((kind, name))
                if old is not None and not overwrite and old.factory is not factory:
                    raise ValueError(f"register_component: {kind} {name!r} is already registered")
                _components[(kind, name)] = spec
            else:
                _plugin_components.setdefault((kind, name), {})[source] = spec
                _plugins.record_registration(spec)
        return factory

    return decorator


def restore(specs: Iterable[ModelSpec | ComponentSpec]) -> None:
    """Put plugin registrations recorded earlier back into the tables (see plugins.reload)."""
    with _lock:
        for spec in specs:
            if isinstance(spec, ModelSpec):
                _plugin_models.setdefault(spec.name, {})[spec.source] = spec
            else:
                _plugin_components.setdefault((spec.kind, spec.name), {})[spec.source] = spec


# ----------------------------------------------------------------------------------------------
# Lookup
# ----------------------------------------------------------------------------------------------
def split_tag(name: str) -> tuple[str, str | None]:
    """``"mocogan-rnn.digits"`` -> ``("mocogan-rnn", "digits")``; ``dist::`` prefixes are kept."""
    prefix, sep, base = name.rpartition("::")
    arch, dot, tag = base.partition(".")
    return (prefix + sep + arch, tag or None) if dot else (name, None)


def _all_model_names() -> list[str]:
    _ensure_builtins()
    names = set(_models)
    names.update(_plugin_models)
    names.update(_plugins.entry_point_names("models"))
    return sorted(names)


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=5, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def get_model_spec(name: str) -> ModelSpec:
    """Resolve a model name (``arch``, ``arch.tag`` or ``dist::arch``) to its spec."""
    if not isinstance(name, str) or not name:
        raise UnknownModelError(f"model name must be a non-empty string, got {name!r}")
    _ensure_builtins()
    arch, _tag = split_tag(name)
    dist, sep, base = arch.rpartition("::")
    if sep:
        if dist == BUILTIN_SOURCE:
            if base in _models:
                return _models[base]
            raise UnknownModelError(f"no built-in model {base!r}.{_suggest(base, _models)}")
        spec = _plugin_models.get(base, {}).get(dist)
        if spec is None:
            _plugins.load_plugin_name("models", base, dist)
            spec = _plugin_models.get(base, {}).get(dist)
        if spec is None:
            if dist in _plugins.entry_point_dists("models", base):
                registered = sorted(b for b, dists in _plugin_models.items() if dist in dists)
                raise PluginError(
                    f"plugin {dist!r} declares model {base!r} in its entry points, but importing it "
                    "registered "
                    f"{', '.join(map(repr, registered)) or 'no model'}; the entry point name and the "
                    "register_model name must match (a bug in that package)"
                )
            raise UnknownModelError(
                f"distribution {dist!r} does not register a model {base!r}."
                f"{_suggest(base, _all_model_names())}"
            )
        return spec

    claimants = _plugins.entry_point_dists("models", arch) | set(_plugin_models.get(arch, {}))
    claimants.discard(BUILTIN_SOURCE)
    if arch in _models:
        spec = _models[arch]
        for other in sorted(claimants):
            if (other, arch) not in _warned_shadowed:
                _warned_shadowed.add((other, arch))
                warnings.warn(
                    f"plugin distribution {other!r} also registers model {arch!r}; the built-in wins. "
                    f"Use '{other}::{arch}' for the plugin's.",
                    stacklevel=3,
                )
        return spec
    if len(claimants) > 1:
        options = ", ".join(f"{d}::{arch}" for d in sorted(claimants))
        raise AmbiguousNameError(f"model {arch!r} is registered by several plugins; choose one of: {options}")
    if len(claimants) == 1:
        (dist,) = claimants
        return get_model_spec(f"{dist}::{arch}")
    raise UnknownModelError(f"unknown model {arch!r}.{_suggest(arch, _all_model_names())} {LIST_MODELS_HINT}")


def get_component_spec(kind: str, name: str) -> ComponentSpec:
    """The registration of ``kind`` ``name``: its factory and the distribution that made it.

    ``dist::name`` picks one plugin's; a bare name is the built-in (a plugin component of the same
    name is warned about and can be had as ``dist::name``), else the one plugin that declares it.
    """
    if kind not in COMPONENT_KINDS:
        raise ValueError(f"kind must be one of {COMPONENT_KINDS}, got {kind!r}")
    if not isinstance(name, str) or not name:
        raise UnknownComponentError(f"{kind} name must be a non-empty string, got {name!r}")
    _ensure_builtins()
    dist, sep, base = name.rpartition("::")
    if sep:
        if dist == BUILTIN_SOURCE and (kind, base) in _components:
            return _components[(kind, base)]
        spec = _plugin_components.get((kind, base), {}).get(dist)
        if spec is None:
            _plugins.load_plugin_name("components", f"{kind}/{base}", dist)
            spec = _plugin_components.get((kind, base), {}).get(dist)
        if spec is None:
            raise UnknownComponentError(f"distribution {dist!r} does not register a {kind} {base!r}")
        return spec
    claimants = _plugins.entry_point_dists("components", f"{kind}/{name}") | set(
        _plugin_components.get((kind, name), {})
    )
    claimants.discard(BUILTIN_SOURCE)
    if (kind, name) in _components:
        for other in sorted(claimants):
            if (other, f"{kind}/{name}") not in _warned_shadowed:
                _warned_shadowed.add((other, f"{kind}/{name}"))
                warnings.warn(
                    f"plugin distribution {other!r} also registers {kind} {name!r}; the built-in wins. "
                    f"Use '{other}::{name}' for the plugin's.",
                    stacklevel=3,
                )
        return _components[(kind, name)]
    if len(claimants) > 1:
        options = ", ".join(f"{d}::{name}" for d in sorted(claimants))
        raise AmbiguousNameError(
            f"{kind} {name!r} is registered by several plugins; choose one of: {options}"
        )
    if len(claimants) == 1:
        (dist,) = claimants
        return get_component_spec(kind, f"{dist}::{name}")
    known = list_components(kind)
    raise UnknownComponentError(
        f"unknown {kind} {name!r}.{_suggest(name, known)} Registered {kind}s: {', '.join(known) or 'none'}"
    )


def get_component(kind: str, name: str) -> Callable[..., Any]:
    """The factory registered as ``kind`` ``name`` (``dist::name`` picks a plugin's)."""
    return get_component_spec(kind, name).factory


def qualified_component(kind: str, name: str) -> str:
    """The name to save for component ``name``: ``dist::name`` for a plugin's (so that it still
    resolves when another plugin later declares the same name), the bare name for a built-in."""
    spec = get_component_spec(kind, name)
    return spec.name if spec.source == BUILTIN_SOURCE else f"{spec.source}::{spec.name}"


# ----------------------------------------------------------------------------------------------
# Listing
# ----------------------------------------------------------------------------------------------
def _patterns(value, name: str) -> list[str]:
    """A pattern or an iterable of patterns -> a list of str, or a TypeError naming the argument."""
    if isinstance(value, str):
        return [value]
    try:
        out = list(value)
    except TypeError:
        out = None
    if out is None or not all(isinstance(p, str) for p in out):
        raise TypeError(f"{name} must be a shell-style pattern (str) or an iterable of them, got {value!r}")
    return out


def _match(
    names: Iterable[str], filter: str | Iterable[str], exclude: str | Iterable[str] | None
) -> list[str]:
    include = _patterns(filter, "filter")
    excl = _patterns(exclude or (), "exclude_filters")
    out = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in include)]
    out = [n for n in out if not any(fnmatch.fnmatchcase(n, p) for p in excl)]
    return sorted(set(out), key=_natural_key)


def list_models(
    filter: str | Iterable[str] = "*",
    pretrained: bool = False,
    exclude_filters: str | Iterable[str] | None = None,
) -> list[str]:
    """Registered model names matching shell-style ``filter`` (naturally sorted).

    Plugin names come from entry-point metadata; no plugin is imported. Names two plugins claim
    are listed as ``dist::name`` for each. With ``pretrained=True`` the ``arch.tag`` names of
    every weight set are listed instead (this imports plugins to read their specs).
    """
    if pretrained:
        return list_pretrained(filter, exclude_filters=exclude_filters)
    names: set[str] = set()
    for name in _all_model_names():
        if name in _models:
            names.add(name)
            continue
        claimants = _plugins.entry_point_dists("models", name) | set(_plugin_models.get(name, {}))
        claimants.discard(BUILTIN_SOURCE)
        if len(claimants) > 1:
            names.update(f"{d}::{name}" for d in claimants)
        else:
            names.add(name)
    return _match(names, filter, exclude_filters)


def list_pretrained(
    filter: str | Iterable[str] = "*", exclude_filters: str | Iterable[str] | None = None
) -> list[str]:
    """``arch.tag`` names of every registered pretrained weight set matching ``filter``."""
    out = []
    for name in list_models():
        try:
            spec = get_model_spec(name)
        except Exception:  # a broken plugin is reported by plugins.errors(), not here
            continue
        out.extend(f"{name}.{tag}" for tag in spec.pretrained)
    return _match(out, filter, exclude_filters)


def list_components(kind: str | None = None, filter: str = "*") -> list[str]:
    """Registered component names (``kind/name`` when ``kind`` is None)."""
    _ensure_builtins()
    keys = set(_components) | set(_plugin_components)
    for ep_name in _plugins.entry_point_names("components"):
        k, _, n = ep_name.partition("/")
        keys.add((k, n))
    if kind is not None:
        return _match([n for k, n in keys if k == kind], filter, None)
    return _match([f"{k}/{n}" for k, n in keys], filter, None)
