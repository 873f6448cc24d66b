"""Convert a legacy PyTorch I3D / C3D checkpoint to a vganzoo extractor safetensors file, once.

    vganzoo convert i3d rgb_imagenet.pt i3d.safetensors
    vganzoo convert c3d c3d_ucf101.pt c3d.safetensors --mean 90.25,97.66,101.41
    vganzoo convert c3d c3d_ucf101.pt c3d.safetensors --mean mean.npy

The source must be a plain state dict (name -> tensor). It is read with
``torch.load(weights_only=True)``, which only rebuilds tensors and containers and refuses arbitrary
objects, so no code from the file runs. Keys are mapped to vganzoo's names (see
:mod:`vganzoo.metrics.i3d` and :mod:`vganzoo.metrics.c3d`), checked against the module, and written
with ``{"vganzoo.architecture": ..., "vganzoo.config": ...}`` metadata; the sha256 of the output
is printed: pin it in your evaluation notes.

tgan2's C3D (the ``tgan2-is`` protocol) comes as Chainer ``.npz`` files, read with
``numpy.load(allow_pickle=False)`` (arrays only)::

    vganzoo convert tgan2-c3d conv3d_deepnetA_ucf.npz c3d_tgan2.safetensors --mean mean2.npz

Its ``conv1a/W`` ... ``fc8/b`` become ``conv1a.weight`` ... ``fc8.bias``; the mean clip (mean2.npz's
``mean``, (3, 16, >=120, >=120), BGR) is cropped at ``[8:120, 8:120]`` as tgan2 does, and both the
mean and conv1a's input channels are reversed (tgan2's ``pre`` stage swaps RGB to BGR), so the
converted network takes RGB frames and computes what tgan2's did.

For C3D the training mean (0..255 pixel units, in the channel order the network was trained with) is
required: three numbers, or a ``.npy`` array of shape (3,) or a mean clip (3, 16, H, W) that is
centre-cropped to 112x112. vganzoo feeds RGB frames; for a network trained on BGR frames (the
original Caffe C3D) pass ``--bgr``: the input channels of ``conv1`` and the mean are reversed, which
makes the converted network compute on RGB input exactly what the original computed on BGR.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from ..errors import short_repr
from ..metrics.c3d import (
    C3D_CROP,
    C3D_FRAMES,
    TGAN2_MEAN_CROP,
    C3DTgan2,
    map_c3d_state_dict,
    map_tgan2_c3d_npz_key,
)
from ..metrics.extractors import C3D_MEAN_KEY, build_extractor, check_keys, save_extractor
from ..metrics.i3d import i3d_width_divisor, map_pytorch_i3d_state_dict
from ..metrics.preprocess import centre_crop
from .npz import read_npz

__all__ = ["ARCHITECTURES", "convert_extractor"]

_RGB = 3
ARCHITECTURES = ("i3d", "c3d", "c3d-tgan2")
_TGAN2_MEAN_KEY = "mean"  # the array inside mean2.npz


# what tgan2's C3D weights may take: twice the float32 bytes of its parameters (float64 files fit)
C3D_BUDGET_FACTOR = 2 * 4
MEAN_MAX_BYTES = 64 * 2**20  # tgan2's mean2.npz holds one (3, 16, 128, 171) clip: about 8 MB in float64


def _c3d_budget() -> int:
    with torch.device("meta"):
        return C3D_BUDGET_FACTOR * sum(t.numel() for t in C3DTgan2().state_dict().values())


def _read_tgan2_c3d(src: str, mean: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """tgan2's conv3d_deepnetA_ucf.npz -> (our state dict, the BGR mean clip cropped to 112x112)."""
    state: dict[str, torch.Tensor] = {}
    for key, array in read_npz(src, "tgan2 C3D weights", max_bytes=_c3d_budget()).items():
        try:
            state[map_tgan2_c3d_npz_key(key)] = torch.from_numpy(array.astype(np.float32))
        except KeyError:
            raise ValueError(
                f"{src}: {short_repr(key)} is not a parameter of tgan2's C3D (conv1a/W ... fc8/b)"
            ) from None
    if not isinstance(mean, (str, os.PathLike)) or not os.fspath(mean).endswith(".npz"):
        raise ValueError("tgan2-c3d needs --mean mean2.npz (tgan2's mean clip)")
    arrays = read_npz(os.fspath(mean), "tgan2 mean", max_bytes=MEAN_MAX_BYTES)
    if _TGAN2_MEAN_KEY not in arrays:
        raise ValueError(f"{mean}: no 'mean' array (found {', '.join(arrays) or 'none'})")
    clip = arrays[_TGAN2_MEAN_KEY]
    end = TGAN2_MEAN_CROP + C3D_CROP
    if clip.ndim != 4 or clip.shape[:2] != (_RGB, C3D_FRAMES) or min(clip.shape[2:]) < end:
        raise ValueError(
            f"{mean}: the mean must be (3, {C3D_FRAMES}, H>={end}, W>={end}) as in tgan2's mean2.npz, got "
            f"{clip.shape}"
        )
    crop = clip[:, :, TGAN2_MEAN_CROP:end, TGAN2_MEAN_CROP:end]
    return state, torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))


