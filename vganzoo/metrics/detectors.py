"""The detector files of the pinned protocols: loaded safely, identified by sha256, checked for the
input and output contract their protocol expects.

* TorchScript (StyleGAN-V's ``i3d_torchscript.pt`` and ``c3d_ucf101.pt``): ``torch.jit.load``. A
  TorchScript archive holds TorchScript code and tensors; loading it compiles that code with the
  TorchScript compiler and unpickles only TorchScript's own types, so no Python code from the file
  runs. Anything else (a ``torch.save`` pickle, a state dict) is refused before loading.
* safetensors (pytorch-i3d's ``i3d_pretrained_400.pt`` and tgan2's C3D, converted once with
  ``vganzoo convert i3d`` / ``vganzoo convert tgan2-c3d``): tensors only, built into our modules.

A file of the wrong kind, a network with another call signature or output size, or a C3D whose
outputs are not probabilities gives a one-line error naming the file and what was expected.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from typing import Any

import numpy as np
import torch
from torch import nn

from ..files import sha256_file
from .protocols import DETECTORS, DetectorSpec, Protocol

__all__ = ["Detector", "check_torchscript_file", "load_detector"]

TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".jit", ".torchscript", ".zip")
I3D_KWARGS = ("rescale", "resize", "return_features")
PROBABILITY_TOLERANCE = 1e-3  # rows of a probability output sum to 1 within this
VIDEOGPT_BN_EPS = 1e-5  # VideoGPT's pytorch_i3d.py: nn.BatchNorm3d(..., eps=1e-5, momentum=0.001)
_PICKLE_PROTOCOL_OPCODE = 0x80


def check_torchscript_file(path: str) -> None:
    """Raise unless ``path`` is a TorchScript archive (a zip holding ``code/`` and ``constants.pkl``)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"detector file not found: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"detector: {path} is a folder; give the TorchScript .pt file")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(2)
        kind = "a pickle" if head[:1] and head[0] == _PICKLE_PROTOCOL_OPCODE else "not a zip archive"
        raise ValueError(
            f"detector: {path} is {kind}, not a TorchScript archive; vganzoo loads StyleGAN-V's detectors "
            "with torch.jit.load only and never unpickles a file"
        )
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if not any("/code/" in n for n in names) or not any(n.endswith("constants.pkl") for n in names):
        raise ValueError(
            f"detector: {path} is a torch.save checkpoint (a pickle), not TorchScript (torch.jit.save); "
            "vganzoo never unpickles it"
        )


class Detector:
    """``detector(batch) -> (N, D)`` float32 features, logits or probabilities, contract-checked.

    Attributes:
        spec: what the protocol expects (:class:`~vganzoo.metrics.protocols.DetectorSpec`).
        network: the loaded module; sha256, source: of the file it came from.
    """

    def __init__(self, spec: DetectorSpec, network: nn.Module, sha256: str, source: str, path: str) -> None:
        self.spec, self.network, self.sha256, self.source, self.path = spec, network, sha256, source, path
        self.kwargs = dict.fromkeys(I3D_KWARGS, True) if spec.call.startswith("detector(x, rescale") else {}
        self.checked = False

    @torch.no_grad()
    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        try:
            out = self.network(batch, **self.kwargs)
        except torch.cuda.OutOfMemoryError:
            raise  # not the file's fault: a smaller --batch-size helps
        except RuntimeError as exc:  # a TorchScript network that does not take this input
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(
                f"detector {self.source} failed on input {tuple(batch.shape)} {batch.dtype} (expected "
                f"{self.spec.call}): {first}"
            ) from None
        self._check_output(out, batch.shape[0])
        return out.float()

    def _check_output(self, out: Any, n: int) -> None:
        want = f"(N, {self.spec.output_dim}) {self.spec.output}"
        if (
            not isinstance(out, torch.Tensor)
            or out.ndim != 2
            or tuple(out.shape) != (n, self.spec.output_dim)
        ):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"detector {self.source} returned {got} for {n} clips, but {self.spec.network} gives {want}; "
                "is this the right file?"
            )
        if not out.dtype.is_floating_point or not torch.isfinite(out).all():
            raise ValueError(f"detector {self.source} returned non-finite or non-float values ({out.dtype})")
        if self.spec.output == "probabilities" and not self.checked:
            rows = out.double().sum(dim=1)
            if (out < 0).any() or not torch.allclose(rows, torch.ones_like(rows), atol=PROBABILITY_TOLERANCE):
                raise ValueError(
                    f"detector {self.source} returned rows that are not probabilities (sums "
                    f"{float(rows.min()):.4g}..{float(rows.max()):.4g}); {self.spec.network} ends in a "
                    "softmax"
                )
        self.checked = True

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "kind": self.spec.kind,
            "loaded_with": "torch.jit.load" if self.spec.kind == "torchscript" else "safetensors",
            "network": self.spec.network,
            "call": self.spec.call,
            "output": f"(N, {self.spec.output_dim}) {self.spec.output}",
        }


