"""Building from names: a model from its config, a component, a dataset (with plugin failures named)."""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidConfigError, PluginError, VganzooError
from .core import (
    BUILTIN_SOURCE,
    FOLDER_DATASET,
    ModelSpec,
    check_json,
    get_component,
    get_component_spec,
    get_model_spec,
    list_components,
    qualified_component,
)


def resolve_config(name: str, overrides: Mapping[str, Any] | None = None) -> tuple[ModelSpec, dict[str, Any]]:
    """Merge ``overrides`` into the model's default config, rejecting unknown keywords.

    Overrides whose value is None are dropped, so generic command-line flags pass through.
    """
    spec = get_model_spec(name)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(spec.default_config))
    if unknown:
        accepted = ", ".join(sorted(spec.default_config)) or "none"
        raise InvalidConfigError(
            f"{spec.name}: unknown keyword(s) {', '.join(map(repr, unknown))}. Accepted: {accepted}"
        )
    config = {**spec.default_config, **overrides}
    check_json(config, f"config of {spec.name!r}")
    return spec, config


def create(name: str, **overrides: Any) -> Any:
    """Build model ``name`` with random weights; never touches the network.

    ``name`` may carry a tag (``mocogan-rnn.digits``): the architecture is built from that weight
    set's defaults only via :func:`vganzoo.load`; here the tag is ignored. The model's ``config``
    (what rebuilds it, saved with its weights and runs) names plugin models and the plugin
    discriminators in its ``discriminators`` list as ``dist::name``, so that saved work still
    resolves when another plugin later declares the same name.
    """
    spec, config = resolve_config(name, overrides)
    what = f"building model {spec.qualified_name!r}"
    model = _call_plugin_code(spec.source, what, lambda: spec.factory(**config))
    _check_built_model(spec, model)
    saved = dict(config)
    if isinstance(saved.get("discriminators"), list):
        saved["discriminators"] = [
            qualified_component("discriminator", n) if isinstance(n, str) else n
            for n in saved["discriminators"]
        ]
    model.config = {"model": spec.name if spec.source == BUILTIN_SOURCE else spec.qualified_name, **saved}
    if not getattr(model, "recipe", None):
        model.recipe = dict(spec.recipe)
    return model


