"""Pretrained weights: resolve a name, fetch and verify its files, build the model, save and publish.

A weight set is a folder (a Hub repo, a bundled package folder or a ``save_pretrained`` output)::

    config.json                          # model.config: vganzoo.create(config["model"], **rest)
    generator.safetensors                # one file per component
    generator_ema.safetensors            # optional
    discriminator.<role>.safetensors     # one per discriminator role
    weights.json                         # files per component, sha256 of each, metadata, recipe
    README.md                            # model card (Hub metadata: library_name vganzoo, ...)

Names accepted by :func:`load`:

* ``arch`` / ``arch.tag``: a registered :class:`~vganzoo.registry.PretrainedSpec` (pinned
  revision and sha256 per file from the registry; a bundled copy is used first);
* ``hf-hub:org/repo[@revision]``: any repo laid out as above; hashes come from the repo's own
  ``weights.json`` so the weights are *not pinned* (an :class:`UnpinnedWeightsWarning` says so);
* ``local-dir:/path``: a folder written by :func:`save_pretrained` (checked against its weights.json).

Every file is accepted only if its sha256 matches; network access goes through
``huggingface_hub.hf_hub_download`` (cache, resume, locking). The endpoint is read at call time:
``endpoint=``, then ``VGANZOO_ENDPOINT``, then ``HF_ENDPOINT``. Only JSON and safetensors are read.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import registry
from .errors import UnknownModelError, VganzooError
from .files import fsync_dir, safetensors_bytes, sha256_file, write_synced

__all__ = [
    "CARD_FILE",
    "CONFIG_FILE",
    "INDEX_FILE",
    "HashMismatchError",
    "LoadReport",
    "NoPretrainedWeightsError",
    "StateDictMismatchError",
    "UnpinnedWeightsWarning",
    "WeightsError",
    "WeightsNotFoundError",
    "cli_load_name",
    "component_file",
    "component_module",
    "download",
    "load",
    "load_weights",
    "pretrained_config",
    "push_to_hub",
    "resolve_endpoint",
    "save_pretrained",
    "sha256_file",
    "spec_from_folder",
]

CONFIG_FILE = "config.json"
INDEX_FILE = "weights.json"
CARD_FILE = "README.md"
INDEX_FORMAT = "vganzoo-weights"
INDEX_VERSION = 1
HF_HUB_PREFIX = "hf-hub:"
LOCAL_DIR_PREFIX = "local-dir:"
ENDPOINT_ENV_VARS = ("VGANZOO_ENDPOINT", "HF_ENDPOINT")
_PACKAGE_DIR = Path(__file__).resolve().parent  # bundled weight folders are relative to this
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ROLE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_LIST_LIMIT = 10  # how many keys an error message lists per kind


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------
class WeightsError(VganzooError):
    """Base class of the errors raised while resolving, fetching or loading weights."""


class HashMismatchError(WeightsError, ValueError):
    """A file's sha256 differs from the one its spec pins."""

    def __init__(self, filename: str, expected: str, actual: str, source: str, note: str = "") -> None:
        self.filename, self.expected, self.actual, self.source = filename, expected, actual, source
        message = f"{filename}: sha256 mismatch (expected {expected}, got {actual}) in {source}"
        super().__init__(message + (f"; {note}" if note else ""))


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """A weight file, revision or repo that does not exist or is not in the cache while offline."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class _NothingFits(WeightsError, ValueError):
    """A non-strict load where none of a file's tensors fit the module (another model or config)."""


class StateDictMismatchError(WeightsError, ValueError):
    """A safetensors file whose keys or shapes do not match the module it is loaded into."""

    def __init__(
        self, what: str, missing: Sequence[str], unexpected: Sequence[str], mismatched: Sequence[str]
    ) -> None:
        self.missing, self.unexpected, self.mismatched = list(missing), list(unexpected), list(mismatched)
        parts = [
            f"{label} ({len(keys)}): {_short_list(keys)}"
            for label, keys in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape mismatches", mismatched),
            )
            if keys
        ]
        super().__init__(
            f"{what} does not match the model: " + "; ".join(parts) + " (strict=False loads what matches)"
        )


class NoPretrainedWeightsError(WeightsError, UnknownModelError):
    """A model name without pretrained weights, or an unknown tag."""


class UnpinnedWeightsWarning(UserWarning):
    """Weights whose hashes come from the repo itself (``hf-hub:``), not from a pinned spec."""


def _short_list(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:_LIST_LIMIT])
    return shown + (f", ... ({len(keys) - _LIST_LIMIT} more)" if len(keys) > _LIST_LIMIT else "")


# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------
def resolve_endpoint(endpoint: str | None = None) -> str | None:
    """The Hub endpoint for this call: ``endpoint``, else ``VGANZOO_ENDPOINT``, else ``HF_ENDPOINT``.

    None means huggingface_hub's default. Read at call time, so setting the variable after import works.
    """
    if endpoint is None:
        endpoint = next((os.environ[v] for v in ENDPOINT_ENV_VARS if os.environ.get(v)), None)
    if endpoint is None:
        return None
    if not isinstance(endpoint, str) or not re.match(r"^https?://", endpoint):
        raise ValueError(f"endpoint must be an http(s) URL, got {endpoint!r}")
    return endpoint.rstrip("/")


