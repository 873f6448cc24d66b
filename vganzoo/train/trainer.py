"""The adversarial training loop, driven by the model's recipe.

One iteration = ``d_steps`` rounds of discriminator updates (every role in turn, each on its own
real batch of its own size and freshly generated fakes), then one generator update against every
discriminator. Per-family extras come from the recipe: regularisers on the D loss (WGAN-GP, R1),
singular value clipping after D updates, the mask L1 on the generator, the InfoGAN category loss
whenever a discriminator returns ``class_logits``, and an EMA of the generator.

Determinism: iteration ``i`` on rank ``r`` reseeds torch, Python, NumPy and the latent generator
from ``(seed, r, i)``, and the data order depends only on ``(seed, epoch)``; a checkpoint therefore
needs only the weights, optimiser states and data position to continue exactly (the RNG states
are stored as well).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import losses
from ..errors import InvalidConfigError, VganzooError
from . import checkpoint as ckpt
from . import distributed, frame_times
from .batches import BatchLoader, IndexStream
from .config import TrainConfig, resolve_recipe
from .export import export_model

__all__ = ["TrainResult", "Trainer", "TrainingDiverged", "build_optimizer", "derive_seed"]

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}
METRICS_FILE = "metrics.jsonl"


# The wall clock that TrainConfig.max_time is measured with (a module attribute so tests can drive it).
_clock = time.perf_counter


class TrainingDiverged(VganzooError, RuntimeError):
    """A loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


class _Diverged(Exception):
    def __init__(self, name: str, value: float) -> None:
        super().__init__(name, value)
        self.name, self.value = name, value


@dataclasses.dataclass
class TrainResult:
    """What :meth:`Trainer.fit` did.

    Attributes:
        step: iterations completed.
        status: "completed", "interrupted" (SIGINT / SIGTERM) or "time_limit" (``max_time`` ran out);
            the last two end with a checkpoint to ``resume`` from.
        run_dir: the run folder.
        checkpoint: the last checkpoint written (None if none was).
        export_dir: the save_pretrained folder written at the end (None when interrupted).
        metrics: the last logged metrics (averaged over ranks).
    """

    step: int
    status: str
    run_dir: Path
    checkpoint: Path | None
    export_dir: Path | None
    metrics: dict[str, float]


