"""``evaluate``: score a generator against real clips, with the full protocol beside every number.

Metrics (several may be computed in one pass over the same samples):

* ``fvd``: Frechet distance in I3D logit space (``extractor`` required: I3D weights file or
  ``hf-hub:`` spec, or any ``nn.Module``); real statistics can be cached with ``real_stats``.
* ``is``: video Inception Score from a C3D classifier (``extractor``), mean and std over ``splits``;
  the real data's IS is computed too when ``data`` is given.
* ``fvd-digits``: Frechet distance in the bundled digits classifier's feature space; the real data's
  own value (two disjoint real sets of the same N) is reported beside it as the floor at that N.
* ``consistency``: the digits classifier's frame score, identity consistency and agreement, digit frame rate
  and digit histogram, for the generated and the real clips.
* ``label-accuracy``: for a class-conditional digits model, the fraction of frames the digits
  classifier reads as the requested digit, averaged over the ten digits (``n // 10`` clips drawn per
  digit; see :mod:`vganzoo.metrics.label_accuracy`); the real clips' own value when they have labels.

Generated clips are drawn in batches with ``model.sample(batch, seed=seed + batch_index)``; real
clips are items ``0 .. n_real - 1`` of the dataset (the second real set for ``fvd-digits`` is items
``n_real .. 2 n_real - 1``). Built-in synthetic data uses its ``test`` split (never seen by the
digits classifier's training), folders their ``train`` split unless ``split`` says otherwise.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .accumulators import DigitsMetric, FrechetMetric, InceptionMetric, LabelAccuracyMetric
from .digits import NUM_DIGITS
from .frechet import FeatureStats
from .inception import DEFAULT_SPLITS
from .label_accuracy import check_conditional, protocol_entry
from .preprocess import select_frames
from .sources import generated_batches, is_stats_file, real_batches, real_dataset

__all__ = ["FRECHET_METRICS", "METRICS", "evaluate"]

METRICS = ("fvd", "is", "fvd-digits", "consistency", "label-accuracy")
FRECHET_METRICS = ("fvd", "fvd-digits")
DIGITS_METRICS = ("fvd-digits", "consistency", "label-accuracy")  # the bundled digits classifier's
NO_DATA_METRICS = ("is", "label-accuracy")  # scored without real clips (their real values need them)
DEFAULT_N = 2048
DEFAULT_FRAMES = 16
# protocol keys that must agree between cached real statistics and the current run
STATS_PROTOCOL_KEYS = ("metric", "extractor_sha256", "frames", "stride", "resolution")


def _parse_metrics(metric: str | Sequence[str]) -> list[str]:
    names = [m.strip() for m in metric.split(",")] if isinstance(metric, str) else list(metric)
    if not names or any(m not in METRICS for m in names):
        raise ValueError(
            f"metric must be one or more of {', '.join(METRICS)} (comma-separated), got {metric!r}"
        )
    return list(dict.fromkeys(names))


def _check_positive(name: str, value: Any, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="clip", desc="vganzoo eval", dynamic_ncols=True)

    def update(self, count: int, stage: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(stage, refresh=False)
            self.bar.update(count)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------- evaluate


def _model_description(model: Any) -> dict[str, Any]:
    if isinstance(model, torch.Tensor):
        return {"name": "videos", "shape": list(model.shape)}
    config = getattr(model, "config", None)
    info: dict[str, Any] = {"name": getattr(model, "name", type(model).__name__)}
    if isinstance(config, dict):
        info["config"] = config
    for attr in ("weights_sha256", "pretrained", "source"):
        if getattr(model, attr, None) is not None:
            info[attr] = getattr(model, attr)
    return info


def evaluate(
    model: Any,
    data: Any = None,
    metric: str | Sequence[str] = "fvd",
    *,
    n: int = DEFAULT_N,
    n_real: int | None = None,
    frames: int = DEFAULT_FRAMES,
    stride: int = 1,
    real_stride: int | None = None,
    extractor: Any = None,
    digits_classifier: str | os.PathLike | None = None,
    batch_size: int = 32,
    seed: int = 0,
    device: torch.device | str = "cpu",
    resolution: int | None = None,
    split: str | None = None,
    splits: int = DEFAULT_SPLITS,
    real_stats: str | os.PathLike | None = None,
    progress: bool = False,
    protocol: str | None = None,
    **protocol_options: Any,
) -> dict[str, Any]:
    """Score ``model`` against ``data``; returns ``{"scores", "real_scores", "protocol"}``.

    With ``protocol="stylegan-v-fvd16"`` (or another name of :mod:`vganzoo.metrics.protocols`) the
    call is :func:`vganzoo.metrics.evaluate_protocol` with ``detector=``, ``num_runs=``,
    ``real_cache=`` ... (``protocol_options``) and ``seed``, ``batch_size``, ``device``, ``progress``;
    the other arguments here belong to vganzoo's own definitions and are refused.

    Args:
        model: a VideoGAN (anything with ``sample(n, seed=, device=)``) or generated videos
            ``(N, C, T, H, W)`` in [-1, 1].
        data: ``"moving-digits"``, ``"moving-shapes"``, a video folder, a Dataset yielding
            ``{"video": (C, T, H, W)}``, a tensor of real videos, or a real-statistics
            ``.safetensors`` file saved earlier (Frechet metrics only). Optional for ``is``.
        metric: one of :data:`METRICS` or several (list or comma-separated).
        n: number of generated clips (the FVD convention is 2048); ``n_real`` defaults to ``n``.
        frames, stride: clips are the first ``frames`` frames taken every ``stride``-th.
        real_stride: the real clips' own frame step before ``stride`` applies (real frames are taken
            every ``stride * real_stride``-th). Default: the model's training ``frame_stride`` (from its
            recipe; 1 when it has none), so generated clips are compared with real clips at the
            speed the model was trained on.
        extractor: for ``fvd`` (I3D) or ``is`` (C3D): a safetensors path, ``hf-hub:org/repo[/file][@rev]``
            or an ``nn.Module`` mapping videos to (N, D).
        digits_classifier: folder of the digits classifier (default: the bundled one).
        batch_size, seed, device: how clips are generated and processed. ``batch_size`` and ``seed``
            are both part of the protocol: batch i is ``model.sample(batch_size, seed=seed + i)``, so
            another batch size draws other clips (at N=1024, FVD-digits of one model moved by ~4%).
        resolution: real-data resolution (default: the generated clips' height).
        split: dataset split for the real data (default: test for built-ins, train for folders).
        splits: IS splits.
        real_stats: a ``.safetensors`` cache of the real I3D statistics (``fvd`` only): read when it
            exists (its protocol must match), written otherwise.
        progress: show a progress bar on stderr.

    Raises:
        ValueError / TypeError for bad arguments (N < 2, too few frames, mismatched protocols...).
    """
    if protocol is not None:
        from .protocol_eval import evaluate_from_arguments

        return evaluate_from_arguments(evaluate, dict(locals()), protocol_options)
    if protocol_options:
        raise TypeError(
            f"evaluate() got unexpected keyword arguments {sorted(protocol_options)} (without protocol=)"
        )
    plan = _Plan.check(
        model, data, metric, n, n_real, frames, stride, real_stride, batch_size, seed, device, split, splits
    )
    if is_stats_file(plan.data):
        real_stats, plan.data = plan.data, None
    plan.check_sources(real_stats)
    video_extractor, scorer = _load_scorers(plan, extractor, digits_classifier)
    # one probe batch fixes the generated resolution before the real data is built
    if isinstance(model, nn.Module):
        model.to(plan.device)
    gen_iter = generated_batches(model, plan.n, plan.batch_size, plan.seed, plan.device)
    first = select_frames(next(gen_iter), plan.frames, plan.stride)
    resolution = resolution or int(first.shape[-2])
    protocol = _protocol(plan, model, first, resolution, video_extractor, scorer)
    cached, stats_protocol = None, {}
    if real_stats is not None:
        stats_protocol = _stats_protocol(plan, video_extractor, resolution)
        cached = _read_real_stats(real_stats, stats_protocol, plan, protocol)
    accumulators = _accumulators(plan, video_extractor, scorer, protocol, cached)
    real_sets: list[tuple[str, int]] = []
    if plan.data is not None and (cached is None or "is" in plan.metrics or scorer is not None):
        real_sets.append(("real", 0))
    if "fvd-digits" in plan.metrics:
        real_sets.append(("real2", plan.n_real))
    labelled = [acc for acc in accumulators if isinstance(acc, LabelAccuracyMetric)]
    per_label = plan.clips_per_label * NUM_DIGITS if labelled else 0
    bar = _Progress(plan.n + plan.n_real * len(real_sets) + per_label, progress)
    try:
        with torch.no_grad():
            if plan.metrics != ["label-accuracy"]:  # it draws its own, labelled, clips
                _feed_generated(accumulators, first, gen_iter, plan, bar)
            for acc in labelled:
                drawn = acc.sample_generated(
                    model, plan.clips_per_label, frames=plan.frames, stride=plan.stride,
                    batch_size=plan.batch_size, seed=plan.seed, device=plan.device,
                )  # fmt: skip
                bar.update(drawn, "generated, per label")
            if real_sets:
                _feed_real(accumulators, real_sets, first, resolution, plan, protocol, bar)
    finally:
        bar.close()
    scores, real_scores = _results(accumulators, plan)
    if real_stats is not None and cached is None:
        _write_real_stats(real_stats, accumulators, stats_protocol, protocol)
    return {
        "scores": _jsonable(scores),
        "real_scores": _jsonable(real_scores),
        "protocol": _jsonable(protocol),
    }


@dataclasses.dataclass
class _Plan:
    """The checked arguments of one :func:`evaluate` call (``n_real`` may come from cached statistics)."""

    metrics: list[str]
    data: Any
    n: int
    n_real: int
    frames: int
    stride: int
    real_stride: int
    batch_size: int
    seed: int
    device: torch.device
    split: str | None
    splits: int

    @property
    def clips_per_label(self) -> int:
        """label-accuracy: clips drawn for each digit (n split over the ten)."""
        return max(1, self.n // NUM_DIGITS)

    @property
    def data_stride(self) -> int:
        """Real clips take every (stride * real_stride)-th frame."""
        return self.stride * self.real_stride

    @classmethod
    def check(
        cls,
        model,
        data,
        metric,
        n,
        n_real,
        frames,
        stride,
        real_stride,
        batch_size,
        seed,
        device,
        split,
        splits,
    ) -> _Plan:
        metrics = _parse_metrics(metric)
        n = _check_positive("n", n, 2 if any(m in FRECHET_METRICS for m in metrics) else 1)
        n_real = _check_positive(
            "n_real" if n_real is not None else "n (n_real defaults to it)",
            n if n_real is None else n_real,
            2,
        )
        if real_stride is None:
            recipe = getattr(model, "recipe", None) if isinstance(model, nn.Module) else None
            real_stride = int((recipe or {}).get("frame_stride") or 1)
        if "is" in metrics and n < splits:
            raise ValueError(f"the Inception Score needs n >= splits ({splits}), got n={n}")
        if "fvd" in metrics and "is" in metrics:
            raise ValueError("fvd and is use different extractors (I3D, C3D); evaluate them in separate runs")
        if "label-accuracy" in metrics:
            check_conditional(model)
        return cls(
            metrics=metrics,
            data=data,
            n=n,
            n_real=n_real,
            frames=_check_positive("frames", frames),
            stride=_check_positive("stride", stride),
            real_stride=_check_positive("real_stride", real_stride),
            batch_size=_check_positive("batch_size", batch_size),
            seed=seed,
            device=torch.device(device),
            split=split,
            splits=splits,
        )

    def check_sources(self, real_stats: Any) -> None:
        """Real clips, cached statistics or neither: what the metrics can use."""
        needs_data = [m for m in self.metrics if m not in NO_DATA_METRICS]
        if self.data is None and real_stats is None and needs_data:
            raise ValueError(f"data is required for {', '.join(needs_data)}")
        if real_stats is not None and self.metrics != ["fvd"]:
            raise ValueError(
                "cached real statistics (a .safetensors file as data, or real_stats) serve the fvd metric "
                "alone"
            )
        if self.data is None and any(m in ("fvd-digits", "consistency") for m in self.metrics):
            raise ValueError(
                "fvd-digits and consistency need real clips as data (e.g. moving-digits), not a statistics "
                "file"
            )


def _load_scorers(plan: _Plan, extractor: Any, digits_classifier: Any) -> tuple[Any, Any]:
    """(the I3D / C3D extractor or None, the digits scorer or None) the metrics need."""
    video_extractor = None
    if "fvd" in plan.metrics or "is" in plan.metrics:
        from .extractors import load_extractor

        which = "fvd" if "fvd" in plan.metrics else "is"
        if extractor is None:
            arch = "I3D (Kinetics-400)" if which == "fvd" else "C3D (UCF-101)"
            raise ValueError(
                f"{which} needs {arch} weights: pass --extractor PATH.safetensors or hf-hub:org/repo "
                "(vganzoo ships none)"
            )
        video_extractor = load_extractor(
            extractor, default_architecture="i3d" if which == "fvd" else "c3d", device=plan.device
        )
        if plan.frames < video_extractor.min_frames:
            raise ValueError(
                f"{video_extractor.name} needs at least {video_extractor.min_frames} frames per clip, got "
                f"frames={plan.frames}"
            )
    scorer = None
    if any(m in DIGITS_METRICS for m in plan.metrics):
        from .digits import load_digits_classifier

        scorer = load_digits_classifier(digits_classifier, device=plan.device)
    return video_extractor, scorer


def _protocol(
    plan: _Plan, model: Any, first: torch.Tensor, resolution: int, video_extractor: Any, scorer: Any
) -> dict[str, Any]:
    """Everything that defines the numbers, recorded beside them."""
    from .._version import __version__

    protocol: dict[str, Any] = {
        "metrics": plan.metrics,
        "n_generated": plan.n,
        "n_real": plan.n_real,
        "frames": plan.frames,
        "stride": plan.stride,
        "real_stride": plan.real_stride,
        "real_frame_step": plan.data_stride,  # real clips take every (stride * real_stride)-th frame
        "resolution": resolution,
        "generated_shape": list(first.shape[1:]),
        "generated_seeds": f"model.sample(batch_size, seed={plan.seed} + batch index)",
        "batch_size": plan.batch_size,
        "seed": plan.seed,
        "model": _model_description(model),
        "vganzoo_version": __version__,
        "torch_version": torch.__version__,
        "device": str(plan.device),
        "machine": platform.machine(),
    }
    if video_extractor is not None:
        protocol["extractor"] = video_extractor.describe()
        protocol["resize"] = video_extractor.protocol.get("resize", "none")
    if scorer is not None:
        protocol["digits_classifier"] = scorer.describe()
        protocol.setdefault("resize", "digits classifier: gray, bilinear antialiased to 32x32")
    if "is" in plan.metrics:
        protocol["is_splits"] = plan.splits
    return protocol


def _stats_protocol(plan: _Plan, video_extractor: Any, resolution: int) -> dict[str, Any]:
    """What cached real statistics must agree on to be reused."""
    return {
        "metric": "fvd",
        "extractor_sha256": video_extractor.sha256,
        "frames": plan.frames,
        "stride": plan.data_stride,
        "resolution": resolution,
        "data": None if plan.data is None else str(plan.data),
    }


def _read_real_stats(
    real_stats: Any, stats_protocol: dict[str, Any], plan: _Plan, protocol: dict[str, Any]
) -> FeatureStats | None:
    """The cached real statistics when the file exists (checked against this protocol), else None."""
    if not os.path.exists(real_stats):
        if plan.data is None:
            raise FileNotFoundError(f"real statistics file not found: {real_stats}")
        return None
    cached = FeatureStats.load(real_stats)
    diffs = [
        f"{k}: cached {cached.protocol.get(k)!r} vs now {stats_protocol[k]!r}"
        for k in STATS_PROTOCOL_KEYS
        if cached.protocol.get(k) != stats_protocol[k]
    ]
    if (
        None not in (cached.protocol.get("data"), stats_protocol["data"])
        and cached.protocol.get("data") != stats_protocol["data"]
    ):
        diffs.append(f"data: cached {cached.protocol.get('data')!r} vs now {stats_protocol['data']!r}")
    if diffs:
        raise ValueError(f"real statistics {real_stats} were made with another protocol ({'; '.join(diffs)})")
    if cached.n < 2:
        raise ValueError(f"real statistics {real_stats} hold N={cached.n} < 2")
    protocol["real_stats"] = {
        "path": os.fspath(real_stats),
        "n": cached.n,
        "data": cached.protocol.get("data"),
    }
    protocol["n_real"] = plan.n_real = cached.n
    return cached


def _accumulators(
    plan: _Plan, video_extractor: Any, scorer: Any, protocol: dict[str, Any], cached: FeatureStats | None
) -> list[Any]:
    accumulators: list[Any] = []
    if "fvd" in plan.metrics:
        accumulators.append(FrechetMetric("fvd", video_extractor, protocol["extractor"], cached))
    if "is" in plan.metrics:
        accumulators.append(InceptionMetric(video_extractor, plan.splits))
    if "fvd-digits" in plan.metrics or "consistency" in plan.metrics:
        accumulators.append(DigitsMetric(scorer, "fvd-digits" in plan.metrics, "consistency" in plan.metrics))
    if "label-accuracy" in plan.metrics:
        accumulators.append(LabelAccuracyMetric(scorer))
        protocol["label_accuracy"] = protocol_entry(plan.clips_per_label, plan.seed)
    return accumulators


def _feed_generated(
    accumulators: list[Any],
    first: torch.Tensor,
    gen_iter: Iterator[torch.Tensor],
    plan: _Plan,
    bar: _Progress,
) -> None:
    batch: torch.Tensor | None = first
    while batch is not None:
        for acc in accumulators:
            acc.add(batch, "generated")
        bar.update(batch.shape[0], "generated")
        nxt = next(gen_iter, None)
        batch = None if nxt is None else select_frames(nxt, plan.frames, plan.stride)


def _feed_real(
    accumulators: list[Any],
    real_sets: list[tuple[str, int]],
    first: torch.Tensor,
    resolution: int,
    plan: _Plan,
    protocol: dict[str, Any],
    bar: _Progress,
) -> None:
    source, description, used_split = real_dataset(
        plan.data,
        resolution=resolution,
        frames=plan.frames,
        stride=plan.data_stride,
        seed=plan.seed,
        split=plan.split,
        length=plan.n_real * len(real_sets),
    )
    protocol["data"] = description
    if used_split is not None:
        protocol["data_split"] = used_split
    for which, start in real_sets:
        for videos, labels in real_batches(
            source, start, plan.n_real, plan.batch_size, plan.frames, plan.data_stride, plan.device
        ):
            if tuple(videos.shape[-2:]) != tuple(first.shape[-2:]):
                raise ValueError(
                    f"real clips are {tuple(videos.shape[-2:])} but generated clips "
                    f"{tuple(first.shape[-2:])}; set resolution to match"
                )
            for acc in accumulators:
                if which == "real" and isinstance(acc, FrechetMetric) and not acc.needs_real:
                    continue
                acc.add(videos, which, labels) if getattr(acc, "wants_labels", False) else acc.add(
                    videos, which
                )
            bar.update(videos.shape[0], which)


def _results(accumulators: list[Any], plan: _Plan) -> tuple[dict[str, Any], dict[str, Any]]:
    scores: dict[str, Any] = {}
    real_scores: dict[str, Any] = {}
    for acc in accumulators:
        s, r = acc.result()
        scores.update(s)
        real_scores.update(r)
    if "fvd-digits" in plan.metrics:
        real_scores["fvd_digits_note"] = (
            "real vs real: two disjoint real sets of N each (the floor of the estimate at this N)"
        )
    return scores, real_scores


def _write_real_stats(
    real_stats: Any, accumulators: list[Any], stats_protocol: dict[str, Any], protocol: dict[str, Any]
) -> None:
    from .._version import __version__

    stats = next(acc.real for acc in accumulators if isinstance(acc, FrechetMetric))
    stats.save(
        real_stats,
        {
            **stats_protocol,
            "n": stats.n,
            "data_split": protocol.get("data_split"),
            "vganzoo_version": __version__,
        },
    )
    protocol["real_stats"] = {"path": os.fspath(real_stats), "n": stats.n, "written": True}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return obj
