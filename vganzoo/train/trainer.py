"""The adversarial training loop, driven by the model's recipe.

One iteration follows the recipe's ``loop`` (:mod:`vganzoo.train.loops`): by default ``d_steps``
rounds of discriminator updates (every role in turn, each on its own real batch of its own size and
freshly generated fakes), then one generator update against every discriminator; TGAN's and VGAN's
original loops share one forward pass between both updates. Per-family extras come from the
recipe: regularisers on the D loss (WGAN-GP, R1), singular value clipping after D updates, the
mask L1 on the generator, the InfoGAN category loss whenever a discriminator returns
``class_logits``, and an EMA of the generator.

Determinism: iteration ``i`` on rank ``r`` reseeds torch, Python, NumPy and the latent generator
from ``(seed, r, i)``, and the data order depends only on ``(seed, epoch)``; a checkpoint therefore
needs only the weights, optimiser states and data position to continue exactly (the RNG states
are stored as well).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import losses
from ..errors import InvalidConfigError, VganzooError
from ..nn.graphs import require_cuda
from . import checkpoint as ckpt
from . import distributed, frame_times, loops
from .batches import BatchLoader, IndexStream
from .config import TrainConfig, resolve_recipe
from .export import run_card_fields
from .optim import build_optimizers, mixed_precision, update_ema
from .rundir import RateWindow, RunFolder, install_stop_signals
from .state import capture_state, reseed, restore_state

__all__ = ["TrainResult", "Trainer", "TrainingDiverged"]

logger = logging.getLogger(__name__)

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
        start_step: the iteration the run started from (a resumed run's; 0 for a new one), so
            ``step - start_step`` iterations ran in this call.
        steps: the iterations the run was to reach (its ``TrainConfig.steps``).
    """

    step: int
    status: str
    run_dir: Path
    checkpoint: Path | None
    export_dir: Path | None
    metrics: dict[str, float]
    start_step: int = 0
    steps: int | None = None


def _check_model_and_dataset(model: nn.Module, dataset: Any) -> int:
    """The dataset's length; a model without discriminators or a dataset without one is refused."""
    if not len(getattr(model, "discriminators", ())):
        raise ValueError(
            "model: training needs discriminators; this model has none (was only its generator loaded?)"
        )
    try:
        return len(dataset)
    except TypeError:
        raise TypeError("dataset: must be a map-style dataset with __len__ and __getitem__") from None


def _as_float(x: torch.Tensor | float) -> float:
    return float(x.detach().float().item()) if isinstance(x, torch.Tensor) else float(x)


