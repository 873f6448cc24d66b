"""Continuous-time video (StyleGAN-V, Skorokhodov et al. 2022): the times of the frames a generator
renders and a discriminator scores, the motion codes along time, and their embeddings.

Times are in frames of the training data and may be fractional, so frames can be rendered at any time.

:class:`MotionEncoder` (the generator's time embedding): random motion codes ``motion_z`` placed
every ``distance`` frames along time go through two unpadded 1-D convolutions (acausal: a code sees
``kernel_size - 1`` neighbours on each side); a frame at time ``t`` interpolates the codes left and
right of it, and sine / cosine features of ``t`` with learned periods and phases (predicted from the
left code) are aligned so that the embedding is continuous across code boundaries.
:func:`draw_motion_codes` draws each video's codes from its own random stream, in a fixed order along
time, so the first frames of a clip do not depend on its length.

:class:`TimeDifferenceEmbedding` (the discriminator's): the differences between the times of the
frames it scores, as a learned vector per whole number of frames plus fixed sine / cosine features.
:func:`random_frame_times` is the authors' sampler of those frames (sparse training: a few frames per
clip, a span between the first and the last from :data:`TOTAL_DISTS`).

The layers follow the authors' exactly (universome/stylegan-v), so their weights convert
(:mod:`vganzoo.convert.stylegan_v`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .graphs import host_reads_allowed
from .stylegan2 import EqualizedConv1d, EqualizedLinear

__all__ = [
    "MOTION_CODE_CHUNK",
    "MOTION_LR_MULTIPLIER",
    "TOTAL_DISTS",
    "MotionEncoder",
    "TimeDifferenceEmbedding",
    "allowed_spans",
    "draw_motion_codes",
    "linspaced_frequencies",
    "log_spaced_frequencies",
    "random_frame_times",
]

MOTION_LR_MULTIPLIER = 0.01
MOTION_CODE_CHUNK = 16  # motion codes drawn per random call: a video's codes never depend on its length
# The spans between the first and the last of a clip's sparse frames that training draws from
# (the authors' sampling.total_dists), cut to max_dist and the clip length.
TOTAL_DISTS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


# ------------------------------------------------------------------------------------------------
# frame times and motion codes
# ------------------------------------------------------------------------------------------------
def allowed_spans(num_frames: int, clip_frames: int, max_dist: int) -> list[int]:
    """Spans (last minus first frame) that sparse sampling draws from for clips of ``clip_frames``."""
    return [d for d in TOTAL_DISTS if num_frames - 1 <= d <= min(clip_frames - 1, max_dist)]


def random_frame_times(
    n: int,
    *,
    num_frames: int,
    clip_frames: int,
    max_dist: int,
    fractional: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(n, num_frames) sorted frame times inside clips of ``clip_frames`` frames, the authors' sampler.

    Per clip: a span ``d`` uniform over :func:`allowed_spans`, a start uniform in
    ``[0, clip_frames - d - 1]`` (an integer, or any real there with ``fractional``), the frames at
    ``start`` and ``start + d`` and the others at distinct whole offsets strictly inside the span.
    """
    spans = allowed_spans(num_frames, clip_frames, max_dist)
    if not spans:
        raise ValueError(
            f"clips of {clip_frames} frames are too short for {num_frames} sparse frames (max_dist "
            f"{max_dist}); need at least {num_frames} frames"
        )
    out = torch.empty(n, num_frames, dtype=torch.float64)
    for i in range(n):
        span = spans[int(torch.randint(len(spans), (1,), generator=generator))]
        if fractional:
            start = float(torch.rand((), generator=generator, dtype=torch.float64)) * (clip_frames - span - 1)
        else:
            start = float(torch.randint(0, clip_frames - span, (1,), generator=generator))
        inner = (torch.randperm(span - 1, generator=generator)[: num_frames - 2] + 1).tolist()
        out[i] = torch.tensor(sorted([0, span, *inner]), dtype=torch.float64) + start
    return out.float()


