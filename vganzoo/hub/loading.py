"""Loading weight sets: build the model a weight set's config names and load its verified files.

:func:`load` builds a fresh model (``vganzoo.load``); :func:`load_weights` loads into a model you
built (fine-tuning); :func:`pretrained_config` reads a weight set's config without building it;
:func:`model_info` describes an architecture or a weight set; :func:`load_or_create` is what the
command line does with a name (pretrained weights when it has them, else random weights).
Only JSON and safetensors are read.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import registry
from ..errors import InvalidConfigError, UnknownModelError
from .checks import check_config_size, check_model_memory, check_tensors
from .errors import NothingFitsError, StateDictMismatchError, WeightsError, short_list
from .fetch import Fetcher, resolve
from .weightsets import (
    CONFIG_FILE,
    HF_HUB_PREFIX,
    LOCAL_DIR_PREFIX,
    HubOptions,
    WeightSet,
    read_json,
    select_components,
    to_load_name,
)

__all__ = [
    "LoadReport",
    "component_module",
    "create",
    "load",
    "load_or_create",
    "load_weights",
    "model_info",
    "pretrained_config",
]


def component_module(model: Any, component: str) -> Any:
    """The module of ``model`` a weight-set component goes into: ``generator``, ``generator_ema``
    (created as a copy of the generator when missing) or ``discriminator.<role>``."""
    if component.startswith("discriminator."):
        return model.discriminators[component.partition(".")[2]]
    if component == "generator_ema":
        return model.add_ema()
    return getattr(model, component)


def component_modules(model: Any) -> dict[str, Any]:
    """Every component of ``model`` by its weight-set name (``generator``, ``generator_ema``,
    ``discriminator.<role>``)."""
    from .weightsets import ROLE

    out = {"generator": model.generator}
    if getattr(model, "generator_ema", None) is not None:
        out["generator_ema"] = model.generator_ema
    for role, disc in model.discriminators.items():
        if not ROLE.match(role):
            raise ValueError(
                f"discriminator role {role!r} cannot be a file name; use lower-case letters, digits, '-' "
                "or '_'"
            )
        out[f"discriminator.{role}"] = disc
    return out


def load_component(
    module: Any, path: Path, what: str, strict: bool, *, warn: bool = True
) -> StateDictMismatchError | None:
    """Load one safetensors file into ``module``; returns the mismatch (None when exact).

    strict: a mismatch raises. Otherwise the matching tensors are loaded, the rest of the
    module keeps its values, and the mismatch is returned (and warned about when ``warn``).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except SafetensorError as exc:  # a malformed header or truncated data
        raise WeightsError(f"{what}: {path} is not a readable safetensors file ({exc})") from None
    expected = module.state_dict()
    check_tensors(tensors, expected, what)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [
        f"{k} (file {tuple(tensors[k].shape)}, model {tuple(expected[k].shape)})"
        for k in sorted(set(expected) & set(tensors))
        if tuple(tensors[k].shape) != tuple(expected[k].shape)
    ]
    mismatch = None
    if missing or unexpected or mismatched:
        mismatch = StateDictMismatchError(what, missing, unexpected, mismatched)
        if strict:
            raise mismatch
        if warn:
            warnings.warn(f"{what}: loading non-strictly; {mismatch}", stacklevel=3)
        bad = {m.split(" ")[0] for m in mismatched}
        tensors = {k: v for k, v in tensors.items() if k in expected and k not in bad}
        if expected and not tensors:
            raise NothingFitsError(
                f"{what}: none of the file's tensors fit the module, so nothing would be loaded "
                f"({mismatch}); is it the weight set of another model or configuration?"
            )
    # load_state_dict copies into the existing tensors (casting fp16 storage to the model's dtype)
    module.load_state_dict(tensors, strict=False)
    return mismatch


def as_dtype(dtype: Any) -> Any:
    """A torch dtype from a dtype or its name (None stays None)."""
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and isinstance(getattr(torch, dtype, None), torch.dtype):
        return getattr(torch, dtype)
    raise TypeError(f"dtype must be a torch.dtype or its name (e.g. 'float16'), got {dtype!r}")


def weight_set_config(weights: WeightSet, fetcher: Fetcher) -> dict[str, Any]:
    """The weight set's verified config.json: ``{"model": name, **keywords}``."""
    config = read_json(fetcher.fetch(weights.files["config"]), f"{weights.name} {CONFIG_FILE}")
    if not isinstance(config, dict) or not isinstance(config.get("model"), str):
        raise WeightsError(f'{weights.name}: {CONFIG_FILE} must be an object with a "model" name')
    return registry.complete_saved_config(config)  # a set saved before a key existed builds as it was


