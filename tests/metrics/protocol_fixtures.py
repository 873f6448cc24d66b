"""Detectors of the protocols' interfaces with random weights, exported the way the originals are, and
small real-video folders: what tests/metrics/test_protocols_*.py score with.

* StyleGAN-V's detectors are TorchScript modules: ``TinyI3DScript`` has the signature of
  ``i3d_torchscript.pt`` (``forward(x, rescale=False, resize=False, return_features=False)``, uint8 in,
  rescale ``x / 255 * 2 - 1`` and a resize inside, 400 features out; the resize goes to 16x16 instead
  of 224, the test-size override), ``TinyC3DScript`` that of ``c3d_ucf101.pt`` (uint8 in, 101
  probabilities out); both saved with ``torch.jit.save``.
* pytorch-i3d: our InceptionI3d at width_divisor 8 with random weights and batch-norm statistics,
  saved as a pytorch-i3d-named ``.pt`` state dict and converted with ``vganzoo convert i3d``.
* tgan2's C3D: a narrow C3DTgan2 saved as Chainer-named ``.npz`` arrays with a random mean2.npz,
  converted with ``vganzoo convert tgan2-c3d``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import vganzoo
from vganzoo.convert import convert_extractor
from vganzoo.metrics.c3d import TGAN2_CONVS, C3DTgan2
from vganzoo.metrics.i3d import InceptionI3d, map_pytorch_i3d_key
from vganzoo.models.base import VideoGAN

FEATURES = 400
CLASSES = 101
TEST_RESIZE = 16  # the test detectors resize to 16x16 where the real ones resize to 224
PROTOCOL_MODEL = "protocol-test-gan"
LATENT = 8


class TinyI3DScript(nn.Module):
    """The call signature and contract of StyleGAN-V's i3d_torchscript.pt, small and random."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv3d(3, 8, kernel_size=3, stride=(1, 2, 2), padding=1)
        self.head = nn.Linear(8 * 2, FEATURES)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)

    def forward(
        self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False
    ) -> torch.Tensor:
        if x.dtype != torch.uint8:
            raise RuntimeError("expected uint8 videos")
        h = x.float()
        if rescale:
            h = h / 255.0 * 2.0 - 1.0
        if resize:
            h = F.interpolate(h, size=(h.shape[2], 16, 16), mode="trilinear", align_corners=False)
        h = torch.relu(self.conv(h))
        pooled = torch.cat([h.mean(dim=(2, 3, 4)), h.amax(dim=(2, 3, 4))], dim=1)
        features = self.head(pooled)
        return features if return_features else torch.softmax(features, dim=1)


class ProbeI3DScript(nn.Module):
    """Same signature; returns its input's first 400 values (after the optional rescale) so tests see
    exactly what the protocol fed it."""

    def forward(
        self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False
    ) -> torch.Tensor:
        if x.dtype != torch.uint8:
            raise RuntimeError("expected uint8 videos")
        flat = x.float().flatten(1)
        if rescale:
            flat = flat / 255.0 * 2.0 - 1.0
        return F.pad(flat, (0, max(0, 400 - flat.shape[1])))[:, :400]  # TorchScript: no module constants


class WrongSizeI3DScript(nn.Module):
    """The right signature, 300 outputs instead of 400 (another network)."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = TinyI3DScript()

    def forward(
        self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False
    ) -> torch.Tensor:
        return self.inner(x, rescale, resize, return_features)[:, :300]


class NoKwargsScript(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().flatten(1)[:, :400]


class TinyC3DScript(nn.Module):
    """The contract of StyleGAN-V's c3d_ucf101.pt: uint8 (N, 3, 16, H, W) -> (N, 101) probabilities."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv3d(3, 6, kernel_size=3, stride=2, padding=1)
        self.head = nn.Linear(6, CLASSES)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float() / 127.5 - 1.0
        h = torch.relu(self.conv(h)).mean(dim=(2, 3, 4))
        return torch.softmax(self.head(h) * 3.0, dim=1)


def save_script(module: nn.Module, path: Path) -> Path:
    with (
        warnings.catch_warnings()
    ):  # TorchScript is deprecated in recent PyTorch; the originals are TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(module.eval()).save(str(path))
    return path


