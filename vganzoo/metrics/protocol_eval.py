"""``evaluate_protocol``: score a model under a named, pinned protocol (:mod:`vganzoo.metrics.protocols`).

    >>> from vganzoo.metrics import evaluate_protocol
    >>> result = evaluate_protocol(model, "data/ucf101", "stylegan-v-fvd16",
    ...                            detector="i3d_torchscript.pt", device="cuda", progress=True)
    >>> result["scores"]["fvd"], result["protocol"]["detector"]["sha256"]

The result records everything the number depends on: the protocol's definition and arithmetic, the
detector file's sha256, the data folder's fingerprint and the clips drawn, every seed, the counts
(and whether they are the published ones), the versions and the device.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import nn

from . import protocol_math as pm
from .detectors import Detector, as_numpy_features, load_detector
from .preprocess import check_videos, select_frames
from .protocols import DEFINITIONS, RUN_SEED_STRIDE, Protocol, get_protocol
from .realcache import RealCache
from .realclips import ClipDraw, RealListing, list_real_videos, read_clip, sample_clips

__all__ = ["DEFAULT_SPLIT", "evaluate_from_arguments", "evaluate_protocol"]

logger = logging.getLogger("vganzoo.metrics")
DEFAULT_SPLIT = "protocol"  # split=DEFAULT_SPLIT: the split the protocol's original code reads
DEFAULT_BATCH = 16


@dataclasses.dataclass
class _Plan:
    protocol: Protocol
    n_generated: int
    n_real: int
    num_runs: int
    seed: int
    batch_size: int
    device: torch.device
    split: str | None
    workers: int

    @property
    def published_counts(self) -> bool:
        p = self.protocol
        return (self.n_generated, self.n_real, self.num_runs) == (p.n_generated, p.n_real, p.num_runs)

    def run_seed(self, run: int) -> int:
        return self.seed + run * RUN_SEED_STRIDE

    def real_seed(self, run: int) -> int:
        """StyleGAN-V reuses one (cached) real draw in every run; VideoGPT draws new real clips per trial."""
        return self.run_seed(run) if self.protocol.real_per_run else self.seed


def _positive(name: str, value: Any, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _plan(protocol, n_generated, n_real, num_runs, seed, batch_size, device, split, workers) -> _Plan:
    proto = get_protocol(protocol)
    minimum = 2 if proto.metric == "fvd" else max(proto.splits, 1)
    n_generated = _positive("n_generated", proto.n_generated if n_generated is None else n_generated, minimum)
    if proto.uses_real_data:
        n_real = _positive("n_real", proto.n_real if n_real is None else n_real, 2)
    elif n_real not in (None, 0):
        raise ValueError(f"n_real: {proto.name} uses no real data, got n_real={n_real!r}")
    else:
        n_real = 0
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return _Plan(
        protocol=proto,
        n_generated=n_generated,
        n_real=n_real,
        num_runs=_positive("num_runs", proto.num_runs if num_runs is None else num_runs),
        seed=seed,
        batch_size=_positive("batch_size", batch_size),
        device=torch.device(device),
        split=proto.real_split if split == DEFAULT_SPLIT else split,
        workers=_positive("workers", workers if workers is not None else min(8, os.cpu_count() or 1)),
    )


class _Progress:
    """A tqdm bar over clips (stderr) that also prints the time estimate; silent when disabled."""

    def __init__(self, total: int, enabled: bool, name: str) -> None:
        self.bar = None
        self.start = time.perf_counter()
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="clip", desc=name, dynamic_ncols=True, file=sys.stderr)
        self.total, self.done, self.estimated = total, 0, False

    def update(self, count: int, stage: str) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.set_postfix_str(stage, refresh=False)
            self.bar.update(count)

    def estimate(self, clips: int, seconds: float, device: torch.device) -> None:
        """Once, after the first batch: the whole evaluation's time at that batch's rate."""
        if self.estimated or clips <= 0:
            return
        self.estimated = True
        total = seconds / clips * self.total
        when = (
            f"{total:.0f} s"
            if total < 120
            else f"{total / 60:.1f} min"
            if total < 7200
            else f"{total / 3600:.1f} h"
        )
        self.note(
            f"estimated time: {when} for {self.total} clips on {device} (the first {clips} took "
            f"{seconds / clips:.3f} s/clip; reading real frames may add to it)"
        )

    def skip(self, count: int) -> None:
        """Clips that will not be processed after all (found in a cache)."""
        self.total -= count
        if self.bar is not None and count:
            self.bar.total = self.total
            self.bar.refresh()

    def note(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            logger.info(message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------- clips -> detector input


def _generated_input(proto: Protocol, videos: torch.Tensor) -> torch.Tensor:
    """Generated float clips -> the protocol's detector input (frames 0, s, 2s, ... first)."""
    clips = select_frames(check_videos(videos, "generated videos"), proto.frames, proto.subsample)
    if proto.pipeline == "stylegan-v":
        return pm.gray_to_rgb_uint8(pm.quantise_stylegan_v(clips))
    if proto.pipeline == "videogpt":
        return pm.videogpt_input(pm.quantise_videogpt(clips))
    if proto.pipeline == "tats":
        return pm.tats_input(pm.quantise_videogpt(clips))
    return clips.float()  # tgan2: float32 clips; the detector wrapper applies tgan2's preprocessing


