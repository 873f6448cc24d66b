"""Feature extractors for video metrics: loading, verification and a common wrapper.

An extractor is any ``nn.Module`` mapping videos ``(N, C, T, H, W)`` to ``(N, D)`` features or
logits. :class:`VideoExtractor` wraps one with its preprocessing (resize, channels, scaling), its name
and the sha256 of the file it came from, so every score can state exactly what produced it.

Files are safetensors only. A file may say what it holds in its metadata
(``{"vganzoo.architecture": "i3d" | "c3d" | "tiny-3dcnn", "vganzoo.config": "<json>"}``, written by
:func:`save_extractor` and by :mod:`vganzoo.convert.extractors`); otherwise the caller's default
architecture is assumed (FVD: I3D, IS: C3D). Sources:

* a local path: ``/path/i3d.safetensors``;
* a Hub repo: ``hf-hub:org/repo`` (file ``model.safetensors``), ``hf-hub:org/repo/file.safetensors``,
  optionally ``@revision`` at the end (pin a commit for reproducible scores).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from ..errors import short_repr
from ..files import (
    atomic_write_bytes,
    check_safetensors_file,
    loads_json,
    safetensors_bytes,
    safetensors_errors,
    sha256_file,
)
from .c3d import (
    C3D,
    C3D_CROP,
    C3D_FRAMES,
    C3D_NUM_CLASSES,
    C3D_RESIZE,
    TGAN2_WIDTHS,
    C3DTgan2,
    map_c3d_state_dict,
    preprocess_c3d,
    preprocess_tgan2_c3d,
    tgan2_c3d_widths,
)
from .i3d import (
    BN_EPS,
    I3D_INPUT_SIZE,
    I3D_MIN_FRAMES,
    I3D_NUM_CLASSES,
    InceptionI3d,
    i3d_width_divisor,
    is_pytorch_i3d_naming,
    map_pytorch_i3d_state_dict,
    preprocess_i3d,
)
from .preprocess import RGB_CHANNELS, check_videos, to_channels

__all__ = [
    "ARCHITECTURES",
    "HF_HUB_PREFIX",
    "TinyVideoCNN",
    "VideoExtractor",
    "build_extractor",
    "load_extractor",
    "resolve_extractor_file",
    "save_extractor",
]

HF_HUB_PREFIX = "hf-hub:"
DEFAULT_HUB_FILENAME = "model.safetensors"
META_ARCHITECTURE = "vganzoo.architecture"
META_CONFIG = "vganzoo.config"
C3D_MEAN_KEY = "mean"


class TinyVideoCNN(nn.Module):
    """A small 3-D CNN, ``(N, 3, T, H, W) -> (N, feature_dim)``; random weights make a cheap test extractor.

    Its scores mean nothing about quality; it exists so the metric pipeline can be exercised and
    tested without real extractor weights.
    """

    def __init__(self, width: int = 8, feature_dim: int = 16, in_channels: int = RGB_CHANNELS) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv3d(in_channels, width, kernel_size=3, stride=(1, 2, 2), padding=1),
            nn.ReLU(),
            nn.Conv3d(width, 2 * width, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool3d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * width, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class VideoExtractor(nn.Module):
    """``forward(videos: (N, C, T, H, W) in [-1, 1]) -> (N, D)`` float32 features or logits.

    Args:
        network: the module applied after ``preprocess``.
        name: what the network is (``"i3d"``, ``"c3d"``, ``"tiny-3dcnn"``, a class name).
        preprocess: videos -> network input (default: gray to RGB only).
        sha256: of the weights file, when it came from one.
        source: where the weights came from (path or ``hf-hub:`` spec).
        protocol: JSON-able description of the preprocessing, stored beside every score.
        min_frames: the fewest frames the network accepts.
    """

    def __init__(
        self,
        network: nn.Module,
        *,
        name: str | None = None,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
        sha256: str | None = None,
        source: str | None = None,
        protocol: Mapping[str, Any] | None = None,
        min_frames: int = 1,
    ) -> None:
        super().__init__()
        self.network = network
        self.name = name or type(network).__name__
        self._preprocess = preprocess
        self.sha256 = sha256
        self.source = source
        self.protocol = dict(protocol or {})
        self.min_frames = min_frames

    def preprocess(self, videos: torch.Tensor) -> torch.Tensor:
        if self._preprocess is not None:
            return self._preprocess(videos)
        return to_channels(check_videos(videos).float(), RGB_CHANNELS)

    @torch.no_grad()
    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        check_videos(videos)
        if videos.shape[2] < self.min_frames:
            raise ValueError(
                f"{self.name} needs clips of at least {self.min_frames} frames, got {videos.shape[2]}"
            )
        out = self.network(self.preprocess(videos))
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != videos.shape[0]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"extractor {self.name} must return (N, D) features for N={videos.shape[0]} videos, got "
                f"{shape}"
            )
        return out.float()

    def describe(self) -> dict[str, Any]:
        """JSON-able identity of this extractor for a score's protocol."""
        return {"name": self.name, "sha256": self.sha256, "source": self.source, **self.protocol}