def _check_i3d_signature(module: Any, source: str) -> None:
    """StyleGAN-V calls ``detector(x, rescale=True, resize=True, return_features=True)``."""
    schema = getattr(getattr(module, "forward", None), "schema", None)
    if schema is None:
        return  # an older TorchScript build without schemas: the first call checks the contract
    names = [a.name for a in schema.arguments]
    missing = [k for k in I3D_KWARGS if k not in names]
    if missing:
        raise ValueError(
            f"detector {source}: forward({', '.join(names[1:])}) takes no {', '.join(missing)}; StyleGAN-V's "
            "I3D is called as detector(x, rescale=True, resize=True, return_features=True): is this "
            "i3d_torchscript.pt?"
        )


def _load_torchscript(spec: DetectorSpec, detector: Any, device: torch.device) -> Detector:
    from .extractors import resolve_extractor_file

    if not isinstance(detector, (str, os.PathLike)):
        raise TypeError(
            f"detector: expected a TorchScript file path or hf-hub: name, got {type(detector).__name__}"
        )
    path, source = resolve_extractor_file(detector, TORCHSCRIPT_SUFFIXES, what="--detector")
    check_torchscript_file(path)
    digest = sha256_file(path)
    try:
        with (
            warnings.catch_warnings()
        ):  # TorchScript is deprecated in recent PyTorch; these files are TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(path, map_location=device).eval()
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"detector: {path} could not be loaded as TorchScript: {first}") from None
    if spec is DETECTORS["stylegan-v-i3d"]:
        _check_i3d_signature(module, source)
    return Detector(spec, module, digest, source, path)


def _load_safetensors(
    spec: DetectorSpec, detector: Any, device: torch.device, protocol: Protocol
) -> Detector:
    from .extractors import load_extractor

    architecture = {"pytorch-i3d": "i3d", "tgan2-c3d": "c3d-tgan2"}[protocol.detector]
    if isinstance(detector, nn.Module):
        raise TypeError(
            "detector: give the safetensors file (its sha256 is part of the protocol), not a module"
        )
    path = os.fspath(detector) if isinstance(detector, (str, os.PathLike)) else ""
    if os.path.isfile(path) and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            torchscript = any("/code/" in n for n in archive.namelist())
        if torchscript:
            raise ValueError(
                f"detector: {path} is TorchScript (StyleGAN-V's detectors); {protocol.name} uses "
                f"{spec.network}: {spec.obtain}"
            )
    extractor = load_extractor(detector, default_architecture=architecture, device="cpu")
    if extractor.name != architecture:
        raise ValueError(
            f"detector {extractor.source} holds {extractor.name} weights, but {protocol.name} needs "
            f"{spec.network} ({spec.obtain})"
        )
    network = extractor.network
    if architecture == "i3d":  # VideoGPT's pytorch-i3d builds its batch norms with eps 1e-5
        network = _with_bn_eps(network, VIDEOGPT_BN_EPS)
    else:
        network = _Tgan2Probabilities(extractor)
    return Detector(spec, network.to(device).eval(), extractor.sha256, extractor.source, extractor.source)


def _with_bn_eps(network: nn.Module, eps: float) -> nn.Module:
    for module in network.modules():
        if isinstance(module, nn.BatchNorm3d):
            module.eps = eps
    return network


class _Tgan2Probabilities(nn.Module):
    """tgan2's classifier on float clips in [-1, 1]: its preprocessing, the C3D, ``F.softmax`` (float32)."""

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.extractor = extractor

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        logits = self.extractor.network(self.extractor.preprocess(videos))
        return torch.softmax(logits.float(), dim=1)


def load_detector(protocol: Protocol, detector: Any, device: torch.device | str = "cpu") -> Detector:
    """Load the file ``detector`` (path or ``hf-hub:org/repo/file@commit``) as ``protocol``'s detector."""
    if detector is None:
        spec = protocol.detector_spec
        raise ValueError(
            f"{protocol.name} needs --detector: {spec.network} ({spec.obtain}); vganzoo ships none"
        )
    spec = protocol.detector_spec
    device = torch.device(device)
    if spec.kind == "torchscript":
        path = os.fspath(detector) if isinstance(detector, (str, os.PathLike)) else ""
        if path.endswith(".safetensors"):
            raise ValueError(
                f"detector: {protocol.name} uses {spec.network}, a TorchScript file; {path} is safetensors "
                "(pytorch-i3d's weights go with videogpt-fvd / tats-fvd)"
            )
        return _load_torchscript(spec, detector, device)
    return _load_safetensors(spec, detector, device, protocol)


def as_numpy_features(features: list[torch.Tensor]) -> np.ndarray:
    """Concatenated detector outputs as float32 numpy (what the originals' FeatureStats keep)."""
    return torch.cat(features).detach().to("cpu", torch.float32).numpy()