def _real_input(proto: Protocol, clips: list[torch.Tensor], resolution: int) -> torch.Tensor:
    """Real uint8 clips ``(C, T, H, W)`` -> the protocol's detector input."""
    if proto.pipeline == "stylegan-v":
        shapes = {tuple(c.shape) for c in clips}
        if len(shapes) != 1:
            raise ValueError(
                f"real frames differ in size or channels {sorted(shapes)}; StyleGAN-V's datasets hold "
                "frames of one size (resize the folder once, as its preprocessing scripts do)"
            )
        return pm.gray_to_rgb_uint8(torch.stack(clips))
    batch = torch.stack([pm.videogpt_real_uint8(c, resolution) for c in clips])
    return pm.videogpt_input(batch) if proto.pipeline == "videogpt" else pm.tats_input(batch)


def _frames_error(proto: Protocol, have: int) -> ValueError:
    need = (proto.frames - 1) * proto.subsample + 1
    return ValueError(
        f"{proto.name} needs generated clips of at least {need} frames (every {proto.subsample} from "
        f"frame 0), but the model makes {have}; a family that generates any length takes frames={need} "
        "(--config frames=... with --random-weights), or use a model trained for it"
    )


# ---------------------------------------------------------------- generated and real features


def _generated_batches(model: Any, plan: _Plan, run: int) -> Iterator[torch.Tensor]:
    n, size = plan.n_generated, plan.batch_size
    if isinstance(model, torch.Tensor):
        first = run * n
        if model.shape[0] < first + n:
            raise ValueError(
                f"{plan.num_runs} runs of {n} need {plan.num_runs * n} generated videos, got {model.shape[0]}"
            )
        for start in range(first, first + n, size):
            yield model[start : min(start + size, first + n)].to(plan.device)
        return
    for index, start in enumerate(range(0, n, size)):
        yield model.sample(min(size, n - start), seed=plan.run_seed(run) + index, device=plan.device)


def _generated_features(
    model: Any, plan: _Plan, run: int, detector: Detector, bar: _Progress, info: dict[str, Any]
) -> np.ndarray:
    features = []
    for videos in _generated_batches(model, plan, run):
        began = time.perf_counter()
        if "shape" not in info:
            info["shape"] = list(videos.shape[1:])
            if videos.shape[2] < (plan.protocol.frames - 1) * plan.protocol.subsample + 1:
                raise _frames_error(plan.protocol, int(videos.shape[2]))
        features.append(detector(_generated_input(plan.protocol, videos)))
        bar.update(videos.shape[0], f"run {run + 1}/{plan.num_runs} generated")
        bar.estimate(videos.shape[0], time.perf_counter() - began, plan.device)
    return as_numpy_features(features)


