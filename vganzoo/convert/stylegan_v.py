"""Convert the authors' StyleGAN-V checkpoints (``network-snapshot-NNNNNN.pkl``) into a weight set.

The file is read by :func:`~vganzoo.convert.persistence.read_snapshot`, the restricted reader of their
persistence pickles (see :mod:`vganzoo.convert.persistence`: nothing from the file is run, any global
outside its allow-list is refused with :class:`UnsafeCheckpointError`).

Every parameter and buffer of ``G``, ``G_ema`` and ``D`` is then mapped to
:class:`~vganzoo.models.stylegan_v.StyleGANVGenerator` / ``StyleGANVDiscriminator`` names; the
architecture comes from the tensor shapes, the layers' own attributes and the generator's
``sampling_dict`` (plus ``motion_z_distance`` from its config), the fixed buffers (resampling
filters, time frequencies) are checked against ours, and anything left unmapped is an error naming
it. The result is written by :func:`vganzoo.save_pretrained` as a weight set
(``generator``, ``generator_ema``, ``discriminator.video``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import VganzooError, short_repr
from ..models.stylegan_v import DEFAULT_CONFIG, StyleGANVDiscriminator, StyleGANVGenerator, channel_ladder
from .folder import write_weight_folder
from .persistence import (
    LEGACY_MAGIC,
    LEGACY_PROTOCOL,
    PERSISTENCE_MODULES,
    PERSISTENCE_VERSION,
    SAFE_BUILTINS,
    STAND_IN_MODULES,
    STORAGE_DTYPES,
    PersistentObject,
    SnapshotError,
    StandIn,
    UnsafeCheckpointError,
    flatten_network,
    lookup,
    plain,
    read_snapshot,
)

__all__ = [
    "ConversionReport",
    "PersistentObject",
    "SnapshotError",
    "StandIn",
    "UnsafeCheckpointError",
    "convert_stylegan_v",
    "load_stylegan_v",
    "read_snapshot",
]
# the reader's constants, defined here before it moved to convert/persistence.py
__all__ += [
    "LEGACY_MAGIC",
    "LEGACY_PROTOCOL",
    "PERSISTENCE_MODULES",
    "PERSISTENCE_VERSION",
    "SAFE_BUILTINS",
    "STAND_IN_MODULES",
    "STORAGE_DTYPES",
]

MODEL_NAME = "stylegan-v"
NETWORK_KEYS = ("G", "G_ema", "D")


# ------------------------------------------------------------------------------------------------
# architecture and names
# ------------------------------------------------------------------------------------------------
class ConversionReport:
    """What a conversion found: config, where each setting came from, mapped / checked / ignored."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.mapped: dict[str, int] = {}
        self.checked: list[str] = []
        self.ignored: list[str] = []
        self.unmapped: list[str] = []

    def summary(self) -> str:
        mapped = ", ".join(f"{k}: {v} tensors" for k, v in self.mapped.items())
        checked = f"{len(self.checked)} fixed buffers checked"
        ignored = ", ".join(self.ignored) or "nothing"
        return f"mapped {mapped}; {checked}; unmapped: none; snapshot entries ignored: {ignored}"


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise SnapshotError(f"{what} is {short_repr(value)}, not an int")
    return int(value)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SnapshotError(f"{what} is {short_repr(value)}, not a finite number")
    return float(value)


def _nice(value: float) -> float | int:
    """A period read back from float32 frequencies: the int it was, when it was one."""
    return round(value) if abs(value - round(value)) < 1e-3 * max(1.0, abs(value)) else float(value)


def _infer_config(
    g: dict[str, torch.Tensor],
    g_attrs: dict[str, dict[str, Any]],
    d: dict[str, torch.Tensor] | None,
    d_attrs: dict[str, dict[str, Any]] | None,
    report: ConversionReport,
) -> dict[str, Any]:
    """Our config of the authors' networks, from their tensors and attributes."""
    try:
        return _infer(g, g_attrs, d, d_attrs, report)
    except KeyError as exc:
        raise SnapshotError(f"not a StyleGAN-V network: it has no {exc.args[0]!r}") from None


