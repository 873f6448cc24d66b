"""Convert TGAN's Chainer snapshots (``gen_iter_N.npz``, ``vgen_iter_N.npz``, ``vdis_iter_N.npz``).

The authors' trainer saves each network with ``snapshot_object``: the temporal generator G0 as
``gen_iter_N.npz``, the image generator G1 as ``vgen_iter_N.npz`` and the critic as
``vdis_iter_N.npz``. Keys are ``<link>/<param>``; the files are read with
:func:`vganzoo.convert.npz.read_npz` (nothing is unpickled, and an archive declaring far more data
than TGAN's networks have is refused before it is decompressed).

Key map (Chainer's array layouts equal PyTorch's for Linear, ConvolutionND, Convolution2D,
DeconvolutionND and Deconvolution2D)::

    W -> weight   b -> bias   gamma -> weight   beta -> bias
    avg_mean -> running_mean   avg_var -> running_var   N -> num_batches_tracked

    gen:  dc{i}/*, bn{i}/*          -> generator  temporal.dc{i}.*, temporal.bn{i}.*
    vgen: l0s, l0f, bn0s, bn0f, dc{i}, bn{i} -> generator  image.<link>.*
    vdis: c{i}/*                    -> discriminator.video  c{i}.*
          bn{i}/* (i >= 1)          -> discriminator.video  c{i}.norm.*   (bn0 is unused by the original)

G0's and the critic's batch norms have no shift; a snapshot with a non-zero ``beta`` there (the
"with beta" variants) is refused. A missing ``N`` counter is filled with 0.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import VganzooError, short_repr
from ..models.tgan import BOTTOM_SIZE, D_FRAMES, DEFAULT_CONFIG, G1_CHANNELS, TGANDiscriminator, TGANGenerator
from .folder import write_weight_folder
from .npz import read_npz

__all__ = ["PARAM_MAP", "convert_tgan", "find_tgan_files", "load_tgan_state_dicts"]

MODEL_NAME = "tgan"
PARAM_MAP = {
    "W": "weight",
    "b": "bias",
    "gamma": "weight",
    "beta": "bias",
    "avg_mean": "running_mean",
    "avg_var": "running_var",
    "N": "num_batches_tracked",
}
_GEN_FILE = re.compile(r"^gen_iter_(\d+)\.npz$")
# A snapshot may hold at most this many times the float32 bytes of TGAN's largest default network
# (the critic): room for wider variants, not for a zip bomb.
SNAPSHOT_BUDGET_FACTOR = 4
FLOAT32_BYTES = 4


def _snapshot_budget() -> int:
    with torch.device("meta"):
        largest = max(
            sum(t.numel() for t in module.state_dict().values())
            for module in (TGANGenerator(), TGANDiscriminator())
        )
    return SNAPSHOT_BUDGET_FACTOR * FLOAT32_BYTES * largest


def _read_npz(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """``{link: {param: array}}`` from a per-network Chainer snapshot."""
    if not path.is_file():
        raise FileNotFoundError(f"no such snapshot file: {str(path)!r}")
    links: dict[str, dict[str, np.ndarray]] = {}
    for key, array in read_npz(path, "a TGAN snapshot", max_bytes=_snapshot_budget()).items():
        parts = key.strip("/").split("/")
        if len(parts) < 2:
            raise ValueError(f"{str(path)!r}: key {short_repr(key)} is not <link>/<param>")
        link, param = parts[-2], parts[-1]
        if param in links.setdefault(link, {}):
            raise ValueError(
                f"{str(path)!r} holds several networks (key {short_repr(key)} repeats a parameter); "
                "pass the per-network snapshots gen_iter_N.npz / vgen_iter_N.npz / vdis_iter_N.npz"
            )
        links[link][param] = array
    return links


def _convert_link(
    params: Mapping[str, np.ndarray], target: str, *, shift: bool, source: str
) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for param, array in params.items():
        if param not in PARAM_MAP:
            raise ValueError(
                f"{source}: unknown parameter {short_repr(param)} (known: {', '.join(PARAM_MAP)})"
            )
        if param == "beta" and not shift:
            if np.any(array != 0):
                raise ValueError(
                    f"{source}: has a non-zero shift (beta) but TGAN's batch norm here has none; "
                    "this snapshot is from a 'with beta' variant vganzoo does not build"
                )
            continue
        if param == "N":
            out[f"{target}.num_batches_tracked"] = torch.tensor(
                int(np.asarray(array).item()), dtype=torch.long
            )
            continue
        if array.dtype.kind != "f":
            raise ValueError(f"{source}: {param} has dtype {array.dtype}, expected floating point")
        out[f"{target}.{PARAM_MAP[param]}"] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if "avg_mean" in params and "N" not in params:
        out[f"{target}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return out


def _generator_state(
    gen: Mapping[str, Mapping[str, np.ndarray]], vgen: Mapping[str, Mapping[str, np.ndarray]]
) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for link, params in gen.items():
        state.update(
            _convert_link(params, f"temporal.{link}", shift=not link.startswith("bn"), source=f"gen {link}")
        )
    for link, params in vgen.items():
        state.update(_convert_link(params, f"image.{link}", shift=True, source=f"vgen {link}"))
    return state


def _discriminator_state(vdis: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for link, params in vdis.items():
        if link == "bn0":
            continue  # defined but never used by the original critic
        if link.startswith("bn"):
            state.update(_convert_link(params, f"c{link[2:]}.norm", shift=False, source=f"vdis {link}"))
        else:
            state.update(_convert_link(params, link, shift=True, source=f"vdis {link}"))
    return state


def _infer_config(gen: Mapping[str, Any], vgen: Mapping[str, Any]) -> dict[str, Any]:
    try:
        dc_gen = sorted(int(k[2:]) for k in gen if re.fullmatch(r"dc\d+", k))
        dc_img = sorted(int(k[2:]) for k in vgen if re.fullmatch(r"dc\d+", k))
        dim_z_slow = int(gen["dc0"]["W"].shape[0])
        dim_z_fast = int(gen[f"dc{dc_gen[-1]}"]["W"].shape[1])
        half = int(vgen["l0s"]["W"].shape[0]) // (BOTTOM_SIZE * BOTTOM_SIZE)
        channels = int(vgen[f"dc{dc_img[-1]}"]["W"].shape[1])
    except (KeyError, IndexError) as exc:
        raise ValueError(f"not a TGAN generator snapshot pair (gen + vgen): missing {exc}") from None
    frames = 2 ** (len(dc_gen) - 1)
    config = {
        **DEFAULT_CONFIG,
        "resolution": BOTTOM_SIZE * 2 ** (len(dc_img) - 1),
        "frames": frames,
        "channels": channels,
        "width": half / (G1_CHANNELS // 2),
        "num_classes": 0,
        "dim_z_slow": dim_z_slow,
        "dim_z_fast": dim_z_fast,
    }
    if frames != D_FRAMES:
        config["discriminators"] = []  # TGAN's critic covers exactly 16 frames
    return config


def _check_shapes(
    what: str,
    expected: Mapping[str, torch.Tensor],
    got: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
) -> None:
    exp = {k: tuple(v.shape) for k, v in expected.items()}
    have = {k: tuple(v.shape) for k, v in got.items()}
    if exp != have:
        missing = sorted(set(exp) - set(have))
        extra = sorted(set(have) - set(exp))
        wrong = [(k, have[k], exp[k]) for k in sorted(set(exp) & set(have)) if exp[k] != have[k]]
        raise ValueError(
            f"{what} does not match tgan {dict(config)}: missing {missing}, unexpected {extra}, wrong shapes "
            f"{wrong}"
        )


def load_tgan_state_dicts(
    temporal: str | os.PathLike[str],
    image: str | os.PathLike[str],
    discriminator: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]]:
    """Read the snapshots; returns ``(config, {"generator": sd, ["discriminator.video": sd]})``,
    shape-checked."""
    gen, vgen = _read_npz(Path(temporal)), _read_npz(Path(image))
    config = _infer_config(gen, vgen)
    shared = {k: config[k] for k in ("resolution", "frames", "channels", "width", "num_classes")}
    try:
        with torch.device("meta"):
            ours = TGANGenerator(**shared, dim_z_slow=config["dim_z_slow"], dim_z_fast=config["dim_z_fast"])
    except VganzooError as exc:
        raise ValueError(f"unsupported TGAN generator configuration: {exc}") from None
    components = {"generator": _generator_state(gen, vgen)}
    _check_shapes("the generator snapshots (gen + vgen)", ours.state_dict(), components["generator"], config)
    if discriminator is not None:
        try:
            with torch.device("meta"):
                critic = TGANDiscriminator(**shared)
        except VganzooError as exc:
            raise ValueError(f"the critic cannot be converted for this generator: {exc}") from None
        components["discriminator.video"] = _discriminator_state(_read_npz(Path(discriminator)))
        _check_shapes(
            "the critic snapshot (vdis)", critic.state_dict(), components["discriminator.video"], config
        )
    return config, components


def find_tgan_files(src: str | os.PathLike[str]) -> tuple[Path, Path | None, Path | None]:
    """``(gen, vgen or None, vdis or None)`` for ``src``: a ``gen_iter_N.npz`` file or a folder (latest N)."""
    src = Path(src)
    if src.is_dir():
        found = [(int(m.group(1)), p) for p in src.iterdir() if (m := _GEN_FILE.match(p.name))]
        if not found:
            raise FileNotFoundError(f"no gen_iter_N.npz snapshot in {str(src)!r}")
        src = max(found)[1]
    if not src.is_file():
        raise FileNotFoundError(f"no such snapshot file: {str(src)!r}")
    for prefix, what in (("vgen_", "image generator"), ("vdis_", "video discriminator")):
        if src.name.startswith(prefix):
            raise ValueError(
                f"src: {src.name} is TGAN's {what} snapshot; give the temporal generator's "
                f"gen_{src.name[len(prefix) :]} (the other snapshots are found beside it)"
            )
    if not src.name.startswith("gen_"):
        return src, None, None
    vgen, vdis = src.with_name("v" + src.name), src.with_name("vdis_" + src.name[len("gen_") :])
    return src, vgen if vgen.is_file() else None, vdis if vdis.is_file() else None


def convert_tgan(
    src: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    image_generator: str | os.PathLike[str] | None = None,
    discriminator: str | os.PathLike[str] | None = None,
    include_discriminator: bool = True,
    overwrite: bool = False,
) -> Path:
    """Convert TGAN snapshots into a weight folder at ``out_dir``.

    Args:
        src: the temporal generator's ``gen_iter_N.npz`` (or a folder: the latest one in it).
        image_generator: G1's snapshot; default ``vgen_iter_N.npz`` next to ``src``.
        discriminator: the critic's snapshot; default ``vdis_iter_N.npz`` next to ``src`` when it exists.
        include_discriminator: False skips the critic even when it is found.
    """
    temporal, vgen, vdis = find_tgan_files(src)
    image = Path(image_generator) if image_generator is not None else vgen
    if image is None:
        raise FileNotFoundError(
            f"no image generator snapshot next to {str(temporal)!r} (expected v{temporal.name}); "
            "give the image generator's snapshot (--image-generator on the command line)"
        )
    if discriminator is not None and not include_discriminator:
        raise ValueError(
            "discriminator: given together with include_discriminator=False (--no-discriminator); choose one"
        )
    critic = (Path(discriminator) if discriminator is not None else vdis) if include_discriminator else None
    config, components = load_tgan_state_dicts(temporal, image, critic)
    # Prove the weights load strictly before writing anything.
    shared = {k: config[k] for k in ("resolution", "frames", "channels", "width", "num_classes")}
    TGANGenerator(**shared, dim_z_slow=config["dim_z_slow"], dim_z_fast=config["dim_z_fast"]).load_state_dict(
        components["generator"], strict=True
    )
    if "discriminator.video" in components:
        TGANDiscriminator(**shared).load_state_dict(components["discriminator.video"], strict=True)
    metadata = {"source": temporal.name, "format": "tgan-chainer-npz", "converter": "vganzoo.convert.tgan"}
    return write_weight_folder(
        out_dir, {"model": MODEL_NAME, **config}, components, metadata=metadata, overwrite=overwrite
    )