def _real_features(
    plan: _Plan, draw: ClipDraw, detector: Detector, resolution: int, pool: ThreadPoolExecutor, bar: _Progress
) -> np.ndarray:
    proto, features = plan.protocol, []
    read = lambda pair: read_clip(pair[0], pair[1], draw.frames, draw.stride)
    for start in range(0, len(draw.clips), plan.batch_size):
        pairs = draw.clips[start : start + plan.batch_size]
        clips = list(pool.map(read, pairs))
        batch = _real_input(proto, clips, resolution).to(plan.device)
        features.append(detector(batch))
        bar.update(len(pairs), "real")
    return as_numpy_features(features)


def _score(plan: _Plan, generated: np.ndarray, real: np.ndarray | None) -> dict[str, float]:
    kind = plan.protocol.score
    if kind == "stylegan-v-frechet":
        return {"fvd": pm.frechet_stylegan_v(generated, real)}
    if kind == "tf-gan-frechet":
        return {"fvd": pm.frechet_tf_gan(generated, real)}
    if kind == "stylegan-v-is":
        mean, std = pm.inception_score_stylegan_v(generated, plan.n_generated, plan.protocol.splits)
    else:
        mean, std = pm.inception_score_tgan2(generated.astype(np.float64), plan.protocol.splits)
    return {"is_mean": mean, "is_std": std}


