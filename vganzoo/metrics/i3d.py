"""Inflated Inception-V1 (I3D, Carreira and Zisserman 2017), the feature extractor of FVD.

Our own PyTorch definition of the RGB I3D as trained on Kinetics-400 and used by FVD (Unterthiner et
al. 2018): 16-frame clips, frames bilinearly resized to 224x224, values in [-1, 1]; the features are
the 400 logits averaged over time. Convolutions and max-pools use TensorFlow's "SAME" padding (split
as floor/ceil before/after, zeros), batch norm has eps 1e-3, the head is a valid (2, 7, 7) average
pool followed by a 1x1x1 convolution with bias. The temporal size after the stem and the three
stride-2 pools must still cover the (2, 7, 7) pool, so a clip needs at least 9 frames at 224 px.

Checkpoint names. The widely distributed PyTorch port (``pytorch-i3d``'s ``rgb_imagenet.pt``,
a state_dict) is mapped onto this module by :func:`map_pytorch_i3d_key`:

    ==============================  ==============================
    pytorch-i3d                     vganzoo
    ==============================  ==============================
    Conv3d_1a_7x7.conv3d.weight     conv1a.conv.weight
    Conv3d_1a_7x7.bn.{weight,...}   conv1a.bn.{weight,...}
    Conv3d_2b_1x1.*, Conv3d_2c_3x3  conv2b.*, conv2c.*
    Mixed_3b.b0.*                   mixed3b.branch0.*
    Mixed_3b.b1a.*, Mixed_3b.b1b.*  mixed3b.branch1_reduce.*, mixed3b.branch1.*
    Mixed_3b.b2a.*, Mixed_3b.b2b.*  mixed3b.branch2_reduce.*, mixed3b.branch2.*
    Mixed_3b.b3b.*                  mixed3b.branch3.*   (after the 3x3x3 max-pool b3a)
    (same for Mixed_3c ... Mixed_5c) (mixed3c ... mixed5c)
    logits.conv3d.{weight,bias}     logits.{weight,bias}
    *.bn.num_batches_tracked        dropped
    module.<key> (DataParallel)     <key>
    ==============================  ==============================

Safetensors files in either naming load (see :mod:`vganzoo.metrics.extractors`); a ``.pt`` state
dict is converted once, explicitly, by ``vganzoo convert i3d`` (:mod:`vganzoo.convert.extractors`).

Two construction options exist for the metric protocols (:mod:`vganzoo.metrics.protocols`):
``bn_eps`` (TensorFlow's I3D uses 1e-3; VideoGPT's copy of pytorch-i3d, which loads
``i3d_pretrained_400.pt``, builds its batch norms with 1e-5) and ``width_divisor`` (every channel
count divided by it: 8 gives a network of the same layout and interface with 1/64 of the compute, so
tests can run the full protocol on a CPU; real checkpoints are width_divisor 1).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..nn import triple
from .preprocess import RGB_CHANNELS, check_videos, resize_frames, to_channels

__all__ = [
    "I3D_INPUT_SIZE",
    "I3D_MIN_FRAMES",
    "I3D_NUM_CLASSES",
    "InceptionI3d",
    "i3d_temporal_output_size",
    "i3d_width_divisor",
    "map_pytorch_i3d_key",
    "map_pytorch_i3d_state_dict",
    "preprocess_i3d",
]

I3D_INPUT_SIZE = 224
I3D_NUM_CLASSES = 400
I3D_MIN_FRAMES = 9
BN_EPS = 1e-3
# (2, 7, 7): the valid average pool before the logits
HEAD_POOL = (2, 7, 7)
# stride-2 temporal reductions: the 7x7x7 stem conv, MaxPool3d_4a, MaxPool3d_5a
TEMPORAL_STRIDE2_STAGES = 3

# name, input channels, (branch0, branch1 reduce, branch1, branch2 reduce, branch2, branch3 proj)
MIXED_BLOCKS: tuple[tuple[str, int, tuple[int, int, int, int, int, int]], ...] = (
    ("mixed3b", 192, (64, 96, 128, 16, 32, 32)),
    ("mixed3c", 256, (128, 128, 192, 32, 96, 64)),
    ("mixed4b", 480, (192, 96, 208, 16, 48, 64)),
    ("mixed4c", 512, (160, 112, 224, 24, 64, 64)),
    ("mixed4d", 512, (128, 128, 256, 24, 64, 64)),
    ("mixed4e", 512, (112, 144, 288, 32, 64, 64)),
    ("mixed4f", 528, (256, 160, 320, 32, 128, 128)),
    ("mixed5b", 832, (256, 160, 320, 32, 128, 128)),
    ("mixed5c", 832, (384, 192, 384, 48, 128, 128)),
)
FEATURE_CHANNELS = 1024
STEM_CHANNELS = 64
CONV2C_CHANNELS = 192
WIDTH_DIVISORS = (1, 2, 4, 8)  # every channel count above is a multiple of 8


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow SAME padding for one axis: (before, after)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    (t0, t1), (h0, h1), (w0, w1) = (_same_padding(s, k, st) for s, k, st in zip(x.shape[2:], kernel, stride))
    return F.pad(x, (w0, w1, h0, h1, t0, t1))


class ConvBNReLU3d(nn.Module):
    """SAME-padded Conv3d (no bias) + BatchNorm3d(eps 1e-3) + ReLU: (N, C_in, T, H, W) -> (N, C_out, T', H',
    W')."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | tuple[int, int, int] = 1,
        stride: int | tuple[int, int, int] = 1,
        bn_eps: float = BN_EPS,
    ) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(triple(kernel, "kernel")), tuple(triple(stride, "stride"))
        self.conv = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, padding=0, bias=False)
        self.bn = nn.BatchNorm3d(out_channels, eps=bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(_pad_same(x, self.kernel, self.stride))))