# ---------------------------------------------------------------- architectures


def _i3d(
    config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> tuple[nn.Module, Callable, dict, int]:
    num_classes = int(config.get("num_classes", I3D_NUM_CLASSES))
    protocol = {
        "frames_min": I3D_MIN_FRAMES,
        "resize": f"bilinear {I3D_INPUT_SIZE}x{I3D_INPUT_SIZE} (no antialias)",
        "input_range": "[-1, 1]",
        "features": f"{num_classes} logits averaged over time",
    }
    protocol["converted_from_bgr"] = bool(config.get("converted_from_bgr", False))
    bn_eps = float(config.get("bn_eps", BN_EPS))
    width_divisor = int(config.get("width_divisor") or i3d_width_divisor(tensors))
    if bn_eps != BN_EPS or width_divisor != 1:
        protocol.update(bn_eps=bn_eps, width_divisor=width_divisor)
    network = InceptionI3d(num_classes=num_classes, bn_eps=bn_eps, width_divisor=width_divisor)
    return network, preprocess_i3d, protocol, I3D_MIN_FRAMES


def _c3d(
    config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> tuple[nn.Module, Callable, dict, int]:
    num_classes = int(config.get("num_classes", C3D_NUM_CLASSES))
    if C3D_MEAN_KEY not in tensors:
        raise ValueError(
            "C3D weights lack the 'mean' tensor (the training mean, (3,) or (3, 16, 112, 112) in 0..255); "
            "add it with `vganzoo convert c3d SRC OUT --mean ...`"
        )
    mean = tensors[C3D_MEAN_KEY].float()
    mean_desc = (
        [round(float(v), 3) for v in mean.flatten()]
        if mean.numel() == RGB_CHANNELS
        else f"mean clip {tuple(mean.shape)}"
    )
    protocol = {
        "frames": C3D_FRAMES,
        "resize": f"short side {C3D_RESIZE} (bilinear, antialias), centre crop {C3D_CROP}",
        "input_range": "0..255 minus mean",
        "mean": mean_desc,
        "features": f"{num_classes} logits",
    }
    protocol["converted_from_bgr"] = bool(config.get("converted_from_bgr", False))
    return C3D(num_classes=num_classes), lambda v: preprocess_c3d(v, mean), protocol, C3D_FRAMES


def _c3d_tgan2(
    config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> tuple[nn.Module, Callable, dict, int]:
    num_classes = int(config.get("num_classes", C3D_NUM_CLASSES))
    if C3D_MEAN_KEY not in tensors:
        raise ValueError(
            "tgan2 C3D weights lack the 'mean' tensor (mean2.npz cropped to (3, 16, 112, 112)); convert "
            "with `vganzoo convert tgan2-c3d conv3d_deepnetA_ucf.npz OUT --mean mean2.npz`"
        )
    mean = tensors[C3D_MEAN_KEY].float()
    widths = tgan2_c3d_widths(tensors) if "fc6.weight" in tensors else TGAN2_WIDTHS
    protocol = {
        "frames": C3D_FRAMES,
        "resize": f"bilinear {C3D_CROP}x{C3D_CROP}, align_corners=True (Chainer resize_images), no crop",
        "input_range": "128 * [-1, 1] + 128 - mean clip",
        "features": f"{num_classes} fc8 logits",
        "pooling": "max-pools with ceil_mode (Chainer cover_all)",
    }
    protocol["converted_from_bgr"] = bool(config.get("converted_from_bgr", True))
    network = C3DTgan2(num_classes=num_classes, widths=widths)
    return network, lambda v: preprocess_tgan2_c3d(v, mean), protocol, C3D_FRAMES


def _tiny(
    config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> tuple[nn.Module, Callable | None, dict, int]:
    allowed = {"width", "feature_dim", "in_channels"}
    net = TinyVideoCNN(**{k: int(v) for k, v in config.items() if k in allowed})
    return (
        net,
        None,
        {"input_range": "[-1, 1]", "note": "test extractor; scores carry no meaning about quality"},
        1,
    )


# name -> builder(config, tensors) -> (network, preprocess, protocol, min_frames)
ARCHITECTURES: dict[str, Callable[..., tuple[nn.Module, Callable | None, dict, int]]] = {
    "i3d": _i3d,
    "c3d": _c3d,
    "c3d-tgan2": _c3d_tgan2,
    "tiny-3dcnn": _tiny,
}


EXTRA_BUILT_ELEMENTS = 1 << 26  # weights (256 MB as float32) a config may build beyond twice its file


def build_extractor(
    architecture: str,
    config: Mapping[str, Any] | None = None,
    tensors: Mapping[str, torch.Tensor] | None = None,
) -> VideoExtractor:
    """A :class:`VideoExtractor` with freshly initialised (random) weights for ``architecture``."""
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown extractor architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}"
        )
    network, preprocess, protocol, min_frames = ARCHITECTURES[architecture](
        dict(config or {}), dict(tensors or {})
    )
    return VideoExtractor(
        network, name=architecture, preprocess=preprocess, protocol=protocol, min_frames=min_frames
    ).eval()


def save_extractor(
    extractor: VideoExtractor | nn.Module,
    path: str | os.PathLike,
    architecture: str,
    config: Mapping[str, Any] | None = None,
    extra_tensors: Mapping[str, torch.Tensor] | None = None,
) -> str:
    """Write an extractor's weights as a self-describing safetensors file; returns its sha256."""
    network = extractor.network if isinstance(extractor, VideoExtractor) else extractor
    tensors = {
        k: v.detach().cpu().contiguous()
        for k, v in network.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    tensors.update({k: v.detach().cpu().contiguous() for k, v in (extra_tensors or {}).items()})
    metadata = {META_ARCHITECTURE: architecture, META_CONFIG: json.dumps(dict(config or {}), sort_keys=True)}
    atomic_write_bytes(path, safetensors_bytes(tensors, metadata))
    return sha256_file(path)


def _check_builds_what_it_holds(
    architecture: str, config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], path: str
) -> None:
    """A shared file's config is untrusted: it must build (on the meta device, allocating nothing)
    about as many weights as the file holds, never gigabytes more."""
    held = sum(t.numel() for t in tensors.values())
    try:
        with torch.device("meta"):
            probe = build_extractor(architecture, config, tensors)
    except (RuntimeError, ValueError, TypeError, OverflowError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"extractor weights: {path}: its {META_CONFIG} does not build {architecture} ({first})"
        ) from None
    built = sum(t.numel() for t in (*probe.network.parameters(), *probe.network.buffers()))
    if built > 2 * held + EXTRA_BUILT_ELEMENTS:
        raise ValueError(
            f"extractor weights: {path}: its {META_CONFIG} builds {built:,} weights while the file holds "
            f"{held:,}; the config does not belong to these weights"
        )


def resolve_extractor_file(
    spec: str | os.PathLike, suffixes: tuple[str, ...] = (".safetensors",), what: str = "--extractor"
) -> tuple[str, str]:
    """A local file for ``spec`` (path or ``hf-hub:org/repo[/file][@rev]``) and a description of its source.

    ``suffixes``: the file names a Hub spec may point at (TorchScript detectors are ``.pt``); a spec
    without a file name means ``model.safetensors``.

    Hub files are fetched through :func:`vganzoo.hub.fetch_file` (cache, the same endpoint as
    ``vganzoo.load``; a revision that is not a commit is warned about as unpinned); the file's sha256
    is recorded with every score either way.
    """
    spec = os.fspath(spec)
    if not spec.startswith(HF_HUB_PREFIX):
        return spec, spec
    rest = spec[len(HF_HUB_PREFIX) :]
    revision = None
    if "@" in rest:
        rest, revision = rest.rsplit("@", 1)
    parts = rest.split("/")
    if len(parts) < 2 or not all(parts) or (revision is not None and not revision):
        raise ValueError(f"{what} {spec!r}: expected hf-hub:org/repo[/file{suffixes[0]}][@revision]")
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:]) or DEFAULT_HUB_FILENAME
    if not filename.endswith(suffixes):
        raise ValueError(
            f"{what} {spec!r}: only {' or '.join(suffixes)} files are loaded here, got {filename!r}"
        )
    from ..hub import WeightsError, fetch_file

    try:
        local, _digest = fetch_file(repo_id, filename, revision=revision)
    except (WeightsError, OSError) as exc:  # offline, missing repo or file: one clear message with the cause
        where = f"{repo_id}{'@' + revision if revision else ''}"
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise LookupError(
            f"could not get {filename} from Hub repo {where}: {type(exc).__name__}: {first_line}"
        ) from exc
    return str(local), spec