def complete_saved_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A saved model config (``{"model": name, **keywords}``: a weight set's config.json, a run's or a
    checkpoint's) with the keys it lacks that its model names in ``saved_config_defaults`` filled in:
    a config written before such a key existed rebuilds the model it was saved from, while
    :func:`create` gives new models the key's default. Other missing keys keep the default
    config's value; a config naming no registered model comes back as it is (building it says why).
    """
    out = dict(config)
    name = out.get("model")
    if not isinstance(name, str):
        return out
    try:
        spec = get_model_spec(name)
    except LookupError:
        return out
    for key, value in spec.saved_config_defaults.items():
        out.setdefault(key, value)
    return out


def get_recipe(name: str, recipe: str | None = None) -> dict[str, Any]:
    """Model ``name``'s recipe called ``recipe`` (None: its default, the ``paper`` one for built-ins);
    an unknown recipe name raises InvalidConfigError listing the known ones."""
    spec = get_model_spec(name)
    if recipe is None:
        return copy.deepcopy(spec.recipe)
    if recipe not in spec.recipes:
        known = ", ".join(spec.recipes) or "none"
        raise InvalidConfigError(f"recipe: {spec.name} has no recipe {recipe!r}; its recipes: {known}")
    return copy.deepcopy(spec.recipes[recipe])


@dataclass(frozen=True)
class ModelSize:
    """How big a model is, known without building it (see :func:`estimate_model`).

    components: bytes of parameters and buffers by weight-set component (``generator``,
        ``generator_ema`` (the generator's size), ``discriminator.<role>``).
    clip: ``(C, T, H, W)`` of one generated video, when the generator says (``channels``, ``frames``,
        ``resolution``).
    """

    components: dict[str, int]
    clip: tuple[int, int, int, int] | None

    @property
    def total(self) -> int:
        """Bytes of the model as built (generator and discriminators; no EMA copy)."""
        return sum(v for k, v in self.components.items() if k != "generator_ema")

    @property
    def clip_elements(self) -> int | None:
        if self.clip is None:
            return None
        c, t, h, w = self.clip
        return c * t * h * w


def estimate_model(name: str, **overrides: Any) -> ModelSize | None:
    """The size of ``create(name, **overrides)`` without allocating it: the model is built on the
    meta device, whose tensors have shapes but no data (milliseconds to a second, no memory).

    Config errors are raised as :func:`create` raises them. None when the model cannot be built
    there (a plugin whose initialisers need real numbers); the caller then knows nothing more.
    """
    import torch

    spec, config = resolve_config(name, overrides)
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # said again by the real build
            model = spec.factory(**config)
            generator = model.generator
            roles = dict(model.discriminators.items())
    except (VganzooError, KeyboardInterrupt):
        raise
    except BaseException:  # what a factory does there (a plugin's SystemExit too), the real build says
        return None

    def nbytes(module: Any) -> int:
        tensors = [*module.parameters(), *module.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)

    components = {"generator": nbytes(generator)}
    components["generator_ema"] = components["generator"]
    components.update({f"discriminator.{role}": nbytes(disc) for role, disc in roles.items()})
    sizes = [getattr(generator, key, None) for key in ("channels", "frames", "resolution")]
    clip = None
    if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes):
        channels, frames, resolution = sizes
        clip = (channels, frames, resolution, resolution)
    return ModelSize(components, clip)


def _call_plugin_code(source: str, what: str, call: Callable[[], Any]) -> Any:
    """Run a factory; a plugin's failure (any exception, even SystemExit) becomes its PluginError."""
    try:
        return call()
    except (VganzooError, KeyboardInterrupt):
        raise
    except BaseException as exc:
        if source == BUILTIN_SOURCE and isinstance(exc, Exception):
            raise
        raise PluginError(  # say whose code failed: the traceback is in the chained exception
            f"plugin {source!r}: {what} failed: {type(exc).__name__}: {exc}"
        ) from exc


def _check_built_model(spec: ModelSpec, model: Any) -> None:
    """A factory must return a VideoGAN: a generator module, a mapping of discriminator modules, sample()."""
    from torch import nn

    generator = getattr(model, "generator", None)
    discriminators = getattr(model, "discriminators", None)
    problem = None
    if not isinstance(generator, nn.Module):
        problem = f"returned {type(model).__name__}, not a VideoGAN (no generator module)"
    elif not isinstance(discriminators, Mapping) and not isinstance(discriminators, nn.ModuleDict):
        problem = "returned a model whose discriminators are not a mapping of role -> module"
    elif not all(isinstance(d, nn.Module) for d in discriminators.values()):
        problem = "returned a model with a discriminator that is not an nn.Module"
    elif not callable(getattr(model, "sample", None)):
        problem = "returned a model without sample()"
    if problem is not None:
        message = f"model {spec.qualified_name!r}: its factory {problem}; build it with vganzoo's VideoGAN"
        raise (
            TypeError(message)
            if spec.source == BUILTIN_SOURCE
            else PluginError(f"plugin {spec.source!r}: {message}")
        )


def build_component(kind: str, name: str, **kwargs: Any) -> Any:
    """``kind`` ``name``'s factory called with ``kwargs``; a plugin's failure is its PluginError, and a
    generator or discriminator factory must return an ``nn.Module``."""
    spec = get_component_spec(kind, name)
    where = "" if spec.source == BUILTIN_SOURCE else f" (from plugin {spec.source!r})"
    module = _call_plugin_code(spec.source, f"building {kind} {spec.name!r}", lambda: spec.factory(**kwargs))
    problem = _component_problem(kind, module)
    if problem is not None:
        message = f"{kind} {spec.name!r}{where}: its factory returned {problem}"
        raise TypeError(message) if spec.source == BUILTIN_SOURCE else PluginError(message)
    return module


def _component_problem(kind: str, module: Any) -> str | None:
    """What is wrong with a built generator or discriminator (None when it follows the protocol:
    an nn.Module; a generator with ``sample_latents``, a discriminator whose forward takes ``labels``)."""
    import inspect

    from torch import nn

    if kind not in ("generator", "discriminator"):
        return None
    if not isinstance(module, nn.Module):
        return f"{type(module).__name__}, not an nn.Module"
    if kind == "generator" and not callable(getattr(module, "sample_latents", None)):
        return f"a {type(module).__name__} without sample_latents(n, generator=, labels=)"
    if kind == "discriminator":
        try:
            params = inspect.signature(module.forward).parameters
        except (TypeError, ValueError):
            return None
        if "labels" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return (
                f"a {type(module).__name__} whose forward does not take labels (forward(video, labels=None))"
            )
    return None


def create_dataset(spec: str | os.PathLike[str], **kwargs: Any) -> Any:
    """A registered dataset by name (``moving-digits``), else the ``folder`` dataset reading ``spec``.

    ``kwargs`` go to the dataset's factory (``resolution``, ``frames``, ``frame_stride``, ``split``,
    ``seed``, ``channels``...; see :func:`vganzoo.data.build_dataset`).
    """
    if isinstance(spec, str) and spec != FOLDER_DATASET and spec in list_components("dataset"):
        return get_component("dataset", spec)(**kwargs)
    if not isinstance(spec, (str, os.PathLike)) or not os.fspath(spec):
        raise TypeError(f"dataset spec must be a dataset name or a folder path, got {spec!r}")
    return get_component("dataset", FOLDER_DATASET)(spec, **kwargs)
