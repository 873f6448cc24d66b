"""StyleGAN-V (Skorokhodov, Tulyakov and Elhoseiny, CVPR 2022): a continuous-time video generator.

Written from the paper and the authors' public configuration (universome/stylegan-v); the layer
shapes, loop order and constants are theirs, so their checkpoints convert exactly
(:mod:`vganzoo.convert.stylegan_v`). Layout: videos ``(N, C, T, H, W)``; frame times in frames of
the training data (``fps`` frames per second), fractional times allowed.

Generator ``stylegan-v/generator``
    A StyleGAN2 generator (mapping network, modulated / demodulated 3x3 convolutions, optional
    noise inputs, skip-to-RGB outputs, see :mod:`vganzoo.nn.stylegan2`) that renders every frame
    independently from the content code ``w = mapping(z)`` and a continuous time embedding fed at
    its 4x4 input (concatenated to the learned constant). The time embedding comes from the motion
    encoder (:class:`~vganzoo.nn.continuous_time.MotionEncoder`): random motion codes ``motion_z``
    placed every ``motion_z_distance`` frames along time, convolved, interpolated at each frame's
    time and turned into sine / cosine features of it, continuous across code boundaries. Frames can
    be rendered at any time, so clips of any length and frame rate are sampled from the same
    latents, and the first frames of a clip do not depend on its length
    (:meth:`StyleGANVGenerator.sample_latents` draws the motion codes of each video from its own
    random stream, in a fixed order along time).

Discriminator ``stylegan-v/discriminator`` (role ``"video"``)
    A StyleGAN2 ResNet discriminator that scores ``sparse_frames`` (3) frames of a clip together: the
    frames go through the blocks separately down to ``concat_res`` (16x16), are concatenated along
    channels (each with ``1 / frames_div_factor`` of the channels) and go on as one image. The time
    differences between the frames (a learned embedding per whole-frame difference plus fixed
    sine/cosine features, :class:`~vganzoo.nn.continuous_time.TimeDifferenceEmbedding`) condition
    its projection head through a mapping network, with the class one-hot for conditional models.
    Given a whole clip it picks the frames itself (at random in training, as the authors' data
    loader does: a span from (2, 4, 8, 16, 32) up to ``max_dist`` and the clip length, a random
    start and random middle frames; evenly in eval mode); given ``frame_times`` (what the generator
    rendered) it scores exactly those frames.

Sparse training: the generator renders only ``sparse_frames`` frames per clip at random times (in
training mode, :meth:`StyleGANVGenerator.sample_latents` draws them with the authors' sampler,
:func:`~vganzoo.nn.continuous_time.random_frame_times`, over videos of ``max_frames`` frames, with a
fractional start) and returns their times as the latent
``frame_times``; the trainer passes them on to the discriminator (:mod:`vganzoo.train.frame_times`).

Configs: :data:`DEFAULT_CONFIG` is the paper's 256x256 model (the authors' default configuration, its
parameter counts equal theirs: generator 32,105,941 = mapping 525,312 + synthesis with the motion
encoder 31,580,629; discriminator 25,333,568). :data:`DIGITS_CONFIG` is a small 32x32 one-channel
model that trains on the built-in moving digits on a CPU. ``width`` multiplies the convolution
channels (the authors' ``fmaps``: ``channels(res) = min(channel_base // res, channel_max)``).
``frames`` is the default sample length and the length of the real clips the trainer loads; the
spans drawn in training go up to ``min(max_dist, frames - 1)``, so the authors' spans up to 32
frames need ``frames=33`` (the default 16 gives spans 2, 4 and 8).

Recipe (:func:`make_recipe`): the non-saturating loss, R1 on real clips every 16 iterations with a
16x weight (lazy regularisation; ``gamma = 0.0002 * resolution^2 / batch``, the authors' "auto"
setting, divided by the number of frames since their penalty averages over the frames of a clip),
Adam with their learning rates and betas as lazy regularisation leaves them (G: 0.0025 * 4/5, betas
(0, 0.99^(4/5)); D: 0.0025 * 16/17, betas (0, 0.99^(16/17))), an EMA of the generator with a
half-life of 10k images per 32 in the batch. Mixed precision on a GPU: ``vganzoo train --amp``
(bfloat16 autocast; the authors ran the top four resolutions in float16). Not reproduced: their
adaptive augmentation (ADA) and x-flips of the data.

Released checkpoints: the authors' trained networks are pickles in a folder on a file host linked
from their README ("Pre-trained checkpoints", ``https://disk.yandex.ru/d/v7MS7zu4mmZxXw``), not on
the Hugging Face Hub, so no weight set is registered here; they stay with the user until published:
``vganzoo convert stylegan-v network-snapshot.pkl OUT`` turns one into a weight set for
``vganzoo.load("local-dir:OUT")`` (resolutions 256 and 1024 convert alike: the channel ladder is read
from the file).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import torch
from einops import rearrange
from torch import nn

from ..errors import short_repr
from ..nn.continuous_time import (
    MOTION_CODE_CHUNK,
    MOTION_LR_MULTIPLIER,
    TOTAL_DISTS,
    MotionEncoder,
    TimeDifferenceEmbedding,
    allowed_spans,
    draw_motion_codes,
    linspaced_frequencies,
    log_spaced_frequencies,
    random_frame_times,
)
from ..nn.stylegan2 import (
    INPUT_SIZE,
    DiscriminatorBlock,
    DiscriminatorEpilogue,
    MappingNetwork,
    SynthesisBlock,
    channel_ladder,
    fused_modconv,
    synthesis_blocks,
    synthesize,
)
from ..registry import register_component, register_model
from .base import (
    DiscriminatorOutput,
    VideoGAN,
    check_flags,
    check_labels,
    check_output_memory,
    draw_labels,
    make_generator,
    one_hot,
    require,
)
from .common import (
    SHARED_KEYS,
    check_latent,
    check_positive_ints,
    check_shared_config,
    check_video,
    is_int,
    is_number,
)

__all__ = [
    "DEFAULT_CONFIG",
    "DIGITS_CONFIG",
    "TOTAL_DISTS",
    "MotionEncoder",
    "StyleGANV",
    "StyleGANVDiscriminator",
    "StyleGANVGenerator",
    "TimeDifferenceEmbedding",
    "make_recipe",
    "random_frame_times",
]
# Defined here before they moved to nn (vganzoo.nn.continuous_time, vganzoo.nn.stylegan2), and still
# importable from here.
__all__ += [
    "MOTION_CODE_CHUNK",
    "MOTION_LR_MULTIPLIER",
    "SynthesisBlock",
    "allowed_spans",
    "channel_ladder",
    "linspaced_frequencies",
    "log_spaced_frequencies",
]

PAPER = (
    "Skorokhodov, Tulyakov, Elhoseiny: StyleGAN-V: A Continuous Video Generator with the Price, Image "
    "Quality and Perks of StyleGAN2 (CVPR 2022)"
)
RESOLUTIONS = (32, 64, 128, 256, 512, 1024)
MIN_FPS, MAX_FPS = 0.01, 1000.0  # frame rates of the data and of sample(fps=...): the CLI's --fps bounds
MAX_CLIP_FRAMES = 1_000_000  # sample(frames=...): far past any use; memory is checked as well
MOTION_CODE_BYTES = 4  # float32 motion codes, drawn on the CPU whatever the device
FRAMES_PER_PASS = 32  # frames of each video rendered in one synthesis pass (long clips go in chunks)

DEFAULT_CONFIG: dict[str, Any] = {
    "resolution": 256,
    "frames": 16,  # the training clips' length and the default number of sampled frames
    "channels": 3,
    "width": 1.0,
    "num_classes": 0,
    "fps": 25.0,  # frame rate of the training data: sample(fps=...) is relative to it
    "z_dim": 512,
    "w_dim": 512,
    "mapping_layers": 2,
    "channel_base": 16384,  # 32768 * fmaps, fmaps = 0.5 below 512x512
    "channel_max": 512,
    "conv_clamp": 256,
    "use_noise": False,
    "motion_z_dim": 512,
    "motion_v_dim": 512,
    "motion_z_distance": 16,
    "motion_kernel_size": 11,
    "time_dim": 256,  # sine/cosine pairs of the generator's time embedding
    "time_min_period": 16,
    "time_max_period": 1024,
    "max_frames": 1024,  # longest training video: random generator times and the D's difference table
    "sparse_frames": 3,
    "max_dist": 32,
    "time_embed_dim": 256,  # the discriminator's learned embedding per time difference
    "concat_res": 16,
    "frames_div_factor": 2,
    "mbstd_group_size": 4,
    "mbstd_channels": 1,
    "d_mapping_layers": 2,
}

# A small model for the built-in moving digits on a CPU: vganzoo.create("stylegan-v", **DIGITS_CONFIG).
DIGITS_CONFIG: dict[str, Any] = {
    "resolution": 32,
    "frames": 16,
    "channels": 1,
    "width": 0.0625,  # 32 channels at every resolution
    "fps": 8.0,
    "z_dim": 128,
    "w_dim": 128,
    "motion_z_dim": 128,
    "motion_v_dim": 128,
    "motion_z_distance": 8,
    "motion_kernel_size": 5,
    "time_dim": 64,
    "time_min_period": 8,
    "time_max_period": 256,
    "max_frames": 64,
    "time_embed_dim": 32,
}

# ------------------------------------------------------------------------------------------------
# recipe
# ------------------------------------------------------------------------------------------------
BASE_LR = 0.0025
ADAM_BETA2 = 0.99
G_REG_INTERVAL = 4  # lazy regularisation intervals of the authors' loop (G has no regulariser here,
D_REG_INTERVAL = 16  # but its optimiser settings are still the lazily regularised ones)
R1_GAMMA_PER_PIXEL = 0.0002  # their "auto" gamma: 0.0002 * resolution^2 / batch
EMA_IMAGES_PER_BATCH_IMAGE = 10_000 / 32  # EMA half-life in images: 10k per 32 in the batch


def _lazy_adam(interval: int) -> dict[str, Any]:
    ratio = interval / (interval + 1)
    return {"name": "adam", "lr": BASE_LR * ratio, "betas": [0.0, ADAM_BETA2**ratio], "eps": 1e-8}


def make_recipe(resolution: int, *, batch_size: int | None = None, sparse_frames: int = 3) -> dict[str, Any]:
    """The authors' training recipe for ``resolution`` (see the module docstring)."""
    if batch_size is None:
        batch_size = 64 if resolution >= 128 else 16
    gamma = R1_GAMMA_PER_PIXEL * resolution**2 / batch_size
    return {
        "adversarial_loss": "bce",  # D: softplus(-real) + softplus(fake); G: softplus(-fake)
        "d_steps": 1,
        "batch_size": batch_size,
        "optimizers": {"generator": _lazy_adam(G_REG_INTERVAL), "discriminators": _lazy_adam(D_REG_INTERVAL)},
        # ours is weight/2 * ||grad over the clip's frames||^2, theirs gamma/2 * mean over the frames
        "regularizers": [
            {"name": "r1", "weight": gamma / sparse_frames * D_REG_INTERVAL, "every": D_REG_INTERVAL}
        ],
        "category_loss_weight": 0.0,
        "ema": {"decay": 0.5 ** (1 / EMA_IMAGES_PER_BATCH_IMAGE)},
        "frame_stride": 1,
    }