def file_sizes(weights: WeightSet, fetched: Mapping[str, Path]) -> dict[str, int]:
    """Bytes of each component's file: those ``fetched`` (component -> verified path), and for a
    local or bundled set the others too (sizes only, nothing read)."""
    sizes = {comp: path.stat().st_size for comp, path in fetched.items()}
    folder = weights.local_dir or weights.bundled
    if folder is not None:
        for comp in weights.components:
            path = folder / weights.files[comp]
            if comp not in sizes and path.is_file():
                sizes[comp] = path.stat().st_size
    return sizes


def _build_model(weights: WeightSet, config: dict[str, Any], fetched: Mapping[str, Path]) -> Any:
    """The model the weight set's ``config`` builds (random weights), with the set's recipe; a config
    that would build far more than the set's files hold (or than memory allows) is refused first."""
    check_config_size(config, f"{weights.name} {CONFIG_FILE}", file_sizes(weights, fetched))
    model_name = config.pop("model")
    if weights.arch is not None and registry.get_model_spec(model_name) is not registry.get_model_spec(
        weights.arch
    ):
        raise WeightsError(f"{weights.name}: {CONFIG_FILE} builds {model_name!r}, not {weights.arch!r}")
    try:
        model = registry.create(model_name, **config)
    except UnknownModelError as exc:
        raise UnknownModelError(
            f"{weights.name}: its {CONFIG_FILE} needs model {model_name!r}, which is not registered ({exc}); "
            "install the plugin that provides it"
        ) from exc
    if weights.recipe is not None:
        model.recipe = dict(weights.recipe)
    return model


def _keep_only(model: Any, weights: WeightSet, wanted: list[str]) -> None:
    """Drop the discriminators and the EMA generator that ``wanted`` does not load."""
    roles = [c.partition(".")[2] for c in wanted if c.startswith("discriminator.")]
    unknown_roles = [r for r in roles if r not in model.discriminators]
    if unknown_roles:
        raise WeightsError(
            f"{weights.name}: the model has no discriminator {', '.join(map(repr, unknown_roles))}; it has: "
            f"{', '.join(model.discriminators) or 'none'}"
        )
    for role in list(model.discriminators):
        if role not in roles:
            del model.discriminators[role]
    if "generator_ema" in wanted:
        model.add_ema()
    else:
        model.generator_ema = None


def load(
    name: str,
    *,
    components: str | Iterable[str] | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    device: Any = None,
    dtype: Any = None,
    strict: bool = True,
) -> Any:
    """Build model ``name`` and load its pretrained weights (verified by sha256).

    Args:
        name: ``arch`` (its default tag), ``arch.tag``, ``hf-hub:org/repo[@revision]``,
            ``local-dir:/path`` or a folder path (``./my-run``; a registered name wins over a
            folder of the same name).
        components: what to load: ``"generator"``, ``"generator_ema"``, ``"discriminators"``
            (every role), ``"discriminator.<role>"``, or ``"all"``. Only these files are fetched.
            Default (None): what sampling needs, the generator plus ``generator_ema`` if the
            weight set has one.
            Discriminators not asked for are dropped from ``model.discriminators`` and an EMA
            generator not asked for is removed; a generator not asked for keeps random weights.
        revision: a branch, tag or commit for ``hf-hub:`` names (registry names are pinned).
        cache_dir: Hugging Face cache folder (default: ``HF_HUB_CACHE``).
        local_files_only: cache and bundled files only (default: ``HF_HUB_OFFLINE``); a missing
            file is an error at once, naming the file and how to fetch it.
        endpoint: Hub URL; default ``VGANZOO_ENDPOINT``, then ``HF_ENDPOINT``, read at call time.
        token: Hub token for private repos (default: huggingface_hub's stored login).
        device, dtype: moved/cast to these after loading.
        strict: require exactly matching keys and shapes (else load what matches and warn).

    Returns:
        A :class:`~vganzoo.models.base.VideoGAN` in eval mode.
    """
    from ..resources import as_device

    if revision is not None and not isinstance(revision, str):
        raise TypeError(
            f"revision must be a branch, tag or commit name (a string), got {type(revision).__name__}"
        )
    dtype = as_dtype(dtype)
    if dtype is not None and not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype (float32, float16, bfloat16...), got {dtype}")
    device = as_device(device)
    weights, fetcher = resolve(name, HubOptions(revision, cache_dir, local_files_only, endpoint, token))
    wanted = select_components(weights, components)
    config = weight_set_config(weights, fetcher)
    fetched = {comp: fetcher.fetch(weights.files[comp]) for comp in wanted}
    model = _build_model(weights, config, fetched)
    model.pretrained = {
        "name": weights.name,
        "repo_id": weights.repo_id,
        "revision": weights.revision,
        "components": wanted,
        "metadata": dict(weights.metadata),
    }
    _keep_only(model, weights, wanted)
    for comp, path in fetched.items():
        module = component_module(model, comp)
        load_component(module, path, f"{weights.name} {comp} ({weights.files[comp]})", strict)
    if model.generator_ema is not None:
        model.generator_ema.requires_grad_(False)
    model.eval()
    if device is not None or dtype is not None:
        model.to(device=device, dtype=dtype)
    return model


