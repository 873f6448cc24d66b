"""What the demo offers: the weight sets it lists, each loaded once, with what its family can do.

A :class:`Catalog` lists the registered weight sets (bundled, plugins', Hub-hosted; ``arch.tag``
names filtered by a shell-style pattern) and the weight-set folders the user named. It loads only
names from that list, so a request can never make the server read another path, and keeps the
last few loaded models (:class:`LoadedModel`: the model plus what the page shows about it).
"""

from __future__ import annotations

import inspect
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import hub, registry
from ..errors import VganzooError
from ..files import read_json_file
from ..hub.weightsets import file_in_weight_set
from ..models.base import make_generator, sampling_generator
from ..resources import as_device
from ..sampling import latent_roles

__all__ = ["Catalog", "DemoError", "Entry", "LoadedModel", "parse_card"]

BUILTIN_SOURCE = "vganzoo"  # a registry spec's source for built-in models (else a plugin's distribution)
DEFAULT_FPS = 8.0
DEFAULT_CACHED_MODELS = 4  # loaded models kept in memory (least recently used goes first)
WARMUP_SEED = 0
FOLDER_PREFIX = "local-dir:"
# Scores written as "metric, real data" / "metric, random weights" beside "metric" (the model cards'
# convention) are shown as columns of one row.
SCORE_REFERENCES = ("real data", "random weights")


class DemoError(VganzooError, ValueError):
    """A request the demo refuses, or a weight set it cannot load; the message is shown in the page."""


@dataclass(frozen=True)
class Entry:
    """One weight set in the list: ``name`` is what :func:`vganzoo.load` takes."""

    name: str
    label: str  # what the model list shows
    source: str  # "bundled", "Hub: org/repo", "plugin <dist>", "folder"


@dataclass
class LoadedModel:
    """A loaded weight set and what the page needs to know about it.

    ``seconds_per_frame`` is measured on a one-clip warm-up: the demo's time estimate for a
    request is ``seconds_per_frame * clips * frames``.
    """

    entry: Entry
    model: Any  # VideoGAN
    generator: torch.nn.Module  # the one sampling uses (the EMA copy when there is one)
    device: torch.device
    num_classes: int
    class_names: str  # e.g. "the digit (0-9)", or ""
    frames: int  # the clip length it was trained for
    variable_frames: bool  # sample_latents(frames=...) draws clips of other lengths
    walks: tuple[str, ...]  # ("content", "motion") for families that split them, else ("all",)
    resolution: int
    channels: int
    fps: float
    family: str
    metadata: dict[str, Any] = field(default_factory=dict)
    card: str = ""  # the model card's Markdown without its YAML header, or ""
    scores: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (metric, {column: value})
    seconds_per_frame: float = 0.0

    @property
    def splits_content_and_motion(self) -> bool:
        return self.walks == ("content", "motion")


def _source_of(name: str) -> str:
    spec = registry.get_model_spec(name)
    _arch, tag = registry.split_tag(name)
    pretrained = spec.pretrained[tag or spec.default_tag]
    where = "bundled" if pretrained.bundled else f"Hub: {pretrained.repo_id}"
    if spec.source != BUILTIN_SOURCE:
        where = f"plugin {spec.source}, {where}"
    return where


class Catalog:
    """The weight sets a demo offers, and a cache of the loaded ones.

    Args:
        pattern: shell-style filter(s) on the registered ``arch.tag`` names (``"*"``: all).
        folders: weight-set folders (written by ``vganzoo.save_pretrained`` or ``vganzoo export``)
            to offer as well; each must be an existing folder. A folder that then fails to load is
            listed and its error shown when it is chosen.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:1"``, ...
        cached_models: how many loaded models to keep.
    """

    def __init__(
        self,
        pattern: str | Sequence[str] = "*",
        folders: Iterable[str | Path] = (),
        *,
        device: str | torch.device = "auto",
        cached_models: int = DEFAULT_CACHED_MODELS,
    ) -> None:
        self.device = _resolve_device(device)
        if not isinstance(cached_models, int) or cached_models < 1:
            raise ValueError(f"cached_models must be a positive int, got {cached_models!r}")
        self._cached_models = cached_models
        entries: dict[str, Entry] = {}
        for name in registry.list_pretrained(pattern):
            try:
                source = _source_of(name)
            except Exception as exc:  # a broken plugin: listed, its error shown when chosen
                source = f"unavailable: {exc}"
            entries[name] = Entry(name=name, label=f"{name} ({source})", source=source)
        for folder in folders:
            path = Path(folder).expanduser().resolve()
            if not path.is_dir():
                raise DemoError(f"{folder}: not a folder (give a folder written by vganzoo.save_pretrained)")
            name = FOLDER_PREFIX + str(path)
            entries[name] = Entry(name=name, label=f"{path.name} (folder {path})", source="folder")
        if not entries:
            raise DemoError(
                f"no weight set matches {pattern!r} and no folder was given; `vganzoo list --pretrained` "
                "lists the weight sets"
            )
        self.entries: dict[str, Entry] = entries
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def choices(self) -> list[tuple[str, str]]:
        """``(label, name)`` pairs for a model list, in order: registered weight sets, then folders."""
        return [(e.label, e.name) for e in self.entries.values()]

    def entry(self, name: Any) -> Entry:
        if not isinstance(name, str) or name not in self.entries:
            raise DemoError(f"unknown weight set {name!r}: choose one from the list")
        return self.entries[name]

    def get(self, name: Any) -> LoadedModel:
        """The loaded weight set ``name`` (loaded on first use; only names of this catalog).

        Raises DemoError with the reason when it cannot be loaded (not in the cache offline, a
        folder that is not a weight set, a hash mismatch, a missing plugin...).
        """
        entry = self.entry(name)
        with self._lock:  # one load at a time: a second request for the same name waits for the first
            if entry.name in self._loaded:
                self._loaded.move_to_end(entry.name)
                return self._loaded[entry.name]
            try:
                loaded = _load(entry, self.device)
            except DemoError:
                raise
            except Exception as exc:  # a folder or plugin may fail in any way: say why, keep serving
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise DemoError(f"cannot load {entry.label}: {message}") from exc
            self._loaded[entry.name] = loaded
            while len(self._loaded) > self._cached_models:
                self._loaded.popitem(last=False)
            return loaded

    def loaded_names(self) -> list[str]:
        """Names held in the cache, least recently used first."""
        with self._lock:
            return list(self._loaded)