def _infer(g, g_attrs, d, d_attrs, report) -> dict[str, Any]:
    found = _Found(report)
    resolution = _infer_synthesis(found, g, g_attrs)
    c_dim = _infer_mapping(found, g)
    _infer_motion(found, g, g_attrs, c_dim)
    _infer_sampling(found, g_attrs)
    if d is not None:
        _infer_discriminator(found, d, d_attrs or {}, resolution)
    config = found.config
    frames = max(config["sparse_frames"], min(DEFAULT_CONFIG["frames"], config["max_frames"]))
    found.put("frames", frames, "default sample length")
    return {k: (int(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in config.items()}


class _Found:
    """The config being inferred (from the defaults up) and where each setting came from."""

    def __init__(self, report: ConversionReport) -> None:
        self.config, self.sources = dict(DEFAULT_CONFIG), report.sources

    def put(self, key: str, value: Any, where: str) -> None:
        self.config[key], self.sources[key] = value, where


def _infer_synthesis(found: _Found, g: Mapping[str, torch.Tensor], g_attrs: dict[str, dict[str, Any]]) -> int:
    """Resolution, channels and the channel ladder from the synthesis blocks; returns the resolution."""
    resolutions = sorted({int(m.group(1)) for k in g if (m := re.match(r"synthesis\.b(\d+)\.", k))})
    if not resolutions or resolutions[0] != 4:
        raise SnapshotError("not a StyleGAN-V generator: no synthesis.b4 block")
    found.put("resolution", resolutions[-1], "synthesis blocks")
    found.put("channels", g[f"synthesis.b{resolutions[-1]}.torgb.weight"].shape[0], "to-RGB weight")
    ladder = {r: g[f"synthesis.b{r}.conv1.weight"].shape[0] for r in resolutions}
    channel_max = ladder[4]
    top = resolutions[-1]
    channel_base = ladder[top] * top if ladder[top] < channel_max else channel_max * top
    synthesis_kwargs = lookup(plain(g_attrs[""].get("_init_kwargs")), "synthesis_kwargs") or {}
    if isinstance(synthesis_kwargs.get("channel_base"), int):
        channel_base = synthesis_kwargs["channel_base"]
    if channel_ladder(top, width=1.0, channel_base=channel_base, channel_max=channel_max) != ladder:
        raise SnapshotError(f"the generator's channels {ladder} do not follow min(base // res, max)")
    found.put("channel_base", channel_base, "channels per block")
    found.put("channel_max", channel_max, "channels per block")
    found.put("width", 1.0, "channels per block")
    return top


def _infer_mapping(found: _Found, g: Mapping[str, torch.Tensor]) -> int:
    """Layers and sizes of the mapping network; returns the class-code size (0: unconditional)."""
    mapping_layers = len([k for k in g if re.fullmatch(r"mapping\.fc\d+\.weight", k)])
    found.put("mapping_layers", mapping_layers, "mapping layers")
    c_dim = g["mapping.embed.weight"].shape[1] if "mapping.embed.weight" in g else 0
    embed = g["mapping.embed.weight"].shape[0] if c_dim else 0
    found.put("num_classes", c_dim, "mapping embedding")
    found.put("z_dim", g["mapping.fc0.weight"].shape[1] - embed, "mapping input")
    found.put("w_dim", g[f"mapping.fc{mapping_layers - 1}.weight"].shape[0], "mapping output")
    return c_dim


def _infer_motion(
    found: _Found, g: Mapping[str, torch.Tensor], g_attrs: dict[str, dict[str, Any]], c_dim: int
) -> None:
    """The motion encoder and its time frequencies, then the synthesis layers' clamp and noise."""
    put = found.put
    motion = "synthesis.motion_encoder."
    conv0, conv1 = g[motion + "conv.0.weight"], g[motion + "conv.1.weight"]
    put("motion_z_dim", conv0.shape[0], "motion conv")
    put("motion_v_dim", conv1.shape[0], "motion conv")
    put("motion_kernel_size", conv0.shape[2], "motion conv")
    if conv0.shape[1] != conv0.shape[0] + c_dim:
        raise SnapshotError("the motion network's input is not motion codes plus the class code")
    freqs = g[motion + "time_encoder.freqs"].double()
    if freqs.ndim != 2 or freqs.shape[1] < 1 or not bool((freqs.isfinite() & (freqs > 0)).all()):
        raise SnapshotError(
            "the time encoder's frequencies (time_encoder.freqs) are not finite positive numbers"
        )
    put("time_dim", freqs.shape[1], "time frequencies")
    put("time_max_period", _nice(2 * math.pi / float(freqs[0, 0])), "time frequencies")
    put("time_min_period", _nice(2 * math.pi / float(freqs[0, -1])), "time frequencies")
    cfg = plain(g_attrs[""].get("cfg"))
    distance = lookup(cfg, "motion", "motion_z_distance")
    if isinstance(distance, (int, float)) and not isinstance(distance, bool):
        put("motion_z_distance", distance, "generator cfg.motion.motion_z_distance")
    else:
        put("motion_z_distance", found.config["time_min_period"], "= time_min_period (the authors' default)")
    layer = g_attrs.get("synthesis.b4.conv1", {})
    put("conv_clamp", layer.get("conv_clamp"), "synthesis layers")
    put("use_noise", any(k.endswith("noise_strength") for k in g), "noise strengths")


def _infer_sampling(found: _Found, g_attrs: dict[str, dict[str, Any]]) -> None:
    """Frame rate, video length and sparse frames from the generator's ``sampling_dict``."""
    sampling = g_attrs[""].get("sampling_dict") if isinstance(g_attrs[""].get("sampling_dict"), dict) else {}
    for key, ours in (
        ("fps", "fps"),
        ("max_num_frames", "max_frames"),
        ("num_frames_per_video", "sparse_frames"),
    ):
        if key in sampling:
            found.put(
                ours,
                _number(sampling[key], f"sampling_dict.{key}")
                if ours == "fps"
                else _int(sampling[key], f"sampling_dict.{key}"),
                f"sampling_dict.{key}",
            )
    if "max_dist" in sampling:
        found.put("max_dist", _int(sampling["max_dist"], "max_dist"), "sampling_dict.max_dist")
    if sampling.get("type", "random") != "random":
        raise SnapshotError(f"frame sampling {sampling.get('type')!r} is not supported (only 'random')")


def _infer_discriminator(
    found: _Found, d: Mapping[str, torch.Tensor], d_attrs: dict[str, dict[str, Any]], resolution: int
) -> None:
    """The discriminator's time table, frame concatenation, mapping and epilogue."""
    put, config = found.put, found.config
    table = d["time_encoder.const_embed.weight"]
    put("max_frames", table.shape[0], "D time-difference table")
    put("time_embed_dim", table.shape[1], "D time-difference table")
    d_res = sorted({int(m.group(1)) for k in d if (m := re.match(r"b(\d+)\.conv0\.", k))}, reverse=True)
    if not d_res or d_res[0] != resolution:
        raise SnapshotError("the discriminator's resolution is not the generator's")
    k = config["sparse_frames"]
    concat = [r for r in d_res[1:] if d[f"b{r}.conv0.weight"].shape[1] != d[f"b{r}.conv0.weight"].shape[0]]
    if len(concat) != 1:
        raise SnapshotError("cannot find the discriminator's frame concatenation block")
    concat_res = concat[0]
    tmp = d[f"b{concat_res}.conv0.weight"].shape[0]
    per_frame = d[f"b{concat_res}.conv0.weight"].shape[1] // k
    put("concat_res", concat_res, "D block shapes")
    put("frames_div_factor", tmp // per_frame, "D block shapes")
    put("d_mapping_layers", len([x for x in d if re.fullmatch(r"mapping\.fc\d+\.weight", x)]), "D mapping")
    mbstd = d_attrs.get("b4.mbstd")
    if mbstd is None:
        put("mbstd_channels", 0, "D epilogue")
    else:
        put("mbstd_group_size", _int(mbstd.get("group_size"), "mbstd group_size"), "D epilogue")
        put("mbstd_channels", _int(mbstd.get("num_channels"), "mbstd num_channels"), "D epilogue")
    d_clamp = d_attrs.get(f"b{resolution}.conv0", {}).get("conv_clamp")
    if d_clamp != config["conv_clamp"]:
        raise SnapshotError(f"D clamps at {d_clamp} and G at {config['conv_clamp']}: not supported")


_G_RULES: list[tuple[str, Callable[..., str] | None]] = [
    (r"mapping\.fc(\d+)\.(weight|bias)", lambda i, p: f"mapping.layers.{i}.{p}"),
    (r"mapping\.embed\.(weight|bias)", lambda p: f"mapping.embed.{p}"),
    (r"mapping\.w_avg", lambda: "mapping.w_avg"),
    (r"synthesis\.motion_encoder\.conv\.(\d+)\.(weight|bias)", lambda i, p: f"motion.layers.{i}.{p}"),
    (r"synthesis\.motion_encoder\.time_encoder\.periods_predictor\.weight", lambda: "motion.period.weight"),
    (r"synthesis\.motion_encoder\.time_encoder\.phase_predictor\.weight", lambda: "motion.phase.weight"),
    (r"synthesis\.motion_encoder\.time_encoder\.aligners_predictor\.weight", lambda: "motion.aligner.weight"),
    (r"synthesis\.motion_encoder\.time_encoder\.(freqs|phase_scales)", None),
    (r"synthesis\.b4\.input\.input\.const", lambda: "const"),
    (
        r"synthesis\.b(\d+)\.(conv0|conv1)\.(affine\.weight|affine\.bias|weight|bias|noise_strength|noise_const)",
        lambda r, c, p: f"blocks.{_block(int(r))}.{c}.{p}",
    ),
    (
        r"synthesis\.b(\d+)\.torgb\.(affine\.weight|affine\.bias|weight|bias)",
        lambda r, p: f"blocks.{_block(int(r))}.to_rgb.{p}",
    ),
    (r"synthesis\.b\d+\.(conv0\.|conv1\.)?resample_filter", None),
]


def _block(resolution: int) -> int:
    return int(math.log2(resolution)) - 2


def _d_rules(resolution: int) -> list[tuple[str, Callable[..., str] | None]]:
    def index(r: str) -> int:
        return int(math.log2(resolution)) - int(math.log2(int(r)))

    return [
        (r"b(\d+)\.fromrgb\.(weight|bias)", lambda r, p: f"blocks.{index(r)}.from_rgb.{p}"),
        (r"b(\d+)\.(conv0|conv1)\.(weight|bias)", lambda r, c, p: f"blocks.{index(r)}.{c}.{p}"),
        (r"b(\d+)\.skip\.weight", lambda r: f"blocks.{index(r)}.skip.weight"),
        (r"b4\.conv\.(weight|bias)", lambda p: f"epilogue.conv.{p}"),
        (r"b4\.(fc|out)\.(weight|bias)", lambda f, p: f"epilogue.{f}.{p}"),
        (r"time_encoder\.const_embed\.weight", lambda: "time_embedding.table"),
        (r"time_encoder\.time_encoder\.fourier_coefs", None),
        (r"mapping\.embed\.(weight|bias)", lambda p: f"mapping.embed.{p}"),
        (r"mapping\.fc(\d+)\.(weight|bias)", lambda i, p: f"mapping.layers.{i}.{p}"),
        (r"(b\d+\.)?(conv\d?\.|skip\.|fromrgb\.)?resample_filter", None),
    ]


def _fixed_buffers(module: torch.nn.Module, theirs: str) -> torch.Tensor:
    """Our value of one of the authors' fixed buffers, by its (their) name."""
    name = theirs.rsplit(".", 1)[1]
    if name == "resample_filter":
        return next(b for n, b in module.named_buffers() if n.endswith("resample_filter"))
    if name == "fourier_coefs":
        return module.time_embedding.fourier_coefs
    return getattr(module.motion, name)


def _map(
    tensors: Mapping[str, torch.Tensor],
    rules: list[tuple[str, Callable[..., str] | None]],
    module: torch.nn.Module,
    what: str,
    report: ConversionReport,
) -> dict[str, torch.Tensor]:
    """Their tensors under our names; fixed buffers checked; anything unmapped is an error."""
    ours: dict[str, torch.Tensor] = {}
    unmapped = []
    for name, tensor in tensors.items():
        for pattern, target in rules:
            match = re.fullmatch(pattern, name)
            if match is None:
                continue
            if target is None:
                expected = _fixed_buffers(module, name)
                if tuple(tensor.shape) != tuple(expected.shape) or not torch.allclose(
                    tensor.double(), expected.double(), rtol=1e-6, atol=1e-7
                ):
                    raise SnapshotError(f"{what}.{name} differs from this architecture's fixed value")
                report.checked.append(f"{what}.{name}")
            else:
                ours[target(*match.groups())] = tensor
            break
        else:
            unmapped.append(name)
    if unmapped:
        report.unmapped.extend(f"{what}.{n}" for n in unmapped)
        raise SnapshotError(f"{what}: tensors with no place in stylegan-v: {', '.join(sorted(unmapped))}")
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in ours.items()}
    if expected != got:
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        raise SnapshotError(
            f"{what} does not fit the inferred stylegan-v config: missing {missing}, unexpected {extra}, "
            f"wrong shapes {[(k, got[k], expected[k]) for k in wrong]}"
        )
    report.mapped[what] = len(ours)
    return {k: v.detach().to(torch.float32) if v.is_floating_point() else v for k, v in ours.items()}


def load_stylegan_v(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]], ConversionReport]:
    """Read a StyleGAN-V checkpoint; returns ``(config, state dicts by component, report)``.

    Components: ``generator`` (``G``, else ``G_ema``), ``generator_ema`` (``G_ema``, when both are
    there) and ``discriminator.video`` (``D``, when there).
    """
    data = read_snapshot(path)
    source = repr(str(path))
    nets = {key: data[key] for key in NETWORK_KEYS if data.get(key) is not None}
    if "G" not in nets and "G_ema" not in nets:
        keys = ", ".join(map(repr, list(data)[:8])) or "none"
        raise SnapshotError(f"{source} holds no StyleGAN-V generator ('G' or 'G_ema'); its entries: {keys}")
    report = ConversionReport()
    report.ignored = sorted(str(k) for k in data if k not in NETWORK_KEYS)
    flat = {}
    for key, net in nets.items():
        if not isinstance(net, PersistentObject):
            raise SnapshotError(
                f"{source}: {key} is {short_repr(net)}, not one of the authors' persistent networks"
            )
        expected = "Discriminator" if key == "D" else "Generator"
        if net.class_name != expected:
            raise SnapshotError(f"{source}: {key} is a {net.class_name}, not a StyleGAN-V {expected}")
        try:
            flat[key] = flatten_network(net)
        except SnapshotError as exc:
            raise SnapshotError(f"{source}: {key}: {exc}") from None
    g_key = "G_ema" if "G_ema" in nets else "G"
    try:
        config = _infer_config(*flat[g_key], *(flat.get("D") or (None, None)), report)
        generator = StyleGANVGenerator(**{k: config[k] for k in StyleGANVGenerator.__init__.__kwdefaults__})
        disc = StyleGANVDiscriminator(
            **{k: config[k] for k in StyleGANVDiscriminator.__init__.__kwdefaults__}
        )
    except VganzooError as exc:
        if isinstance(exc, SnapshotError):
            raise SnapshotError(f"{source}: {exc}") from None
        raise SnapshotError(f"{source}: unsupported StyleGAN-V configuration: {exc}") from None
    report.config = config
    components: dict[str, dict[str, torch.Tensor]] = {}
    try:
        for key, component in (("G", "generator"), ("G_ema", "generator_ema")):
            if key in flat:
                components[component] = _map(flat[key][0], _G_RULES, generator, key, report)
        if "generator" not in components:
            components["generator"] = components.pop("generator_ema")
        if "D" in flat:
            components["discriminator.video"] = _map(
                flat["D"][0], _d_rules(config["resolution"]), disc, "D", report
            )
    except SnapshotError as exc:
        raise SnapshotError(f"{source}: {exc}") from None
    for component, state in components.items():  # vganzoo refuses such weights at load: say so now
        for name, tensor in state.items():
            if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
                raise SnapshotError(
                    f"{source}: {component} tensor {name!r} holds NaN or infinite values (damaged or "
                    "diverged weights)"
                )
    return config, components, report


def convert_stylegan_v(
    src: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, overwrite: bool = False
) -> tuple[Path, ConversionReport]:
    """Convert the checkpoint at ``src`` into a weight set at ``out_dir``; returns ``(folder, report)``."""
    config, components, report = load_stylegan_v(src)
    metadata = {
        "source": Path(src).name,
        "format": "stylegan-v-persistence-pickle",
        "converter": "vganzoo.convert.stylegan_v",
    }
    folder = write_weight_folder(
        out_dir, {"model": MODEL_NAME, **config}, components, metadata=metadata, overwrite=overwrite
    )
    return folder, report