RECIPE = make_recipe(DEFAULT_CONFIG["resolution"], sparse_frames=DEFAULT_CONFIG["sparse_frames"])


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _class_codes(
    labels: Any, n: int, num_classes: int, owner: str, like: torch.Tensor
) -> torch.Tensor | None:
    """One-hot class codes (n, num_classes) in ``like``'s dtype and device; None when unconditional."""
    labels = check_labels(labels, n, num_classes, owner=owner, required=True, device=like.device)
    return None if labels is None else one_hot(labels, num_classes, like.dtype)


# ------------------------------------------------------------------------------------------------
# generator
# ------------------------------------------------------------------------------------------------
@register_component("generator", "stylegan-v/generator")
class StyleGANVGenerator(nn.Module):
    """The StyleGAN-V generator (see the module docstring).

    Latent codes (``forward`` keywords, drawn by :meth:`sample_latents`):
        z: ``(N, z_dim)``, the content code, N(0, I).
        motion_z: ``(N, L, motion_z_dim)``, motion codes every ``motion_z_distance`` frames, N(0, I).
        frame_times: ``(N, T)``, the times of the frames to render (frames of the training data).
        labels: ``(N,)`` int64 classes (conditional models only).

    Output: ``(N, channels, T, resolution, resolution)``, unbounded (StyleGAN2 has no output
    nonlinearity; ``sample()`` clamps to [-1, 1]).
    """

    content_latents = ("z",)
    motion_latents = ("motion_z",)

    def __init__(
        self,
        *,
        resolution: int = DEFAULT_CONFIG["resolution"],
        frames: int = DEFAULT_CONFIG["frames"],
        channels: int = DEFAULT_CONFIG["channels"],
        width: float = DEFAULT_CONFIG["width"],
        num_classes: int = DEFAULT_CONFIG["num_classes"],
        fps: float = DEFAULT_CONFIG["fps"],
        z_dim: int = DEFAULT_CONFIG["z_dim"],
        w_dim: int = DEFAULT_CONFIG["w_dim"],
        mapping_layers: int = DEFAULT_CONFIG["mapping_layers"],
        channel_base: int = DEFAULT_CONFIG["channel_base"],
        channel_max: int = DEFAULT_CONFIG["channel_max"],
        conv_clamp: float | None = DEFAULT_CONFIG["conv_clamp"],
        use_noise: bool = DEFAULT_CONFIG["use_noise"],
        motion_z_dim: int = DEFAULT_CONFIG["motion_z_dim"],
        motion_v_dim: int = DEFAULT_CONFIG["motion_v_dim"],
        motion_z_distance: float = DEFAULT_CONFIG["motion_z_distance"],
        motion_kernel_size: int = DEFAULT_CONFIG["motion_kernel_size"],
        time_dim: int = DEFAULT_CONFIG["time_dim"],
        time_min_period: float = DEFAULT_CONFIG["time_min_period"],
        time_max_period: float = DEFAULT_CONFIG["time_max_period"],
        max_frames: int = DEFAULT_CONFIG["max_frames"],
        sparse_frames: int = DEFAULT_CONFIG["sparse_frames"],
        max_dist: int = DEFAULT_CONFIG["max_dist"],
    ) -> None:
        super().__init__()
        _check_generator_config("stylegan-v/generator", locals())
        self.resolution, self.frames, self.channels = resolution, frames, channels
        self.num_classes, self.fps, self.z_dim, self.w_dim = num_classes, float(fps), z_dim, w_dim
        self.motion_z_dim, self.max_frames = motion_z_dim, max_frames
        self.sparse_frames, self.max_dist = sparse_frames, max_dist

        ladder = channel_ladder(resolution, width=width, channel_base=channel_base, channel_max=channel_max)
        self.motion = MotionEncoder(
            motion_z_dim=motion_z_dim,
            motion_v_dim=motion_v_dim,
            c_dim=num_classes,
            kernel_size=motion_kernel_size,
            distance=motion_z_distance,
            time_dim=time_dim,
            min_period=time_min_period,
            max_period=time_max_period,
        )
        self.const = nn.Parameter(torch.randn(1, ladder[INPUT_SIZE], INPUT_SIZE, INPUT_SIZE))
        self.blocks = synthesis_blocks(
            ladder,
            input_channels=ladder[INPUT_SIZE] + self.motion.out_dim,
            w_dim=w_dim,
            channels=channels,
            conv_clamp=conv_clamp,
            use_noise=use_noise,
        )
        self.num_ws = sum(b.num_conv for b in self.blocks) + 1  # see synthesize()
        self.mapping = MappingNetwork(
            z_dim, num_classes, w_dim, num_ws=self.num_ws, num_layers=mapping_layers
        )

    # -- latents ---------------------------------------------------------------------------------
    def clip_times(self, frames: int | None = None, fps: float | None = None) -> torch.Tensor:
        """(frames,) times of a clip sampled at ``fps`` frames per second (default: the data's rate)."""
        frames = self.frames if frames is None else frames
        fps = self.fps if fps is None else fps
        if not is_int(frames) or not 1 <= frames <= MAX_CLIP_FRAMES:
            raise ValueError(f"frames must be an int from 1 to {MAX_CLIP_FRAMES:,}, got {short_repr(frames)}")
        if not is_number(fps) or not MIN_FPS <= fps <= MAX_FPS:
            raise ValueError(f"fps must be a number from {MIN_FPS} to {MAX_FPS}, got {short_repr(fps)}")
        step = self.fps / float(fps)
        return torch.arange(frames, dtype=torch.float64).mul(step).float()

    def draw_motion_codes(self, seeds: list[int], count: int) -> torch.Tensor:
        """(len(seeds), count, motion_z_dim) motion codes, see :func:`draw_motion_codes`."""
        return draw_motion_codes(seeds, count, self.motion_z_dim)

    def sample_latents(
        self,
        n: int,
        *,
        generator: torch.Generator,
        labels: torch.Tensor | None = None,
        frames: int | None = None,
        fps: float | None = None,
    ) -> dict[str, torch.Tensor]:
        """Draw every random input on the CPU from ``generator``.

        With ``frames`` / ``fps`` (or in eval mode): the clip's ``frames`` frames at ``fps`` (defaults:
        the config's). In training mode without them: ``sparse_frames`` frames per clip at random
        times (sparse training). Returns ``z``, ``motion_z``, ``frame_times`` and, when conditional,
        ``labels`` (uniform when not given). Nothing drawn depends on the clip's length, so the same
        seed gives the same start for any ``frames``.
        """
        if not is_int(n) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        latents: dict[str, torch.Tensor] = {"z": torch.randn(n, self.z_dim, generator=generator)}
        labels = draw_labels(n, self.num_classes, labels, generator)
        if labels is not None:
            latents["labels"] = labels
        motion_seeds = torch.randint(0, 2**62, (n,), generator=generator).tolist()
        if self.training and frames is None and fps is None:
            times = random_frame_times(
                n,
                num_frames=self.sparse_frames,
                clip_frames=self.max_frames,
                max_dist=min(self.max_dist, self.frames - 1),
                fractional=True,
                generator=generator,
            )
        else:
            times = self.clip_times(frames, fps).expand(n, -1).clone()
        max_time = float(times.max()) if times.numel() else 0.0
        latents["motion_z"] = self.draw_motion_codes(
            motion_seeds, self.motion.codes_needed(max_time, self.max_frames)
        )
        latents["frame_times"] = times
        return latents

    # -- forward ---------------------------------------------------------------------------------
    def forward(
        self,
        z: torch.Tensor,
        motion_z: torch.Tensor,
        frame_times: torch.Tensor,
        labels: Any = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str | None = None,
    ) -> torch.Tensor:
        """Render the frames at ``frame_times`` (see the class docstring for the shapes).

        ``noise_mode`` (models with noise inputs): "random", "const" or "none"; default "random" in
        training and "const" in eval mode.
        """
        check_latent(z, "z", ("N", self.z_dim))
        n = z.shape[0]
        check_latent(motion_z, "motion_z", (n, "L", self.motion_z_dim))
        check_latent(frame_times, "frame_times", (n, "T"))
        t = frame_times.shape[1]
        if t < 1:
            raise ValueError("frame_times must hold at least one time per video (shape (N, T >= 1))")
        if noise_mode is None:
            noise_mode = "random" if self.training else "const"
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        c = _class_codes(labels, n, self.num_classes, "stylegan-v/generator", z)
        self.motion.check_codes(motion_z, frame_times)
        if n == 0:
            return z.new_zeros(0, self.channels, t, self.resolution, self.resolution)
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        fused = fused_modconv(z, self.training)
        clips = []
        for start in range(0, t, FRAMES_PER_PASS):
            times = frame_times[:, start : start + FRAMES_PER_PASS]
            clips.append(self._render(ws, motion_z, times, c, fused=fused, noise_mode=noise_mode))
        return torch.cat(clips, dim=2) if len(clips) > 1 else clips[0]

    def _render(
        self,
        ws: torch.Tensor,
        motion_z: torch.Tensor,
        times: torch.Tensor,
        c: torch.Tensor | None,
        *,
        fused: bool,
        noise_mode: str,
    ) -> torch.Tensor:
        n, t = times.shape
        time_embedding = self.motion(motion_z, times, c)  # (N*T, 2 * time_dim)
        ws = ws.repeat_interleave(t, dim=0)  # (N*T, num_ws, w_dim)
        x = torch.cat(
            [
                self.const.to(time_embedding.dtype).expand(n * t, -1, -1, -1),
                time_embedding[:, :, None, None].expand(-1, -1, INPUT_SIZE, INPUT_SIZE),
            ],
            dim=1,
        )
        img = synthesize(self.blocks, x, ws, fused=fused, noise_mode=noise_mode)
        return rearrange(img, "(n t) c h w -> n c t h w", t=t)