def _read_state_dict(path: str) -> dict[str, torch.Tensor]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"{path}: not a plain tensor state dict that can be loaded safely ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return dict(state)


def _parse_mean(mean: Any) -> torch.Tensor:
    if isinstance(mean, str) and mean.endswith(".npy"):
        # mapped, so a header that declares more than the file holds fails instead of allocating it
        array = np.array(np.load(mean, allow_pickle=False, mmap_mode="r"))
    elif isinstance(mean, str):
        array = np.array([float(v) for v in mean.split(",")])
    else:
        array = np.asarray(mean)
    tensor = torch.as_tensor(array, dtype=torch.float32)
    if tensor.shape == (_RGB,):
        return tensor
    if tensor.ndim == 4 and tensor.shape[0] == _RGB and tensor.shape[1] >= C3D_FRAMES:
        return centre_crop(tensor[:, :C3D_FRAMES], C3D_CROP).contiguous()
    raise ValueError(
        f"--mean must be 3 numbers or an array of shape (3,) or (3, {C3D_FRAMES}, H, W), got shape "
        f"{tuple(tensor.shape)}"
    )


def convert_extractor(
    architecture: str,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    mean: Any = None,
    bgr: bool = False,
    overwrite: bool = False,
) -> str:
    """Convert ``src`` to ``dst`` (safetensors); returns the output's sha256.
    An existing ``dst`` is replaced (atomically) only with ``overwrite=True``, and never when it is ``src``.

    ``architecture``: ``i3d`` or ``c3d`` (``src`` a ``.pt`` state dict), or ``c3d-tgan2`` (``src``
    tgan2's Chainer ``conv3d_deepnetA_ucf.npz``, ``mean`` its ``mean2.npz``; always BGR).
    ``bgr``: the source network was trained on BGR frames; reverse its first layer's input channels
    (and the mean) so that it takes vganzoo's RGB frames.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {', '.join(ARCHITECTURES)}, got {architecture!r}")
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be a bool, got {type(overwrite).__name__}")
    if os.path.lexists(dst):
        if os.path.exists(src) and os.path.exists(dst) and os.path.samefile(src, dst):
            raise ValueError(f"dst: {dst} is the source file; write the conversion to another file")
        if not overwrite:
            raise FileExistsError(
                f"dst: {dst} already exists; choose another file, or pass overwrite=True (--force) to "
                "replace it"
            )
        if os.path.isdir(dst):
            raise IsADirectoryError(f"dst: {dst} is a folder; give a .safetensors file path")
    extra: dict[str, torch.Tensor] = {}
    config: dict[str, Any] = {}
    if architecture == "c3d-tgan2":
        state, extra[C3D_MEAN_KEY] = _read_tgan2_c3d(src, mean)
        num_classes = int(state["fc8.bias"].shape[0]) if "fc8.bias" in state else None
        bgr = True  # tgan2's `pre` stage feeds conv1a BGR frames
    elif architecture == "i3d":
        state = map_pytorch_i3d_state_dict(_read_state_dict(src))
        num_classes = int(state["logits.bias"].shape[0]) if "logits.bias" in state else None
        if i3d_width_divisor(state) != 1:
            config["width_divisor"] = i3d_width_divisor(state)
    else:
        state = _read_state_dict(src)
        if mean is None:
            raise ValueError("c3d needs --mean (the training mean in 0..255 pixel units)")
        state = map_c3d_state_dict(state)
        num_classes = int(state["fc8.bias"].shape[0]) if "fc8.bias" in state else None
        extra[C3D_MEAN_KEY] = _parse_mean(mean)
    if num_classes is None:
        raise ValueError(f"{src} does not look like a {architecture} checkpoint (no classifier bias)")
    if bgr:
        first = {"i3d": "conv1a.conv.weight", "c3d": "conv1.weight", "c3d-tgan2": "conv1a.weight"}[
            architecture
        ]
        if first not in state:
            raise ValueError(f"{src}: no {first} to reorder for --bgr")
        state[first] = state[first].flip(1).contiguous()  # (out, in=BGR, ...) -> (out, in=RGB, ...)
        if C3D_MEAN_KEY in extra:
            extra[C3D_MEAN_KEY] = extra[C3D_MEAN_KEY].flip(0).contiguous()
    config.update(num_classes=num_classes, input_channels="rgb", converted_from_bgr=bool(bgr))
    with torch.device("meta"):
        probe = build_extractor(
            architecture, config, {**state, **(extra or {C3D_MEAN_KEY: torch.zeros(_RGB)})}
        )
    check_keys(probe.network, state, architecture, src)
    return save_extractor(_StateHolder(state), dst, architecture, config, extra_tensors=extra)


class _StateHolder(torch.nn.Module):
    """Carries a ready state dict through :func:`save_extractor` without building the network."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self._state = state

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return self._state
