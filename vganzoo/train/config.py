"""Training settings (:class:`TrainConfig`) and the recipe: defaults, validation, ``--set`` overrides."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import InvalidConfigError
from ..files import json_or_text

__all__ = [
    "DEFAULT_RECIPE",
    "LOOPS",
    "TrainConfig",
    "apply_overrides",
    "parse_override",
    "resolve_recipe",
]

# The order of updates in one iteration and which fake batches each step sees (vganzoo.train.loops):
LOOPS = {
    # d_steps rounds of D updates (each on its own fresh fakes), then one G update on fresh fakes
    "alternate": "D updates on fresh fakes, then a G update on fresh fakes",
    # TGAN's updater: one forward pass; G updated first, then D on the same fakes and outputs
    "g-first-shared-forward": "one forward pass; G updated first, then D on the same fakes and outputs",
    # VGAN's main.lua: D updated, then G from the D step's fakes and its output before the D update
    "d-first-reuse-fakes": "D updated, then G from the D step's fake batch and its D output from before "
    "the D update",
}
G_FAKE_BATCHES = ("shared", "per-discriminator")  # the G step of "alternate": one batch, or one per D
D_CATEGORY_LOSS = ("real-and-fake", "real")  # the class cross-entropy in the D step

# What a recipe holds when the family's recipe leaves a key out. The loop keys default to the loop
# every recipe followed before they existed (recipes saved then, e.g. in weights.json, lack them);
# each family's named recipes set them explicitly.
DEFAULT_RECIPE: dict[str, Any] = {
    "name": None,  # the named recipe this one started from (registry.get_recipe), for the record
    "adversarial_loss": "bce",
    "d_steps": 1,
    "batch_size": 16,
    "optimizers": {
        "generator": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
        "discriminators": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
    },
    "discriminator_batch_size": None,
    # e.g. [{"name": "r1", "weight": 1.0, "every": 1, "roles": ["image"]}] (roles: default every D)
    "regularizers": [],
    "category_loss_weight": 1.0,
    "ema": None,
    "frame_stride": 1,
    "loop": "alternate",
    "g_fake_batches": "shared",
    "d_category_loss": "real-and-fake",
}


MAX_STEPS = 10**9  # iterations in a run (vganzoo.cli.train keeps the same bound for --steps)
MAX_GRAD_ACCUM = 4096  # micro-batches per step (and for --grad-accum)


@dataclasses.dataclass
class TrainConfig:
    """How long and where to train; the recipe (what to optimise) lives on the model.

    Attributes:
        steps: total training iterations (one iteration = ``d_steps`` D updates then one G update).
        out_dir: the run folder (config, checkpoints/, samples/, logs/, model/).
        device: "cpu", "cuda", "cuda:1"...; None picks CUDA when available (the local rank's GPU
            under torchrun).
        seed: seeds everything; iteration ``i`` of rank ``r`` reseeds from ``(seed, r, i)`` so a
            resumed run draws the same numbers as an uninterrupted one.
        amp: bf16 autocast (fp16 with a grad scaler where bf16 is unsupported); CUDA only.
        compile: wrap the generator and discriminators in ``torch.compile``.
        cuda_graphs: record each forward and backward pass of the generator and discriminators in
            CUDA graphs and replay them (torch.compile's ``cudagraphs`` backend, cudagraph trees; with
            ``compile`` too, its ``reduce-overhead`` mode). CUDA only, one process; for the models
            that are host-bound at small batches. The first iterations record (slow), later ones replay.
        grad_accum: micro-batches accumulated per optimiser step.
        checkpoint_every / sample_every / log_every: in iterations; 0 disables (a checkpoint is
            still written at the end and on interrupt).
        keep_checkpoints: how many recent checkpoints to keep.
        num_samples: videos in each sample grid; sample_seed fixes their latents.
        num_workers: DataLoader worker processes.
        progress: show a tqdm progress bar (rank 0 only).
        resume: continue from the newest valid checkpoint in ``out_dir/checkpoints``, or from
            the checkpoint file given as a path.
        tensorboard: also log to TensorBoard when it is installed.
        find_unused_parameters: passed to DistributedDataParallel.
        max_time: wall-clock budget in seconds (None: none). Once this much time has passed since
            :meth:`Trainer.fit` started, the run stops at the next iteration boundary with a
            checkpoint (status "time_limit"), so a job under a cluster's or a lent GPU's time limit
            ends cleanly and continues with ``resume``.
    """

    steps: int = 1000
    out_dir: str = "runs/run"
    device: str | None = None
    seed: int = 0
    amp: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    grad_accum: int = 1
    checkpoint_every: int = 500
    sample_every: int = 500
    log_every: int = 10
    keep_checkpoints: int = 3
    num_samples: int = 16
    sample_seed: int = 0
    num_workers: int = 0
    progress: bool = True
    resume: bool | str = False
    tensorboard: bool = True
    find_unused_parameters: bool = False
    max_time: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "grad_accum",
            "checkpoint_every",
            "sample_every",
            "log_every",
            "keep_checkpoints",
            "num_samples",
            "num_workers",
            "seed",
            "sample_seed",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        for name in ("amp", "compile", "cuda_graphs", "progress", "tensorboard", "find_unused_parameters"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("steps", "checkpoint_every", "sample_every", "log_every", "num_workers", "num_samples"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.steps > MAX_STEPS:
            raise ValueError(f"steps must be at most {MAX_STEPS}, got {self.steps}")
        if not 1 <= self.grad_accum <= MAX_GRAD_ACCUM:
            raise ValueError(f"grad_accum must be from 1 to {MAX_GRAD_ACCUM}, got {self.grad_accum}")
        if self.keep_checkpoints < 1:
            raise ValueError(f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}")
        if self.max_time is not None:
            if isinstance(self.max_time, bool) or not isinstance(self.max_time, (int, float)):
                raise TypeError(
                    f"max_time must be a number of seconds or None, got {type(self.max_time).__name__}"
                )
            if not self.max_time > 0:  # also rejects NaN
                raise ValueError(f"max_time must be > 0 seconds, got {self.max_time}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_recipe(recipe: Mapping[str, Any] | None, roles: Iterable[str] = ()) -> dict[str, Any]:
    """The family recipe over :data:`DEFAULT_RECIPE`, checked; raises InvalidConfigError naming the key."""
    recipe = dict(recipe or {})
    merged = _merge(DEFAULT_RECIPE, recipe)
    if isinstance(recipe.get("optimizers"), Mapping):  # an optimiser spec replaces the default one whole
        merged["optimizers"] = {
            **copy.deepcopy(DEFAULT_RECIPE["optimizers"]),
            **copy.deepcopy(dict(recipe["optimizers"])),
        }
    roles = list(roles)

    def fail(key: str, expected: str) -> None:
        raise InvalidConfigError(f"recipe[{key!r}]: expected {expected}, got {merged.get(key)!r}")

    def positive_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1

    if not isinstance(merged["adversarial_loss"], str):
        fail("adversarial_loss", "a loss name such as 'bce', 'hinge' or 'wasserstein'")
    for key in ("d_steps", "batch_size", "frame_stride"):
        if not positive_int(merged[key]):
            fail(key, "a positive int")
    dbs = merged["discriminator_batch_size"]
    if dbs is not None:
        if not isinstance(dbs, Mapping) or not all(positive_int(v) for v in dbs.values()):
            fail("discriminator_batch_size", "null or a dict role -> positive int")
        unknown = sorted(set(dbs) - set(roles)) if roles else []
        if unknown:
            raise InvalidConfigError(
                f"recipe['discriminator_batch_size']: unknown role(s) {unknown}; the model's discriminators "
                f"are {roles}"
            )
    for key, allowed in (
        ("loop", tuple(LOOPS)),
        ("g_fake_batches", G_FAKE_BATCHES),
        ("d_category_loss", D_CATEGORY_LOSS),
    ):
        if merged[key] not in allowed:
            fail(key, "one of " + ", ".join(map(repr, allowed)))
    if merged["name"] is not None and not isinstance(merged["name"], str):
        fail("name", "null or a recipe name")
    if merged["loop"] != "alternate" and merged["d_steps"] != 1:
        fail("d_steps", f"1 with loop {merged['loop']!r} (one shared forward pass per iteration)")
    if not isinstance(merged["regularizers"], list):
        fail("regularizers", "a list of {'name': ...} dicts")
    weight = merged["category_loss_weight"]
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not 0 <= weight < math.inf:
        fail("category_loss_weight", "a finite non-negative number")
    ema = merged["ema"]
    if ema is not None:
        decay = ema.get("decay") if isinstance(ema, Mapping) else None
        if not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
            fail("ema", "null or {'decay': d} with 0 <= d < 1")
    optimizers = merged["optimizers"]
    if not isinstance(optimizers, Mapping):
        fail("optimizers", "a dict")
    for key, value in optimizers.items():
        if key not in ("generator", "discriminators") and not key.startswith("discriminator."):
            raise InvalidConfigError(
                f"recipe['optimizers']: unknown key {key!r}; expected 'generator', 'discriminators' or "
                "'discriminator.<role>'"
            )
        if key.startswith("discriminator.") and roles and key.split(".", 1)[1] not in roles:
            raise InvalidConfigError(
                f"recipe['optimizers'][{key!r}]: the model has no discriminator {key.split('.', 1)[1]!r}; it "
                f"has {roles}"
            )
        if not isinstance(value, Mapping) or not isinstance(value.get("name", "adam"), str):
            raise InvalidConfigError(
                f"recipe['optimizers'][{key!r}]: expected a dict like {{'name': 'adam', 'lr': 2e-4}}, got "
                f"{value!r}"
            )
        for number in ("lr", "weight_decay", "momentum", "eps", "alpha"):
            if number in value:
                v = value[number]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < math.inf:
                    raise InvalidConfigError(
                        f"recipe['optimizers'][{key!r}][{number!r}]: expected a finite non-negative number, "
                        f"got {v!r}"
                    )
    return merged


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optimizers.generator.lr=1e-4"`` -> (["optimizers", "generator", "lr"], 0.0001).

    The value is read as JSON when it parses (numbers, true/false/null, lists, dicts), else kept
    as a string.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ValueError(
            f"--set: expected KEY=VALUE with a dotted KEY (e.g. optimizers.generator.lr=1e-4), got {text!r}"
        )
    raw = raw.strip()
    value = json_or_text(raw, f"--set {key}")
    return key.split("."), value


def apply_overrides(recipe: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` overrides (see :func:`parse_override`) to a copy of ``recipe``.

    A dotted key descends into dicts (created when missing); ``discriminator.<role>`` under
    ``optimizers`` is one key, so ``optimizers.discriminator.video.lr=1e-4`` works too.
    """
    out = copy.deepcopy(dict(recipe))
    for text in overrides:
        path, value = parse_override(text)
        if len(path) >= 3 and path[0] == "optimizers" and path[1] == "discriminator":
            path = ["optimizers", f"discriminator.{path[2]}", *path[3:]]
        if path[0] not in DEFAULT_RECIPE and path[0] not in out:
            raise InvalidConfigError(
                f"--set {text!r}: unknown recipe key {path[0]!r}; known keys: "
                f"{', '.join(sorted(set(DEFAULT_RECIPE) | set(out)))}"
            )
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise InvalidConfigError(
                    f"--set {text!r}: {part!r} is not a dict in the recipe (it is {child!r})"
                )
            node = child
        node[path[-1]] = value
    return out
