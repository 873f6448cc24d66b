"""The arithmetic of the pinned protocols (:mod:`vganzoo.metrics.protocols`), step by step as in the
original code: quantisation, detector-input preprocessing, statistics, distances, Inception Scores.

Every function states the original expression it reproduces. Clips are ``(N, C, T, H, W)``
throughout (float in [-1, 1] for generated videos, uint8 for real frames and quantised clips).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from .preprocess import RGB_CHANNELS, to_channels

__all__ = [
    "frechet_stylegan_v",
    "frechet_tf_gan",
    "gray_to_rgb_uint8",
    "inception_score_stylegan_v",
    "inception_score_tgan2",
    "mean_cov_stylegan_v",
    "quantise_stylegan_v",
    "quantise_videogpt",
    "tats_input",
    "videogpt_input",
    "videogpt_real_uint8",
]

UINT8_MAX = 255.0
I3D_SIZE = 224  # VideoGPT / TATS resize to this
TF_GAN_SQRT_EPS = 1e-10  # singular values below it are kept, not square-rooted (TF-GAN)
STYLEGAN_V_IS_SHUFFLE_SEED = 42
TGAN2_IS_EPS = 1e-20


# ---------------------------------------------------------------- generated clips -> uint8


def quantise_stylegan_v(videos: torch.Tensor) -> torch.Tensor:
    """StyleGAN-V (metric_utils.py, ``run_generator``): ``(img * 127.5 + 128).clamp(0, 255).to(torch.uint8)``.

    The cast truncates toward zero, so the levels are ``floor(x * 127.5 + 128)``: -1 -> 0.5 -> 0,
    0 -> 128, 1 -> 255.5 -> 255 (not ``round((x + 1) * 127.5)``).
    """
    return (videos.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def quantise_videogpt(videos: torch.Tensor) -> torch.Tensor:
    """VideoGPT (compute_fvd.py: samples in [0, 1], ``(fake * 255).astype('uint8')``) and DIGAN
    (``((fake + 1.) / 2. * 255).type(torch.uint8)``): ``((x + 1) / 2 * 255)`` truncated.

    Inputs are clamped to [-1, 1] first (the originals' samplers clamp), so the cast never wraps.
    """
    return ((videos.float().clamp(-1.0, 1.0) + 1.0) / 2.0 * UINT8_MAX).to(torch.uint8)


def gray_to_rgb_uint8(clips: torch.Tensor) -> torch.Tensor:
    """StyleGAN-V repeats 1-channel clips to 3 channels before the detector (``images.repeat``)."""
    return clips.repeat(1, RGB_CHANNELS, 1, 1, 1) if clips.shape[1] == 1 else clips


# ---------------------------------------------------------------- VideoGPT / TATS detector input


def _short_side_resize_crop(frames: torch.Tensor, resolution: int) -> torch.Tensor:
    """VideoGPT's ``preprocess`` spatial part on float frames ``(B, C, H, W)``: the short side to
    ``resolution`` (bilinear, align_corners=False, no antialias; the other side ``ceil(side * scale)``),
    then the centre crop starting at ``(side - resolution) // 2``."""
    h, w = frames.shape[-2:]
    scale = resolution / min(h, w)
    target = (resolution, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), resolution)
    frames = F.interpolate(frames, size=target, mode="bilinear", align_corners=False)
    h, w = frames.shape[-2:]
    top, left = (h - resolution) // 2, (w - resolution) // 2
    return frames[:, :, top : top + resolution, left : left + resolution]


def videogpt_input(clips: torch.Tensor) -> torch.Tensor:
    """VideoGPT fvd.py ``preprocess``: uint8 ``(N, C, T, H, W)`` -> ``(N, 3, T, 224, 224)`` in [-0.5, 0.5].

    Per video (videogpt/data.py ``preprocess(video, 224)``): ``float() / 255.``, short-side resize to
    224 and centre crop (:func:`_short_side_resize_crop`), ``video -= 0.5``. Gray is repeated to RGB.
    """
    n, t = clips.shape[0], clips.shape[2]
    frames = rearrange(to_channels(clips, RGB_CHANNELS), "n c t h w -> (n t) c h w").float() / UINT8_MAX
    frames = _short_side_resize_crop(frames, I3D_SIZE)
    frames = frames - 0.5
    return rearrange(frames, "(n t) c h w -> n c t h w", n=n, t=t).contiguous()


def tats_input(clips: torch.Tensor) -> torch.Tensor:
    """TATS fvd.py ``preprocess``: uint8 ``(N, C, T, H, W)`` -> ``(N, 3, T, 224, 224)`` in [-1, 1].

    ``torch.FloatTensor(videos)`` (0..255), every frame resized to 224x224 (bilinear,
    align_corners=False, no antialias, aspect ratio not kept), then ``2. * x / 255. - 1``.
    """
    n, t = clips.shape[0], clips.shape[2]
    frames = rearrange(to_channels(clips, RGB_CHANNELS), "n c t h w -> (n t) c h w").float()
    frames = F.interpolate(frames, size=(I3D_SIZE, I3D_SIZE), mode="bilinear", align_corners=False)
    frames = 2.0 * frames / UINT8_MAX - 1
    return rearrange(frames, "(n t) c h w -> n c t h w", n=n, t=t).contiguous()