def _aggregate(plan: _Plan, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean over runs and the population std (np.std, as StyleGAN-V's calc_metric, VideoGPT, DIGAN
    and tgan2 report); for one IS run, the std over its splits."""
    if plan.protocol.metric == "fvd":
        values = [r["fvd"] for r in runs]
        return {"fvd": float(np.mean(values)), "fvd_std": float(np.std(values)), "num_runs": len(runs)}
    means = [r["is_mean"] for r in runs]
    if len(runs) == 1:
        return {"is_mean": means[0], "is_std": runs[0]["is_std"], "is_std_over": "splits", "num_runs": 1}
    return {
        "is_mean": float(np.mean(means)),
        "is_std": float(np.std(means)),
        "is_std_over": "runs",
        "num_runs": len(runs),
    }


# ---------------------------------------------------------------- the entry point


def evaluate_protocol(
    model: Any,
    data: Any = None,
    protocol: str | Protocol = "stylegan-v-fvd16",
    *,
    detector: Any = None,
    num_runs: int | None = None,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH,
    device: torch.device | str = "cpu",
    split: str | None = DEFAULT_SPLIT,
    n_generated: int | None = None,
    n_real: int | None = None,
    real_cache: Any = None,
    workers: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score ``model`` under ``protocol``; returns ``{"scores", "runs", "real_scores", "protocol"}``.

    Args:
        model: a VideoGAN (``sample(n, seed=, device=)``) or generated videos ``(N, C, T, H, W)`` in
            [-1, 1] (``num_runs * n_generated`` of them; run r takes the r-th block).
        data: the real videos' folder (FVD protocols; see :mod:`vganzoo.metrics.realclips` for layouts).
        protocol: a name from :data:`vganzoo.metrics.protocols.PROTOCOLS`.
        detector: the protocol's detector file (path or ``hf-hub:org/repo/file@commit``); its sha256 is
            recorded. See ``DETECTORS[protocol.detector].obtain``.
        num_runs: independent draws (default: the protocol's); mean and population std are reported.
        seed: run r draws generated batch i with ``seed + r * 1_000_000 + i`` and real clips with
            ``numpy.random.default_rng([real_seed, 1])`` (real_seed: ``seed``, or the run's seed for
            protocols that draw new real clips per run).
        batch_size: clips per generator and detector call (generated clips depend on it, like the seed).
        device: where the generator and the detector run (``"cuda"`` batches on the GPU).
        split: the data folder's split (default: the one the original code reads; None: the folder
            itself; ``"train+test"``: both).
        n_generated, n_real: override the protocol's counts (recorded; the result then says it is not
            the published protocol). For tests and quick looks.
        real_cache: None (automatic cache under ``$VGANZOO_CACHE``), ``"off"``, or a ``.safetensors``
            file: reused when it matches the protocol, detector, data files, split and counts, an error
            when it does not.
        workers: threads reading real frames.
        progress: a progress bar (and the time estimate) on stderr.
    """
    plan = _plan(protocol, n_generated, n_real, num_runs, seed, batch_size, device, split, workers)
    proto = plan.protocol
    listing = draws = None
    if proto.uses_real_data:
        if data is None:
            raise ValueError(f"{proto.name} needs data: the folder of real videos")
        listing = list_real_videos(data, plan.split)
        draws = {
            s: _draw(plan, listing, s) for s in dict.fromkeys(plan.real_seed(r) for r in range(plan.num_runs))
        }
    elif data is not None:
        raise ValueError(f"data: {proto.name} scores generated clips only; give no real data")
    if not isinstance(model, torch.Tensor) and not hasattr(model, "sample"):
        raise TypeError(
            f"model must be a VideoGAN (with .sample) or a tensor of videos, got {type(model).__name__}"
        )
    det = load_detector(proto, detector, plan.device)
    if isinstance(model, nn.Module):
        model.to(plan.device)
    began = time.perf_counter()
    result = _run_all(model, plan, det, listing, draws or {}, real_cache, progress)
    result["protocol"]["timing"] = {"seconds": round(time.perf_counter() - began, 3)}
    return result


def _draw(plan: _Plan, listing: RealListing, real_seed: int) -> ClipDraw:
    p = plan.protocol
    return sample_clips(
        listing,
        mode=p.real_clips,
        frames=p.frames,
        subsample=p.subsample,
        n=plan.n_real,
        seed=real_seed,
        protocol=p.name,
    )


def _run_all(
    model: Any,
    plan: _Plan,
    det: Detector,
    listing: RealListing | None,
    draws: dict[int, ClipDraw],
    real_cache: Any,
    progress: bool,
) -> dict[str, Any]:
    proto = plan.protocol
    total = plan.n_generated * plan.num_runs + plan.n_real * len(draws)
    bar = _Progress(total, progress, f"vganzoo {proto.name}")
    real_part = f" + {plan.n_real} real x {len(draws)} draw(s)" if draws else ""
    bar.note(
        f"{proto.name}: {plan.n_generated} generated clips x {plan.num_runs} run(s){real_part}, "
        f"{proto.frames} frames every {proto.subsample}, on {plan.device}; detector sha256 "
        f"{det.sha256[:16]}..."
    )
    info: dict[str, Any] = {}
    cache: RealCache | None = None
    runs: list[dict[str, Any]] = []
    try:
        with ThreadPoolExecutor(max_workers=plan.workers) as pool:
            for run in range(plan.num_runs):
                generated = _generated_features(model, plan, run, det, bar, info)
                real = None
                if listing is not None:
                    resolution = info["shape"][-2]  # VideoGPT resizes real clips to the model's size first
                    if cache is None:  # so the cache identity waits for the first generated batch
                        cache = RealCache(real_cache, _cache_identity(plan, det, listing, resolution))
                        cache.load()
                        bar.skip(plan.n_real * sum(1 for s in draws if s in cache.features))
                    real = _real_for_run(plan, run, det, draws, cache, resolution, pool, bar)
                runs.append({"run": run, "seed": plan.run_seed(run), **_score(plan, generated, real)})
                if listing is not None:
                    runs[-1]["real_seed"] = plan.real_seed(run)
    finally:
        bar.close()
    return {
        "scores": _aggregate(plan, runs),
        "runs": runs,
        "real_scores": {},
        "protocol": _record(model, plan, det, listing, draws, cache, info),
    }


def _real_for_run(
    plan: _Plan,
    run: int,
    det: Detector,
    draws: dict[int, ClipDraw],
    cache: RealCache,
    resolution: int,
    pool: ThreadPoolExecutor,
    bar: _Progress,
) -> np.ndarray:
    real_seed = plan.real_seed(run)
    features = cache.get(real_seed)
    if features is None:
        features = _real_features(plan, draws[real_seed], det, resolution, pool, bar)
        cache.store(real_seed, features)
    return features


def _cache_identity(plan: _Plan, det: Detector, listing: RealListing, resolution: int) -> dict[str, Any]:
    proto = plan.protocol
    identity = {
        "protocol": proto.name,
        "protocol_digest": proto.digest(),
        "detector_sha256": det.sha256,
        "root": str(listing.root),
        "split": listing.split,
        "fingerprint": listing.fingerprint,
        "n_real": plan.n_real,
    }
    if proto.pipeline in ("videogpt", "tats"):
        identity["resolution"] = resolution  # real clips are resized to the model's resolution first
    return identity


def _model_description(model: Any) -> dict[str, Any]:
    if isinstance(model, torch.Tensor):
        return {"name": "videos", "shape": list(model.shape)}
    info: dict[str, Any] = {"name": getattr(model, "name", type(model).__name__)}
    if isinstance(getattr(model, "config", None), dict):
        info["config"] = model.config
    for attr in ("weights_sha256", "pretrained", "source"):
        if getattr(model, attr, None) is not None:
            info[attr] = getattr(model, attr)
    return info


def _versions() -> dict[str, str]:
    import scipy

    from .._version import __version__

    return {
        "vganzoo": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


def _record(
    model: Any,
    plan: _Plan,
    det: Detector,
    listing: RealListing | None,
    draws: dict[int, ClipDraw],
    cache: RealCache | None,
    info: dict[str, Any],
) -> dict[str, Any]:
    """Everything that defines the number, stored beside it."""
    proto = plan.protocol
    record: dict[str, Any] = {
        "name": proto.name,
        "definition": proto.describe(),
        "arithmetic": DEFINITIONS[proto.name],
        "counts": {
            "n_generated": plan.n_generated,
            "n_real": plan.n_real,
            "num_runs": plan.num_runs,
            "published": plan.published_counts,
        },
        "detector": det.describe(),
        "generated": {
            "model": _model_description(model),
            "clip_shape": info.get("shape"),
            "seeds": f"run r, batch i: model.sample(batch_size, seed={plan.seed} + r * {RUN_SEED_STRIDE} "
            "+ i)",
            "run_seeds": [plan.run_seed(r) for r in range(plan.num_runs)],
            "batch_size": plan.batch_size,
        },
        "seed": plan.seed,
        "device": str(plan.device),
        "machine": platform.machine(),
        "versions": _versions(),
    }
    if not plan.published_counts:
        record["note"] = f"counts differ from {proto.name}'s published ones: not comparable with papers"
    if listing is not None:
        record["data"] = {
            **listing.describe(),
            "real_clips": proto.real_clips,
            "draws": {str(s): d.describe() for s, d in draws.items()},
            "real_seeds": list(draws),
            "real_rng": "numpy.random.default_rng([real_seed, 1])",
            "cache": cache.describe() if cache is not None else None,
        }
    return record


# evaluate()'s arguments a protocol run takes over; the rest belong to vganzoo's own definitions
_PASSED_ON = ("seed", "batch_size", "device", "progress")
# n, n_real and split keep their meaning (counts and split override the protocol's, recorded as such)
_NOT_OPTIONS = ("model", "data", "protocol", "protocol_options", "split", "n", "n_real", *_PASSED_ON)


def evaluate_from_arguments(
    evaluate: Any, arguments: dict[str, Any], options: dict[str, Any]
) -> dict[str, Any]:
    """``evaluate(..., protocol=NAME, **options)``: refuse the arguments the protocol fixes, run it."""
    import inspect

    parameters = inspect.signature(evaluate).parameters
    fixed = sorted(
        k
        for k, p in parameters.items()
        if k not in _NOT_OPTIONS and k in arguments and arguments[k] != p.default
    )
    if fixed:
        raise ValueError(
            f"{', '.join(fixed)}: not settable with protocol={arguments['protocol']!r}, which fixes them "
            "(its counts can be overridden with n_generated=, n_real=)"
        )
    options = dict(options)
    if arguments.get("split") is not None:
        options["split"] = arguments["split"]
    if arguments.get("n_real") is not None:
        options["n_real"] = arguments["n_real"]
    if arguments["n"] != parameters["n"].default:
        options.setdefault("n_generated", arguments["n"])
    passed = {k: arguments[k] for k in _PASSED_ON}
    return evaluate_protocol(
        arguments["model"], arguments["data"], arguments["protocol"], **passed, **options
    )
