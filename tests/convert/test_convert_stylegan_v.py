"""StyleGAN-V checkpoints: pickles in the authors' persistence format convert into weight sets that
compute their networks' frames and scores; pickles that would run code, truncated or foreign ones
are refused with one line, and nothing from a file is ever executed.

The fixture (``stylegan_v_reference``) is an independent re-implementation of the authors' networks
and of their pickling (persistent classes carrying their module source, tensors as legacy-format
storage bytes, training snapshots with Adam states on "cuda:0"); see its docstring.
"""

from __future__ import annotations

import json
import os
import pickle
import sys

import pytest
import stylegan_v_reference as ref
import torch

import vganzoo
from vganzoo.cli import main as cli_main
from vganzoo.convert import UnsafeCheckpointError, convert_stylegan_v
from vganzoo.convert.stylegan_v import PersistentObject, StandIn, read_snapshot
from vganzoo.ops import fused

pytestmark = pytest.mark.usefixtures("one_thread")

AUTHORS_MODULES = ("src", "training", "omegaconf", "dnnlib", "torch_utils")
WEIGHT_SET = [
    "README.md",
    "config.json",
    "discriminator.video.safetensors",
    "generator.safetensors",
    "generator_ema.safetensors",
    "weights.json",
]


def _no_authors_code():
    """None of the authors' modules is importable: the converter must not need (or run) them."""
    for name in list(sys.modules):
        assert name.split(".")[0] not in AUTHORS_MODULES, name


@pytest.fixture(scope="module", params=["unconditional", "conditional-noise"])
def snapshot(request, tmp_path_factory):
    """(path, G, D, G_ema, c_dim) of a training snapshot written as the authors' loop writes one."""
    c_dim = 3 if request.param == "conditional-noise" else 0
    G, D, G_ema, root = ref.build(c_dim=c_dim, use_noise=c_dim > 0)
    path = tmp_path_factory.mktemp("snapshot") / "network-snapshot-000123.pkl"
    ref.write_snapshot(path, G, D, G_ema, root)
    _no_authors_code()
    return path, G.eval(), D.eval(), G_ema.eval(), c_dim


@pytest.fixture(scope="module")
def converted(snapshot, tmp_path_factory):
    path = snapshot[0]
    folder, report = convert_stylegan_v(path, tmp_path_factory.mktemp("out") / "weights")
    return folder, report, vganzoo.load(f"local-dir:{folder}", components="all")


def _inputs(model, c_dim, n=3, frames=20):
    latents = model.generator.sample_latents(n, generator=torch.Generator().manual_seed(1), frames=frames)
    c = torch.nn.functional.one_hot(latents["labels"], c_dim).float() if c_dim else torch.zeros(n, 0)
    return latents, c


def test_the_fixture_is_in_the_authors_format(snapshot):
    path = snapshot[0]
    data = path.read_bytes()
    assert data[:2] == b"\x80\x04"  # pickle.dump's default protocol in their Python
    assert b"src.torch_utils.persistence" in data and b"_reconstruct_persistent_obj" in data
    assert b"torch.storage" in data and b"_load_from_bytes" in data and b"_rebuild_tensor_v2" in data
    assert b"cuda:0" in data  # the optimisers' states: never moved off the GPU
    assert b"training.layers" in data and b"TemporalDifferenceEncoder" in data  # not persistent
    assert b"class SynthesisLayer" in data  # each network object carries its module's source
    snapshot_dict = read_snapshot(path)
    assert sorted(snapshot_dict) == sorted(
        ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe", "G_opt", "D_opt", "vis", "stats"]
    )
    assert isinstance(snapshot_dict["G"], PersistentObject) and snapshot_dict["G"].class_name == "Generator"
    opt = snapshot_dict["G_opt"]
    assert isinstance(opt, StandIn) and (opt.module, opt.name) == ("torch.optim.adam", "Adam")
    exp_avg = [s["exp_avg"] for s in opt.state["state"].values()]
    assert exp_avg and all(t.device.type == "cpu" for t in exp_avg)  # read off "cuda:0" onto the CPU


