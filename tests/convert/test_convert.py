"""Converters: files built in the original formats round-trip into models that compute the same function."""

from __future__ import annotations

import json
import os
import sys
import types
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

import vganzoo
from vganzoo.cli import main as cli_main
from vganzoo.convert import UnsafeCheckpointError, convert_mocogan, convert_tgan
from vganzoo.convert.folder import FolderExistsError


# ------------------------------------------------------------------------------------------------
# MoCoGAN: a stand-in for the authors' `models` module, pickled the way their trainer did
# ------------------------------------------------------------------------------------------------
class _ThnnBackend:
    """Pickles like PyTorch 0.3's module backend attribute (`_backend`)."""

    def __reduce__(self):
        from torch.nn.backends.thnn import _get_thnn_function_backend

        return (_get_thnn_function_backend, ())


def _make_original_module():
    """A `models` module with VideoGenerator and Noise laid out as ARCHITECTURES.md documents."""
    mod = types.ModuleType("models")

    class VideoGenerator(nn.Module):
        def __init__(self, n_channels, dim_z_content, dim_z_category, dim_z_motion, video_length, ngf=64):
            super().__init__()
            self.n_channels, self.dim_z_content, self.dim_z_category = (
                n_channels,
                dim_z_content,
                dim_z_category,
            )
            self.dim_z_motion, self.video_length = dim_z_motion, video_length
            dim_z = dim_z_motion + dim_z_category + dim_z_content
            self.recurrent = nn.GRUCell(dim_z_motion, dim_z_motion)
            self.main = nn.Sequential(
                nn.ConvTranspose2d(dim_z, ngf * 8, 4, 1, 0, bias=False),
                nn.BatchNorm2d(ngf * 8),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * 4),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * 2),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf, n_channels, 4, 2, 1, bias=False),
                nn.Tanh(),
            )

        def generate(self, z_content, motion_noise, h0, labels):
            """The original's per-frame code order: [content, category one-hot, motion]."""
            n, t = motion_noise.shape[:2]
            h, codes = h0, []
            for i in range(t):
                h = self.recurrent(motion_noise[:, i], h)
                codes.append(h)
            z_m = torch.stack(codes, 1)
            parts = [z_content[:, None].expand(n, t, -1)]
            if self.dim_z_category:
                parts.append(F.one_hot(labels, self.dim_z_category).float()[:, None].expand(n, t, -1))
            parts.append(z_m)
            z = torch.cat(parts, 2).reshape(n * t, -1, 1, 1)
            frames = self.main(z)
            return frames.reshape(n, t, *frames.shape[1:]).permute(0, 2, 1, 3, 4)

    class Noise(nn.Module):
        def __init__(self, use_noise, sigma=0.2):
            super().__init__()
            self.use_noise, self.sigma = use_noise, sigma

    for cls in (VideoGenerator, Noise):
        cls.__module__ = "models"
        cls.__qualname__ = cls.__name__
        setattr(mod, cls.__name__, cls)
    return mod


@pytest.fixture
def original_models_module():
    mod = _make_original_module()
    saved = sys.modules.get("models")
    sys.modules["models"] = mod
    yield mod
    if saved is None:
        sys.modules.pop("models", None)
    else:
        sys.modules["models"] = saved


def _as_pytorch03(module: nn.Module) -> nn.Module:
    """Drop what PyTorch 0.3 did not have (BN counters) and add what it did (`_backend`)."""
    for sub in module.modules():
        sub._buffers.pop("num_batches_tracked", None)
        sub._backend = _ThnnBackend()
    return module