def draw_motion_codes(seeds: list[int], count: int, dim: int) -> torch.Tensor:
    """(len(seeds), count, dim) N(0, I) motion codes, each video's from its own seed in chunks along
    time, so the first codes of a video are the same whatever ``count`` is."""
    chunks = math.ceil(count / MOTION_CODE_CHUNK)
    videos = []
    for seed in seeds:
        stream = torch.Generator().manual_seed(seed)
        codes = [torch.randn(MOTION_CODE_CHUNK, dim, generator=stream) for _ in range(chunks)]
        videos.append(torch.cat(codes)[:count])
    return torch.stack(videos) if videos else torch.empty(0, count, dim)


# ------------------------------------------------------------------------------------------------
# embeddings
# ------------------------------------------------------------------------------------------------
def linspaced_frequencies(count: int, min_period: float, max_period: float) -> torch.Tensor:
    """(1, count) angular frequencies whose periods are log-evenly spaced in [min, max], ascending."""
    exponents = torch.linspace(
        math.log2(min_period), math.log2(max_period), count, dtype=torch.float64, device="cpu"
    )
    return (2 * math.pi / 2**exponents).flip(0).to(torch.float32).unsqueeze(0)


def log_spaced_frequencies(max_frames: int) -> torch.Tensor:
    """(1, ceil(log2 max_frames)) frequencies pi 2^i / T of the discriminator's time-difference features,
    T = max_frames rounded up to a power of two."""
    time_resolution = 2 ** math.ceil(math.log2(max_frames))
    count = math.ceil(math.log2(time_resolution))
    powers = torch.tensor([2], device="cpu").repeat(count).pow(torch.arange(count, device="cpu"))
    return powers.unsqueeze(0).float() * math.pi / time_resolution