def test_converted_weights_give_the_authors_frames_and_scores(snapshot, converted):
    """float32, the same latents: frames and logits equal the authors' networks'."""
    _path, G, D, G_ema, c_dim = snapshot
    folder, _report, model = converted
    assert sorted(p.name for p in folder.iterdir()) == WEIGHT_SET
    latents, c = _inputs(model, c_dim)
    args = (latents["z"], c, latents["frame_times"], latents["motion_z"])
    for ours, theirs in ((model.generator, G), (model.generator_ema, G_ema)):
        with torch.no_grad():
            frames = ours.eval()(**latents)
        torch.testing.assert_close(frames, ref.generate(theirs, *args), rtol=1e-5, atol=2e-5)
    clip, times = frames[:, :, [0, 5, 13]], latents["frame_times"][:, [0, 5, 13]]
    with torch.no_grad():
        logits = (
            model.discriminators["video"].eval()(clip, labels=latents.get("labels"), frame_times=times).logits
        )
    torch.testing.assert_close(logits, ref.discriminate(D, clip, c, times), rtol=1e-5, atol=1e-5)


def test_with_the_reference_ops_the_frames_are_bit_identical(snapshot, converted, monkeypatch):
    """With the plain-PyTorch ops our layers run the authors' operations in their order: the frames of
    their non-fused formulation (their training-time one; eval uses per-sample weights, the same
    function up to rounding) and the scores are equal bit for bit."""
    monkeypatch.setenv(fused.ENV_VAR, "ref")
    _path, G, D, _G_ema, c_dim = snapshot
    model = converted[2]
    latents, c = _inputs(model, c_dim, frames=5)
    with torch.no_grad():
        ours = model.generator.eval()(**latents)
        img = G(
            z=latents["z"], c=c, t=latents["frame_times"], motion_z=latents["motion_z"], force_fp32=True,
            noise_mode="const", fused_modconv=False,
        )  # fmt: skip
        theirs = img.reshape(3, 5, *img.shape[1:]).permute(0, 2, 1, 3, 4)
        clip, times = ours[:, :, [0, 2, 4]], latents["frame_times"][:, [0, 2, 4]]
        logits = (
            model.discriminators["video"].eval()(clip, labels=latents.get("labels"), frame_times=times).logits
        )
    assert torch.equal(ours, theirs)
    assert torch.equal(logits, ref.discriminate(D, clip, c, times))


def test_config_and_report(snapshot, converted):
    _path, G, _D, _G_ema, c_dim = snapshot
    folder, report, model = converted
    config = json.loads((folder / "config.json").read_text())
    assert config["model"] == "stylegan-v"
    expected = {
        "resolution": 32, "channels": 3, "num_classes": c_dim, "z_dim": 64, "w_dim": 64, "channel_base": 1024,
        "channel_max": 32, "motion_z_dim": 32, "motion_kernel_size": 11, "time_dim": 32, "time_min_period": 8,
        "time_max_period": 256, "max_frames": 64, "fps": 30.0, "use_noise": bool(c_dim), "conv_clamp": 256,
        "concat_res": 16, "frames_div_factor": 2, "time_embed_dim": 256, "mbstd_group_size": 4,
    }  # fmt: skip
    assert {k: config[k] for k in expected} == expected
    # the motion codes' spacing is not in any tensor: read from the generator's config (16), not
    # guessed from the shortest period (8 in this fixture)
    assert config["motion_z_distance"] == 16
    assert report.sources["motion_z_distance"] == "generator cfg.motion.motion_z_distance"
    assert report.ignored == ["D_opt", "G_opt", "augment_pipe", "stats", "training_set_kwargs", "vis"]
    assert report.unmapped == [] and report.mapped["G"] == report.mapped["G_ema"] == len(
        model.generator.state_dict()
    )
    assert any(name.endswith("resample_filter") for name in report.checked)
    assert "unmapped: none" in report.summary()
    provenance = json.loads((folder / "weights.json").read_text())["metadata"]["converted_from"]
    assert provenance["source"] == "network-snapshot-000123.pkl"
    assert provenance["format"] == "stylegan-v-persistence-pickle"
    torch.testing.assert_close(model.generator.mapping.w_avg, G.mapping.w_avg)