def load_script(path: Path) -> torch.jit.ScriptModule:
    """torch.jit.load, as StyleGAN-V's get_feature_detector does (for the direct implementations)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path)).eval()


def he_init(net: nn.Module, first_scale: float = 1.0, last_gain: float = 1.0) -> nn.Module:
    """Weights that keep activations at a steady scale (He), random batch-norm statistics: outputs then
    differ from clip to clip, so distances and scores are not degenerate."""
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv3d, nn.Linear))]
    with torch.no_grad():
        for i, m in enumerate(layers):
            gain = first_scale if i == 0 else last_gain if i == len(layers) - 1 else 1.0
            m.weight.normal_(0, gain * math.sqrt(2.0 / m.weight[0].numel()))
            if m.bias is not None:
                m.bias.normal_(0, 0.1)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.8, 1.2)
                m.bias.uniform_(-0.1, 0.1)
    return net


def pytorch_i3d_file(tmp: Path, seed: int = 0) -> tuple[Path, InceptionI3d]:
    """A random narrow I3D converted from a pytorch-i3d-named state dict: (safetensors, the module)."""
    torch.manual_seed(seed)
    net = he_init(InceptionI3d(width_divisor=8, bn_eps=1e-5).eval())
    inverse = {}
    for unit, _ours in (
        ("Conv3d_1a_7x7", "conv1a"),
        ("Conv3d_2b_1x1", "conv2b"),
        ("Conv3d_2c_3x3", "conv2c"),
    ):
        for suffix in ("conv3d.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"):
            inverse[map_pytorch_i3d_key(f"{unit}.{suffix}")] = f"{unit}.{suffix}"
    for block in ("3b", "3c", "4b", "4c", "4d", "4e", "4f", "5b", "5c"):
        for branch in ("b0", "b1a", "b1b", "b2a", "b2b", "b3b"):
            for suffix in ("conv3d.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"):
                key = f"Mixed_{block}.{branch}.{suffix}"
                inverse[map_pytorch_i3d_key(key)] = key
    inverse["logits.weight"], inverse["logits.bias"] = "logits.conv3d.weight", "logits.conv3d.bias"
    state = {
        inverse[k]: v.clone() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")
    }
    legacy = tmp / "i3d_pretrained_400.pt"
    torch.save(state, legacy)
    out = tmp / "i3d_pretrained_400.safetensors"
    convert_extractor("i3d", legacy, out)
    return out, net


TGAN2_TEST_WIDTHS = (4, 8, 8, 8, 8, 8, 8, 8, 16, 16)


def tgan2_c3d_files(tmp: Path, seed: int = 0) -> tuple[Path, C3DTgan2, np.ndarray]:
    """A narrow tgan2 C3D written as Chainer arrays, converted: (safetensors, the BGR module, mean2)."""
    torch.manual_seed(seed)
    net = he_init(C3DTgan2(widths=TGAN2_TEST_WIDTHS).eval(), first_scale=1 / 64, last_gain=8.0)
    arrays = {}
    for name in (*TGAN2_CONVS, "fc6", "fc7", "fc8"):
        layer = getattr(net, name)
        arrays[f"{name}/W"] = layer.weight.detach().numpy()
        arrays[f"{name}/b"] = layer.bias.detach().numpy()
    np.savez(tmp / "conv3d_deepnetA_ucf.npz", **arrays)
    mean = np.random.default_rng(seed).uniform(80, 120, size=(3, 16, 128, 171)).astype(np.float32)
    np.savez(tmp / "mean2.npz", mean=mean)
    out = tmp / "c3d_tgan2.safetensors"
    convert_extractor("c3d-tgan2", tmp / "conv3d_deepnetA_ucf.npz", out, mean=str(tmp / "mean2.npz"))
    return out, net, mean


def write_frame_folder(
    root: Path, lengths: list[int], size: int = 12, channels: int = 3, seed: int = 0
) -> Path:
    """``root/video_XX/frame_YYY.png`` (StyleGAN-V's layout) with random frames; returns root."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for v, length in enumerate(lengths):
        folder = root / f"video_{v:02d}"
        folder.mkdir(parents=True)
        for t in range(length):
            shape = (size, size, 3) if channels == 3 else (size, size)
            Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8)).save(
                folder / f"frame_{t:03d}.png"
            )
    return root


class TinyGenerator(nn.Module):
    """z -> (N, C, T, H, W) through one linear layer and tanh."""

    def __init__(self, *, resolution: int, frames: int, channels: int) -> None:
        super().__init__()
        self.shape = (channels, frames, resolution, resolution)
        self.to_video = nn.Linear(LATENT, channels * frames * resolution * resolution)

    def sample_latents(self, n, *, generator, labels=None):
        return {"z": torch.randn(n, LATENT, generator=generator)}

    def forward(self, z):
        return self.to_video(z).tanh().view(z.shape[0], *self.shape)


@vganzoo.register_model(
    PROTOCOL_MODEL,
    family="test",
    default_config={"resolution": 12, "frames": 16, "channels": 3},
    overwrite=True,
)
def _build(*, resolution, frames, channels):
    return VideoGAN(TinyGenerator(resolution=resolution, frames=frames, channels=channels))


def tiny_model(seed: int = 0, **config) -> VideoGAN:
    torch.manual_seed(seed)
    return vganzoo.create(PROTOCOL_MODEL, **config)
