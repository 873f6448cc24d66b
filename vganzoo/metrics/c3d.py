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
    "map_c3d_state_dict",
    "preprocess_c3d",
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
