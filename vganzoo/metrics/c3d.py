"""C3D (Tran et al. 2015) as used for the video Inception Score on UCF-101.

Protocol (TGAN, MoCoGAN, DVD-GAN tables): a C3D fine-tuned on UCF-101 (101 classes); 16-frame clips;
frames resized to 128 on the short side and centre-cropped to 112x112; pixel values in [0, 255] with
the training mean subtracted; ``IS = exp(E_x KL(p(y|x) || p(y)))`` reported as mean and std over
splits. The mean (per channel ``(3,)`` or a mean clip ``(3, 16, 112, 112)``) travels inside the
weights file as the tensor ``mean``, so a score never depends on a value hidden in code.

Layers: eight 3x3x3 convolutions (padding 1) with ReLU, ``conv1 64, pool(1,2,2); conv2 128, pool;
conv3a/b 256, pool; conv4a/b 512, pool; conv5a/b 512, pool (2,2,2) with spatial padding 1``, then
``fc6 8192 -> 4096, fc7 4096 -> 4096, fc8 4096 -> num_classes``. Parameter names are those of the
commonly distributed PyTorch port of the Sports-1M C3D (``conv1.weight`` ... ``fc8.bias``), so its
state dicts map one to one (a ``module.`` prefix is stripped); the mean is added at conversion.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .preprocess import RGB_CHANNELS, centre_crop, check_videos, resize_frames, to_channels

__all__ = [
    "C3D",
    "C3D_CROP",
    "C3D_FRAMES",
    "C3D_NUM_CLASSES",
    "C3D_RESIZE",
    "C3DTgan2",
    "map_c3d_state_dict",
    "map_tgan2_c3d_npz_key",
    "preprocess_c3d",
    "preprocess_tgan2_c3d",
    "tgan2_c3d_widths",
]

C3D_FRAMES = 16
C3D_RESIZE = 128
C3D_CROP = 112
C3D_NUM_CLASSES = 101
PIXEL_MAX = 255.0
FC_WIDTH = 4096
# conv name, in, out, pool after it (kernel, stride, padding) or None
_CONVS = (
    ("conv1", 3, 64, ((1, 2, 2), (1, 2, 2), 0)),
    ("conv2", 64, 128, ((2, 2, 2), (2, 2, 2), 0)),
    ("conv3a", 128, 256, None),
    ("conv3b", 256, 256, ((2, 2, 2), (2, 2, 2), 0)),
    ("conv4a", 256, 512, None),
    ("conv4b", 512, 512, ((2, 2, 2), (2, 2, 2), 0)),
    ("conv5a", 512, 512, None),
    ("conv5b", 512, 512, ((2, 2, 2), (2, 2, 2), (0, 1, 1))),
)
# 512 channels x 1 x 4 x 4 after pool5 for a 16 x 112 x 112 clip
FC6_IN = 512 * 1 * 4 * 4


class C3D(nn.Module):
    """``forward(x: (N, 3, 16, 112, 112) mean-subtracted 0..255 pixels) -> (N, num_classes)`` logits."""

    def __init__(self, num_classes: int = C3D_NUM_CLASSES) -> None:
        super().__init__()
        self.num_classes = num_classes
        for name, cin, cout, _ in _CONVS:
            self.add_module(name, nn.Conv3d(cin, cout, kernel_size=3, padding=1))
        self.fc6 = nn.Linear(FC6_IN, FC_WIDTH)
        self.fc7 = nn.Linear(FC_WIDTH, FC_WIDTH)
        self.fc8 = nn.Linear(FC_WIDTH, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[2:]) != (C3D_FRAMES, C3D_CROP, C3D_CROP):
            raise ValueError(
                f"C3D expects (N, 3, {C3D_FRAMES}, {C3D_CROP}, {C3D_CROP}) clips, got {tuple(x.shape)}; use "
                "preprocess_c3d"
            )
        for name, _, _, pool in _CONVS:
            x = F.relu(getattr(self, name)(x))
            if pool is not None:
                kernel, stride, padding = pool
                x = F.max_pool3d(x, kernel, stride, padding)
        x = F.relu(self.fc6(x.flatten(1)))
        x = F.relu(self.fc7(x))
        return self.fc8(x)


def preprocess_c3d(videos: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """(N, C, T, H, W) in [-1, 1] -> (N, 3, 16, 112, 112): first 16 frames, short side resized to 128
    (bilinear, antialiased), centre crop 112, scaled to 0..255, ``mean`` subtracted.

    ``mean``: (3,) per channel or (3, 16, 112, 112) mean clip, in 0..255 pixel units.
    """
    check_videos(videos)
    if videos.shape[2] < C3D_FRAMES:
        raise ValueError(f"C3D needs clips of {C3D_FRAMES} frames, got {videos.shape[2]}")
    videos = to_channels(videos[:, :, :C3D_FRAMES].float(), RGB_CHANNELS)
    h, w = videos.shape[-2:]
    scale = C3D_RESIZE / min(h, w)
    videos = resize_frames(videos, (round(h * scale), round(w * scale)), mode="bilinear", antialias=True)
    videos = centre_crop(videos, C3D_CROP)
    pixels = (videos.clamp(-1.0, 1.0) + 1.0) * (PIXEL_MAX / 2.0)
    mean = mean.to(pixels.device, pixels.dtype)
    if mean.shape == (RGB_CHANNELS,):
        mean = mean.view(1, RGB_CHANNELS, 1, 1, 1)
    elif mean.shape != (RGB_CHANNELS, C3D_FRAMES, C3D_CROP, C3D_CROP):
        raise ValueError(
            f"C3D mean must be (3,) or (3, {C3D_FRAMES}, {C3D_CROP}, {C3D_CROP}), got {tuple(mean.shape)}"
        )
    return pixels - mean


def map_c3d_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip a ``module.`` prefix; the port's names are ours (see the module docstring)."""
    return {k.removeprefix("module."): v for k, v in state.items()}