# ------------------------------------------------------------------------------------------------
# discriminator
# ------------------------------------------------------------------------------------------------
@register_component("discriminator", "stylegan-v/discriminator")
class StyleGANVDiscriminator(nn.Module):
    """The StyleGAN-V discriminator (see the module docstring).

    ``forward(video (N, C, T, H, W), labels (N,) | None, frame_times (N, T) | None)`` ->
    ``DiscriminatorOutput(logits (N,))``. With ``T == sparse_frames`` every frame is scored;
    longer clips have their frames picked (random in training, even in eval).
    """

    role = "video"

    def __init__(
        self,
        *,
        resolution: int = DEFAULT_CONFIG["resolution"],
        frames: int = DEFAULT_CONFIG["frames"],
        channels: int = DEFAULT_CONFIG["channels"],
        width: float = DEFAULT_CONFIG["width"],
        num_classes: int = DEFAULT_CONFIG["num_classes"],
        channel_base: int = DEFAULT_CONFIG["channel_base"],
        channel_max: int = DEFAULT_CONFIG["channel_max"],
        conv_clamp: float | None = DEFAULT_CONFIG["conv_clamp"],
        max_frames: int = DEFAULT_CONFIG["max_frames"],
        sparse_frames: int = DEFAULT_CONFIG["sparse_frames"],
        max_dist: int = DEFAULT_CONFIG["max_dist"],
        time_embed_dim: int = DEFAULT_CONFIG["time_embed_dim"],
        concat_res: int = DEFAULT_CONFIG["concat_res"],
        frames_div_factor: int = DEFAULT_CONFIG["frames_div_factor"],
        mbstd_group_size: int = DEFAULT_CONFIG["mbstd_group_size"],
        mbstd_channels: int = DEFAULT_CONFIG["mbstd_channels"],
        d_mapping_layers: int = DEFAULT_CONFIG["d_mapping_layers"],
    ) -> None:
        super().__init__()
        _check_discriminator_config("stylegan-v/discriminator", locals())
        self.resolution, self.channels, self.num_classes = resolution, channels, num_classes
        self.sparse_frames, self.max_dist, self.concat_res = sparse_frames, max_dist, concat_res
        ladder = channel_ladder(resolution, width=width, channel_base=channel_base, channel_max=channel_max)
        self.block_resolutions = [2**i for i in range(int(math.log2(resolution)), 2, -1)]  # R ... 8
        self.blocks = _discriminator_blocks(
            ladder,
            self.block_resolutions,
            concat_res=concat_res,
            frames_div_factor=frames_div_factor,
            sparse_frames=sparse_frames,
            channels=channels,
            conv_clamp=conv_clamp,
        )
        self.time_embedding = TimeDifferenceEmbedding(max_frames, time_embed_dim)
        cmap_dim = ladder[INPUT_SIZE]
        self.mapping = MappingNetwork(
            0,
            num_classes + self.time_embedding.dim(sparse_frames),
            cmap_dim,
            num_ws=None,
            num_layers=d_mapping_layers,
            w_avg_beta=None,
        )
        self.epilogue = DiscriminatorEpilogue(
            ladder[INPUT_SIZE],
            cmap_dim,
            mbstd_group_size=mbstd_group_size,
            mbstd_channels=mbstd_channels,
            conv_clamp=conv_clamp,
        )

    def pick_frames(self, n: int, clip_frames: int, device: torch.device) -> torch.Tensor:
        """(n, sparse_frames) indices of the frames to score in clips of ``clip_frames`` frames: the
        authors' random sampler in training (torch's global random generator), evenly spread over the
        longest allowed span in eval mode."""
        if self.training:
            times = random_frame_times(
                n, num_frames=self.sparse_frames, clip_frames=clip_frames, max_dist=self.max_dist
            )
            return times.long().to(device)
        span = allowed_spans(self.sparse_frames, clip_frames, self.max_dist)[-1]
        index = torch.linspace(0, span, self.sparse_frames, dtype=torch.float64).round().long()
        return index.to(device).expand(n, -1)

    def forward(
        self, video: torch.Tensor, labels: Any = None, frame_times: torch.Tensor | None = None
    ) -> DiscriminatorOutput:
        name = "stylegan-v/discriminator"
        check_video(video, name=name, channels=self.channels, resolution=self.resolution)
        n, c, t, h, w = video.shape
        k = self.sparse_frames
        if t < k:
            raise ValueError(f"{name}: needs clips of at least {k} frames (sparse_frames), got {t}")
        if frame_times is None:
            frame_times = torch.arange(t, device=video.device, dtype=video.dtype).expand(n, t)
        else:
            check_latent(frame_times, "frame_times", (n, t))
            frame_times = frame_times.to(video.device)
        cond = _class_codes(labels, n, self.num_classes, name, video)
        if n == 0:
            return DiscriminatorOutput(video.new_zeros(0))
        if t > k:
            index = self.pick_frames(n, t, video.device)
            video = video.gather(2, index.view(n, 1, k, 1, 1).expand(n, c, k, h, w))
            frame_times = frame_times.gather(1, index)
        embedding = self.time_embedding(frame_times)
        cond = embedding if cond is None else torch.cat([cond, embedding.to(cond.dtype)], dim=1)
        img = rearrange(video, "n c k h w -> (n k) c h w")
        x = None
        for res, block in zip(self.block_resolutions, self.blocks):
            if res == self.concat_res:  # the frames of a clip become one image
                x = rearrange(x, "(n k) c h w -> n (k c) h w", k=k)
            x = block(x, img)
        cmap = self.mapping(None, cond)
        return DiscriminatorOutput(self.epilogue(x, cmap))