def _save_original(module: nn.Module, path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch cannot read the stand-in classes' source
        torch.save(module, path, pickle_protocol=2, _use_new_zipfile_serialization=False)


def _original_generator(mod, ngf=64, dim_z_category=6, video_length=16):
    torch.manual_seed(0)
    g = mod.VideoGenerator(3, 50, dim_z_category, 10, video_length, ngf=ngf)
    with torch.no_grad():  # non-trivial BN statistics so that eval-mode outputs test them
        for bn in (m for m in g.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.normal_(0, 0.1)
            bn.running_var.uniform_(0.5, 1.5)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0, 0.1)
    return g.eval()


def _load_folder(folder):
    """The converted folder is a weight set: vganzoo.load reads it (sha256-checked)."""
    model = vganzoo.load(f"local-dir:{folder}", components="all")
    config = json.loads((folder / "config.json").read_text())
    config.pop("model")
    return model, config


WEIGHT_SET = ["README.md", "config.json", "generator.safetensors", "weights.json"]


def test_mocogan_round_trip_at_the_paper_config(tmp_path, original_models_module):
    original = _original_generator(original_models_module)
    src = tmp_path / "generator_100000.pytorch"
    _save_original(_as_pytorch03(original), src)
    sys.modules.pop("models")  # the converter must not need the authors' code

    folder = convert_mocogan(src, tmp_path / "out")
    assert sorted(p.name for p in folder.iterdir()) == WEIGHT_SET
    model, config = _load_folder(folder)
    assert (
        config["num_classes"] == 6
        and config["frames"] == 16
        and config["resolution"] == 64
        and config["width"] == 1.0
    )
    state = load_file(str(folder / "generator.safetensors"))
    assert int(state["main.1.num_batches_tracked"]) == 0  # filled in

    latents = model.generator.sample_latents(3, generator=torch.Generator().manual_seed(1))
    model.generator.eval()
    with torch.no_grad():
        ours = model.generator(**latents)
        theirs = original.generate(
            latents["z_content"], latents["motion_noise"], latents["motion_h0"], latents["labels"]
        )
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_mocogan_unconditional_small_and_other_length(tmp_path, original_models_module):
    original = _original_generator(original_models_module, ngf=8, dim_z_category=0, video_length=10)
    src = tmp_path / "generator_5.pytorch"
    _save_original(_as_pytorch03(original), src)
    folder = convert_mocogan(src, tmp_path / "out")
    model, config = _load_folder(folder)
    assert config["num_classes"] == 0 and config["width"] == 0.125 and config["frames"] == 10
    assert config["discriminators"] == ["mocogan/patch-image"]  # the 16-frame video D would not fit
    latents = model.generator.sample_latents(2, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = model.generator.eval()(**latents)
        theirs = original.generate(latents["z_content"], latents["motion_noise"], latents["motion_h0"], None)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("zip_format", [False, True])
def test_mocogan_plain_state_dict_is_accepted(tmp_path, original_models_module, zip_format):
    original = _original_generator(original_models_module, ngf=8)
    src = tmp_path / "state.pytorch"
    torch.save(original.state_dict(), src, pickle_protocol=2, _use_new_zipfile_serialization=zip_format)
    folder = convert_mocogan(src, tmp_path / "out")
    model, _ = _load_folder(folder)
    torch.testing.assert_close(model.generator.main[0].weight, original.main[0].weight)


def test_mocogan_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    src = tmp_path / "generator_1.pytorch"
    torch.save(Evil(), src, pickle_protocol=2, _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeCheckpointError, match=r"refused to unpickle \w+\.system"):
        convert_mocogan(src, tmp_path / "out")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_mocogan_class_outside_the_allow_list_is_named(tmp_path):
    src = tmp_path / "generator_1.pytorch"
    torch.save(nn.Sequential(nn.Linear(2, 2)), src, pickle_protocol=2, _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeCheckpointError, match=r"torch\.nn\.modules\.linear\.Linear"):
        convert_mocogan(src, tmp_path / "out")


def test_mocogan_pickle_calling_a_constructor_is_refused_before_it_runs(tmp_path, monkeypatch):
    """41 bytes that call GRUCell(12000, 12000) (3.6 GB): modules are restored from their attributes,
    so the constructor never runs; the message says what the file is."""

    def constructed(self, *args, **kwargs):
        raise AssertionError(f"GRUCell{args} was constructed")

    monkeypatch.setattr(nn.GRUCell, "__init__", constructed)
    src = tmp_path / "generator_1.pytorch"
    src.write_bytes(b"\x80\x02ctorch.nn.modules.rnn\nGRUCell\nM\xe0.M\xe0.\x86R.")
    with pytest.raises(UnsafeCheckpointError) as info:
        convert_mocogan(src, tmp_path / "out")
    message = str(info.value)
    assert "calls torch.nn.modules.rnn.GRUCell(12000, 12000)" in message
    assert "a pickle (protocol 2, 41 bytes) that is not a PyTorch checkpoint" in message
    assert not (tmp_path / "out").exists()


class _Storage:
    """Pickles as a storage id declaring ``numel`` floats, as torch's legacy format does."""

    def __init__(self, numel):
        self.numel = numel


class _LegacyPickler(__import__("pickle").Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", torch.FloatStorage, "0", "cpu", obj.numel, None)
        return None


class _Tensor:
    def __init__(self, numel):
        self.numel = numel

    def __reduce__(self):
        from collections import OrderedDict

        from torch._utils import _rebuild_tensor_v2

        return (_rebuild_tensor_v2, (_Storage(self.numel), 0, (self.numel,), (1,), False, OrderedDict()))


def test_mocogan_storage_larger_than_the_file_is_refused(tmp_path, monkeypatch):
    """A legacy checkpoint whose storage ids declare 400 MB it does not hold: refused before torch
    allocates the storage."""
    import io
    import pickle

    buffer = io.BytesIO()
    for header in (
        0x1950A86A20F9469CFC6C,
        1001,
        {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}},
    ):
        pickle.dump(header, buffer, protocol=2)
    _LegacyPickler(buffer, protocol=2).dump({"main.0.weight": _Tensor(10**8)})
    pickle.dump(["0"], buffer, protocol=2)
    src = tmp_path / "generator_1.pytorch"
    src.write_bytes(buffer.getvalue())
    allocated = []
    real = torch.UntypedStorage
    monkeypatch.setattr(torch, "UntypedStorage", lambda *a, **k: allocated.append(a) or real(*a, **k))
    with pytest.raises(UnsafeCheckpointError) as info:
        convert_mocogan(src, tmp_path / "out")
    assert "declares 400,000,000 bytes of tensor data but the file holds only" in str(info.value)
    assert "a legacy PyTorch checkpoint" in str(info.value)
    assert allocated == []


def test_mocogan_stand_in_noise_is_allowed_but_not_a_generator(tmp_path, original_models_module):
    src = tmp_path / "noise.pytorch"
    _save_original(original_models_module.Noise(True, 0.1), src)
    with pytest.raises(ValueError, match="not a MoCoGAN VideoGenerator"):
        convert_mocogan(src, tmp_path / "out")


def test_mocogan_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        convert_mocogan(tmp_path / "missing.pytorch", tmp_path / "out")
    junk = tmp_path / "junk.pytorch"
    for data in (
        b"not a pickle at all",
        b"garbage\n",
        b"\x80\x02X\xff\xff\xff\x7f",
        b"\x80\x02X\x02\x00\x00\x00\xff\xfe.",
    ):
        junk.write_bytes(data)  # each ends in a different exception inside the unpickler
        with pytest.raises(
            ValueError, match="not a readable MoCoGAN checkpoint: it is (a text file|a pickle)"
        ):
            convert_mocogan(junk, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_existing_folder_needs_force(tmp_path, original_models_module):
    src = tmp_path / "g.pytorch"
    _save_original(_as_pytorch03(_original_generator(original_models_module, ngf=8)), src)
    convert_mocogan(src, tmp_path / "out")
    with pytest.raises(FolderExistsError):
        convert_mocogan(src, tmp_path / "out")
    convert_mocogan(src, tmp_path / "out", overwrite=True)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left


# ------------------------------------------------------------------------------------------------
# TGAN: Chainer snapshots written from the documented layout
# ------------------------------------------------------------------------------------------------
def _uniform(rng, *shape, scale=0.05):
    return rng.uniform(-scale, scale, size=shape).astype(np.float32)


def _bn(rng, prefix, n, *, beta):
    out = {
        f"{prefix}/gamma": rng.uniform(0.5, 1.5, n).astype(np.float32),
        f"{prefix}/avg_mean": rng.normal(0, 0.1, n).astype(np.float32),
        f"{prefix}/avg_var": rng.uniform(0.5, 1.5, n).astype(np.float32),
        f"{prefix}/N": np.array(7),
    }
    if beta:
        out[f"{prefix}/beta"] = rng.normal(0, 0.1, n).astype(np.float32)
    return out


def _tgan_snapshots(folder, it=1000, z=100):
    rng = np.random.default_rng(0)
    gen = {}
    chans = [z, 512, 256, 128, 128, z]
    for i in range(5):
        k = 1 if i == 0 else 4
        gen[f"dc{i}/W"] = _uniform(rng, chans[i], chans[i + 1], k, scale=0.1)
        gen[f"dc{i}/b"] = _uniform(rng, chans[i + 1])
        if i < 4:
            gen.update(_bn(rng, f"bn{i}", chans[i + 1], beta=False))
    vgen = {"l0s/W": _uniform(rng, 4096, z), "l0f/W": _uniform(rng, 4096, z)}
    vgen.update(_bn(rng, "bn0s", 4096, beta=True))
    vgen.update(_bn(rng, "bn0f", 4096, beta=True))
    ch = [512, 256, 128, 64, 32]
    for i in range(1, 5):
        vgen[f"dc{i}/W"] = _uniform(rng, ch[i - 1], ch[i], 4, 4)
        vgen.update(_bn(rng, f"bn{i}", ch[i], beta=True))
    vgen["dc5/W"] = _uniform(rng, 32, 3, 3, 3)
    vgen["dc5/b"] = _uniform(rng, 3)
    vdis = {}
    dch = [3, 64, 128, 256, 512]
    for i in range(4):
        vdis[f"c{i}/W"] = _uniform(rng, dch[i + 1], dch[i], 4, 4, 4, scale=0.02)
        vdis[f"c{i}/b"] = _uniform(rng, dch[i + 1])
        vdis.update(_bn(rng, f"bn{i}", dch[i + 1], beta=False))  # bn0 exists but is unused
    vdis["c4/W"] = _uniform(rng, 1, 512, 4, 4)
    vdis["c4/b"] = _uniform(rng, 1)
    paths = {}
    for name, arrays in (("gen", gen), ("vgen", vgen), ("vdis", vdis)):
        paths[name] = folder / f"{name}_iter_{it}.npz"
        np.savez(paths[name], **arrays)
    return paths, gen, vgen, vdis


def _t(a):
    return torch.from_numpy(np.asarray(a))


def _bn_eval(h, p, prefix):
    shape = (1, -1) + (1,) * (h.ndim - 2)
    beta = _t(p[f"{prefix}/beta"]).view(shape) if f"{prefix}/beta" in p else 0
    return (h - _t(p[f"{prefix}/avg_mean"]).view(shape)) / torch.sqrt(
        _t(p[f"{prefix}/avg_var"]).view(shape) + 2e-5
    ) * _t(p[f"{prefix}/gamma"]).view(shape) + beta


def _chainer_generator(z_slow, gen, vgen):
    h = z_slow[:, :, None]
    for i in range(4):
        h = F.conv_transpose1d(
            h, _t(gen[f"dc{i}/W"]), _t(gen[f"dc{i}/b"]), stride=1 if i == 0 else 2, padding=0 if i == 0 else 1
        )
        h = torch.relu(_bn_eval(h, gen, f"bn{i}"))
    z_fast = torch.tanh(
        F.conv_transpose1d(h, _t(gen["dc4/W"]), _t(gen["dc4/b"]), stride=2, padding=1)
    )  # (N, 100, 16)
    n, _, t = z_fast.shape
    zs = z_slow.repeat_interleave(t, dim=0)
    zf = z_fast.permute(0, 2, 1).reshape(n * t, -1)
    hs = torch.relu(_bn_eval(zs @ _t(vgen["l0s/W"]).T, vgen, "bn0s")).reshape(n * t, 256, 4, 4)
    hf = torch.relu(_bn_eval(zf @ _t(vgen["l0f/W"]).T, vgen, "bn0f")).reshape(n * t, 256, 4, 4)
    h = torch.cat([hs, hf], 1)
    for i in range(1, 5):
        h = torch.relu(
            _bn_eval(F.conv_transpose2d(h, _t(vgen[f"dc{i}/W"]), stride=2, padding=1), vgen, f"bn{i}")
        )
    x = torch.tanh(F.conv_transpose2d(h, _t(vgen["dc5/W"]), _t(vgen["dc5/b"]), padding=1))
    return x.reshape(n, t, *x.shape[1:]).permute(0, 2, 1, 3, 4)


def _chainer_critic(x, vdis):
    h = F.leaky_relu(F.conv3d(x, _t(vdis["c0/W"]), _t(vdis["c0/b"]), stride=2, padding=1), 0.2)
    for i in range(1, 4):
        h = F.conv3d(h, _t(vdis[f"c{i}/W"]), _t(vdis[f"c{i}/b"]), stride=2, padding=1)
        h = F.leaky_relu(_bn_eval(h, vdis, f"bn{i}"), 0.2)
    h = h.reshape(h.shape[0] * h.shape[2], h.shape[1], *h.shape[3:])
    return F.conv2d(h, _t(vdis["c4/W"]), _t(vdis["c4/b"]))


def test_tgan_round_trip(tmp_path):
    paths, gen, vgen, vdis = _tgan_snapshots(tmp_path)
    folder = convert_tgan(paths["gen"], tmp_path / "out")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*WEIGHT_SET, "discriminator.video.safetensors"]
    )
    model, config = _load_folder(folder)
    assert config["resolution"] == 64 and config["frames"] == 16 and config["width"] == 1.0
    model.eval()
    z = model.generator.sample_latents(2, generator=torch.Generator().manual_seed(0))["z_slow"]
    with torch.no_grad():
        ours = model.generator(z_slow=z)
        theirs = _chainer_generator(z, gen, vgen)
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
        video = torch.rand(2, 3, 16, 64, 64) * 2 - 1
        torch.testing.assert_close(
            model.discriminators["video"](video).logits,
            _chainer_critic(video, vdis).flatten(1),
            rtol=1e-4,
            atol=1e-5,
        )
    state = load_file(str(folder / "generator.safetensors"))
    assert int(state["temporal.bn0.num_batches_tracked"]) == 7


def test_tgan_folder_source_and_generator_only(tmp_path):
    _tgan_snapshots(tmp_path, it=500)
    _tgan_snapshots(tmp_path, it=2000)
    folder = convert_tgan(tmp_path, tmp_path / "out", include_discriminator=False)
    assert sorted(p.name for p in folder.iterdir()) == WEIGHT_SET
    assert json.loads((folder / "config.json").read_text())["model"] == "tgan"
    meta = json.loads((folder / "weights.json").read_text())["metadata"]
    assert meta["converted_from"]["source"] == "gen_iter_2000.npz"  # the latest snapshot


def test_tgan_refuses_a_shift_it_cannot_hold(tmp_path):
    paths, gen, _, _ = _tgan_snapshots(tmp_path)
    gen["bn1/beta"] = np.full(256, 0.5, np.float32)
    np.savez(paths["gen"], **gen)
    with pytest.raises(ValueError, match="beta"):
        convert_tgan(paths["gen"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tgan_errors(tmp_path):
    paths, gen, vgen, _ = _tgan_snapshots(tmp_path)
    with pytest.raises(FileNotFoundError):
        convert_tgan(tmp_path / "nothing.npz", tmp_path / "out")
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    np.savez(lonely / "gen_iter_1.npz", **gen)
    with pytest.raises(FileNotFoundError, match="image generator"):
        convert_tgan(lonely / "gen_iter_1.npz", tmp_path / "out")
    vgen["dc2/W"] = vgen["dc2/W"][:, :100]
    np.savez(paths["vgen"], **vgen)
    with pytest.raises(ValueError, match="image.dc2.weight"):
        convert_tgan(paths["gen"], tmp_path / "out")
    pickled = tmp_path / "gen_iter_9.npz"
    np.savez(pickled, **{"dc0/W": np.array([{"a": 1}], dtype=object)})
    np.savez(tmp_path / "vgen_iter_9.npz", **vgen)
    with pytest.raises(ValueError):
        convert_tgan(pickled, tmp_path / "out")
    with pytest.raises(
        ValueError,
        match="is TGAN's image generator snapshot; give the temporal generator's gen_iter_1000.npz",
    ):
        convert_tgan(paths["vgen"], tmp_path / "out")
    with pytest.raises(ValueError, match="discriminator: given together with include_discriminator=False"):
        convert_tgan(paths["gen"], tmp_path / "out", discriminator=paths["gen"], include_discriminator=False)


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------
def test_cli_convert(tmp_path, capsys, original_models_module):
    src = tmp_path / "g.pytorch"
    _save_original(_as_pytorch03(_original_generator(original_models_module, ngf=8)), src)
    assert cli_main(["convert", "mocogan", str(src), str(tmp_path / "out")]) == 0
    assert "generator.safetensors" in capsys.readouterr().out
    assert cli_main(["convert", "mocogan", str(src), str(tmp_path / "out")]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert cli_main(["convert", "mocogan", str(src), str(tmp_path / "out"), "--force"]) == 0
    # a converted folder is usable by every command that takes weights
    assert cli_main(["sample", str(tmp_path / "out"), "--n", "1", "--out", str(tmp_path / "s.gif")]) == 0
    assert (tmp_path / "s.gif").stat().st_size > 0
    paths, *_ = _tgan_snapshots(tmp_path)
    assert cli_main(["convert", "tgan", str(paths["gen"]), str(tmp_path / "tg")]) == 0
    assert (tmp_path / "tg" / "discriminator.video.safetensors").exists()
    # --force replaces the whole folder: no stale discriminator from the previous conversion
    assert (
        cli_main(
            ["convert", "tgan", str(paths["gen"]), str(tmp_path / "tg"), "--no-discriminator", "--force"]
        )
        == 0
    )
    assert not (tmp_path / "tg" / "discriminator.video.safetensors").exists()
    assert vganzoo.load(f"local-dir:{tmp_path / 'tg'}", components="all").discriminators.keys() == set()
    assert cli_main(["convert", "tgan", str(tmp_path / "missing.npz"), str(tmp_path / "x")]) == 2


def _declared_npz(path, key, shape, dtype="<f4", data=b""):
    """An .npz whose member declares ``shape`` but holds only ``data``: what a zip bomb's header says
    before gigabytes of deflated zeros."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{key}.npy", header.getvalue() + data)


def test_npz_archives_are_bounded_before_decompressing(tmp_path, monkeypatch):
    from vganzoo.convert import tgan
    from vganzoo.convert.npz import read_npz

    bomb = tmp_path / "gen_iter_1.npz"
    _declared_npz(bomb, "dc0/W", (500_000_000,))  # 2 GB declared in a few hundred bytes
    np.savez(tmp_path / "vgen_iter_1.npz", x=np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="declare more than .* refused before decompressing") as info:
        convert_tgan(bomb, tmp_path / "out")
    assert "\n" not in str(info.value)
    # the bound, just over and just under (a small limit instead of a gigabyte file)
    np.savez(bomb, **{"dc0/W": np.zeros(251, np.float32)})
    with pytest.raises(ValueError, match="declare more than"):
        read_npz(bomb, "a snapshot", max_bytes=1000)
    assert read_npz(bomb, "a snapshot", max_bytes=1004)["dc0/W"].shape == (251,)
    monkeypatch.setattr(tgan, "SNAPSHOT_BUDGET_FACTOR", 0)
    with pytest.raises(ValueError, match="declare more than"):
        convert_tgan(bomb, tmp_path / "out")
    # a header that declares more than the member holds, objects, and foreign members: one line each
    _declared_npz(bomb, "dc0/W", (10,), data=b"\0" * 8)
    with pytest.raises(ValueError, match="ends early"):
        read_npz(bomb, "a snapshot", max_bytes=1000)
    _declared_npz(bomb, "dc0/W", (1,), dtype="|O")
    with pytest.raises(ValueError, match="not a numpy .npz of plain arrays"):
        read_npz(bomb, "a snapshot", max_bytes=1000)
    import zipfile

    with zipfile.ZipFile(bomb, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(ValueError, match="'notes.txt' is not a .npy array"):
        read_npz(bomb, "a snapshot", max_bytes=1000)


def test_mocogan_tensors_that_expand_their_storage_are_refused(tmp_path):
    from vganzoo.convert.mocogan import load_mocogan_generator

    one = torch.zeros(1)
    expanded = {"main.0.weight": torch.as_strided(one, (2000, 2000), (0, 0))}
    path = tmp_path / "g.pt"
    torch.save(expanded, path)  # torch.save keeps the view: one float stored, 4M read
    with pytest.raises(UnsafeCheckpointError, match="reads more elements than its storage holds") as info:
        load_mocogan_generator(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