def test_networks_only_and_ema_only_pickles(tmp_path):
    G, D, G_ema, root = ref.build(seed=3)
    path = tmp_path / "networks.pkl"
    ref.write_snapshot(path, G, D, G_ema, root, training_state=False)
    folder, report = convert_stylegan_v(path, tmp_path / "a")
    assert report.ignored == ["training_set_kwargs"] and (folder / "generator_ema.safetensors").exists()
    with ref.pickling_modules(), open(tmp_path / "ema.pkl", "wb") as f:
        pickle.dump({"G_ema": G_ema}, f, protocol=4)
    folder, report = convert_stylegan_v(tmp_path / "ema.pkl", tmp_path / "b")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "generator.safetensors",
        "weights.json",
    ]
    model = vganzoo.load(f"local-dir:{folder}")
    latents, c = _inputs(model, 0, n=2, frames=4)
    with torch.no_grad():
        ours = model.generator.eval()(**latents)
    theirs = ref.generate(G_ema.eval(), latents["z"], c, latents["frame_times"], latents["motion_z"])
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=2e-5)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    src = tmp_path / "network-snapshot-000001.pkl"
    src.write_bytes(pickle.dumps({"G": Evil()}, protocol=4))
    with pytest.raises(
        UnsafeCheckpointError, match=r"^.*refused to unpickle \w+\.system: .*nothing from the file was run"
    ):
        convert_stylegan_v(src, tmp_path / "out")
    assert not marker.exists() and not (tmp_path / "out").exists()
    for module, name in (
        ("builtins", "eval"),
        ("builtins", "getattr"),
        ("subprocess", "Popen"),
        ("torch", "load"),
    ):
        src.write_bytes(
            b"\x80\x04\x8c"
            + bytes([len(module)])
            + module.encode()
            + b"\x8c"
            + bytes([len(name)])
            + name.encode()
            + b"\x93."
        )
        with pytest.raises(UnsafeCheckpointError, match=rf"refused to unpickle {module}\.{name}"):
            read_snapshot(src)


def test_module_source_in_the_file_is_never_executed(tmp_path, monkeypatch):
    """A persistent object's module source is what the authors' loader execs; ours keeps it as text."""
    marker = tmp_path / "executed"
    G, D, G_ema, root = ref.build(seed=4)
    evil = f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit\n"
    for obj in (G, D, G_ema):
        for module in obj.modules():
            if hasattr(type(module), "_orig_module_src"):
                monkeypatch.setattr(type(module), "_orig_module_src", evil)
    src = tmp_path / "network-snapshot-000002.pkl"
    ref.write_snapshot(src, G, D, G_ema, root, training_state=False)
    assert evil.encode() in src.read_bytes()
    folder, _ = convert_stylegan_v(src, tmp_path / "out")
    assert not marker.exists()
    assert read_snapshot(src)["G"].module_src == evil  # kept, as text
    assert (folder / "generator.safetensors").exists()