def _discriminator_blocks(
    ladder: dict[int, int],
    block_resolutions: list[int],
    *,
    concat_res: int,
    frames_div_factor: int,
    sparse_frames: int,
    channels: int,
    conv_clamp: float | None,
) -> nn.ModuleList:
    """The discriminator's ResNet blocks, one per resolution R ... 8; the frames of a clip go through
    them apart, each with ``1 / frames_div_factor`` of the channels, and are concatenated along
    channels at ``concat_res``."""
    resolution = block_resolutions[0]
    blocks = []
    for res in block_resolutions:
        in_channels = ladder[res] if res < resolution else 0
        out_channels = ladder[res // 2]
        if res // 2 == concat_res:
            out_channels //= frames_div_factor
        if res == concat_res:
            in_channels = in_channels // frames_div_factor * sparse_frames
        blocks.append(
            DiscriminatorBlock(
                in_channels, ladder[res], out_channels, channels=channels, conv_clamp=conv_clamp
            )
        )
    return nn.ModuleList(blocks)


# ------------------------------------------------------------------------------------------------
# config checks (InvalidConfigError naming the component and the keyword)
# ------------------------------------------------------------------------------------------------
# the keywords that must be positive ints: of both networks, the generator's, the discriminator's
COMMON_INTS = ("channel_base", "channel_max", "max_frames", "sparse_frames", "max_dist")
GENERATOR_INTS = (
    "z_dim",
    "w_dim",
    "mapping_layers",
    "motion_z_dim",
    "motion_v_dim",
    "motion_kernel_size",
    "time_dim",
)
DISCRIMINATOR_INTS = ("time_embed_dim", "frames_div_factor", "mbstd_group_size", "d_mapping_layers")


def _pick(args: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: args[key] for key in keys}


def _check_generator_config(name: str, args: Mapping[str, Any]) -> None:
    """Check the generator's constructor arguments (``args``: its ``locals()``)."""
    _check_common(name, args, fps=args["fps"])
    check_positive_ints(name, **_pick(args, GENERATOR_INTS))
    for key in ("motion_z_distance", "time_min_period", "time_max_period"):
        value = args[key]
        require(is_number(value) and value > 0, f"{name}: {key} must be a positive number, got {value!r}")
    use_noise = args["use_noise"]
    require(isinstance(use_noise, bool), f"{name}: use_noise must be true or false, got {use_noise!r}")


def _check_discriminator_config(name: str, args: Mapping[str, Any]) -> None:
    """Check the discriminator's constructor arguments (``args``: its ``locals()``)."""
    _check_common(name, args, fps=1.0)
    check_positive_ints(name, **_pick(args, DISCRIMINATOR_INTS))
    mbstd_channels, resolution, concat_res = args["mbstd_channels"], args["resolution"], args["concat_res"]
    require(
        is_int(mbstd_channels) and mbstd_channels >= 0,
        f"{name}: mbstd_channels must be a non-negative int, got {mbstd_channels!r}",
    )
    require(
        concat_res in [2**i for i in range(int(math.log2(resolution)) - 1, 2, -1)],  # R/2 ... 8
        f"{name}: concat_res must be a power of two in [8, {resolution // 2}] (below the resolution), "
        f"got {concat_res!r}",
    )
    ladder = channel_ladder(
        resolution, width=args["width"], channel_base=args["channel_base"], channel_max=args["channel_max"]
    )
    frames_div_factor = args["frames_div_factor"]
    for res in (concat_res, concat_res * 2):
        require(
            ladder[res] % frames_div_factor == 0,
            f"{name}: frames_div_factor {frames_div_factor} must divide the {ladder[res]} channels at "
            f"{res}x{res}",
        )


def _check_common(component: str, args: Mapping[str, Any], *, fps: Any) -> None:
    """The checks of the keywords both networks take."""
    check_shared_config(component, **_pick(args, SHARED_KEYS), resolutions=RESOLUTIONS)
    check_positive_ints(component, **_pick(args, COMMON_INTS))
    conv_clamp, frames = args["conv_clamp"], args["frames"]
    max_frames, sparse_frames, max_dist = args["max_frames"], args["sparse_frames"], args["max_dist"]
    require(
        conv_clamp is None or (is_number(conv_clamp) and conv_clamp > 0),
        f"{component}: conv_clamp must be a positive number or null, got {conv_clamp!r}",
    )
    require(
        is_number(fps) and MIN_FPS <= fps <= MAX_FPS,
        f"{component}: fps must be a number from {MIN_FPS} to {MAX_FPS}, got {fps!r}",
    )
    require(sparse_frames >= 2, f"{component}: sparse_frames must be at least 2, got {sparse_frames}")
    require(
        max_frames <= MAX_CLIP_FRAMES,
        f"{component}: max_frames must be at most {MAX_CLIP_FRAMES:,}, got {max_frames:,}",
    )
    require(
        frames >= sparse_frames and max_frames >= frames,
        f"{component}: need sparse_frames ({sparse_frames}) <= frames ({frames}) <= max_frames "
        f"({max_frames})",
    )
    require(
        bool(allowed_spans(sparse_frames, frames, max_dist)),
        f"{component}: no span between {sparse_frames} sparse frames fits clips of {frames} frames with "
        f"max_dist {max_dist}",
    )


# ------------------------------------------------------------------------------------------------
# the model
# ------------------------------------------------------------------------------------------------
class StyleGANV(VideoGAN):
    """A :class:`VideoGAN` whose :meth:`sample` renders clips of any length and frame rate."""

    @torch.no_grad()
    def sample(  # type: ignore[override]
        self,
        n: int,
        *,
        seed: int | None = None,
        labels: Any = None,
        device: torch.device | str | None = None,
        use_ema: bool = True,
        return_latents: bool = False,
        frames: int | None = None,
        fps: float | None = None,
        truncation_psi: float = 1.0,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Draw ``n`` videos ``(n, C, frames, H, W)`` in [-1, 1] (see :meth:`VideoGAN.sample`).

        Args:
            frames: clip length (default: the config's ``frames``).
            fps: frame rate relative to the training data's ``fps`` (default: the same; 2x it renders
                twice as many frames per second of motion). The first frames of a clip are the same
                for any ``frames`` (same seed, ``n`` and ``fps``).
            truncation_psi: pulls w towards its running average (1: no truncation).
        """
        if not is_int(n) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        if not is_number(truncation_psi):
            raise ValueError(f"truncation_psi must be a number, got {truncation_psi!r}")
        check_flags(use_ema=use_ema, return_latents=return_latents)
        gen_module, device, dtype = self._sampling_generator(use_ema, device)
        gen_module.clip_times(frames, fps)  # checks frames and fps
        labels = check_labels(labels, n, self.num_classes)
        _check_clip_memory(gen_module, n, device, frames, fps)
        latents = gen_module.sample_latents(
            n,
            generator=make_generator(seed),
            labels=labels,
            frames=frames if frames is not None else gen_module.frames,
            fps=fps if fps is not None else gen_module.fps,
        )
        # latents follow the model's dtype; frame times stay in float32 at least (bfloat16 would round
        # the times of long clips to every 2nd, 4th... frame)
        dtype = dtype or torch.float32
        dtypes = {k: dtype for k, v in latents.items() if v.is_floating_point()}
        dtypes["frame_times"] = torch.promote_types(dtype, torch.float32)
        latents = {k: v.to(device=device, dtype=dtypes.get(k)) for k, v in latents.items()}
        videos = self._run_generator(gen_module, latents, truncation_psi=truncation_psi)
        return (videos, latents) if return_latents else videos


def _check_clip_memory(
    generator: StyleGANVGenerator, n: int, device: torch.device, frames: int | None, fps: float | None
) -> None:
    """Refuse clips whose motion codes (their count grows as frames x data fps / fps) or output
    cannot fit in memory, before drawing anything."""
    from ..resources import check_memory

    frames = generator.frames if frames is None else frames
    fps = generator.fps if fps is None else float(fps)
    max_time = (frames - 1) * generator.fps / fps
    codes = generator.motion.codes_needed(max_time, generator.max_frames)
    check_memory(
        n * codes * generator.motion_z_dim * MOTION_CODE_BYTES,
        f"sample: n={n} videos of {frames} frames at fps={fps:g} ({codes:,} motion codes each)",
        advice="sample fewer or shorter videos, or at a higher fps",
    )
    check_output_memory(generator, n, device, frames=frames)


def _kwargs_for(component: type[nn.Module], config: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``config`` that ``component``'s constructor takes."""
    return {k: config[k] for k in component.__init__.__kwdefaults__ or {}}


@register_model(
    "stylegan-v",
    family="stylegan_v",
    paper=PAPER,
    default_config=DEFAULT_CONFIG,
    recipe=RECIPE,
)
def stylegan_v(**config: Any) -> StyleGANV:
    """StyleGAN-V: a continuous-time StyleGAN2 video generator, sparse-frame discriminator (CVPR 2022)."""
    generator = StyleGANVGenerator(**_kwargs_for(StyleGANVGenerator, config))
    discriminator = StyleGANVDiscriminator(**_kwargs_for(StyleGANVDiscriminator, config))
    recipe = make_recipe(config["resolution"], sparse_frames=config["sparse_frames"])
    return StyleGANV(generator, {discriminator.role: discriminator}, recipe=copy.deepcopy(recipe))