def pretrained_config(
    name: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    check_size: bool = False,
) -> dict[str, Any]:
    """The model config of weight set ``name`` (its verified ``config.json``), without building it.

    ``{"model": registered name, **keywords}``: ``vganzoo.create(config.pop("model"), **config)``
    builds the architecture the weights were trained as. Names as for :func:`load`. With
    ``check_size`` (before building a model from it) every component file is fetched and the
    config is refused when it would build far more than they hold, or more than memory allows.
    """
    weights, fetcher = resolve(name, HubOptions(revision, cache_dir, local_files_only, endpoint, token))
    config = weight_set_config(weights, fetcher)
    if check_size:
        fetched = {comp: fetcher.fetch(weights.files[comp]) for comp in weights.components}
        check_config_size(config, f"{weights.name} {CONFIG_FILE}", file_sizes(weights, fetched))
    return config


@dataclass
class LoadReport:
    """What :func:`load_weights` did.

    loaded: components whose tensors went into the model (wholly or in part).
    partial: component -> the mismatch (missing / unexpected / reshaped keys) for those loaded in
        part; their other tensors kept the model's values.
    skipped: weight-set components the model has no place for (a discriminator role it lacks).
    not_in_weights: model components the weight set does not have (they keep the model's values).
    unfit: discriminators none of whose tensors fit (another kind of discriminator under that role,
        e.g. a replaced one when fine-tuning): they keep the model's values.
    recipe: the training recipe the weight set records (None when it has none).
    repo_id, revision: where on the Hub the files came from (None for bundled and local folders).
    """

    name: str
    loaded: list[str] = field(default_factory=list)
    partial: dict[str, StateDictMismatchError] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    not_in_weights: list[str] = field(default_factory=list)
    unfit: list[str] = field(default_factory=list)
    recipe: dict[str, Any] | None = None
    repo_id: str | None = None
    revision: str | None = None

    def summary(self) -> str:
        lines = [f"initialised from {self.name}: " + (", ".join(self.loaded) or "nothing")]
        for comp, mismatch in self.partial.items():
            kept = mismatch.missing + [m.split(" ")[0] for m in mismatch.mismatched]
            lines.append(
                f"  {comp}: {len(kept)} tensor(s) keep their fresh values ({short_list(kept)})"
                + (
                    f"; {len(mismatch.unexpected)} unused ({short_list(mismatch.unexpected)})"
                    if mismatch.unexpected
                    else ""
                )
            )
        if self.not_in_weights:
            lines.append(f"  not in the weight set (fresh): {', '.join(self.not_in_weights)}")
        if self.unfit:
            lines.append(f"  nothing fits (another discriminator; fresh): {', '.join(self.unfit)}")
        if self.skipped:
            lines.append(f"  not in the model (unused): {', '.join(self.skipped)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "loaded": list(self.loaded),
            "partial": {
                comp: {"missing": m.missing, "unexpected": m.unexpected, "mismatched": m.mismatched}
                for comp, m in self.partial.items()
            },
            "skipped": list(self.skipped),
            "not_in_weights": list(self.not_in_weights),
            "unfit": list(self.unfit),
        }