def _offline(local_files_only: bool | None) -> bool:
    """Cache only? ``local_files_only`` if given, else ``HF_HUB_OFFLINE`` (read now, or at hub import)."""
    if local_files_only is not None:
        return bool(local_files_only)
    value = os.environ.get("HF_HUB_OFFLINE")
    if value is not None:
        return value.strip().upper() in {"1", "ON", "YES", "TRUE"}
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def component_file(component: str) -> str:
    """File name of a component: ``generator`` -> ``generator.safetensors``, ``discriminator.video`` -> ..."""
    _check_component_name(component)
    return f"{component}.safetensors"


def _check_component_name(component: str) -> None:
    if component in ("generator", "generator_ema"):
        return
    kind, dot, role = component.partition(".")
    if kind == "discriminator" and dot and _ROLE.match(role):
        return
    raise ValueError(
        f"components: unknown component {component!r}; expected 'generator', 'generator_ema', "
        "'discriminators' (all of them) or 'discriminator.<role>'"
    )


# ----------------------------------------------------------------------------------------------
# Weight sets: where the files are and what their hashes must be
# ----------------------------------------------------------------------------------------------
@dataclass
class _WeightSet:
    name: str  # what the user asked for, for messages
    files: dict[str, str]  # component (and "config") -> file name
    sha256: dict[str, str]  # file name -> hex
    repo_id: str | None = None
    revision: str | None = None
    bundled: Path | None = None
    local_dir: Path | None = None
    pinned: bool = True
    arch: str | None = None  # registered model name the config must build (registry specs)
    recipe: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def components(self) -> list[str]:
        return [c for c in self.files if c != "config"]