def _resolve_device(device: str | torch.device) -> torch.device:
    try:
        return as_device(device)  # the library's one device check ("auto", index, CUDA/MPS availability)
    except (ValueError, TypeError) as exc:
        raise DemoError(str(exc)) from None


def _load(entry: Entry, device: torch.device) -> LoadedModel:
    model = hub.load(entry.name, device=device)
    generator = sampling_generator(model)
    pretrained = getattr(model, "pretrained", None) or {}
    metadata = dict(pretrained.get("metadata") or {})
    card, card_metadata = _card_beside_config(entry.name, pretrained.get("components") or ["generator"])
    metadata = {**card_metadata, **metadata}  # the index's metadata (scores...) under the spec's
    config = dict(getattr(model, "config", {}) or {})
    draw = inspect.signature(generator.sample_latents).parameters
    latents = generator.sample_latents(1, generator=make_generator(WARMUP_SEED))
    roles = latent_roles(generator, latents)
    spec = registry.get_model_spec(model.name)
    fps = metadata.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        fps = DEFAULT_FPS
    loaded = LoadedModel(
        entry=entry,
        model=model,
        generator=generator,
        device=device,
        num_classes=int(model.num_classes),
        class_names=str(metadata.get("labels") or ""),
        frames=int(getattr(generator, "frames", config.get("frames", 16))),
        variable_frames="frames" in draw,
        walks=("content", "motion") if "content" in roles else ("all",),
        resolution=int(getattr(generator, "resolution", config.get("resolution", 0))),
        channels=int(getattr(generator, "channels", config.get("channels", 3))),
        fps=float(fps),
        family=spec.family,
        metadata=metadata,
        card=card,
        scores=_scores(metadata.get("metrics")),
    )
    loaded.seconds_per_frame = _time_one_clip(loaded)
    return loaded


def _card_beside_config(name: str, components: list[str]) -> tuple[str, dict[str, Any]]:
    """The model card and the index metadata that sit beside a weight set's config.json.

    Bundled and folder weight sets have both; a Hub weight set has them only when they were
    fetched into the same snapshot. Only the weight set's own folder is read.
    """
    folder = hub.download(name, components=components[:1])["config"].parent
    # never a link out of the weight set (a shared folder's README.md -> ~/.ssh/id_rsa)
    card_file = file_in_weight_set(folder, hub.CARD_FILE)
    index_file = file_in_weight_set(folder, hub.INDEX_FILE)
    card = parse_card(card_file.read_text("utf-8")) if card_file is not None else ""
    metadata: dict[str, Any] = {}
    if index_file is not None:
        try:
            index = read_json_file(index_file)
        except (OSError, ValueError):
            index = {}
        if isinstance(index, dict) and isinstance(index.get("metadata"), dict):
            metadata = dict(index["metadata"])
    return card, metadata


def parse_card(text: str) -> str:
    """A model card's Markdown without its YAML front matter (``---`` ... ``---``)."""
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            text = text[end + len("\n---") :].lstrip("\n")
    return text


def _scores(metrics: Any) -> list[tuple[str, dict[str, Any]]]:
    """``{"fvd": {"value": 1.0, ...}, "fvd, real data": {...}}`` -> ``[("fvd", {"this model": 1.0,
    "real data": ...})]``, in the card's order."""
    if not isinstance(metrics, dict):
        return []
    rows: dict[str, dict[str, Any]] = {}
    for key, entry in metrics.items():
        value = entry.get("value") if isinstance(entry, dict) else entry
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        metric, column = str(key), "this model"
        for reference in SCORE_REFERENCES:
            if metric.endswith(f", {reference}"):
                metric, column = metric[: -len(reference) - 2], reference
        rows.setdefault(metric, {})[column] = value
    return [(metric, columns) for metric, columns in rows.items() if "this model" in columns]


def _time_one_clip(loaded: LoadedModel) -> float:
    """Seconds per generated frame: the second of two one-clip samples (the first pays one-time costs)."""
    elapsed = math.inf
    for _ in range(2):
        start = time.perf_counter()
        loaded.model.sample(1, seed=WARMUP_SEED, device=loaded.device)
        if loaded.device.type == "cuda":
            torch.cuda.synchronize(loaded.device)
        elapsed = time.perf_counter() - start
    return elapsed / max(loaded.frames, 1)
