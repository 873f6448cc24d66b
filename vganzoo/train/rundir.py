"""The run folder a :class:`~vganzoo.train.Trainer` writes, the rate it logs, the signals that stop a run.

    <out_dir>/
        config.json              the model config, recipe, TrainConfig, world size and run info
        checkpoints/             ckpt-NNNNNNNN.safetensors (see vganzoo.train.checkpoint)
        logs/metrics.jsonl       one JSON line per logged iteration (+ TensorBoard event files)
        samples/step_NNNNNNNN.gif  sample grids during training
        model/                   the final save_pretrained export

Only rank 0 writes; the methods that must run on every rank (because a failure on rank 0 has to
stop them all) say so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..files import atomic_write_bytes, loads_json, remove_stale_temp_files
from . import checkpoint as ckpt
from . import distributed
from .config import TrainConfig
from .export import export_model

__all__ = ["METRICS_FILE", "RateWindow", "RunFolder", "install_stop_signals"]

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
SUBFOLDERS = ("checkpoints", "samples", "logs")


class RunFolder:
    """``config.out_dir`` on disk: config, metrics log, TensorBoard, sample grids and the final export.

    Args:
        config: the run's settings (``out_dir``, ``resume``, ``tensorboard``, ``num_samples``,
            ``sample_seed``); ``config.tensorboard`` is turned off when TensorBoard is not installed.
        device: this rank's device (for the collective that reports a failure on rank 0).
    """

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        self.config = config
        self.device = device
        self.path = Path(config.out_dir)
        self.checkpoint_dir = self.path / "checkpoints"
        self.metrics_path = self.path / "logs" / METRICS_FILE
        self._tb_writer: Any = None

    # -- every rank ------------------------------------------------------------------------------
    def prepare(self, info: Mapping[str, Any]) -> None:
        """Create the folders and write ``config.json`` (``info``). A folder that already holds
        checkpoints is refused unless the run resumes. Every rank calls this."""
        if not self.config.resume and ckpt.list_checkpoints(self.checkpoint_dir):
            raise ValueError(
                f"out: {str(self.path)!r} already holds checkpoints; continue it with --resume (resume=True) "
                "or choose another --out"
            )

        def write() -> None:
            for sub in SUBFOLDERS:
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            for folder in (self.path, *(self.path / sub for sub in SUBFOLDERS)):  # killed writes, exports
                remove_stale_temp_files(folder)
            text = json.dumps(dict(info), indent=2, default=str) + "\n"
            atomic_write_bytes(self.path / "config.json", text.encode())

        distributed.run_on_main("creating the run folder", write, self.device)

    def export(self, model: nn.Module, metadata: Mapping[str, Any]) -> Path:
        """Write the final model as a save_pretrained folder ``model/`` (rank 0). Every rank calls this."""
        target = self.path / "model"
        distributed.run_on_main(
            "exporting the model", lambda: export_model(model, target, metadata=metadata), self.device
        )
        return target

    # -- rank 0 ----------------------------------------------------------------------------------
    def trim_metrics_log(self, step: int) -> None:
        """On resume, drop log lines from iterations after ``step`` (they will be redone)."""
        if not self.metrics_path.exists():
            return
        kept = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                if int(loads_json(line, "metrics log").get("step", 0)) <= step:
                    kept.append(line)
            except (ValueError, AttributeError, TypeError):
                continue  # a line cut short by a crash
        atomic_write_bytes(self.metrics_path, ("\n".join(kept) + ("\n" if kept else "")).encode())

    def append_metrics(self, record: Mapping[str, Any]) -> None:
        with open(self.metrics_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def log(self, step: int, metrics: Mapping[str, float], progress: Any) -> None:
        """One logged iteration: the metrics log, the progress bar's postfix and TensorBoard."""
        self.append_metrics({"step": step, "time": time.time(), **metrics})
        if progress is not None:
            shown = {
                k.replace("d_loss/", "d_").replace("g_adv/", "ga_"): f"{v:.3g}"
                for k, v in metrics.items()
                if k != "steps_per_s"
            }
            progress.set_postfix(shown, refresh=False)
        writer = self._tensorboard()
        if writer is not None:
            for key, value in metrics.items():
                if math.isfinite(value):
                    writer.add_scalar(key, value, step)

    def _tensorboard(self) -> Any:
        """The TensorBoard writer, opened on first use; None when off or not installed."""
        if self.config.tensorboard and self._tb_writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # TensorBoard is optional
                self.config.tensorboard = False
                return None
            self._tb_writer = SummaryWriter(str(self.path / "logs"))
        return self._tb_writer if self.config.tensorboard else None

    def write_samples(self, model: nn.Module, step: int) -> None:
        """A grid of ``config.num_samples`` videos at ``samples/step_NNNNNNNN.gif`` (a failure only warns)."""
        sample = getattr(model, "sample", None)
        if self.config.num_samples == 0 or sample is None:
            return
        from ..videoio import save_video  # looked up when used: tests put a recorder in its place

        path = self.path / "samples" / f"step_{step:08d}.gif"
        try:
            videos = sample(self.config.num_samples, seed=self.config.sample_seed, device=self.device)
            save_video(videos.float().cpu(), path)
        except (OSError, ValueError, RuntimeError) as exc:  # a failed preview must not end the run
            warnings.warn(f"samples: could not write {path}: {exc}", stacklevel=2)

    def close(self) -> None:
        if self._tb_writer is not None:
            self._tb_writer.close()
            self._tb_writer = None


class RateWindow:
    """Iterations per second over the iterations since the last logged one (the logged ``steps_per_s``):
    count them in ``steps``, read :meth:`rate` when logging, then :meth:`restart`."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.start, self.steps = time.perf_counter(), 0

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.start
        return self.steps / elapsed if elapsed > 0 else float("nan")


def install_stop_signals(
    stopping: Callable[[], bool], request_stop: Callable[[], None], *, announce: bool
) -> Callable[[], None]:
    """SIGINT/SIGTERM call ``request_stop`` (the run ends at the next iteration boundary with a
    checkpoint); a second one while ``stopping()`` aborts at once. ``announce`` logs what happens.
    Returns the function that restores the previous handlers (a no-op outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        if stopping():  # a second signal: stop now
            signal.signal(signum, previous.get(signum, signal.SIG_DFL))
            raise KeyboardInterrupt
        request_stop()
        if announce:
            logger.info("stopping after this iteration (a checkpoint will be written); press again to abort")

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, OSError):
            previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, old)

    return restore