def _read_json(path: Path, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{what}: {path} is not valid JSON ({exc})") from None


def _parse_index(
    index: Any, source: str
) -> tuple[dict[str, str], dict[str, str], dict[str, Any], dict[str, Any] | None]:
    """Validate a weights.json and return (files, sha256, metadata, recipe)."""
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        raise WeightsError(
            f'{source}: {INDEX_FILE} is not a vganzoo weight index (expected "format": "{INDEX_FORMAT}")'
        )
    files, hashes = index.get("files"), index.get("sha256")
    if not isinstance(files, dict) or not isinstance(hashes, dict):
        raise WeightsError(f'{source}: {INDEX_FILE} must map "files" and "sha256"')
    files = {"config": CONFIG_FILE, **files}
    for component, filename in files.items():
        if component != "config":
            _check_component_name(component)
        if not isinstance(filename, str) or "/" in filename or "\\" in filename or filename.startswith("."):
            raise WeightsError(f"{source}: {INDEX_FILE} names a bad file {filename!r} for {component!r}")
        if not isinstance(hashes.get(filename), str) or not _SHA256.match(hashes[filename]):
            raise WeightsError(f"{source}: {INDEX_FILE} has no valid sha256 for {filename!r}")
    recipe = index.get("recipe")
    return (
        dict(files),
        dict(hashes),
        dict(index.get("metadata") or {}),
        dict(recipe) if isinstance(recipe, dict) else None,
    )


def _parse_hf_name(rest: str, revision: str | None) -> tuple[str, str | None]:
    repo_id, at, rev = rest.partition("@")
    if not re.match(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$", repo_id) or (at and not rev):
        raise ValueError(
            f"name: expected 'hf-hub:org/repo' or 'hf-hub:org/repo@revision', got 'hf-hub:{rest}'"
        )
    if at and revision is not None and revision != rev:
        raise ValueError(f"revision={revision!r} conflicts with the name's '@{rev}'; give one of them")
    return repo_id, rev or revision


def _registry_weight_set(name: str, revision: str | None) -> _WeightSet:
    spec = registry.get_model_spec(name)
    arch, tag = registry.split_tag(name)
    if not spec.pretrained:
        raise NoPretrainedWeightsError(
            f"{spec.name} has no pretrained weights; build it with random weights with "
            f"vganzoo.create({spec.name!r}), "
            "or load a weight set with 'hf-hub:org/repo' or 'local-dir:/path'"
        )
    tag = tag or spec.default_tag
    if tag not in spec.pretrained:
        raise NoPretrainedWeightsError(
            f"{spec.name} has no pretrained weights tagged {tag!r}; available: "
            + ", ".join(f"{spec.name}.{t}" for t in spec.pretrained)
        )
    pre = spec.pretrained[tag]
    if revision is not None and revision != pre.revision:
        raise ValueError(
            f"revision: {spec.name}.{tag} is pinned to {pre.revision!r}; to load another revision use "
            f"'hf-hub:{pre.repo_id}@{revision}' (then the hashes are not pinned)"
        )
    files = {"config": CONFIG_FILE, **dict(pre.files)}
    missing = [f for f in files.values() if f not in pre.sha256]
    if missing:
        raise WeightsError(f"{spec.name}.{tag}: the spec has no sha256 for {', '.join(missing)}")
    if pre.repo_id is None and pre.bundled is None:
        raise WeightsError(f"{spec.name}.{tag}: the spec names neither a Hub repo nor a bundled folder")
    qualified = spec.name if spec.source == registry.BUILTIN_SOURCE else spec.qualified_name
    bundled = (_PACKAGE_DIR / pre.bundled) if pre.bundled else None
    recipe = None  # the recipe the weights were trained with, from the installed copy's weights.json
    if bundled is not None and (bundled / INDEX_FILE).is_file():
        recipe = _parse_index(_read_json(bundled / INDEX_FILE, f"{spec.name}.{tag}"), str(bundled))[3]
    return _WeightSet(
        name=f"{arch}.{tag}",
        files=files,
        sha256={k: v.lower() for k, v in pre.sha256.items()},
        repo_id=pre.repo_id,
        revision=pre.revision,
        bundled=bundled,
        arch=qualified,
        recipe=recipe,
        metadata=dict(pre.metadata),
    )


def cli_load_name(name: str) -> str:
    """The ``load`` name for a command-line argument: an existing folder given as a plain path becomes
    ``local-dir:PATH`` (registered names and prefixed names are returned unchanged)."""
    if name.startswith((HF_HUB_PREFIX, LOCAL_DIR_PREFIX)):
        return name
    if not os.path.isdir(name):
        # A path (model names have no '/'), existing or not: a missing folder is named as such,
        # not reported as an unknown model.
        return (
            LOCAL_DIR_PREFIX + name
            if ("/" in name or os.sep in name or name.startswith(("~", ".")))
            else name
        )
    try:
        registry.get_model_spec(name)
    except VganzooError:
        return LOCAL_DIR_PREFIX + name
    return name  # a registered model name wins over a folder of the same name


def _local_weight_set(name: str, path: str) -> _WeightSet:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise WeightsNotFoundError(
            f"{name}: {folder} is not a folder (expected one written by vganzoo.save_pretrained)"
        )
    if not (folder / INDEX_FILE).is_file():
        hint = "is it a folder written by vganzoo.save_pretrained?"
        if (folder / "model" / INDEX_FILE).is_file() or (folder / "checkpoints").is_dir():
            hint = (
                f"it looks like a training run (vganzoo train --out): its final model is "
                f"'{LOCAL_DIR_PREFIX}{folder / 'model'}'; export a checkpoint with "
                f"`vganzoo export {folder} OUT --step N`"
            )
        raise WeightsNotFoundError(f"{name}: {folder} has no {INDEX_FILE}; {hint}")
    files, hashes, metadata, recipe = _parse_index(_read_json(folder / INDEX_FILE, name), str(folder))
    return _WeightSet(
        name=name, files=files, sha256=hashes, local_dir=folder, recipe=recipe, metadata=metadata
    )


# ----------------------------------------------------------------------------------------------
# Fetching one file
# ----------------------------------------------------------------------------------------------
@dataclass
class _Fetcher:
    weights: _WeightSet
    cache_dir: str | None
    offline: bool
    endpoint: str | None
    token: str | bool | None

    def url(self, filename: str, revision: str | None = None) -> str:
        base = self.endpoint or _default_endpoint()
        return (
            f"{base}/{self.weights.repo_id}/resolve/{revision or self.weights.revision or 'main'}/{filename}"
        )

    def fetch(self, filename: str) -> Path:
        """A local path of ``filename`` whose sha256 matches the weight set."""
        w = self.weights
        expected = w.sha256[filename]
        if w.local_dir is not None:
            path = w.local_dir / filename
            if not path.is_file():
                raise WeightsNotFoundError(f"{w.name}: {filename} is missing from {w.local_dir}")
            actual = sha256_file(path)
            if actual != expected:
                raise HashMismatchError(filename, expected, actual, f"local folder {w.local_dir}")
            return path
        bundled_error: HashMismatchError | None = None
        if w.bundled is not None:
            path = w.bundled / filename
            if path.is_file():
                actual = sha256_file(path)
                if actual == expected:
                    return path
                bundled_error = HashMismatchError(
                    filename,
                    expected,
                    actual,
                    f"bundled copy {path}",
                    "the installation is damaged; reinstall vganzoo",
                )
                if w.repo_id is None:
                    raise bundled_error
                warnings.warn(f"{bundled_error}; fetching it from the Hub instead", stacklevel=4)
            elif w.repo_id is None:
                raise WeightsNotFoundError(f"{w.name}: bundled file {path} is missing; reinstall vganzoo")
        return self._fetch_hub(filename, expected)

    def _download(self, filename: str, *, force: bool) -> Path:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            LocalEntryNotFoundError,
            RemoteEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        w = self.weights
        where = f"{w.repo_id}@{w.revision or 'main'}"
        try:
            return Path(
                hf_hub_download(
                    w.repo_id,
                    filename,
                    revision=w.revision,
                    cache_dir=self.cache_dir,
                    local_files_only=self.offline,
                    endpoint=self.endpoint,
                    token=self.token,
                    force_download=force,
                    library_name="vganzoo",
                )
            )
        except RepositoryNotFoundError as exc:  # includes gated repos
            raise WeightsNotFoundError(
                f"{w.name}: Hub repo {w.repo_id!r} not found at {self.endpoint or _default_endpoint()} "
                "(wrong name, private or gated: pass token= or log in with `hf auth login`)"
            ) from exc
        except RevisionNotFoundError as exc:
            raise WeightsNotFoundError(
                f"{w.name}: revision {w.revision!r} not found in Hub repo {w.repo_id!r}"
            ) from exc
        except RemoteEntryNotFoundError as exc:
            raise WeightsNotFoundError(f"{w.name}: {filename} not found in Hub repo {where}") from exc
        except LocalEntryNotFoundError as exc:
            from huggingface_hub import constants

            if self.offline:
                how = "offline mode is on (HF_HUB_OFFLINE=1 or local_files_only=True)"
            elif constants.HF_HUB_OFFLINE:
                how = "huggingface_hub is in offline mode (HF_HUB_OFFLINE was set when it was imported)"
            else:
                how = f"the Hub at {self.endpoint or _default_endpoint()} could not be reached"
            raise WeightsNotFoundError(
                f"{w.name}: {filename} ({where}) is not in the local Hugging Face cache and {how}. "
                f"Run `vganzoo download {w.name}` on a machine with network access (then copy its cache, "
                "see HF_HUB_CACHE), or turn offline mode off"
            ) from exc
        except (OSError, ValueError) as exc:
            raise WeightsError(
                f"{w.name}: downloading {filename} from {self.url(filename)} failed: {exc}"
            ) from exc
        except Exception as exc:  # httpx transport errors after huggingface_hub's own retries
            raise WeightsError(
                f"{w.name}: downloading {filename} from {self.url(filename)} failed: {type(exc).__name__}: "
                f"{exc}"
            ) from exc

    def _fetch_hub(self, filename: str, expected: str) -> Path:
        path = self._download(filename, force=False)
        actual = sha256_file(path)
        if actual == expected:
            return path
        _remove_cached(path)
        source = f"Hugging Face cache {path}" if self.offline else f"{self.url(filename)} (via cache {path})"
        if self.offline:
            raise HashMismatchError(
                filename,
                expected,
                actual,
                source,
                f"the damaged cached copy was removed; run `vganzoo download {self.weights.name}` with "
                "network access",
            )
        # A damaged cache entry (or a bad transfer): removed above, fetched again once.
        path = self._download(filename, force=True)
        actual = sha256_file(path)
        if actual != expected:
            _remove_cached(path)
            raise HashMismatchError(
                filename,
                expected,
                actual,
                self.url(filename),
                "the file was fetched twice and removed from the cache",
            )
        return path


def _default_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _remove_cached(pointer: Path) -> None:
    """Delete a cached file: the blob a snapshot entry points to, and the entry itself."""
    blob = Path(os.path.realpath(pointer))
    for path in {blob, pointer}:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# ----------------------------------------------------------------------------------------------
# Resolving a name
# ----------------------------------------------------------------------------------------------
def _resolve(
    name: str,
    *,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    local_files_only: bool | None,
    endpoint: str | None,
    token: str | bool | None,
) -> tuple[_WeightSet, _Fetcher]:
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    fetcher_args: dict[str, Any] = {
        "cache_dir": None if cache_dir is None else str(cache_dir),
        "offline": _offline(local_files_only),
        "endpoint": resolve_endpoint(endpoint),
        "token": token,
    }
    if name.startswith(LOCAL_DIR_PREFIX):
        if revision is not None:
            raise ValueError("revision: not used with 'local-dir:' names")
        weights = _local_weight_set(name, name[len(LOCAL_DIR_PREFIX) :])
        return weights, _Fetcher(weights, **fetcher_args)
    if name.startswith(HF_HUB_PREFIX):
        repo_id, rev = _parse_hf_name(name[len(HF_HUB_PREFIX) :], revision)
        # The index is fetched without a pinned hash: that is what "not pinned" means.
        weights = _WeightSet(name=name, files={}, sha256={}, repo_id=repo_id, revision=rev, pinned=False)
        fetcher = _Fetcher(weights, **fetcher_args)
        index_path = fetcher._download(INDEX_FILE, force=False)
        commit = index_path.parent.name
        if _COMMIT.match(commit) and commit != rev:  # the cache layout names the snapshot by its commit
            weights.revision = commit  # every other file from the same commit
        files, hashes, metadata, recipe = _parse_index(
            _read_json(index_path, name), f"{repo_id}@{weights.revision or 'main'}"
        )
        weights.files, weights.sha256, weights.metadata, weights.recipe = files, hashes, metadata, recipe
        pin = (
            f"; pin it with 'hf-hub:{repo_id}@{weights.revision}'"
            if weights.revision and rev != weights.revision
            else ""
        )
        warnings.warn(
            f"{name}: the sha256 hashes come from the repo's own {INDEX_FILE}, so these weights are not "
            "pinned by a "
            f"vganzoo spec (revision {weights.revision or rev or 'main'}){pin}",
            UnpinnedWeightsWarning,
            stacklevel=3,
        )
        return weights, fetcher
    weights = _registry_weight_set(name, revision)
    return weights, _Fetcher(weights, **fetcher_args)


def _select_files(weights: _WeightSet, components: str | Iterable[str] | None) -> list[str]:
    """Component names requested (``"all"``, a name or names; ``discriminators`` expands).

    None (the default of :func:`load`) means what sampling needs: the generator, and the EMA
    generator when the weight set has one (``VideoGAN.sample`` uses it).
    """
    available = weights.components
    if components is None:
        components = [c for c in ("generator", "generator_ema") if c in available]
    if isinstance(components, str):
        components = available if components == "all" else [components]
    components = list(components)
    if not components:
        raise ValueError("components: give at least one component (e.g. 'generator')")
    chosen: list[str] = []
    for comp in components:
        if not isinstance(comp, str):
            raise TypeError(f"components must be strings, got {comp!r}")
        if comp == "discriminators":
            roles = [c for c in available if c.startswith("discriminator.")]
            if not roles:
                raise WeightsNotFoundError(
                    f"{weights.name}: has no discriminator weights; it has: {', '.join(available)}"
                )
            chosen.extend(roles)
            continue
        _check_component_name(comp)
        if comp not in available:
            raise WeightsNotFoundError(
                f"{weights.name}: has no {comp!r} weights; it has: {', '.join(available) or 'none'}"
            )
        chosen.append(comp)
    return list(dict.fromkeys(chosen))


def download(
    name: str,
    *,
    components: str | Iterable[str] = "all",
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> dict[str, Path]:
    """Fetch and verify the files of weight set ``name`` (all components by default).

    Returns ``{"config": path, "<component>": path, ...}`` of files whose sha256 matched. This is
    what ``vganzoo download NAME`` runs to fill the cache for later offline use.
    """
    weights, fetcher = _resolve(
        name,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        endpoint=endpoint,
        token=token,
    )
    wanted = ["config", *_select_files(weights, components)]
    return {comp: fetcher.fetch(weights.files[comp]) for comp in wanted}


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------
def _weight_set_config(weights: _WeightSet, fetcher: _Fetcher) -> dict[str, Any]:
    """The weight set's verified config.json: ``{"model": name, **keywords}``."""
    config = _read_json(fetcher.fetch(weights.files["config"]), f"{weights.name} {CONFIG_FILE}")
    if not isinstance(config, dict) or not isinstance(config.get("model"), str):
        raise WeightsError(f'{weights.name}: {CONFIG_FILE} must be an object with a "model" name')
    return dict(config)


def component_module(model: Any, component: str) -> Any:
    """The module of ``model`` a weight-set component goes into: ``generator``, ``generator_ema``
    (created as a copy of the generator when missing) or ``discriminator.<role>``."""
    if component.startswith("discriminator."):
        return model.discriminators[component.partition(".")[2]]
    if component == "generator_ema":
        return model.add_ema()
    return getattr(model, component)


def _load_component(
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
            raise _NothingFits(
                f"{what}: none of the file's tensors fit the module, so nothing would be loaded "
                f"({mismatch}); is it the weight set of another model or configuration?"
            )
    # load_state_dict copies into the existing tensors (casting fp16 storage to the model's dtype)
    module.load_state_dict(tensors, strict=False)
    return mismatch


def _as_dtype(dtype: Any) -> Any:
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and isinstance(getattr(torch, dtype, None), torch.dtype):
        return getattr(torch, dtype)
    raise TypeError(f"dtype must be a torch.dtype or its name (e.g. 'float16'), got {dtype!r}")


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
        name: ``arch`` (its default tag), ``arch.tag``, ``hf-hub:org/repo[@revision]`` or
            ``local-dir:/path``.
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
    weights, fetcher = _resolve(
        name,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        endpoint=endpoint,
        token=token,
    )
    wanted = _select_files(weights, components)
    dtype = _as_dtype(dtype)
    config = _weight_set_config(weights, fetcher)
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
    model.pretrained = {
        "name": weights.name,
        "repo_id": weights.repo_id,
        "revision": weights.revision,
        "components": wanted,
        "metadata": dict(weights.metadata),
    }

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

    for comp in wanted:
        path = fetcher.fetch(weights.files[comp])
        module = component_module(model, comp)
        _load_component(module, path, f"{weights.name} {comp} ({weights.files[comp]})", strict)
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
) -> dict[str, Any]:
    """The model config of weight set ``name`` (its verified ``config.json``), without building it.

    ``{"model": registered name, **keywords}``: ``vganzoo.create(config.pop("model"), **config)``
    builds the architecture the weights were trained as. Names as for :func:`load`.
    """
    weights, fetcher = _resolve(
        name,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        endpoint=endpoint,
        token=token,
    )
    return _weight_set_config(weights, fetcher)


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
                f"  {comp}: {len(kept)} tensor(s) keep their fresh values ({_short_list(kept)})"
                + (
                    f"; {len(mismatch.unexpected)} unused ({_short_list(mismatch.unexpected)})"
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


def _pinned_hub_recipe(weights: _WeightSet, fetcher: _Fetcher) -> dict[str, Any] | None:
    """The training recipe in a registry weight set's weights.json on the Hub (at its pinned commit,
    which fixes the file's content); None when it cannot be had (offline and not cached)."""
    if weights.repo_id is None or not weights.pinned or weights.revision is None:
        return None
    try:
        index = _read_json(fetcher._download(INDEX_FILE, force=False), f"{weights.name} {INDEX_FILE}")
        return _parse_index(index, f"{weights.repo_id}@{weights.revision}")[3]
    except WeightsError:
        return None


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
    weights, fetcher = _resolve(
        name,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        endpoint=endpoint,
        token=token,
    )
    wanted = _select_files(weights, components)
    generator = getattr(model, "generator", None)
    discriminators = getattr(model, "discriminators", None)
    if generator is None or discriminators is None:
        raise TypeError(
            f"model: expected a VideoGAN (with .generator and .discriminators), got {type(model).__name__}"
        )
    recipe = weights.recipe if weights.recipe is not None else _pinned_hub_recipe(weights, fetcher)
    report = LoadReport(
        name=weights.name,
        recipe=dict(recipe) if recipe is not None else None,
        repo_id=weights.repo_id,
        revision=weights.revision,
    )
    report.not_in_weights = [comp for comp in _component_modules(model) if comp not in weights.components]
    # the generator before its EMA copy, so that EMA tensors the file lacks match the loaded generator
    order = sorted(wanted, key=lambda c: (c != "generator", c != "generator_ema"))
    for comp in order:
        if comp.startswith("discriminator."):
            role = comp.partition(".")[2]
            if role not in discriminators:
                if strict:
                    raise WeightsError(
                        f"{weights.name}: the model has no discriminator {role!r}; it has: "
                        f"{', '.join(discriminators) or 'none'} (strict=False skips it)"
                    )
                report.skipped.append(comp)
                continue
        module = component_module(model, comp)
        path = fetcher.fetch(weights.files[comp])
        try:
            mismatch = _load_component(
                module, path, f"{weights.name} {comp} ({weights.files[comp]})", strict, warn=False
            )
        except _NothingFits:
            if not comp.startswith("discriminator."):
                raise  # a generator none of whose tensors fit: the wrong weights, not a fine-tuning change
            report.unfit.append(comp)
            continue
        report.loaded.append(comp)
        if mismatch is not None:
            report.partial[comp] = mismatch
    if getattr(model, "generator_ema", None) is not None:
        model.generator_ema.requires_grad_(False)
    return report


# ----------------------------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------------------------
def _component_modules(model: Any) -> dict[str, Any]:
    out = {"generator": model.generator}
    if getattr(model, "generator_ema", None) is not None:
        out["generator_ema"] = model.generator_ema
    for role, disc in model.discriminators.items():
        if not _ROLE.match(role):
            raise ValueError(
                f"discriminator role {role!r} cannot be a file name; use lower-case letters, digits, '-' or "
                "'_'"
            )
        out[f"discriminator.{role}"] = disc
    return out


def _tensors_for_file(module: Any, what: str, dtype: Any = None) -> dict[str, Any]:
    """A state dict safetensors can store: CPU, contiguous, every tensor its own storage.

    Tied weights (one tensor under several keys) and views are cloned, so each key is written
    in full and loads back into the same tensor; spectral-norm parametrizations are plain
    entries (``parametrizations.weight.original``, ``..._u``, ``..._v``).
    """
    import torch

    out = {}
    for key, value in module.state_dict().items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{what}: state dict entry {key!r} is a {type(value).__name__}, not a tensor; safetensors "
                "stores tensors only"
            )
        value = value.detach().to("cpu")
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        out[key] = value.contiguous().clone()
    return out


def _yaml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON scalars and flow lists are valid YAML


def _model_card(
    model: Any, metadata: Mapping[str, Any], files: Mapping[str, str], repo_hint: str | None
) -> str:
    config = dict(model.config)
    name = str(config.get("model", "model"))
    family = None
    with contextlib.suppress(Exception):
        family = registry.get_model_spec(name).family
    datasets = metadata.get("datasets", metadata.get("dataset"))
    datasets = [datasets] if isinstance(datasets, str) else list(datasets or [])
    metrics = metadata.get("metrics") or {}
    tags = list(
        dict.fromkeys(
            [
                "vganzoo",
                "video-generation",
                "gan",
                *([family] if family else []),
                name.split("::")[-1],
                *metadata.get("tags", []),
            ]
        )
    )
    header = {
        "library_name": "vganzoo",
        "license": metadata.get("license"),
        "tags": tags,
        "datasets": datasets or None,
        "metrics": list(metrics) or None,
    }
    lines = ["---"] + [f"{k}: {_yaml_value(v)}" for k, v in header.items() if v is not None] + ["---", ""]
    title = metadata.get("title") or name
    lines += [f"# {title}", ""]
    if metadata.get("description"):
        lines += [str(metadata["description"]), ""]
    load_name = metadata.get("load_name") or (
        f"hf-hub:{repo_hint}" if repo_hint else "local-dir:/path/to/this/folder"
    )
    lines += [
        "A video GAN from [vganzoo](https://github.com/vganzoo/vganzoo).",
        "",
        "```python",
        "import vganzoo",
        f"model = vganzoo.load({load_name!r})",
        "videos = model.sample(4, seed=0)  # (N, C, T, H, W) in [-1, 1]",
        "```",
        "",
        "## Model",
        "",
        "| key | value |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | `{json.dumps(v)}` |" for k, v in config.items()]
    lines += ["", "Files: " + ", ".join(f"`{f}` ({c})" for c, f in files.items()), ""]
    details = [
        (k, metadata[k])
        for k in ("paper", "dataset", "resolution", "frames", "fps", "steps", "wall_time", "machine")
        if k in metadata
    ]
    if details:
        lines += ["## Training", ""] + [f"- {k}: {v}" for k, v in details] + [""]
    if metadata.get("training_command"):
        lines += ["Training command:", "", "```bash", str(metadata["training_command"]), "```", ""]
    if metrics:
        lines += ["## Evaluation", "", "| metric | value | protocol |", "| --- | --- | --- |"]
        for metric, value in metrics.items():
            if isinstance(value, Mapping):
                lines.append(f"| {metric} | {value.get('value')} | {value.get('protocol', '')} |")
            else:
                lines.append(f"| {metric} | {value} | |")
        lines.append("")
    lines += [
        "## Integrity",
        "",
        f"`{INDEX_FILE}` lists the sha256 of every file; vganzoo refuses files that do not match.",
        "",
    ]
    return "\n".join(lines)


def save_pretrained(
    model: Any,
    directory: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
    overwrite: bool = False,
    dtype: Any = None,
) -> Path:
    """Write ``model`` as a weight-set folder (see the module docstring) and return its path.

    Args:
        model: a :class:`~vganzoo.models.base.VideoGAN` whose ``config`` rebuilds it.
        directory: the folder to create; an existing non-empty one needs ``overwrite=True``.
        metadata: for the model card and ``weights.json``: ``license``, ``datasets`` (or
            ``dataset``), ``tags``, ``metrics`` (name -> value or ``{"value", "protocol"}``),
            ``training_command``, ``paper``, ``resolution``, ``frames``, ``fps``, ``steps``,
            ``wall_time``, ``machine``, ``description``, ``load_name`` (the name the card's example
            loads, e.g. a registered ``arch.tag``).
        repo_id: the Hub repo it will be pushed to (only used in the card's example).
        dtype: store floating-point tensors in this dtype (e.g. ``torch.float16`` to halve the
            size of bundled weights); :func:`load` casts them back to the model's dtype.

    The folder is written into a temporary sibling and renamed into place, so a crash leaves
    either the old folder or the complete new one. ``load("local-dir:...")`` round-trips it.
    Saving the same model twice gives byte-identical files (the same sha256 pins).
    """
    from .models.base import VideoGAN

    if not isinstance(model, VideoGAN):
        raise TypeError(f"model must be a vganzoo VideoGAN, got {type(model).__name__}")
    config = dict(getattr(model, "config", {}) or {})
    if not isinstance(config.get("model"), str):
        raise ValueError("model.config has no 'model' name; build models with vganzoo.create or vganzoo.load")
    metadata = dict(metadata or {})
    dtype = _as_dtype(dtype)
    if dtype is not None and not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    try:
        config_bytes = (json.dumps(config, indent=2, sort_keys=False) + "\n").encode()
        json.dumps(metadata)
    except TypeError as exc:
        raise ValueError(f"model.config and metadata must be JSON-serialisable: {exc}") from None
    target = Path(directory).expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"directory: {target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(f"directory: {target} is not empty; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)

    modules = _component_modules(model)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        files = {"config": CONFIG_FILE}
        write_synced(tmp / CONFIG_FILE, config_bytes)
        for comp, module in modules.items():
            filename = component_file(comp)
            write_synced(
                tmp / filename,
                safetensors_bytes(
                    _tensors_for_file(module, comp, dtype),
                    {"format": "pt", "vganzoo.component": comp, "vganzoo.model": config["model"]},
                ),
            )
            files[comp] = filename
        index = {
            "format": INDEX_FORMAT,
            "format_version": INDEX_VERSION,
            "model": config["model"],
            "files": files,
            "sha256": {f: sha256_file(tmp / f) for f in files.values()},
            "metadata": metadata,
            "recipe": dict(getattr(model, "recipe", {}) or {}),
        }
        write_synced(tmp / INDEX_FILE, (json.dumps(index, indent=2) + "\n").encode())
        write_synced(tmp / CARD_FILE, _model_card(model, metadata, files, repo_id).encode())
        for written in tmp.iterdir():  # safetensors writes 0600 files; a weight set is meant to be shared
            os.chmod(written, 0o644)
        fsync_dir(tmp)
        os.chmod(tmp, 0o755)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "x")  # keep the old folder until the new one is in place
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old / "x", target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# ----------------------------------------------------------------------------------------------
# Publishing
# ----------------------------------------------------------------------------------------------
def _verify_folder(folder: Path) -> list[str]:
    """Check a save_pretrained folder against its weights.json; return the files to upload."""
    weights = _local_weight_set(f"{LOCAL_DIR_PREFIX}{folder}", str(folder))
    fetcher = _Fetcher(weights, cache_dir=None, offline=True, endpoint=None, token=None)
    for filename in weights.files.values():
        fetcher.fetch(filename)
    extra = [CARD_FILE] if (folder / CARD_FILE).is_file() else []
    return [INDEX_FILE, *extra, *weights.files.values()]


def spec_from_folder(
    directory: str | os.PathLike[str],
    *,
    tag: str,
    repo_id: str | None = None,
    revision: str | None = None,
    bundled: str | None = None,
) -> registry.PretrainedSpec:
    """A :class:`~vganzoo.registry.PretrainedSpec` pinning the files of a ``save_pretrained`` folder.

    Files, sha256 and metadata come from the folder's weights.json (checked first), so a family
    can register exactly what was pushed (``repo_id``/``revision``) or bundled (``bundled``:
    the folder relative to the vganzoo package directory).
    """
    folder = Path(directory).expanduser()
    _verify_folder(folder)
    weights = _local_weight_set(f"{LOCAL_DIR_PREFIX}{folder}", str(folder))
    return registry.PretrainedSpec(
        tag=tag,
        repo_id=repo_id,
        revision=revision,
        files={c: f for c, f in weights.files.items() if c != "config"},
        sha256=dict(weights.sha256),
        bundled=bundled,
        metadata=dict(weights.metadata),
    )


def push_to_hub(
    model_or_dir: Any,
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool = False,
    create_pr: bool = False,
    token: str | bool | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> str:
    """Upload a model (saved first with :func:`save_pretrained`) or a saved folder to ``repo_id``.

    Creates the repo if needed (``private``) and the branch ``revision`` if it does not exist,
    uploads the weight set's files (verified against its weights.json first) in one commit and
    returns the commit sha, also printing the name to pin: ``hf-hub:{repo_id}@{sha}``.
    """
    from huggingface_hub import HfApi

    if not isinstance(repo_id, str) or not re.match(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$", repo_id):
        raise ValueError(f"repo_id must look like 'org/name', got {repo_id!r}")
    if _offline(None):
        raise WeightsError("push_to_hub: offline mode is on (HF_HUB_OFFLINE=1); unset it to upload")
    if create_pr and revision not in (None, "main"):
        raise ValueError("create_pr: pull requests are opened against main; do not combine with revision=")
    endpoint = resolve_endpoint(endpoint)
    with tempfile.TemporaryDirectory(prefix="vganzoo-push-") as scratch:
        if isinstance(model_or_dir, (str, os.PathLike)):
            if metadata is not None:
                raise ValueError("metadata: only used when pushing a model; edit the folder's files instead")
            folder = Path(model_or_dir).expanduser()
        else:
            folder = save_pretrained(
                model_or_dir, Path(scratch) / "weights", metadata=metadata, repo_id=repo_id
            )
        upload = _verify_folder(folder)
        api = HfApi(endpoint=endpoint, token=token, library_name="vganzoo")
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None and revision != "main" and not _COMMIT.match(revision):
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            revision=revision,
            create_pr=create_pr,
            allow_patterns=upload,
            commit_message=commit_message or f"Upload {folder.name} with vganzoo",
        )
        sha = info.oid
        index = json.loads((folder / INDEX_FILE).read_text(encoding="utf-8"))
    where = f" (pull request {info.pr_url})" if getattr(info, "pr_url", None) else ""
    files = {c: f for c, f in index["files"].items() if c != "config"}
    print(f"pushed {repo_id}@{sha}{where}")
    print(f"load it pinned: vganzoo.load('hf-hub:{repo_id}@{sha}')")
    print(
        f"registry spec:  PretrainedSpec(tag=..., repo_id={repo_id!r}, revision={sha!r}, files={files!r}, "
        f"sha256={index['sha256']!r})"
    )
    return sha