class MaxPoolSame3d(nn.Module):
    """Max-pool with TensorFlow SAME padding (zeros; inputs are post-ReLU, so zeros never win wrongly)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class MixedBlock(nn.Module):
    """An inflated Inception block: four branches concatenated on channels."""

    def __init__(
        self, in_channels: int, widths: tuple[int, int, int, int, int, int], bn_eps: float = BN_EPS
    ) -> None:
        super().__init__()
        b0, b1r, b1, b2r, b2, b3 = widths
        self.branch0 = ConvBNReLU3d(in_channels, b0, bn_eps=bn_eps)
        self.branch1_reduce = ConvBNReLU3d(in_channels, b1r, bn_eps=bn_eps)
        self.branch1 = ConvBNReLU3d(b1r, b1, kernel=3, bn_eps=bn_eps)
        self.branch2_reduce = ConvBNReLU3d(in_channels, b2r, bn_eps=bn_eps)
        self.branch2 = ConvBNReLU3d(b2r, b2, kernel=3, bn_eps=bn_eps)
        self.branch3_pool = MaxPoolSame3d((3, 3, 3), (1, 1, 1))
        self.branch3 = ConvBNReLU3d(in_channels, b3, bn_eps=bn_eps)
        self.out_channels = b0 + b1 + b2 + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch0(x),
                self.branch1(self.branch1_reduce(x)),
                self.branch2(self.branch2_reduce(x)),
                self.branch3(self.branch3_pool(x)),
            ],
            dim=1,
        )


def i3d_temporal_output_size(frames: int) -> int:
    """Temporal length of the logits for a clip of ``frames`` frames (< 1 means too short)."""
    t = frames
    for _ in range(TEMPORAL_STRIDE2_STAGES):
        t = math.ceil(t / 2)
    return t - HEAD_POOL[0] + 1


class InceptionI3d(nn.Module):
    """RGB I3D. ``forward(x: (N, 3, T, 224, 224) in [-1, 1]) -> (N, num_classes)`` logits averaged over time.

    Use :func:`preprocess_i3d` (or :func:`vganzoo.metrics.extractors.load_extractor`, which applies
    it) to get from arbitrary (N, C, T, H, W) videos to the input this module expects.
    """

    def __init__(
        self,
        num_classes: int = I3D_NUM_CLASSES,
        in_channels: int = RGB_CHANNELS,
        *,
        bn_eps: float = BN_EPS,
        width_divisor: int = 1,
    ) -> None:
        super().__init__()
        if width_divisor not in WIDTH_DIVISORS:
            raise ValueError(f"width_divisor must be one of {WIDTH_DIVISORS}, got {width_divisor!r}")
        w = lambda channels: channels // width_divisor
        self.num_classes, self.bn_eps, self.width_divisor = num_classes, bn_eps, width_divisor
        self.conv1a = ConvBNReLU3d(in_channels, w(STEM_CHANNELS), kernel=7, stride=2, bn_eps=bn_eps)
        self.pool2a = MaxPoolSame3d((1, 3, 3), (1, 2, 2))
        self.conv2b = ConvBNReLU3d(w(STEM_CHANNELS), w(STEM_CHANNELS), bn_eps=bn_eps)
        self.conv2c = ConvBNReLU3d(w(STEM_CHANNELS), w(CONV2C_CHANNELS), kernel=3, bn_eps=bn_eps)
        self.pool3a = MaxPoolSame3d((1, 3, 3), (1, 2, 2))
        self.pool4a = MaxPoolSame3d((3, 3, 3), (2, 2, 2))
        self.pool5a = MaxPoolSame3d((2, 2, 2), (2, 2, 2))
        for name, in_ch, widths in MIXED_BLOCKS:
            self.add_module(name, MixedBlock(w(in_ch), tuple(w(c) for c in widths), bn_eps))
        self.logits = nn.Conv3d(w(FEATURE_CHANNELS), num_classes, kernel_size=1, bias=True)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, 224, 224) -> (N, 1024, T', 1, 1) pooled features before the logits."""
        if i3d_temporal_output_size(x.shape[2]) < 1:
            raise ValueError(
                f"I3D needs clips of at least {I3D_MIN_FRAMES} frames at {I3D_INPUT_SIZE} px, got "
                f"{x.shape[2]} frames"
            )
        x = self.pool2a(self.conv1a(x))
        x = self.pool3a(self.conv2c(self.conv2b(x)))
        x = self.mixed3c(self.mixed3b(x))
        x = self.pool4a(x)
        for name in ("mixed4b", "mixed4c", "mixed4d", "mixed4e", "mixed4f"):
            x = getattr(self, name)(x)
        x = self.pool5a(x)
        x = self.mixed5c(self.mixed5b(x))
        if x.shape[-1] < HEAD_POOL[-1] or x.shape[-2] < HEAD_POOL[-2]:
            raise ValueError(
                f"I3D expects {I3D_INPUT_SIZE}x{I3D_INPUT_SIZE} frames; resize with preprocess_i3d"
            )
        return F.avg_pool3d(x, HEAD_POOL, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.logits(self.features(x))  # (N, classes, T', H', W')
        return logits.mean(dim=(2, 3, 4))


def i3d_width_divisor(tensors: Mapping[str, torch.Tensor]) -> int:
    """The ``width_divisor`` of an I3D state dict in our names (1 for the published checkpoints)."""
    stem = tensors.get("conv1a.conv.weight")
    if stem is None or stem.ndim != 5 or stem.shape[0] < 1 or STEM_CHANNELS % stem.shape[0]:
        return 1  # let the key/shape check report what is wrong
    return STEM_CHANNELS // int(stem.shape[0])


def preprocess_i3d(videos: torch.Tensor) -> torch.Tensor:
    """FVD input: (N, C, T, H, W) in [-1, 1] -> (N, 3, T, 224, 224), bilinear resize (no antialias, like
    ``tf.image.resize_bilinear``), gray repeated to RGB, clamped to [-1, 1]. Raises for T < 9."""
    check_videos(videos)
    if videos.shape[2] < I3D_MIN_FRAMES:
        raise ValueError(
            f"I3D needs clips of at least {I3D_MIN_FRAMES} frames at {I3D_INPUT_SIZE} px (FVD uses 16), got "
            f"{videos.shape[2]} frames"
        )
    videos = to_channels(videos.float(), RGB_CHANNELS)
    videos = resize_frames(videos, (I3D_INPUT_SIZE, I3D_INPUT_SIZE), mode="bilinear", antialias=False)
    return videos.clamp(-1.0, 1.0)


_BLOCK_NAMES = {"Conv3d_1a_7x7": "conv1a", "Conv3d_2b_1x1": "conv2b", "Conv3d_2c_3x3": "conv2c"}
_BRANCH_NAMES = {
    "b0": "branch0",
    "b1a": "branch1_reduce",
    "b1b": "branch1",
    "b2a": "branch2_reduce",
    "b2b": "branch2",
    "b3b": "branch3",
}
_MIXED = re.compile(r"^Mixed_(\d[a-z])\.(b\d[ab]?)\.(conv3d|bn)\.(\w+)$")
_UNIT = re.compile(r"^(Conv3d_\w+)\.(conv3d|bn)\.(\w+)$")
_LOGITS = re.compile(r"^logits\.conv3d\.(weight|bias)$")


def map_pytorch_i3d_key(key: str) -> str | None:
    """Our parameter name for a pytorch-i3d state_dict key; None for keys that carry no weights
    (``num_batches_tracked``); raises KeyError for a key that is not part of an I3D checkpoint."""
    key = key.removeprefix("module.")
    if key.endswith("num_batches_tracked"):
        return None
    if m := _LOGITS.match(key):
        return f"logits.{m.group(1)}"
    if (m := _UNIT.match(key)) and m.group(1) in _BLOCK_NAMES:
        layer = "conv" if m.group(2) == "conv3d" else "bn"
        return f"{_BLOCK_NAMES[m.group(1)]}.{layer}.{m.group(3)}"
    if (m := _MIXED.match(key)) and m.group(2) in _BRANCH_NAMES:
        layer = "conv" if m.group(3) == "conv3d" else "bn"
        return f"mixed{m.group(1)}.{_BRANCH_NAMES[m.group(2)]}.{layer}.{m.group(4)}"
    raise KeyError(f"{key!r} is not a pytorch-i3d parameter name")


def map_pytorch_i3d_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a whole pytorch-i3d state_dict to this module's names (see the module docstring)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = map_pytorch_i3d_key(key)
        if new is not None:
            out[new] = value
    return out


def is_pytorch_i3d_naming(keys: list[str]) -> bool:
    return any(k.removeprefix("module.").startswith(("Conv3d_1a_7x7.", "Mixed_")) for k in keys)
