"""Saving and publishing weight sets: ``save_pretrained``, ``push_to_hub``, registry specs.

``save_pretrained`` writes a folder (config.json, one safetensors per component, weights.json with
every file's sha256, metadata and recipe, a model card) atomically; ``push_to_hub`` uploads such a
folder after checking it; ``spec_from_folder`` pins it as a :class:`~vganzoo.registry.PretrainedSpec`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import registry
from ..errors import short_repr
from ..files import (
    default_mode,
    fsync_dir,
    read_json_file,
    safetensors_bytes,
    sha256_file,
    temp_folder,
    write_synced,
)
from .errors import WeightsError
from .fetch import Fetcher, default_endpoint, hub_unreachable, is_offline, resolve_endpoint
from .loading import as_dtype, component_modules
from .weightsets import (
    CARD_FILE,
    COMMIT,
    CONFIG_FILE,
    INDEX_FILE,
    INDEX_FORMAT,
    INDEX_VERSION,
    LOCAL_DIR_PREFIX,
    REPO_ID,
    HubOptions,
    component_file,
    local_weight_set,
)

__all__ = ["check_replaceable", "push_to_hub", "save_pretrained", "spec_from_folder"]

logger = logging.getLogger(__name__)


def tensors_for_file(module: Any, what: str, dtype: Any = None) -> dict[str, Any]:
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


def yaml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON scalars and flow lists are valid YAML


_CARD_STRINGS = ("license", "title", "load_name")  # one line each in the card
_CARD_STRING_LISTS = ("tags", "datasets", "dataset")


def check_card_metadata(metadata: Mapping[str, Any]) -> None:
    """Refuse metadata that would change the model card's structure: the Hub reads ``license``,
    ``tags`` and ``datasets`` from its YAML front matter, and a title with a line break could add
    lines of its own (a second ``---`` block)."""

    def one_line(value: Any, key: str) -> None:
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            raise ValueError(f"metadata[{key!r}] must be a one-line string, got {short_repr(value)}")

    for key in _CARD_STRINGS:
        if metadata.get(key) is not None:
            one_line(metadata[key], key)
    for key in _CARD_STRING_LISTS:
        value = metadata.get(key)
        if value is None or isinstance(value, str):
            if value is not None:
                one_line(value, key)
            continue
        if not isinstance(value, (list, tuple)):
            raise ValueError(
                f"metadata[{key!r}] must be a string or a list of strings, got {short_repr(value)}"
            )
        for item in value:
            one_line(item, key)


def model_card(
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
    lines = ["---"] + [f"{k}: {yaml_value(v)}" for k, v in header.items() if v is not None] + ["---", ""]
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


def _weight_set_file(entry: Path) -> bool:
    """Whether ``entry`` is one of the files save_pretrained writes (and nothing else: no folder,
    no link)."""
    if entry.is_symlink() or not entry.is_file():
        return False
    return entry.name in (CONFIG_FILE, INDEX_FILE, CARD_FILE) or entry.name.endswith(".safetensors")


def check_replaceable(directory: str | os.PathLike[str], overwrite: bool, what: str, flag: str) -> None:
    """Refuse to write a weight set into ``directory`` unless it is missing, empty, or (with
    ``overwrite``) a weight set whose files alone would be replaced.

    A folder holding anything a weight set does not (notes, sub-folders, links) is never replaced,
    whatever ``overwrite`` says: replacing it would delete those files. ``what`` names the argument
    (``"OUT_DIR"``), ``flag`` the option that allows replacing (``"--force"``).
    """
    target = Path(directory).expanduser()
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{what}: {str(target)!r} exists and is not a folder")
    if not target.is_dir():
        return
    entries = list(target.iterdir())
    if not entries:
        return
    foreign = sorted(e.name for e in entries if not _weight_set_file(e))
    if foreign or not (target / INDEX_FILE).is_file():
        reason = f"it holds {foreign[0]!r}" if foreign else f"it has no {INDEX_FILE}"
        raise FileExistsError(
            f"{what}: {str(target)!r} is not empty and is not a weight set ({reason}); "
            "give a new or empty folder"
        )
    if not overwrite:
        raise FileExistsError(
            f"{what}: {str(target)!r} is not empty: it holds a weight set; "
            f"pass {flag} to replace the weight set in it"
        )


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
        directory: the folder to create; an existing weight set there is replaced only with
            ``overwrite=True``, and a non-empty folder that is not a weight set never is.
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
    from ..models.base import VideoGAN

    if not isinstance(model, VideoGAN):
        raise TypeError(f"model must be a vganzoo VideoGAN, got {type(model).__name__}")
    config = dict(getattr(model, "config", {}) or {})
    if not isinstance(config.get("model"), str):
        raise ValueError("model.config has no 'model' name; build models with vganzoo.create or vganzoo.load")
    metadata = dict(metadata or {})
    dtype = as_dtype(dtype)
    if dtype is not None and not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    try:  # strict JSON: NaN / Infinity would make files that JSON readers refuse
        config_bytes = (json.dumps(config, indent=2, sort_keys=False, allow_nan=False) + "\n").encode()
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"model.config and metadata must be JSON-serialisable, without NaN or Infinity: {exc}"
        ) from None
    check_card_metadata(metadata)
    target = Path(directory).expanduser().absolute()
    check_replaceable(target, overwrite, "directory", "overwrite=True")
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_folder(target)
        _write_files(tmp, model, config_bytes, metadata, dtype, repo_id)
        _move_into_place(tmp, target)
    except OSError as exc:  # name the folder the user asked for, not a temporary file inside ours
        if exc.errno is None:
            raise
        raise OSError(exc.errno, f"cannot write the weight set: {exc.strerror}", str(target)) from exc
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _write_files(
    folder: Path, model: Any, config_bytes: bytes, metadata: dict[str, Any], dtype: Any, repo_id: str | None
) -> None:
    """Every file of the weight set into ``folder`` (an empty temporary folder), synced, with the
    permissions of every file vganzoo writes (:func:`vganzoo.files.default_mode`)."""
    config = json.loads(config_bytes)
    files = {"config": CONFIG_FILE}
    write_synced(folder / CONFIG_FILE, config_bytes)
    for comp, module in component_modules(model).items():
        filename = component_file(comp)
        tensors = tensors_for_file(module, comp, dtype)
        header = {"format": "pt", "vganzoo.component": comp, "vganzoo.model": config["model"]}
        write_synced(folder / filename, safetensors_bytes(tensors, header))
        files[comp] = filename
    index = {
        "format": INDEX_FORMAT,
        "format_version": INDEX_VERSION,
        "model": config["model"],
        "files": files,
        "sha256": {f: sha256_file(folder / f) for f in files.values()},
        "metadata": metadata,
        "recipe": dict(getattr(model, "recipe", {}) or {}),
    }
    write_synced(folder / INDEX_FILE, (json.dumps(index, indent=2, allow_nan=False) + "\n").encode())
    write_synced(folder / CARD_FILE, model_card(model, metadata, files, repo_id).encode())
    for written in folder.iterdir():  # the same permissions as every file vganzoo writes
        os.chmod(written, default_mode())
    fsync_dir(folder)


def _move_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished folder ``tmp`` to ``target``; an old ``target`` is kept until the new one
    is in place, so a crash leaves one of the two whole."""
    if target.exists():
        old = temp_folder(target.parent / f"{target.name}.old")
        os.replace(target, old / "x")
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(old / "x", target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
    fsync_dir(target.parent)


def verify_folder(folder: Path) -> list[str]:
    """Check a save_pretrained folder against its weights.json; return the files to upload."""
    weights = local_weight_set(f"{LOCAL_DIR_PREFIX}{folder}", str(folder))
    fetcher = Fetcher.for_weights(weights, HubOptions(local_files_only=True))
    for filename in weights.files.values():
        fetcher.fetch(filename)
    extra = [CARD_FILE] if (folder / CARD_FILE).is_file() else []  # local_weight_set refused links out
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
    verify_folder(folder)
    weights = local_weight_set(f"{LOCAL_DIR_PREFIX}{folder}", str(folder))
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

    if not isinstance(repo_id, str) or not REPO_ID.match(repo_id):
        raise ValueError(f"repo_id must look like 'org/name', got {repo_id!r}")
    if is_offline(None):
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
        upload = verify_folder(folder)
        where = endpoint or default_endpoint()
        unreachable = hub_unreachable(endpoint)
        if unreachable is not None:
            raise WeightsError(
                f"push_to_hub: the Hub at {where} cannot be reached ({unreachable}); check the network "
                "connection and VGANZOO_ENDPOINT / HF_ENDPOINT"
            )
        api = HfApi(endpoint=endpoint, token=token, library_name="vganzoo")
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision is not None and revision != "main" and not COMMIT.match(revision):
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            info = api.upload_folder(
                repo_id=repo_id,
                folder_path=str(folder),
                revision=revision,
                create_pr=create_pr,
                allow_patterns=upload,
                commit_message=commit_message or f"Upload {folder.name} with vganzoo",
            )
        except Exception as exc:  # HTTP errors and transport errors (httpx, not OSError) alike
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise WeightsError(f"push_to_hub: uploading to {repo_id} at {where} failed: {reason}") from exc
        sha = info.oid
        index = read_json_file(folder / INDEX_FILE, error=WeightsError)
    where = f" (pull request {info.pr_url})" if getattr(info, "pr_url", None) else ""
    files = {c: f for c, f in index["files"].items() if c != "config"}
    logger.info("pushed %s@%s%s", repo_id, sha, where)
    logger.info("load it pinned: vganzoo.load('hf-hub:%s@%s')", repo_id, sha)
    logger.info(
        "registry spec:  PretrainedSpec(tag=..., repo_id=%r, revision=%r, files=%r, sha256=%r)",
        repo_id,
        sha,
        files,
        index["sha256"],
    )
    return sha