# ---------------------------------------------------------------- tgan2's C3D (the tgan2-is protocol)

TGAN2_CONVS = ("conv1a", "conv2a", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b")
TGAN2_FCS = ("fc6", "fc7", "fc8")
TGAN2_WIDTHS = (64, 128, 256, 256, 512, 512, 512, 512, 4096, 4096)  # the 8 convs, fc6, fc7
# convs followed by a max-pool: conv1a (1, 2, 2), the others 2x2x2
TGAN2_POOLED = {
    "conv1a": (1, 2, 2),
    "conv2a": (2, 2, 2),
    "conv3b": (2, 2, 2),
    "conv4b": (2, 2, 2),
    "conv5b": (2, 2, 2),
}
TGAN2_SCALE = 128.0  # the `pre` 1x1x1 convolution multiplies [-1, 1] frames by 128 ...
TGAN2_OFFSET = 128.0  # ... and the `mean` Bias adds 128 - mean
TGAN2_MEAN_CROP = 8  # mean2.npz (3, 16, 128, 171) is cropped at [8:120, 8:120] (not centred in width)
TGAN2_POOL5_CELLS = 4 * 4  # spatial cells after pool5 for 112x112 input (7 -> 4 with cover_all)


class C3DTgan2(nn.Module):
    """tgan2's ``C3DVersion1UCF101`` (Chainer), from ``tgan2/models/c3d/c3d_ucf101.py``.

    ``forward(x: (N, 3, 16, 112, 112) = 128 * frames + 128 - mean) -> (N, num_classes)`` fc8 logits.

    Eight 3x3x3 convolutions (padding 1, ReLU); max-pools after conv1a (1x2x2) and conv2a, conv3b,
    conv4b, conv5b (2x2x2), all with Chainer's ``cover_all=True`` default, which is PyTorch's
    ``ceil_mode=True`` (pool5 turns 7x7 into 4x4 with a last, partial window; the Caffe/PyTorch C3D
    ports pad instead); fc6 (512*4*4 -> 4096), fc7, fc8 with ReLU between them; dropout is off at
    evaluation. ``widths``: the 8 conv widths then fc6, fc7 (tests build narrow copies).
    """

    def __init__(self, num_classes: int = C3D_NUM_CLASSES, widths: tuple[int, ...] = TGAN2_WIDTHS) -> None:
        super().__init__()
        if len(widths) != len(TGAN2_CONVS) + 2:
            raise ValueError(f"widths: expected {len(TGAN2_CONVS) + 2} numbers, got {len(widths)}")
        self.num_classes, self.widths = num_classes, tuple(int(w) for w in widths)
        channels = RGB_CHANNELS
        for name, width in zip(TGAN2_CONVS, self.widths):
            self.add_module(name, nn.Conv3d(channels, width, kernel_size=3, padding=1))
            channels = width
        self.fc6 = nn.Linear(channels * TGAN2_POOL5_CELLS, self.widths[-2])
        self.fc7 = nn.Linear(self.widths[-2], self.widths[-1])
        self.fc8 = nn.Linear(self.widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != (RGB_CHANNELS, C3D_FRAMES, C3D_CROP, C3D_CROP):
            raise ValueError(
                f"tgan2's C3D expects (N, 3, {C3D_FRAMES}, {C3D_CROP}, {C3D_CROP}) clips, got "
                f"{tuple(x.shape)}"
            )
        for name in TGAN2_CONVS:
            x = F.relu(getattr(self, name)(x))
            if name in TGAN2_POOLED:
                x = F.max_pool3d(x, TGAN2_POOLED[name], TGAN2_POOLED[name], ceil_mode=True)
        x = F.relu(self.fc6(x.flatten(1)))
        x = F.relu(self.fc7(x))
        return self.fc8(x)


def tgan2_c3d_widths(tensors: Mapping[str, torch.Tensor]) -> tuple[int, ...]:
    """The ``widths`` of a tgan2 C3D state dict (our names), read from its weight shapes."""
    names = [*TGAN2_CONVS, "fc6", "fc7"]
    missing = [n for n in names if f"{n}.weight" not in tensors]
    if missing:
        raise ValueError(f"not tgan2 C3D weights: no {', '.join(f'{n}.weight' for n in missing[:3])}")
    return tuple(int(tensors[f"{n}.weight"].shape[0]) for n in names)


def map_tgan2_c3d_npz_key(key: str) -> str:
    """Our name for a key of tgan2's ``conv3d_deepnetA_ucf.npz`` (Chainer: ``conv1a/W``, ``fc8/b``,
    possibly under a prefix such as ``predictor/``); KeyError for anything else."""
    parts = key.strip("/").split("/")
    if len(parts) >= 2 and parts[-2] in (*TGAN2_CONVS, *TGAN2_FCS) and parts[-1] in ("W", "b"):
        return f"{parts[-2]}.{'weight' if parts[-1] == 'W' else 'bias'}"
    raise KeyError(f"{key!r} is not a tgan2 C3D parameter (expected conv1a/W ... fc8/b)")


def preprocess_tgan2_c3d(videos: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """tgan2's input: (N, C, T>=16, H, W) in [-1, 1] -> (N, 3, 16, 112, 112), in tgan2's order.

    ``make_samples`` clips to [-1, 1] (float32, no quantisation); the classifier's ``pre`` stage then
    multiplies by 128 (its 1x1x1 convolution, which also swaps RGB to BGR: our converter reverses
    conv1a's input channels instead), resizes every frame to 112x112 with Chainer's
    ``F.resize_images`` (bilinear, ``align_corners=True`` in Chainer 6, no antialiasing, aspect ratio
    not kept) and adds ``128 - mean`` (``mean``: (3, 16, 112, 112) RGB, the converted mean2.npz).
    """
    check_videos(videos)
    if videos.shape[2] < C3D_FRAMES:
        raise ValueError(f"tgan2's C3D needs clips of {C3D_FRAMES} frames, got {videos.shape[2]}")
    x = to_channels(videos[:, :, :C3D_FRAMES].float().clamp(-1.0, 1.0), RGB_CHANNELS)
    x = x * TGAN2_SCALE
    x = resize_frames(x, (C3D_CROP, C3D_CROP), mode="bilinear", antialias=False, align_corners=True)
    return x + (TGAN2_OFFSET - mean.to(x.device, x.dtype))