class MotionEncoder(nn.Module):
    """Motion codes + frame times -> the time embedding of every frame.

    forward(motion_z (N, L, motion_z_dim), times (N, T), c (N, c_dim) or None) -> (N * T, 2 * time_dim).
    """

    def __init__(
        self,
        *,
        motion_z_dim: int,
        motion_v_dim: int,
        c_dim: int,
        kernel_size: int,
        distance: float,
        time_dim: int,
        min_period: float,
        max_period: float,
    ) -> None:
        super().__init__()
        self.motion_z_dim, self.c_dim, self.distance = motion_z_dim, c_dim, distance
        self.extra_codes = 2 * (kernel_size - 1)  # the two unpadded convolutions eat these codes
        self.layers = nn.Sequential(
            EqualizedConv1d(
                motion_z_dim + c_dim,
                motion_z_dim,
                kernel_size,
                activation="lrelu",
                lr_multiplier=MOTION_LR_MULTIPLIER,
            ),
            EqualizedConv1d(
                motion_z_dim,
                motion_v_dim,
                kernel_size,
                activation="lrelu",
                lr_multiplier=MOTION_LR_MULTIPLIER,
            ),
        )
        # without biases, so that a code's own magnitude (not a constant) sets its periods and phases
        self.period = EqualizedLinear(motion_v_dim, time_dim, bias=False)
        self.phase = EqualizedLinear(motion_v_dim, time_dim, bias=False)
        self.aligner = EqualizedLinear(motion_v_dim, 2 * time_dim, bias=False)
        freqs = linspaced_frequencies(time_dim, min_period, max_period)
        self.register_buffer("freqs", freqs, persistent=False)
        self.register_buffer("phase_scales", max_period / (2 * math.pi / freqs), persistent=False)

    @property
    def out_dim(self) -> int:
        return self.freqs.shape[1] * 2

    def codes_needed(self, max_time: float, max_frames: int) -> int:
        """Motion codes a video needs for frames up to ``max_time`` (at least for ``max_frames``)."""
        last = max(max_frames - 1, max_time)
        return math.ceil(last / self.distance) + 2 + self.extra_codes

    def check_codes(self, motion_z: torch.Tensor, times: torch.Tensor) -> None:
        """Raise a clear error unless ``motion_z`` has codes for every time in ``times`` (reads values:
        skipped while torch.compile / torch.export trace or a CUDA graph records)."""
        if not host_reads_allowed() or not times.numel():
            return
        last = float(times.max())
        if math.floor(last / self.distance) + 1 >= motion_z.shape[1] - self.extra_codes:
            need = math.floor(last / self.distance) + 2 + self.extra_codes
            raise ValueError(
                f"motion_z has {motion_z.shape[1]} codes per video, frames up to time {last:g} need {need}; "
                "draw them with sample_latents(..., frames=...)"
            )

    def forward(self, motion_z: torch.Tensor, times: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        # Sines of angles of up to ~10^3 rad: computed in float32 at least (bfloat16 would scramble
        # them), without autocast, like the authors who keep all but the synthesis layers in float32.
        dtype = self.period.weight.dtype
        compute = torch.promote_types(dtype, torch.float32)
        with torch.autocast(times.device.type, enabled=False):
            out = self._embed(motion_z.to(compute), times, None if c is None else c.to(compute))
        return out.to(dtype)

    def _embed(self, motion_z: torch.Tensor, times: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        n, t = times.shape
        codes = motion_z
        if c is not None:
            codes = torch.cat([codes, c.to(codes.dtype).unsqueeze(1).expand(-1, codes.shape[1], -1)], dim=2)
        self.check_codes(motion_z, times)
        trajectory = self.layers(codes.transpose(1, 2)).transpose(1, 2)  # (N, L - extra, v)
        left = torch.floor(times / self.distance).long()
        batch = torch.arange(n, device=times.device).unsqueeze(1).expand(n, t)
        code_left = trajectory[batch, left].reshape(n * t, -1)
        code_right = trajectory[batch, left + 1].reshape(n * t, -1)
        remainder = times % self.distance
        t_left = (times - remainder).reshape(-1, 1).to(code_left.dtype)
        t_right = t_left + self.distance
        weight = (remainder / self.distance).reshape(-1, 1).to(code_left.dtype)
        times = times.reshape(-1, 1).to(code_left.dtype)

        periods = self.period(code_left).tanh() + 1
        phases = self.phase(code_left)

        freqs, phase_scales = self.freqs.to(code_left.dtype), self.phase_scales.to(code_left.dtype)

        def features(at: torch.Tensor) -> torch.Tensor:
            angle = freqs * periods * at + phases * phase_scales
            return torch.cat([angle.sin(), angle.cos()], dim=1)

        # the features of t, minus their interpolation between the code boundaries, plus an
        # interpolation of learned values there: continuous in t, and free at the boundaries
        removed = features(t_left) * (1 - weight) + features(t_right) * weight
        added = self.aligner(code_left) * (1 - weight) + self.aligner(code_right) * weight
        return features(times) - removed + added


class TimeDifferenceEmbedding(nn.Module):
    """Frame times (N, k) -> an embedding of the k - 1 differences between neighbouring frames.

    Each difference gets a learned vector (``table``, one row per whole number of frames below
    ``max_frames``) and fixed sine/cosine features: output (N, (k - 1) * (embed_dim + 2 * F)).
    """

    def __init__(self, max_frames: int, embed_dim: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(max_frames, embed_dim))  # an nn.Embedding's weight
        self.register_buffer("fourier_coefs", log_spaced_frequencies(max_frames), persistent=False)

    def dim(self, num_frames: int) -> int:
        return (num_frames - 1) * (self.table.shape[1] + 2 * self.fourier_coefs.shape[1])

    def forward(self, times: torch.Tensor) -> torch.Tensor:
        n = times.shape[0]
        diffs = (times[:, 1:] - times[:, :-1]).reshape(-1)
        index = diffs.float().round().long()
        if (
            host_reads_allowed()
            and index.numel()
            and not (int(index.min()) >= 0 and int(index.max()) < self.table.shape[0])
        ):
            raise ValueError(
                f"frame_times: the gaps between frames must be in [0, {self.table.shape[0] - 1}] "
                f"(max_frames), got {float(diffs.min()):g} to {float(diffs.max()):g}; times must be sorted"
            )
        dtype = self.table.dtype
        angle = self.fourier_coefs.to(dtype) * diffs.to(dtype).unsqueeze(1)
        out = torch.cat([F.embedding(index, self.table), angle.sin(), angle.cos()], dim=1)
        return out.reshape(n, -1)