def derive_seed(seed: int, *parts: int) -> int:
    """A 63-bit seed from ``seed`` and ``parts`` (rank, iteration...), stable across platforms."""
    text = ":".join(str(int(p)) for p in (seed, *parts)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & ((1 << 63) - 1)


def build_optimizer(params: Any, spec: Mapping[str, Any], *, what: str) -> torch.optim.Optimizer:
    """``{"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999], ...}`` -> optimiser over ``params``."""
    spec = dict(spec)
    name = str(spec.pop("name", "adam")).lower()
    if name not in OPTIMIZERS:
        raise InvalidConfigError(
            f"recipe optimizers[{what!r}]: unknown optimizer {name!r}; expected one of {sorted(OPTIMIZERS)}"
        )
    if isinstance(spec.get("betas"), list):
        spec["betas"] = tuple(spec["betas"])
    try:
        return OPTIMIZERS[name](params, **spec)
    except (TypeError, ValueError) as exc:
        raise InvalidConfigError(f"recipe optimizers[{what!r}]: bad settings for {name}: {exc}") from None


def _as_float(x: torch.Tensor | float) -> float:
    return float(x.detach().float().item()) if isinstance(x, torch.Tensor) else float(x)


class Trainer:
    """Trains a :class:`~vganzoo.models.base.VideoGAN` on a dataset of ``{"video", "label"}`` items.

    Args:
        model: the model (its ``recipe`` says how to train it); moved to the training device.
        dataset: items ``{"video": (C, T, H, W) in [-1, 1], "label": int64 or -1}``.
        config: a :class:`TrainConfig`.
        run_info: extra JSON written into the run's ``config.json`` (the data spec, the command).
        callbacks: ``fn(trainer, metrics)`` called after every iteration (``trainer.step`` is the
            number of iterations done); call ``trainer.request_stop()`` to end the run early.

    Under torchrun each process builds its own Trainer; the process group starts here (see
    :mod:`vganzoo.train.distributed`), the modules are wrapped in DistributedDataParallel, each
    rank reads its own shard, and only rank 0 writes files.
    """

    def __init__(
        self,
        model: nn.Module,
        dataset: Any,
        config: TrainConfig | None = None,
        *,
        run_info: Mapping[str, Any] | None = None,
        callbacks: list[Callable[[Trainer, dict[str, float]], None]] | None = None,
    ) -> None:
        self.config = config or TrainConfig()
        self.model = model
        self.dataset = dataset
        self.run_info = dict(run_info or {})
        self.callbacks = list(callbacks or [])
        if not len(getattr(model, "discriminators", ())):
            raise ValueError(
                "model: training needs discriminators; this model has none (was only its generator loaded?)"
            )
        try:
            length = len(dataset)
        except TypeError:
            raise TypeError("dataset: must be a map-style dataset with __len__ and __getitem__") from None
        self.device = distributed.init_from_env(self.config.device)
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        self.is_main = self.rank == 0

        self.roles = list(model.discriminators.keys())
        self.recipe = resolve_recipe(model.recipe, roles=self.roles)
        self.adversarial = losses.adversarial_loss(self.recipe["adversarial_loss"])
        self.regularizers = [losses.regularizer(spec) for spec in self.recipe["regularizers"]]
        for reg in self.regularizers:
            unknown = sorted(set(reg.roles or ()) - set(self.roles))
            if unknown:
                raise InvalidConfigError(
                    f"recipe regularizers: {reg.name!r} names discriminator roles {unknown} this model does "
                    f"not have; it has {self.roles}"
                )
        self.category_weight = float(self.recipe["category_loss_weight"])
        dbs = self.recipe["discriminator_batch_size"] or {}
        self.batch_sizes = {role: int(dbs.get(role, self.recipe["batch_size"])) for role in self.roles}
        self.d_steps = int(self.recipe["d_steps"])

        if self.recipe["ema"] is not None:
            model.add_ema()
        model.to(self.device)
        self.num_classes = int(getattr(model, "num_classes", 0) or 0)
        # Whether real clips go to the discriminators with their labels: decided once for the run (from
        # the dataset's num_classes when it has one, else at the first batch that cannot be used), so
        # that conditioning never changes from batch to batch.
        self.use_labels = self.num_classes > 0
        data_classes = getattr(dataset, "num_classes", None)
        if self.use_labels and isinstance(data_classes, int) and not isinstance(data_classes, bool):
            if data_classes == 0:
                self._drop_labels("the dataset has no labels")
            elif data_classes > self.num_classes:
                self._drop_labels(
                    f"the dataset has {data_classes} classes but the model num_classes={self.num_classes} "
                    f"(pass --num-classes {data_classes} / num_classes={data_classes} to condition on them)"
                )

        optim_specs = self.recipe["optimizers"]
        self.opt_g = build_optimizer(model.generator.parameters(), optim_specs["generator"], what="generator")
        self.opt_d = {}
        for role in self.roles:
            spec = {**optim_specs["discriminators"], **optim_specs.get(f"discriminator.{role}", {})}
            self.opt_d[role] = build_optimizer(
                model.discriminators[role].parameters(), spec, what=f"discriminator.{role}"
            )

        # mixed precision (CUDA only)
        self.amp_dtype: torch.dtype | None = None
        if self.config.amp:
            if self.device.type != "cuda":
                warnings.warn(
                    "amp: mixed precision is CUDA-only; training in float32 on the CPU", stacklevel=2
                )
            else:
                self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        use_scaler = self.amp_dtype == torch.float16
        self.scalers = {
            name: torch.amp.GradScaler("cuda", enabled=use_scaler)
            for name in ["generator", *(f"discriminator.{r}" for r in self.roles)]
        }

        # modules used for the forward passes: DDP and/or torch.compile around the raw ones
        self.g_run: nn.Module = model.generator
        self.d_run: dict[str, nn.Module] = {role: model.discriminators[role] for role in self.roles}
        if distributed.is_distributed():
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device] if self.device.type == "cuda" else None
            wrap = lambda m: DDP(m, device_ids=ids, find_unused_parameters=self.config.find_unused_parameters)
            self.g_run = wrap(self.g_run)
            self.d_run = {role: wrap(d) for role, d in self.d_run.items()}
        if self.config.compile:
            self.g_run = torch.compile(self.g_run)
            self.d_run = {role: torch.compile(d) for role, d in self.d_run.items()}

        self.latent_generator = torch.Generator(device="cpu")
        self.stream = IndexStream(length, seed=self.config.seed, rank=self.rank, world_size=self.world_size)
        self.step = 0
        self.run_dir = Path(self.config.out_dir)
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self.last_checkpoint: Path | None = None
        self.last_metrics: dict[str, float] = {}
        self._stop_requested = False
        self._warned: set[str] = set()
        self._shape_checked = False
        self._tb_writer: Any = None
        self._loader: BatchLoader | None = None

    # ------------------------------------------------------------------------------------------
    # public helpers
    # ------------------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """End the run after the current iteration (a checkpoint is written first)."""
        self._stop_requested = True

    def state_tensors_and_meta(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Everything a checkpoint holds: (tensors, JSON-able state)."""
        tensors: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        optim_meta = {}
        for name, opt in self._optimizers().items():
            t, meta = ckpt.flatten_optimizer_state(f"optim.{name}", opt.state_dict())
            tensors.update(t)
            optim_meta[name] = meta
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.latent"] = self.latent_generator.get_state()
        if self.device.type == "cuda":
            for i, state in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng.cuda.{i}"] = state
        py_state = random.getstate()
        state = {
            "step": self.step,
            "data_position": self.stream.state(),
            "world_size": self.world_size,
            "use_labels": self.use_labels,
            "optimizers": optim_meta,
            "scalers": {k: s.state_dict() for k, s in self.scalers.items() if s.is_enabled()},
            "model_config": getattr(self.model, "config", {}),
            "recipe": self.recipe,
            "train_config": self.config.to_dict(),
            "rng": {"python": [py_state[0], list(py_state[1]), py_state[2]]},
        }
        return tensors, state

    def load_state(
        self, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any], *, source: str = "checkpoint"
    ) -> None:
        """Restore what :meth:`state_tensors_and_meta` produced."""
        saved_config = state.get("model_config") or {}
        config = getattr(self.model, "config", {}) or {}
        if saved_config and config and saved_config != config:
            raise ckpt.CheckpointError(
                f"{source} was written for model config {saved_config}, but this model has {config}"
            )
        ckpt.load_model_state(self.model, tensors, source)
        for name, opt in self._optimizers().items():
            if name not in state["optimizers"]:
                raise ckpt.CheckpointError(f"{source} has no optimizer state for {name!r}")
            # the recipe in effect now sets the hyperparameters (lr, betas...): load_state_dict would
            # silently bring back the saved ones and ignore a `--set optimizers...` given on resume
            current = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
            opt.load_state_dict(
                ckpt.unflatten_optimizer_state(f"optim.{name}", tensors, state["optimizers"][name])
            )
            for group, settings in zip(opt.param_groups, current):
                group.update(settings)
        for name, scaler_state in state.get("scalers", {}).items():
            if name in self.scalers and self.scalers[name].is_enabled():
                self.scalers[name].load_state_dict(scaler_state)
        if "rng.torch" in tensors:
            torch.set_rng_state(tensors["rng.torch"])
        if "rng.latent" in tensors:
            self.latent_generator.set_state(tensors["rng.latent"])
        if self.device.type == "cuda":
            states = [
                tensors[f"rng.cuda.{i}"]
                for i in range(torch.cuda.device_count())
                if f"rng.cuda.{i}" in tensors
            ]
            if len(states) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(states)
        py = state.get("rng", {}).get("python")
        if py:
            random.setstate((py[0], tuple(py[1]), py[2]))
        if int(state.get("world_size", self.world_size)) != self.world_size:
            self._warn_once(
                "world",
                f"resuming a run saved with {state['world_size']} processes on {self.world_size}: the data "
                "order differs from an uninterrupted run",
            )
        self.stream.load_state(state["data_position"])
        self.step = int(state["step"])
        if self.use_labels and state.get("use_labels") is False:  # the run had stopped using labels
            self.use_labels = False

    # ------------------------------------------------------------------------------------------
    # the run
    # ------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train until ``config.steps`` iterations (resuming first when asked); see :class:`TrainResult`."""
        status = "completed"
        export_dir = None
        self._fit_start = _clock()  # max_time counts from here (setup and resume included)
        restore_signals = self._install_signal_handlers()
        progress = None
        try:
            self._prepare_run_dir()
            self._resume_if_asked()
            if self.is_main:
                self._prepare_metrics_log()
            self._loader = self._make_loader()
            if self.is_main and self.config.progress:
                from tqdm.auto import tqdm

                progress = tqdm(
                    total=self.config.steps,
                    initial=self.step,
                    unit="it",
                    dynamic_ncols=True,
                    desc=self.run_dir.name,
                )
            last_checkpoint_step = self.step if self.last_checkpoint is not None else -1
            window_start, window_steps = time.perf_counter(), 0
            deadline = None if self.config.max_time is None else self._fit_start + self.config.max_time
            while self.step < self.config.steps:
                metrics = self._iteration(self.step)
                self.step += 1
                window_steps += 1
                if progress is not None:
                    progress.update(1)
                for callback in self.callbacks:
                    callback(self, metrics)
                if self._due(self.config.log_every) or self.step == self.config.steps:
                    elapsed = time.perf_counter() - window_start
                    metrics = distributed.all_reduce_mean(metrics, self.device)
                    metrics["steps_per_s"] = window_steps / elapsed if elapsed > 0 else float("nan")
                    self.last_metrics = metrics
                    if self.is_main:
                        self._log(metrics, progress)
                    window_start, window_steps = time.perf_counter(), 0
                if self._due(self.config.sample_every):
                    self._write_samples()
                if self._due(self.config.checkpoint_every):
                    self._save_checkpoint()
                    last_checkpoint_step = self.step
                out_of_time = deadline is not None and _clock() >= deadline
                if distributed.all_reduce_any(self._stop_requested, self.device):
                    status = "interrupted"
                    break
                if deadline is not None and distributed.all_reduce_any(out_of_time, self.device):
                    status = "time_limit"
                    break
            if last_checkpoint_step != self.step:
                self._save_checkpoint()
            if status == "completed":
                if not self._due(self.config.sample_every):
                    self._write_samples()
                export_dir = self._export()
        except _Diverged as exc:
            where = (
                str(self.last_checkpoint) if self.last_checkpoint else "none (no checkpoint was written yet)"
            )
            message = (
                f"training diverged at iteration {self.step + 1}: {exc.name} is {exc.value}. "
                f"Stopped without saving; the last good checkpoint is {where}. "
                "Lower the learning rate or add a regulariser (--set ...) and --resume."
            )
            if self.is_main:
                self._append_metrics(
                    {"step": self.step, "event": "diverged", "loss": exc.name, "value": str(exc.value)}
                )
            raise TrainingDiverged(message) from None
        finally:
            restore_signals()
            if progress is not None:
                progress.close()
            if self._loader is not None:
                self._loader.close()
            if self._tb_writer is not None:
                self._tb_writer.close()
                self._tb_writer = None
        distributed.barrier()
        return TrainResult(
            self.step, status, self.run_dir, self.last_checkpoint, export_dir, dict(self.last_metrics)
        )

    # ------------------------------------------------------------------------------------------
    # one iteration
    # ------------------------------------------------------------------------------------------
    def _iteration(self, iteration: int) -> dict[str, float]:
        self._reseed(iteration)
        metrics: dict[str, float] = {}
        accum = self.config.grad_accum
        for _ in range(self.d_steps):
            for role in self.roles:
                d_loss = self._discriminator_update(role, iteration, accum)
                metrics[f"d_loss/{role}"] = metrics.get(f"d_loss/{role}", 0.0) + d_loss / self.d_steps
        after_step = [r for r in self.regularizers if r.stage == "d_after_step" and r.active(iteration)]
        if after_step and distributed.is_distributed():
            self._broadcast_buffers(self.roles)  # clipping reads BN statistics: use the same on every rank
        for reg in after_step:
            for role in self.roles:
                if reg.applies_to(role):
                    reg(self.model.discriminators[role])
        metrics.update(self._generator_update(iteration, accum))
        if distributed.is_distributed():
            self._broadcast_buffers()
        if self.model.generator_ema is not None:
            self._update_ema()
        return metrics

    def _discriminator_update(self, role: str, iteration: int, accum: int) -> float:
        disc, opt, scaler = self.d_run[role], self.opt_d[role], self.scalers[f"discriminator.{role}"]
        batch_size = self.batch_sizes[role]
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for micro in range(accum):
            real, real_labels = self._real_batch(batch_size)
            with torch.no_grad(), self._autocast():
                fake, fake_labels, _, fake_inputs = self._generate(batch_size)
            if not self._shape_checked:
                self._check_shapes(real, fake, sparse=bool(fake_inputs))
            sync = self._maybe_no_sync(disc, last=micro == accum - 1)
            with sync:
                with self._autocast():
                    out_real = disc(real, labels=real_labels)
                    out_fake = disc(fake.detach(), labels=fake_labels, **fake_inputs)
                    loss = self.adversarial.d_loss(out_real.logits, out_fake.logits)
                    loss = loss + self._category_terms(
                        out_real.class_logits, real_labels, out_fake.class_logits, fake_labels
                    )
                for reg in self.regularizers:
                    if reg.stage == "d_loss" and reg.active(iteration) and reg.applies_to(role):
                        critic = lambda x, lab=real_labels: disc(x, labels=lab).logits
                        loss = loss + reg(critic, real, fake.detach(), generator=self.latent_generator)
                self._check_finite(loss, f"discriminator loss ({role})")
                scaler.scale(loss / accum).backward()
            total += _as_float(loss) / accum
        scaler.step(opt)
        scaler.update()
        return total

    def _generator_update(self, iteration: int, accum: int) -> dict[str, float]:
        scaler = self.scalers["generator"]
        self.opt_g.zero_grad(set_to_none=True)
        g_regs = [r for r in self.regularizers if r.stage == "g_loss" and r.active(iteration)]
        batch = max(self.batch_sizes.values())
        metrics: dict[str, float] = {"g_loss": 0.0}
        raw_discriminators = [self.model.discriminators[r] for r in self.roles]
        for d in raw_discriminators:
            d.requires_grad_(False)  # the G step needs gradients through D, not for D's weights
        try:
            for micro in range(accum):
                with contextlib.ExitStack() as stack:
                    stack.enter_context(self._maybe_no_sync(self.g_run, last=micro == accum - 1))
                    for role in self.roles:  # D's gradients are not wanted here: no DDP reduction
                        stack.enter_context(self._maybe_no_sync(self.d_run[role], last=False))
                    with self._autocast():
                        fake, labels, aux, fake_inputs = self._generate(batch, grad=True, aux=bool(g_regs))
                        loss = torch.zeros((), device=self.device)
                        for role in self.roles:
                            n = self.batch_sizes[role]
                            sub_labels = labels[:n] if labels is not None else None
                            out = self.d_run[role](
                                fake[:n], labels=sub_labels, **frame_times.take(fake_inputs, n)
                            )
                            adv = self.adversarial.g_loss(out.logits)
                            metrics[f"g_adv/{role}"] = (
                                metrics.get(f"g_adv/{role}", 0.0) + _as_float(adv) / accum
                            )
                            loss = loss + adv + self._category_terms(None, None, out.class_logits, sub_labels)
                    for reg in g_regs:
                        loss = loss + reg(aux)
                    self._check_finite(loss, "generator loss")
                    scaler.scale(loss / accum).backward()
                metrics["g_loss"] += _as_float(loss) / accum
        finally:
            for d in raw_discriminators:
                d.requires_grad_(True)
        scaler.step(self.opt_g)
        scaler.update()
        return metrics

    def _category_terms(
        self,
        real_class: torch.Tensor | None,
        real_labels: torch.Tensor | None,
        fake_class: torch.Tensor | None,
        fake_labels: torch.Tensor | None,
    ) -> torch.Tensor | float:
        """InfoGAN category CE on the fakes' drawn labels (and on real labels when the data has them)."""
        if self.category_weight == 0:
            return 0.0
        total: torch.Tensor | float = 0.0
        if fake_class is not None and fake_labels is not None:
            total = total + losses.category_loss(fake_class, fake_labels)
        if real_class is not None and real_labels is not None:
            total = total + losses.category_loss(real_class, real_labels)
        return self.category_weight * total

    # ------------------------------------------------------------------------------------------
    # pieces
    # ------------------------------------------------------------------------------------------
    def _generate(
        self, n: int, *, grad: bool = False, aux: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(fakes, their labels, auxiliary outputs, what the discriminators get with them (frame_times))."""
        latents = self.model.generator.sample_latents(n, generator=self.latent_generator, labels=None)
        latents = {
            k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in latents.items()
        }
        labels = latents.get("labels")
        if aux:
            video, extras = self.g_run(**latents, return_aux=True)
        else:
            video, extras = self.g_run(**latents), {}
        return video, labels, extras, frame_times.discriminator_inputs(latents)

    def _real_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        assert self._loader is not None
        batch = self._loader.next_batch(n)
        video = batch["video"].to(self.device, non_blocking=True)
        labels = batch.get("label")
        if not self.use_labels or labels is None:
            return video, None
        labels = torch.as_tensor(labels).long()
        if (labels < 0).any():
            self._drop_labels("the dataset has unlabelled clips")
            return video, None
        if (labels >= self.num_classes).any():
            self._drop_labels(
                f"dataset labels go up to {int(labels.max())}, beyond the model's "
                f"num_classes={self.num_classes}"
            )
            return video, None
        return video, labels.to(self.device, non_blocking=True)

    def _drop_labels(self, why: str) -> None:
        """From now on (for the rest of the run) real clips go to the discriminators without labels."""
        self.use_labels = False
        if self.is_main:
            warnings.warn(
                f"data: the model is conditional but {why}; real clips are shown to the discriminators "
                "without labels for the rest of the run",
                stacklevel=3,
            )

    def _check_shapes(self, real: torch.Tensor, fake: torch.Tensor, *, sparse: bool = False) -> None:
        if sparse:  # fakes rendered at chosen frame times: real clips may be longer (the D picks frames)
            mismatch = real.shape[1] != fake.shape[1] or real.shape[3:] != fake.shape[3:]
        else:
            mismatch = tuple(real.shape[1:]) != tuple(fake.shape[1:])
        if mismatch:
            raise ValueError(
                f"data: real clips have shape (C, T, H, W) = {tuple(real.shape[1:])} but the model generates "
                f"{tuple(fake.shape[1:])}; "
                "build the dataset with the model's channels, frames and resolution (or pass "
                "--resolution/--frames)"
            )
        self._shape_checked = True

    def _check_finite(self, loss: torch.Tensor, name: str) -> None:
        bad = not bool(torch.isfinite(loss.detach()).all())
        if distributed.all_reduce_any(bad, self.device):
            raise _Diverged(name, _as_float(loss) if bad else float("nan"))

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def _maybe_no_sync(self, module: nn.Module, *, last: bool) -> contextlib.AbstractContextManager[Any]:
        inner = getattr(module, "_orig_mod", module)  # torch.compile wrapper
        if not last and hasattr(inner, "no_sync"):
            return inner.no_sync()
        return contextlib.nullcontext()

    @torch.no_grad()
    def _broadcast_buffers(self, roles: list[str] | None = None) -> None:
        """Rank 0's BN statistics to every rank (as DDP does before each forward), so the
        ranks end every iteration, and the run, with identical state. ``roles`` limits it to
        those discriminators."""
        if roles is not None:
            modules = [self.model.discriminators[r] for r in roles]
        else:
            modules = [self.model.generator, *(self.model.discriminators[r] for r in self.roles)]
        for module in modules:
            for buffer in module.buffers():
                torch.distributed.broadcast(buffer, src=0)

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = float(self.recipe["ema"]["decay"])
        ema, gen = self.model.generator_ema, self.model.generator
        for p_ema, p in zip(ema.parameters(), gen.parameters()):
            p_ema.lerp_(p.detach(), 1.0 - decay)
        for b_ema, b in zip(ema.buffers(), gen.buffers()):
            b_ema.copy_(b)

    def _reseed(self, iteration: int) -> None:
        seed = derive_seed(self.config.seed, self.rank, iteration)
        # not torch.manual_seed: on a CPU-only run it queues a lazy CUDA seeding with a stack trace
        # every call, a few ms per iteration
        torch.default_generator.manual_seed(seed)
        if self.device.type == "cuda":
            torch.cuda.manual_seed_all(seed)
        random.seed(seed)
        try:
            import numpy as np

            np.random.seed(seed % (1 << 32))
        except ImportError:  # numpy is optional for training
            pass
        self.latent_generator.manual_seed(derive_seed(self.config.seed, self.rank, iteration, 1))

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"generator": self.opt_g, **{f"discriminator.{r}": o for r, o in self.opt_d.items()}}

    def _due(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned and self.is_main:
            self._warned.add(key)
            warnings.warn(message, stacklevel=3)

    def _make_loader(self) -> BatchLoader:
        plan = [
            self.batch_sizes[role]
            for _ in range(self.d_steps)
            for role in self.roles
            for _ in range(self.config.grad_accum)
        ]
        return BatchLoader(
            self.dataset,
            self.stream,
            plan=plan,
            num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda",
        )

    # ------------------------------------------------------------------------------------------
    # files
    # ------------------------------------------------------------------------------------------
    def _on_main(self, what: str, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on rank 0 only; if it fails there, every rank raises (none waits forever)."""
        error: BaseException | None = None
        if self.is_main:
            try:
                fn()
            except Exception as exc:
                error = exc
        if distributed.all_reduce_any(error is not None, self.device):
            if error is not None:
                raise error
            raise RuntimeError(f"{what} failed on rank 0; see its error")

    def _prepare_run_dir(self) -> None:
        if not self.config.resume and ckpt.list_checkpoints(self.checkpoint_dir):
            raise ValueError(
                f"out: {str(self.run_dir)!r} already holds checkpoints; pass --resume to continue it or "
                "choose another --out"
            )

        def write() -> None:
            for sub in ("checkpoints", "samples", "logs"):
                (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
            ckpt.remove_stale_temp_files(self.checkpoint_dir)
            info = {
                "model": getattr(self.model, "config", {}),
                "recipe": self.recipe,
                "train": self.config.to_dict(),
                "world_size": self.world_size,
                **self.run_info,
            }
            ckpt.atomic_write_bytes(
                self.run_dir / "config.json", (json.dumps(info, indent=2, default=str) + "\n").encode()
            )

        self._on_main("creating the run folder", write)

    def _resume_if_asked(self) -> None:
        resume = self.config.resume
        if not resume:
            return
        if isinstance(resume, (str, os.PathLike)) and not isinstance(resume, bool):
            path = Path(resume)
            tensors, state = ckpt.load_checkpoint(path)
        else:
            found = ckpt.latest_checkpoint(self.checkpoint_dir)
            if found is None:
                if self.is_main:
                    warnings.warn(
                        f"resume: no checkpoint in {str(self.checkpoint_dir)!r}; starting from scratch",
                        stacklevel=3,
                    )
                return
            path, tensors, state = found
        self.load_state(tensors, state, source=str(path))
        self.last_checkpoint = path
        if self.step > self.config.steps and self.is_main:
            warnings.warn(
                f"resume: {path} is already at iteration {self.step}, past steps={self.config.steps}; "
                "nothing is trained (give a larger --steps to continue)",
                stacklevel=3,
            )
        if self.is_main and self.config.progress:
            print(f"resumed from {path} at iteration {self.step}")

    def _save_checkpoint(self) -> None:
        path = ckpt.checkpoint_path(self.checkpoint_dir, self.step)

        def write() -> None:
            tensors, state = self.state_tensors_and_meta()
            ckpt.save_checkpoint(path, tensors, state)
            for _step, old in ckpt.list_checkpoints(self.checkpoint_dir)[: -self.config.keep_checkpoints]:
                old.unlink(missing_ok=True)

        self._on_main("saving a checkpoint", write)
        self.last_checkpoint = path

    def _prepare_metrics_log(self) -> None:
        """On resume, drop log lines from iterations after the checkpoint (they will be redone)."""
        path = self.run_dir / "logs" / METRICS_FILE
        if not path.exists():
            return
        kept = []
        for line in path.read_text().splitlines():
            try:
                if int(json.loads(line).get("step", 0)) <= self.step:
                    kept.append(line)
            except (json.JSONDecodeError, ValueError, AttributeError):
                continue  # a line cut short by a crash
        ckpt.atomic_write_bytes(path, ("\n".join(kept) + ("\n" if kept else "")).encode())

    def _append_metrics(self, record: Mapping[str, Any]) -> None:
        path = self.run_dir / "logs" / METRICS_FILE
        with open(path, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def _log(self, metrics: dict[str, float], progress: Any) -> None:
        self._append_metrics({"step": self.step, "time": time.time(), **metrics})
        if progress is not None:
            shown = {
                k.replace("d_loss/", "d_").replace("g_adv/", "ga_"): f"{v:.3g}"
                for k, v in metrics.items()
                if k != "steps_per_s"
            }
            progress.set_postfix(shown, refresh=False)
        if self.config.tensorboard:
            if self._tb_writer is None:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                except ImportError:  # TensorBoard is optional
                    self.config.tensorboard = False
                    return
                self._tb_writer = SummaryWriter(str(self.run_dir / "logs"))
            for key, value in metrics.items():
                if math.isfinite(value):
                    self._tb_writer.add_scalar(key, value, self.step)

    def _write_samples(self) -> None:
        if not self.is_main or self.config.num_samples == 0:
            return
        try:
            from ..videoio import save_video
        except ImportError:
            self._warn_once("io", "samples: vganzoo.videoio is not available; sample grids are not written")
            return
        sample = getattr(self.model, "sample", None)
        if sample is None:
            return
        path = self.run_dir / "samples" / f"step_{self.step:08d}.gif"
        try:
            videos = sample(self.config.num_samples, seed=self.config.sample_seed, device=self.device)
            save_video(videos.float().cpu(), path)
        except (OSError, ValueError, RuntimeError) as exc:  # a failed preview must not end the run
            warnings.warn(f"samples: could not write {path}: {exc}", stacklevel=2)

    def _export(self) -> Path | None:
        """Write the final model as a save_pretrained folder (rank 0)."""
        target = self.run_dir / "model"
        metadata: dict[str, Any] = {"steps": self.step, "seed": self.config.seed}
        if "data" in self.run_info:
            metadata["dataset"] = str(self.run_info["data"])
        if "command" in self.run_info:
            metadata["training_command"] = str(self.run_info["command"])
        self._on_main("exporting the model", lambda: export_model(self.model, target, metadata=metadata))
        return target

    def _install_signal_handlers(self) -> Callable[[], None]:
        """SIGINT/SIGTERM end the run at the next iteration boundary with a checkpoint."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous: dict[int, Any] = {}

        def handler(signum: int, frame: Any) -> None:
            if self._stop_requested:  # a second signal: stop now
                signal.signal(signum, previous.get(signum, signal.SIG_DFL))
                raise KeyboardInterrupt
            self._stop_requested = True
            if self.is_main:
                print(
                    "\nstopping after this iteration (a checkpoint will be written); press again to abort",
                    flush=True,
                )

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, OSError):
                previous[sig] = signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                with contextlib.suppress(ValueError, OSError):
                    signal.signal(sig, old)

        return restore