def check_cuda_graphs(device: str | None) -> None:
    """``cuda_graphs``' refusals, said before anything starts: CUDA only (``device`` None: CUDA when
    available), one process (under torchrun, or in a process group already started)."""
    processes = distributed.world_size() if distributed.is_distributed() else None
    if processes is None and distributed.launched_by_torchrun():
        processes = int(os.environ["WORLD_SIZE"])
    if processes is not None and processes > 1:
        raise ValueError(
            "cuda_graphs: CUDA graphs are for one process for now (not measured under "
            f"DistributedDataParallel); this run has WORLD_SIZE={processes}"
        )
    default = "cuda" if torch.cuda.is_available() else "cpu"
    require_cuda(device if device is not None else default, "cuda_graphs")


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
    rank reads its own shard, and only rank 0 writes files (see :mod:`vganzoo.train.rundir`).
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
        length = _check_model_and_dataset(model, dataset)
        if self.config.cuda_graphs:  # before a process group waits for its peers
            check_cuda_graphs(self.config.device)
        self.device = distributed.init_from_env(self.config.device)
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        self.is_main = self.rank == 0

        self.roles = list(model.discriminators.keys())
        self._read_recipe()
        if self.recipe["ema"] is not None:
            model.add_ema()
        model.to(self.device)
        self._decide_labels()
        self.opt_g, self.opt_d = build_optimizers(model, self.recipe["optimizers"], self.roles)
        self.amp_dtype, self.scalers = mixed_precision(self.config.amp, self.device, list(self.optimizers()))
        self._wrap_modules()

        self.latent_generator = torch.Generator(device="cpu")
        self.stream = IndexStream(length, seed=self.config.seed, rank=self.rank, world_size=self.world_size)
        self.step = 0
        self.run = RunFolder(self.config, self.device)
        self.run_dir = self.run.path
        self.checkpoint_dir = self.run.checkpoint_dir
        self.last_checkpoint: Path | None = None
        self.last_metrics: dict[str, float] = {}
        self._stop_requested = False
        self._shape_checked = False
        self._loader: BatchLoader | None = None

    # ------------------------------------------------------------------------------------------
    # set-up (called once from __init__)
    # ------------------------------------------------------------------------------------------
    def _read_recipe(self) -> None:
        """The losses, regularisers, batch sizes and D steps of the model's recipe."""
        self.recipe = resolve_recipe(self.model.recipe, roles=self.roles)
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

    def _decide_labels(self) -> None:
        """Whether real clips go to the discriminators with their labels: decided once for the run (from
        the dataset's num_classes when it has one, else at the first batch that cannot be used), so
        that conditioning never changes from batch to batch."""
        self.num_classes = int(getattr(self.model, "num_classes", 0) or 0)
        self.use_labels = self.num_classes > 0
        data_classes = getattr(self.dataset, "num_classes", None)
        if not self.use_labels or not isinstance(data_classes, int) or isinstance(data_classes, bool):
            return
        if data_classes == 0:
            self._drop_labels("the dataset has no labels")
        elif data_classes > self.num_classes:
            self._drop_labels(
                f"the dataset has {data_classes} classes, more than the model's "
                f"num_classes={self.num_classes}",
                fix=f"pass --num-classes {data_classes} (num_classes={data_classes}) to condition on them",
            )

    def _wrap_modules(self) -> None:
        """The modules used for the forward passes: DDP and/or torch.compile around the raw ones."""
        unused = self.config.find_unused_parameters

        def compiled(module: nn.Module) -> nn.Module:
            if self.config.cuda_graphs:  # cudagraph trees: forward and backward recorded, then replayed
                if self.config.compile:
                    return torch.compile(module, mode="reduce-overhead")
                return torch.compile(module, backend="cudagraphs")
            return torch.compile(module) if self.config.compile else module

        def wrap(module: nn.Module) -> nn.Module:
            return distributed.wrap(module, self.device, find_unused_parameters=unused)

        self.g_run = compiled(wrap(self.model.generator))
        # The uncompiled (DDP-wrapped) discriminators serve R1 and the gradient penalty: they
        # differentiate the discriminator twice, which torch.compile (so --cuda-graphs) cannot.
        self.d_eager = {role: wrap(self.model.discriminators[role]) for role in self.roles}
        self.d_run = {role: compiled(module) for role, module in self.d_eager.items()}

    # ------------------------------------------------------------------------------------------
    # public helpers
    # ------------------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """End the run after the current iteration (a checkpoint is written first)."""
        self._stop_requested = True

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser by its checkpoint name: ``generator``, ``discriminator.<role>``."""
        return {"generator": self.opt_g, **{f"discriminator.{r}": o for r, o in self.opt_d.items()}}

    def state_tensors_and_meta(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Everything a checkpoint holds: (tensors, JSON-able state); see :mod:`vganzoo.train.state`."""
        return capture_state(self)

    def load_state(
        self, tensors: Mapping[str, torch.Tensor], state: Mapping[str, Any], *, source: str = "checkpoint"
    ) -> None:
        """Restore what :meth:`state_tensors_and_meta` produced."""
        restore_state(self, tensors, state, source=source)

    # ------------------------------------------------------------------------------------------
    # the run
    # ------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train until ``config.steps`` iterations (resuming first when asked); see :class:`TrainResult`."""
        export_dir = None
        self._fit_start = _clock()  # max_time counts from here (setup and resume included)
        restore_signals = install_stop_signals(
            lambda: self._stop_requested, self.request_stop, announce=self.is_main
        )
        progress = None
        start_step = 0
        try:
            self._start_run()
            start_step = self.step
            progress = self._open_progress_bar()
            status = self._train_loop(progress)
            if status == "completed":
                if not self._due(self.config.sample_every):
                    self._write_samples()
                export_dir = self._export()
        except _Diverged as exc:
            raise self._diverged(exc) from None
        finally:
            restore_signals()
            if progress is not None:
                progress.close()
            if self._loader is not None:
                self._loader.close()
            self.run.close()
        distributed.barrier()
        return TrainResult(
            self.step,
            status,
            self.run_dir,
            self.last_checkpoint,
            export_dir,
            dict(self.last_metrics),
            start_step,
            self.config.steps,
        )

    def _start_run(self) -> None:
        """The resumed state (when asked), the data loader, then the run folder: what can fail before
        the run starts fails before anything is written."""
        self._resume_if_asked()
        self._loader = self._make_loader()
        self.run.prepare(
            {
                "model": getattr(self.model, "config", {}),
                "recipe": self.recipe,
                "train": self.config.to_dict(),
                "world_size": self.world_size,
                **self.run_info,
            }
        )
        if self.is_main:
            self.run.trim_metrics_log(self.step)

    def _open_progress_bar(self) -> Any:
        if not (self.is_main and self.config.progress):
            return None
        from tqdm.auto import tqdm

        return tqdm(
            total=self.config.steps, initial=self.step, unit="it", dynamic_ncols=True, desc=self.run_dir.name
        )

    def _train_loop(self, progress: Any) -> str:
        """Iterate until ``config.steps``, a stop request or ``max_time``; the last state is always
        checkpointed. Returns the status ("completed", "interrupted" or "time_limit")."""
        status = "completed"
        last_checkpoint_step = self.step if self.last_checkpoint is not None else -1
        window = RateWindow()
        deadline = None if self.config.max_time is None else self._fit_start + self.config.max_time
        while self.step < self.config.steps:
            metrics = self._iteration(self.step)
            self.step += 1
            window.steps += 1
            if progress is not None:
                progress.update(1)
            for callback in self.callbacks:
                callback(self, metrics)
            if self._due(self.config.log_every) or self.step == self.config.steps:
                self._log(metrics, window, progress)
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
        return status

    def _diverged(self, exc: _Diverged) -> TrainingDiverged:
        """Record the divergence in the metrics log; the error to raise says what to do."""
        where = str(self.last_checkpoint) if self.last_checkpoint else "none (no checkpoint was written yet)"
        if self.is_main:
            self.run.append_metrics(
                {"step": self.step, "event": "diverged", "loss": exc.name, "value": str(exc.value)}
            )
        return TrainingDiverged(
            f"training diverged at iteration {self.step + 1}: {exc.name} is {exc.value}. "
            f"Stopped without saving; the last good checkpoint is {where}. "
            "Lower the learning rate or add a regulariser (--set ...) and --resume."
        )

    # ------------------------------------------------------------------------------------------
    # one iteration
    # ------------------------------------------------------------------------------------------
    def _iteration(self, iteration: int) -> dict[str, float]:
        if self.config.cuda_graphs:  # outputs of the last iteration's replays may be overwritten now
            torch.compiler.cudagraph_mark_step_begin()
        reseed(self.config.seed, self.rank, iteration, self.latent_generator, self.device)
        metrics = loops.run_updates(self, iteration)  # the recipe's loop: order of updates, fake batches
        if distributed.is_distributed():  # the ranks end every iteration, and the run, with identical state
            distributed.broadcast_buffers([self.model.generator, *self.model.discriminators.values()])
        if self.model.generator_ema is not None:
            update_ema(self.model.generator_ema, self.model.generator, float(self.recipe["ema"]["decay"]))
        return metrics

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

    def _drop_labels(self, why: str, fix: str = "") -> None:
        """From now on (for the rest of the run) real clips go to the discriminators without labels;
        the warning is one sentence: ``why``, what follows, then ``fix`` when there is one."""
        self.use_labels = False
        if self.is_main:
            warnings.warn(
                f"data: {why}, so the conditional model's discriminators see real clips without labels "
                "for the rest of the run" + (f"; {fix}" if fix else ""),
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

    def _due(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    def _make_loader(self) -> BatchLoader:
        if self.recipe["loop"] == "alternate":  # real batches in the order the loop draws them
            plan = [
                self.batch_sizes[role]
                for _ in range(self.d_steps)
                for role in self.roles
                for _ in range(self.config.grad_accum)
            ]
        else:  # one shared forward pass per micro-batch: every role's real batch each time
            plan = [self.batch_sizes[role] for _ in range(self.config.grad_accum) for role in self.roles]
        return BatchLoader(
            self.dataset,
            self.stream,
            plan=plan,
            num_workers=self.config.num_workers,
            pin_memory=self.device.type == "cuda",
        )

    # ------------------------------------------------------------------------------------------
    # checkpoints and the run folder
    # ------------------------------------------------------------------------------------------
    def _resume_if_asked(self) -> None:
        if not self.config.resume:
            return
        found = ckpt.resume_checkpoint(self.config.resume, self.checkpoint_dir)
        if found is None:
            if self.is_main:
                warnings.warn(
                    f"resume: no checkpoint in {str(self.checkpoint_dir)!r}; starting from scratch",
                    stacklevel=3,
                )
            return
        path, tensors, meta = found
        self.load_state(tensors, meta, source=str(path))
        self.last_checkpoint = path
        if self.step > self.config.steps:  # before the run folder is touched
            raise ValueError(
                f"steps: {path} is already at iteration {self.step}, past steps={self.config.steps}; give "
                f"--steps {self.step} or more to continue (or leave it out: the run keeps its total)"
            )
        if self.is_main:
            logger.info("resumed from %s at iteration %d of %d", path, self.step, self.config.steps)

    def _save_checkpoint(self) -> None:
        """Write a checkpoint of the current state (rank 0) and drop the oldest beyond
        ``keep_checkpoints``. Every rank calls this."""
        path = ckpt.checkpoint_path(self.checkpoint_dir, self.step)

        def write() -> None:
            tensors, meta = self.state_tensors_and_meta()
            ckpt.save_checkpoint(path, tensors, meta)
            for _step, old in ckpt.list_checkpoints(self.checkpoint_dir)[: -self.config.keep_checkpoints]:
                old.unlink(missing_ok=True)

        distributed.run_on_main("saving a checkpoint", write, self.device)
        self.last_checkpoint = path

    def _log(self, metrics: dict[str, float], window: RateWindow, progress: Any) -> None:
        """Average ``metrics`` over the ranks, add the rate, and log them (rank 0)."""
        rate = window.rate()
        metrics = distributed.all_reduce_mean(metrics, self.device)
        metrics["steps_per_s"] = rate
        self.last_metrics = metrics
        if self.is_main:
            self.run.log(self.step, metrics, progress)
        window.restart()

    def _write_samples(self) -> None:
        if self.is_main:
            self.run.write_samples(self.model, self.step)

    def _export(self) -> Path:
        """The final model as a save_pretrained folder, with what the model card records."""
        metadata: dict[str, Any] = {"steps": self.step, "seed": self.config.seed}
        metadata.update(run_card_fields(self.run_info))
        return self.run.export(self.model, metadata)
