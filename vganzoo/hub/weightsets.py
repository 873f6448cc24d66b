"""Weight sets: what a name means, which files it has and what their sha256 must be.

A weight set is a folder of config.json, one safetensors file per component, weights.json (files,
sha256 of each, metadata, recipe) and a model card (the layout is in :mod:`vganzoo.hub`). This
module turns a name into a :class:`WeightSet` (no download here, except what
:mod:`vganzoo.hub.fetch` does for ``hf-hub:`` indexes) and validates ``weights.json`` files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import registry
from ..errors import VganzooError
from ..files import read_json_file
from .errors import NoPretrainedWeightsError, WeightsError, WeightsNotFoundError

__all__ = [
    "CARD_FILE",
    "CONFIG_FILE",
    "HF_HUB_PREFIX",
    "INDEX_FILE",
    "LOCAL_DIR_PREFIX",
    "HubOptions",
    "WeightSet",
    "check_inside",
    "component_file",
    "file_in_weight_set",
    "local_weight_set",
    "parse_index",
    "registry_weight_set",
    "select_components",
    "to_load_name",
]

CONFIG_FILE = "config.json"
INDEX_FILE = "weights.json"
CARD_FILE = "README.md"
INDEX_FORMAT = "vganzoo-weights"
INDEX_VERSION = 1
HF_HUB_PREFIX = "hf-hub:"
LOCAL_DIR_PREFIX = "local-dir:"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # bundled weight folders are relative to this
COMMIT = re.compile(r"^[0-9a-f]{40}$")
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
ROLE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


@dataclass(frozen=True)
class HubOptions:
    """Where and how files are fetched; the keywords that :func:`vganzoo.load` and its siblings share.

    revision: a branch, tag or commit for ``hf-hub:`` names (registry names are pinned).
    cache_dir: Hugging Face cache folder (default: ``HF_HUB_CACHE``).
    local_files_only: cache and bundled files only (default: ``HF_HUB_OFFLINE``).
    endpoint: Hub URL; default ``VGANZOO_ENDPOINT``, then ``HF_ENDPOINT``, read at call time.
    token: Hub token for private repos (default: huggingface_hub's stored login).
    """

    revision: str | None = None
    cache_dir: str | os.PathLike[str] | None = None
    local_files_only: bool | None = None
    endpoint: str | None = None
    token: str | bool | None = None


@dataclass
class WeightSet:
    """One resolved weight set: its files, their pinned hashes, and where to read them."""

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

    @property
    def index_pinned(self) -> bool:
        """Whether weights.json itself is pinned (a registry spec lists its sha256): only then is the
        training recipe in it read for a registry weight set."""
        return INDEX_FILE in self.sha256


def component_file(component: str) -> str:
    """File name of a component: ``generator`` -> ``generator.safetensors``, ``discriminator.video`` -> ..."""
    check_component_name(component)
    return f"{component}.safetensors"


def check_component_name(component: str) -> None:
    if component in ("generator", "generator_ema"):
        return
    kind, dot, role = component.partition(".")
    if kind == "discriminator" and dot and ROLE.match(role):
        return
    raise ValueError(
        f"components: unknown component {component!r}; expected 'generator', 'generator_ema', "
        "'discriminators' (all of them) or 'discriminator.<role>'"
    )


def check_inside(folder: Path, filename: str, name: str) -> None:
    """Refuse ``folder/filename`` when it is a link that leads out of ``folder``: a shared folder whose
    README.md links to ~/.ssh/id_rsa would otherwise be shown by ``vganzoo serve`` or uploaded by push."""
    path = folder / filename
    if path.is_symlink() and not path.resolve().is_relative_to(folder.resolve()):
        raise WeightsError(
            f"{name}: {filename} in {folder} is a link to a file outside the folder; a weight set's files "
            "must be inside it (copy the file in instead)"
        )


def file_in_weight_set(folder: Path, filename: str) -> Path | None:
    """``folder/filename`` when it is a file that stays inside its weight set, else None: inside the
    folder, or for a Hugging Face cache snapshot (``.../snapshots/<commit>/``, whose files link to the
    repo's ``blobs/``) inside that repo's cache folder. For files such as the model card that no
    sha256 pins."""
    path = folder / filename
    if not path.is_file():
        return None
    root = folder.resolve()
    if folder.parent.name == "snapshots":
        root = folder.parent.parent.resolve()
    return path if path.resolve().is_relative_to(root) else None


def read_json(path: Path, what: str) -> Any:
    """An untrusted JSON file of a weight set (size and depth bounded, see ``files.read_json_file``)."""
    return read_json_file(path, f"{what}: {path}", error=WeightsError)


def parse_index(
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
            check_component_name(component)
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


def parse_hf_name(rest: str, revision: str | None) -> tuple[str, str | None]:
    """``org/repo[@revision]`` (after the ``hf-hub:`` prefix) -> (repo_id, revision)."""
    repo_id, at, rev = rest.partition("@")
    if not REPO_ID.match(repo_id) or (at and not rev):
        raise ValueError(
            f"name: expected 'hf-hub:org/repo' or 'hf-hub:org/repo@revision', got 'hf-hub:{rest}'"
        )
    if at and revision is not None and revision != rev:
        raise ValueError(f"revision={revision!r} conflicts with the name's '@{rev}'; give one of them")
    return repo_id, rev or revision


def to_load_name(name: str) -> str:
    """A plain folder path (``./my-run``, ``runs/x/model``, ``~/w``, an existing folder) as
    ``local-dir:PATH``; registered and prefixed names unchanged. A registered name beats a folder of
    the same name; a path that does not exist is named as a missing folder, not an unknown model."""
    if name.startswith((HF_HUB_PREFIX, LOCAL_DIR_PREFIX)):
        return name
    if not os.path.isdir(name):
        looks_like_path = "/" in name or os.sep in name or name.startswith(("~", "."))
        return LOCAL_DIR_PREFIX + name if looks_like_path else name
    try:
        registry.get_model_spec(name)
    except VganzooError:
        return LOCAL_DIR_PREFIX + name
    return name


def registry_weight_set(name: str, revision: str | None) -> WeightSet:
    """The weight set a registered ``arch`` (its default tag) or ``arch.tag`` names."""
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
    return WeightSet(
        name=f"{arch}.{tag}",
        files=files,
        sha256={k: v.lower() for k, v in pre.sha256.items()},
        repo_id=pre.repo_id,
        revision=pre.revision,
        bundled=(PACKAGE_DIR / pre.bundled) if pre.bundled else None,
        arch=spec.name if spec.source == registry.BUILTIN_SOURCE else spec.qualified_name,
        metadata=dict(pre.metadata),
    )


def local_weight_set(name: str, path: str | os.PathLike[str]) -> WeightSet:
    """The weight set of a ``save_pretrained`` folder (its weights.json lists files and hashes)."""
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
    check_inside(folder, INDEX_FILE, name)
    files, hashes, metadata, recipe = parse_index(read_json(folder / INDEX_FILE, name), str(folder))
    for filename in (CARD_FILE, *files.values()):
        check_inside(folder, filename, name)
    return WeightSet(
        name=name, files=files, sha256=hashes, local_dir=folder, recipe=recipe, metadata=metadata
    )


def select_components(weights: WeightSet, components: str | Iterable[str] | None) -> list[str]:
    """Component names requested (``"all"``, a name or names; ``discriminators`` expands).

    None (the default of :func:`vganzoo.load`) means what sampling needs: the generator, and the EMA
    generator when the weight set has one (``VideoGAN.sample`` uses it).
    """
    available = weights.components
    if components is None:
        components = [c for c in ("generator", "generator_ema") if c in available]
    if isinstance(components, str):
        components = available if components == "all" else [components]
    if not isinstance(components, Iterable):
        raise TypeError(f"components must be a name or a list of names, got {type(components).__name__}")
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
        check_component_name(comp)
        if comp not in available:
            raise WeightsNotFoundError(
                f"{weights.name}: has no {comp!r} weights; it has: {', '.join(available) or 'none'}"
            )
        chosen.append(comp)
    return list(dict.fromkeys(chosen))