def load_weights(
    model: Any,
    name: str,
    *,
    components: str | Iterable[str] | None = "all",
    strict: bool = True,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> LoadReport:
    """Load weight set ``name`` into an existing model (fetched and sha256-verified as by :func:`load`).

    For fine-tuning: build the model yourself (e.g. ``vganzoo.create`` with the weight set's
    :func:`pretrained_config` and a changed ``num_classes`` or discriminator list), then load what
    fits. Unlike :func:`load`, nothing is removed from the model: discriminators the weight set
    lacks keep their values, and ``generator_ema`` is created (as a copy of the loaded generator)
    when the weight set has one and ``components`` asks for it.

    Args:
        model: a :class:`~vganzoo.models.base.VideoGAN`.
        name, revision, cache_dir, local_files_only, endpoint, token: as for :func:`load`.
        components: as for :func:`load`; ``"all"`` (the default) is every component of the weight set.
        strict: every requested component must exist in the model and match it exactly. With
            False, the tensors that fit are loaded, the rest keep the model's values, and the
            returned report lists what happened (no warnings); a discriminator none of whose
            tensors fit keeps its values (``report.unfit``), a generator none of whose tensors fit
            is an error (the weights of another model or configuration).
    """
    if getattr(model, "generator", None) is None or getattr(model, "discriminators", None) is None:
        raise TypeError(
            f"model: expected a VideoGAN (with .generator and .discriminators), got {type(model).__name__}"
        )
    weights, fetcher = resolve(name, HubOptions(revision, cache_dir, local_files_only, endpoint, token))
    wanted = select_components(weights, components)
    report = LoadReport(
        name=weights.name,
        recipe=dict(weights.recipe) if weights.recipe is not None else None,
        repo_id=weights.repo_id,
        revision=weights.revision,
    )
    report.not_in_weights = [comp for comp in component_modules(model) if comp not in weights.components]
    # the generator before its EMA copy, so that EMA tensors the file lacks match the loaded generator
    for comp in sorted(wanted, key=lambda c: (c != "generator", c != "generator_ema")):
        _load_into(model, comp, weights, fetcher, strict, report)
    if getattr(model, "generator_ema", None) is not None:
        model.generator_ema.requires_grad_(False)
    return report


def _load_into(
    model: Any, comp: str, weights: WeightSet, fetcher: Fetcher, strict: bool, report: LoadReport
) -> None:
    """One component of :func:`load_weights`, recorded in ``report``."""
    if comp.startswith("discriminator."):
        role = comp.partition(".")[2]
        if role not in model.discriminators:
            if strict:
                raise WeightsError(
                    f"{weights.name}: the model has no discriminator {role!r}; it has: "
                    f"{', '.join(model.discriminators) or 'none'} (strict=False skips it)"
                )
            report.skipped.append(comp)
            return
    module = component_module(model, comp)
    path = fetcher.fetch(weights.files[comp])
    what = f"{weights.name} {comp} ({weights.files[comp]})"
    try:
        mismatch = load_component(module, path, what, strict, warn=False)
    except NothingFitsError:
        if not comp.startswith("discriminator."):
            raise  # a generator none of whose tensors fit: the wrong weights, not a fine-tuning change
        report.unfit.append(comp)
        return
    report.loaded.append(comp)
    if mismatch is not None:
        report.partial[comp] = mismatch


def model_info(name: str) -> dict[str, Any]:
    """Family, paper, default config, recipes, pretrained tags and parameter counts of ``name``.

    ``recipe`` is the default (``paper``) recipe, ``recipes`` every named one; for ``arch.tag``,
    ``trained_with`` is the recipe the weight set records (None when it records none).

    ``weights`` is the weight set this info describes: ``arch.tag`` when ``name`` names one (then
    ``config`` and ``parameters`` are that set's), None for an architecture name, whose info
    describes its default config even when it has weight sets. Those are ``pretrained`` (tag ->
    spec), and ``default_tag`` is the one ``vganzoo.load(arch)`` picks.

    ``name`` may also be a weight set (``local-dir:``, ``hf-hub:``, a folder path). For those and
    for ``arch.tag`` the parameter counts and ``config`` are those of that weight set's config
    (read from its verified config.json), otherwise of the default config. Nothing is allocated:
    the model is built on the meta device where its initialisers allow.
    """
    import torch

    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    name = to_load_name(name)  # a folder path, as load() and sample take it
    config, trained_with, weights_name = {}, None, None
    if name.startswith((HF_HUB_PREFIX, LOCAL_DIR_PREFIX)):  # a weight set: its model, its config
        weights, fetcher = resolve(name, HubOptions())
        config = weight_set_config(weights, fetcher)
        check_config_size(config, f"{weights.name} {CONFIG_FILE}", file_sizes(weights, {}))
        spec = registry.get_model_spec(config.pop("model"))
        trained_with, weights_name = weights.recipe, name
    else:
        spec = registry.get_model_spec(name)
        _, tag = registry.split_tag(name)
        if tag is not None:
            weights, fetcher = resolve(name, HubOptions())
            config = {k: v for k, v in weight_set_config(weights, fetcher).items() if k != "model"}
            trained_with = weights.recipe  # from the pinned weights.json, when the set records one
            weights_name = f"{spec.name}.{tag}"
    try:
        with torch.device("meta"):
            model = registry.create(spec.qualified_name, **config)
    except Exception:  # some initialisers (orthogonal, SVD) do not run on meta tensors
        model = registry.create(spec.qualified_name, **config)
    counts = {"generator": sum(p.numel() for p in model.generator.parameters())}
    for role, disc in model.discriminators.items():
        counts[f"discriminator.{role}"] = sum(p.numel() for p in disc.parameters())
    counts["total"] = sum(counts.values())
    return {
        "name": spec.name,
        "source": spec.source,
        "family": spec.family,
        "paper": spec.paper,
        "description": spec.description,
        "default_config": dict(spec.default_config),
        "weights": weights_name,
        "config": {**spec.default_config, **config},  # what "parameters" counts
        "recipe": dict(spec.recipe),
        "recipes": {n: dict(r) for n, r in spec.recipes.items()},
        "trained_with": dict(trained_with) if trained_with is not None else None,
        "pretrained": {t: p.to_dict() for t, p in spec.pretrained.items()},
        "default_tag": spec.default_tag,
        "parameters": counts,
    }


def _names_weight_set(name: str) -> bool:
    """``arch.tag``, ``hf-hub:`` or ``local-dir:``: a name that means one weight set."""
    return name.startswith((HF_HUB_PREFIX, LOCAL_DIR_PREFIX)) or registry.split_tag(name)[1] is not None


# How load_or_create refuses config overrides for pretrained weights (the CLI names its option there).
FIXED_BY_WEIGHTS = "has pretrained weights, which fix the architecture"


def load_or_create(
    name: str,
    *,
    random_weights: bool = False,
    overrides: Mapping[str, Any] | None = None,
    require_weights: bool = False,
) -> tuple[Any, bool]:
    """``(model, pretrained)`` for a name given on the command line.

    Without ``random_weights``: :func:`load` when ``name`` has weights (a weight set, a folder, an
    architecture with a default tag), else the architecture with random weights (warned about), or
    with ``require_weights`` the error that it has none.
    With ``random_weights`` (the baseline a trained model must beat): a weight set's architecture
    (its config, and its recipe) with random weights; a bare architecture name its defaults.
    ``overrides`` (resolution, frames...; None values ignored) apply to random weights only:
    pretrained weights fix the architecture.
    """
    overrides = {k: v for k, v in dict(overrides or {}).items() if v is not None}
    name = to_load_name(name)
    weight_set = _names_weight_set(name)
    if not random_weights and (weight_set or require_weights or registry.get_model_spec(name).pretrained):
        if overrides:
            raise InvalidConfigError(
                f"{', '.join(sorted(overrides))}: {name} {FIXED_BY_WEIGHTS}; these settings apply to "
                "random weights only"
            )
        try:
            return load(name), True
        except NotImplementedError as exc:  # a plugin whose weights cannot be loaded (yet)
            raise WeightsError(f"cannot load pretrained weights for {name!r}: {exc}") from None
    if random_weights and weight_set:
        return _random_like(name, overrides), False
    if not random_weights:
        warnings.warn(f"{name} has no pretrained weights; using random weights", stacklevel=2)
    check_model_memory(name, overrides, advice="choose smaller settings")
    return registry.create(name, **overrides), False


def create(name: str, **overrides: Any) -> Any:
    """:func:`vganzoo.registry.create` (``vganzoo.create``), refused before anything is allocated when
    the model's parameters cannot fit in memory (``num_classes=20_000_000``, ``time_dim=10**6``...);
    the size is estimated on the meta device."""
    check_model_memory(name, overrides, advice="choose smaller settings")
    return registry.create(name, **overrides)


def _random_like(name: str, overrides: Mapping[str, Any]) -> Any:
    """Weight set ``name``'s architecture and recipe with random weights (``overrides`` on top); for a
    registered ``arch.tag`` whose files cannot be read, the architecture's defaults."""
    try:
        weights, fetcher = resolve(name, HubOptions())
        config = weight_set_config(weights, fetcher)
    except (LookupError, OSError, ValueError):
        if name.startswith((HF_HUB_PREFIX, LOCAL_DIR_PREFIX)):
            raise
        check_model_memory(registry.split_tag(name)[0], overrides, advice="choose smaller settings")
        return registry.create(registry.split_tag(name)[0], **overrides)
    check_config_size(config, f"{weights.name} {CONFIG_FILE}", file_sizes(weights, {}))
    model_name = config.pop("model")
    if overrides:
        check_model_memory(model_name, {**config, **overrides}, advice="choose smaller settings")
    model = registry.create(model_name, **{**config, **overrides})
    if weights.recipe is not None:
        model.recipe = dict(weights.recipe)  # same training frame stride -> same real-data protocol
    return model