def videogpt_real_uint8(clip: torch.Tensor, resolution: int) -> torch.Tensor:
    """A real clip as VideoGPT's evaluation sees it: uint8 ``(C, T, H, W)`` -> uint8 ``(C, T, r, r)``.

    VideoDataset's ``preprocess(video, resolution)`` (``/ 255.``, short-side resize and centre crop,
    ``-= 0.5``), then compute_fvd.py's ``real + 0.5``, ``* 255``, ``astype('uint8')`` (truncation),
    all in float32 as there.
    """
    frames = rearrange(clip, "c t h w -> t c h w").float() / UINT8_MAX
    frames = _short_side_resize_crop(frames, resolution) - 0.5
    frames = ((frames + 0.5) * UINT8_MAX).to(torch.uint8)
    return rearrange(frames, "t c h w -> c t h w").contiguous()


# ---------------------------------------------------------------- Frechet distances


def mean_cov_stylegan_v(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """StyleGAN-V FeatureStats: float32 features summed in float64; ``mean = raw_mean / N``,
    ``cov = raw_cov / N - outer(mean, mean)`` with ``raw_cov = sum x^T x`` (divisor N)."""
    x64 = np.asarray(features, dtype=np.float32).astype(np.float64)
    n = x64.shape[0]
    mean = x64.sum(axis=0) / n
    cov = (x64.T @ x64) / n - np.outer(mean, mean)
    return mean, cov


def frechet_stylegan_v(generated: np.ndarray, real: np.ndarray) -> float:
    """StyleGAN-V compute_fvd: ``m = sum((mu_g - mu_r)^2)``; ``s = sqrtm(sigma_g @ sigma_r)`` (scipy);
    ``real(m + trace(sigma_g + sigma_r - s * 2))``."""
    import scipy.linalg

    mu_g, sigma_g = mean_cov_stylegan_v(generated)
    mu_r, sigma_r = mean_cov_stylegan_v(real)
    m = np.square(mu_g - mu_r).sum()
    with (
        warnings.catch_warnings()
    ):  # StyleGAN-V calls sqrtm(..., disp=False): no warning for singular products
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        s = scipy.linalg.sqrtm(np.dot(sigma_g, sigma_r))  # the same algorithm; disp=False returned (s, err)
    return float(np.real(m + np.trace(sigma_g + sigma_r - s * 2)))


def _tf_gan_sqrt(matrix: np.ndarray) -> np.ndarray:
    """TF-GAN ``_symmetric_matrix_square_root``: ``u diag(where(s < eps, s, sqrt(s))) v^T`` from the SVD."""
    u, s, vh = np.linalg.svd(matrix)
    root = np.where(s < TF_GAN_SQRT_EPS, s, np.sqrt(s))
    return (u * root) @ vh


def _cov_unbiased(x: np.ndarray) -> np.ndarray:
    """VideoGPT ``cov(m, rowvar=False)``: centred, divided by N - 1."""
    centred = x - x.mean(axis=0, keepdims=True)
    return centred.T @ centred / (x.shape[0] - 1)


def frechet_tf_gan(generated: np.ndarray, real: np.ndarray) -> float:
    """VideoGPT / TATS ``frechet_distance(fake, real)`` (TF-GAN's), computed in float64:
    ``trace(S_g + S_r) - 2 trace(sqrt(sqrt(S_g) (S_r sqrt(S_g)))) + sum((mu_g - mu_r)^2)``."""
    x1 = np.asarray(generated, dtype=np.float32).astype(np.float64)
    x2 = np.asarray(real, dtype=np.float32).astype(np.float64)
    sigma, sigma_w = _cov_unbiased(x1), _cov_unbiased(x2)
    sqrt_sigma = _tf_gan_sqrt(sigma)
    trace_sqrt = np.trace(_tf_gan_sqrt(sqrt_sigma @ (sigma_w @ sqrt_sigma)))
    mean = np.sum((x1.mean(axis=0) - x2.mean(axis=0)) ** 2)
    return float(np.trace(sigma + sigma_w) - 2.0 * trace_sqrt + mean)


# ---------------------------------------------------------------- Inception Scores


def inception_score_stylegan_v(probs: np.ndarray, num_gen: int, splits: int) -> tuple[float, float]:
    """StyleGAN-V compute_isv on float32 probabilities ``(num_gen, K)``, exactly its numpy calls:
    ``RandomState(42).shuffle``; split ``i`` is ``probs[i * num_gen // splits : (i + 1) * num_gen //
    splits]``;
    ``exp(mean(sum(part * (log(part) - log(mean(part, axis=0, keepdims=True))), axis=1)))``; returns
    ``(float(mean(scores)), float(std(scores)))``. A probability of exactly 0 makes it NaN, as there."""
    probs = np.array(probs, dtype=np.float32, copy=True)
    np.random.RandomState(STYLEGAN_V_IS_SHUFFLE_SEED).shuffle(probs)
    scores = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(splits):
            part = probs[i * num_gen // splits : (i + 1) * num_gen // splits]
            kl = part * (np.log(part) - np.log(np.mean(part, axis=0, keepdims=True)))
            kl = np.mean(np.sum(kl, axis=1))
            scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def inception_score_tgan2(probs: np.ndarray, splits: int = 1) -> tuple[float, float]:
    """tgan2 ``inception_score`` on float64 probabilities ``(n, K)``: split ``i`` is
    ``ys[i * n // splits : (i + 1) * n // splits] + 1e-20``;
    ``exp(mean(sum(part * (log(part) - log(expand_dims(mean(part, 0), 0))), 1)))``; (mean, std)."""
    ys = np.asarray(probs, dtype=np.float64)
    n = ys.shape[0]
    scores = np.empty(splits, dtype=np.float64)
    for i in range(splits):
        part = ys[(i * n // splits) : ((i + 1) * n // splits), :] + TGAN2_IS_EPS
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        scores[i] = np.exp(np.mean(np.sum(kl, 1)))
    return float(np.mean(scores)), float(np.std(scores))