def check_keys(network: nn.Module, tensors: Mapping[str, torch.Tensor], architecture: str, path: str) -> None:
    expected = {k: v for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        show = lambda keys: ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")
        parts = [
            f"missing {len(missing)}: {show(missing)}" if missing else "",
            f"unexpected {len(unexpected)}: {show(unexpected)}" if unexpected else "",
        ]
        raise ValueError(f"{path} does not hold {architecture} weights ({'; '.join(p for p in parts if p)})")
    wrong = [
        f"{k} {tuple(tensors[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if tuple(tensors[k].shape) != tuple(v.shape)
    ]
    if wrong:
        raise ValueError(f"{path}: wrong tensor shapes for {architecture}: {', '.join(wrong[:3])}")


def load_extractor(
    spec: str | os.PathLike | nn.Module,
    *,
    default_architecture: str = "i3d",
    device: torch.device | str = "cpu",
) -> VideoExtractor:
    """Load an extractor from a safetensors file or ``hf-hub:`` spec, or wrap a module.

    Args:
        spec: a :class:`VideoExtractor` (returned as is), any ``nn.Module`` mapping (N, C, T, H, W) to
            (N, D) (wrapped; gray videos are repeated to RGB), a path, or ``hf-hub:org/repo[/file][@rev]``.
        default_architecture: used when the file's metadata does not name one.

    Raises:
        FileNotFoundError, ValueError (not safetensors, legacy pickle, wrong keys or shapes),
        LookupError (Hub download failed).
    """
    if isinstance(spec, VideoExtractor):
        return spec.to(device).eval()
    if isinstance(spec, nn.Module):
        return VideoExtractor(spec, name=type(spec).__name__).to(device).eval()
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(
            "extractor: expected a safetensors file, an hf-hub: name or an nn.Module, got "
            f"{type(spec).__name__} "
            "(wrap a function in an nn.Module)"
        )
    from safetensors import safe_open

    path, source = resolve_extractor_file(spec)
    check_safetensors_file(path, what="extractor weights")
    with safetensors_errors(path, "extractor weights"), safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (a safetensors handle, not a dict)
    architecture = metadata.get(META_ARCHITECTURE, default_architecture)
    config = loads_json(metadata.get(META_CONFIG, "{}"), f"{path}: {META_CONFIG}")
    if not isinstance(config, dict):  # an untrusted file: checked before anything reads it
        raise ValueError(
            f"extractor weights: {path}: {META_CONFIG} must be a JSON object, got {short_repr(config)}"
        )
    if architecture == "i3d" and is_pytorch_i3d_naming(list(tensors)):
        tensors = map_pytorch_i3d_state_dict(tensors)
    elif architecture in ("c3d", "c3d-tgan2"):
        tensors = map_c3d_state_dict(tensors)
    if architecture in ("i3d", "c3d", "c3d-tgan2") and "num_classes" not in config:
        head = tensors.get("logits.bias" if architecture == "i3d" else "fc8.bias")
        if head is not None:
            config["num_classes"] = int(head.shape[0])
    _check_builds_what_it_holds(architecture, config, tensors, path)
    extractor = build_extractor(architecture, config, tensors)
    weights = {
        k: v for k, v in tensors.items() if k != C3D_MEAN_KEY or architecture not in ("c3d", "c3d-tgan2")
    }
    check_keys(extractor.network, weights, architecture, source)
    extractor.network.load_state_dict(weights, strict=False)
    extractor.sha256 = sha256_file(path)
    extractor.source = source
    return extractor.to(device).eval()