def test_truncated_and_foreign_files_are_refused_with_one_line(snapshot, tmp_path):
    data = snapshot[0].read_bytes()
    cases = {
        "truncated.pkl": (data[: len(data) // 2], "truncated"),
        "cut-in-a-storage.pkl": (data[: data.index(b"cuda:0") + 40], "truncated"),
        "not-a-pickle.pkl": (b"StyleGAN-V weights, honest\n", "not a readable pickle"),
        "list.pkl": (pickle.dumps([1, 2, 3]), "holds a list, not a StyleGAN-V snapshot dict"),
        "no-generator.pkl": (pickle.dumps({"weights": 1}), r"holds no StyleGAN-V generator \('G' or"),
    }  # fmt: skip
    for name, (content, match) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match=match) as info:
            convert_stylegan_v(path, tmp_path / "out")
        assert "\n" not in str(info.value), name
    assert not (tmp_path / "out").exists()
    with pytest.raises(FileNotFoundError):
        convert_stylegan_v(tmp_path / "missing.pkl", tmp_path / "out")


def test_a_network_under_the_wrong_name_is_refused(tmp_path):
    G, D, G_ema, _ = ref.build(seed=5)
    with ref.pickling_modules(), open(tmp_path / "swapped.pkl", "wb") as f:
        pickle.dump({"G": D, "D": G, "G_ema": G_ema}, f, protocol=4)
    with pytest.raises(ValueError, match="G is a Discriminator, not a StyleGAN-V Generator"):
        convert_stylegan_v(tmp_path / "swapped.pkl", tmp_path / "out")
    with ref.pickling_modules(), open(tmp_path / "module.pkl", "wb") as f:
        pickle.dump({"G": torch.nn.Linear(2, 2)}, f, protocol=4)
    with pytest.raises(ValueError, match="not one of the authors' persistent networks"):
        convert_stylegan_v(tmp_path / "module.pkl", tmp_path / "out")


def test_cli(snapshot, tmp_path, capsys):
    path = snapshot[0]
    assert cli_main(["convert", "stylegan-v", str(path), str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "unmapped: none" in out and "generator_ema.safetensors" in out
    assert cli_main(["convert", "stylegan-v", str(path), str(tmp_path / "out")]) == 2  # exists
    assert "--force" in capsys.readouterr().err
    assert cli_main(["convert", "stylegan-v", str(path), str(tmp_path / "out"), "--force"]) == 0
    victim = tmp_path / "victim"  # --force never deletes a folder that is not a weight set
    (victim / "sub").mkdir(parents=True)
    (victim / "notes.txt").write_text("keep")
    assert cli_main(["convert", "stylegan-v", str(path), str(victim), "--force"]) == 2
    assert "is not a weight set" in capsys.readouterr().err
    assert (victim / "notes.txt").read_text() == "keep" and (victim / "sub").is_dir()
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(path.read_bytes()[:1000])
    assert cli_main(["convert", "stylegan-v", str(bad), str(tmp_path / "bad-out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "truncated" in err


# ------------------------------------------------------------------------------------------------
# crafted files: tiny pickles that would allocate gigabytes or recurse without bound
# ------------------------------------------------------------------------------------------------
def _one_line(path, tmp_path, match):
    with pytest.raises(ValueError, match=match) as info:
        convert_stylegan_v(path, tmp_path / "out")
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
    assert not (tmp_path / "out").exists()


def test_a_tiny_pickle_cannot_allocate_gigabytes(tmp_path):
    # {"G": bytes(100_000_000)} in 47 bytes, as protocol 2 writes a builtin call
    bomb = tmp_path / "bytes.pkl"
    bomb.write_bytes(
        bytes.fromhex(
            "80027d71005801000000477101635f5f6275696c74696e5f5f0a62797465730a71024a00e1f50585710352710473"
        )
        + b"."
    )
    assert len(bomb.read_bytes()) == 47
    _one_line(bomb, tmp_path, r"calls bytes\(100000000\)")
    # a container built from the same string over and over (memo references) is bounded by the file
    text = "x" * 100_000

    class Many:
        def __reduce__(self):
            return (list, (text,))

    bomb.write_bytes(pickle.dumps({"G": [Many() for _ in range(200)]}, protocol=2))
    data = bomb.read_bytes()
    assert len(data) < 200_000  # the string once, then 200 calls on its memo entry
    _one_line(bomb, tmp_path, "more than a file of")


def _stored(n):
    """A legacy-format storage of n floats, as the authors' pickles hold each tensor's data."""
    import io

    buf = io.BytesIO()
    torch.save(torch.zeros(n).storage(), buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


class _Storage:
    def __init__(self, n):
        self.blob = _stored(n)

    def __reduce__(self):
        return (torch.storage._load_from_bytes, (self.blob,))


class _Tensor:
    def __init__(self, storage, size, stride):
        self.storage, self.size, self.stride = storage, size, stride

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, (self.storage, 0, self.size, self.stride, False, {}))


def test_strides_that_expand_a_storage_are_refused(tmp_path):
    path = tmp_path / "stride.pkl"
    one = _Storage(1)
    path.write_bytes(pickle.dumps({"G": _Tensor(one, (20000, 20000), (0, 0))}, protocol=2))
    _one_line(path, tmp_path, "zero stride")
    four = _Storage(4)  # overlapping rows: 3 x 3 elements read from 4
    path.write_bytes(pickle.dumps({"G": _Tensor(four, (3, 3), (1, 1))}, protocol=2))
    _one_line(path, tmp_path, "more elements than its storage")
    path.write_bytes(pickle.dumps({"G": _Tensor(four, (2, 2), (2, 1))}, protocol=2))
    assert read_snapshot(path)["G"].shape == (2, 2)  # an ordinary layout still reads
    # one storage blob rebuilt many times through the memo: bounded by the file's size
    big = _Storage(100_000)

    class Again:
        def __reduce__(self):
            return (torch.storage._load_from_bytes, (big.blob,))

    path.write_bytes(pickle.dumps({"G": [Again() for _ in range(100)]}, protocol=2))
    _one_line(path, tmp_path, "more than a file of")


@pytest.fixture
def authors_globals(monkeypatch):
    """The two globals an authors' network pickle names, importable while the test writes one."""
    import types

    persistence = types.ModuleType("torch_utils.persistence")
    networks = types.ModuleType("training.networks")

    def _reconstruct_persistent_obj(meta):
        raise AssertionError("never called: the test only writes")

    _reconstruct_persistent_obj.__module__ = persistence.__name__
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    module_type = type("Module", (), {"__module__": networks.__name__, "__qualname__": "Module"})
    networks.Module = module_type
    for name, module in (
        ("torch_utils", types.ModuleType("torch_utils")),
        ("torch_utils.persistence", persistence),
        ("training", types.ModuleType("training")),
        ("training.networks", networks),
    ):
        monkeypatch.setitem(sys.modules, name, module)

    class Persistent:
        def __init__(self, modules):
            self.meta = {
                "type": "class",
                "version": 6,
                "module_src": "",
                "class_name": "Generator",
                "state": {"_parameters": {}, "_buffers": {}, "_modules": modules},
            }

        def __reduce__(self):
            return (_reconstruct_persistent_obj, (self.meta,))

    def module(children):
        obj = module_type()
        obj.__dict__ = {"_parameters": {}, "_buffers": {}, "_modules": children}
        return obj

    return Persistent, module


def _deep_dumps(obj):
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)
    try:
        return pickle.dumps(obj, protocol=4)
    finally:
        sys.setrecursionlimit(limit)


def test_cyclic_and_deep_networks_and_values_are_refused_in_one_line(tmp_path, authors_globals):
    persistent, module = authors_globals
    loop = module({})
    loop._modules["self"] = loop
    path = tmp_path / "cycle.pkl"
    path.write_bytes(pickle.dumps({"G": persistent({"synthesis": loop})}, protocol=4))
    _one_line(path, tmp_path, "cycle.pkl'?: G: 'synthesis.self' contains itself")
    deep = module({})
    for _ in range(100):
        deep = module({"c": deep})
    path.write_bytes(_deep_dumps({"G": persistent({"synthesis": deep})}))
    _one_line(path, tmp_path, "nests submodules more than")
    nested = []
    for _ in range(5000):
        nested = [nested]
    path.write_bytes(_deep_dumps({"G": nested}))
    _one_line(path, tmp_path, r"G is \[\[\[")


def _tampered(tmp_path, name, change):
    G, D, G_ema, root = ref.build(seed=1)
    for g in (G, G_ema):
        change(g)
    path = tmp_path / f"{name}.pkl"
    ref.write_snapshot(path, G, D, G_ema, root, training_state=False)
    return path


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("abc", r"sampling_dict.fps is 'abc', not a finite number"),
        (1e308, "fps must be a number from 0.01 to 1000"),
        (0.001, "fps must be a number from 0.01 to 1000"),
    ],
)
def test_a_weight_set_vganzoo_would_refuse_is_refused_at_convert_time(tmp_path, value, match):
    def set_fps(g):
        g.sampling_dict = dict(g.sampling_dict, fps=value)

    _one_line(_tampered(tmp_path, "fps", set_fps), tmp_path, match)


def test_damaged_weights_and_time_frequencies_are_refused(tmp_path):
    def nan_weight(g):
        with torch.no_grad():
            g.mapping.fc0.weight[0, 0] = float("nan")

    _one_line(_tampered(tmp_path, "nan", nan_weight), tmp_path, "tensor 'mapping.layers.0.weight' holds NaN")

    def zero_frequency(g):
        g.synthesis.motion_encoder.time_encoder.freqs[0, 0] = 0.0

    _one_line(_tampered(tmp_path, "freq", zero_frequency), tmp_path, "time_encoder.freqs")
