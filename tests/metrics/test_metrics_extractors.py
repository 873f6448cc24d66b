"""Extractors: I3D/C3D definitions and checkpoint names, safe loading, conversion, bad files, IS."""

import hashlib

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vganzoo.convert import convert_extractor
from vganzoo.metrics import (
    TinyVideoCNN,
    VideoExtractor,
    build_extractor,
    inception_score,
    load_extractor,
    save_extractor,
)
from vganzoo.metrics.c3d import C3D, preprocess_c3d
from vganzoo.metrics.i3d import (
    I3D_MIN_FRAMES,
    InceptionI3d,
    i3d_temporal_output_size,
    map_pytorch_i3d_key,
    preprocess_i3d,
)

# pytorch-i3d's layout, written out from its published structure (not derived from our module)
PT_I3D_UNITS = ["Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3"]
PT_I3D_MIXED = [
    "Mixed_3b",
    "Mixed_3c",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "Mixed_5b",
    "Mixed_5c",
]
PT_I3D_BRANCHES = ["b0", "b1a", "b1b", "b2a", "b2b", "b3b"]
BN_KEYS = ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]


def pytorch_i3d_keys():
    keys = []
    for unit in PT_I3D_UNITS:
        keys += [f"{unit}.conv3d.weight"] + [f"{unit}.{k}" for k in BN_KEYS]
    for block in PT_I3D_MIXED:
        for branch in PT_I3D_BRANCHES:
            keys += [f"{block}.{branch}.conv3d.weight"] + [f"{block}.{branch}.{k}" for k in BN_KEYS]
    return [*keys, "logits.conv3d.weight", "logits.conv3d.bias"]


class Evil:
    """An arbitrary object: torch.load(weights_only=True) must refuse to rebuild it."""


@pytest.fixture(scope="module")
def i3d():
    torch.manual_seed(0)
    model = InceptionI3d().eval()
    for m in model.modules():  # non-trivial BN statistics, so a swapped buffer would show
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return model


def as_pytorch_i3d(model):
    inverse = {map_pytorch_i3d_key(k): k for k in pytorch_i3d_keys() if map_pytorch_i3d_key(k)}
    return {
        inverse[k]: v.clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")
    }


def test_i3d_key_mapping_covers_the_checkpoint_exactly():
    with torch.device("meta"):
        model = InceptionI3d()
    ours = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    mapped = {map_pytorch_i3d_key(k) for k in pytorch_i3d_keys()} - {None}
    assert mapped == ours
    assert map_pytorch_i3d_key("module.Mixed_4f.b2b.conv3d.weight") == "mixed4f.branch2.conv.weight"
    assert map_pytorch_i3d_key("Conv3d_1a_7x7.bn.running_var") == "conv1a.bn.running_var"
    assert map_pytorch_i3d_key("logits.conv3d.bias") == "logits.bias"
    with pytest.raises(KeyError, match="not a pytorch-i3d"):
        map_pytorch_i3d_key("fc.weight")


def test_i3d_shapes_follow_the_published_layout():
    with torch.device("meta"):
        model = InceptionI3d()
    state = model.state_dict()
    assert state["conv1a.conv.weight"].shape == (64, 3, 7, 7, 7)
    assert state["conv2c.conv.weight"].shape == (192, 64, 3, 3, 3)
    assert state["mixed3b.branch1.conv.weight"].shape == (128, 96, 3, 3, 3)
    assert state["mixed5c.branch3.conv.weight"].shape == (128, 832, 1, 1, 1)
    assert state["logits.weight"].shape == (400, 1024, 1, 1, 1)
    assert model.mixed4f.out_channels == 832 and model.mixed5c.out_channels == 1024


def test_i3d_frame_requirement():
    assert i3d_temporal_output_size(I3D_MIN_FRAMES - 1) < 1 <= i3d_temporal_output_size(I3D_MIN_FRAMES)
    assert i3d_temporal_output_size(16) == 1
    with pytest.raises(ValueError, match="at least 9 frames"):
        preprocess_i3d(torch.zeros(1, 3, 8, 64, 64))
    with torch.device("meta"):
        model = InceptionI3d()
        with pytest.raises(ValueError, match="at least 9 frames"):
            model(torch.zeros(1, 3, 8, 224, 224))


def test_i3d_preprocess():
    videos = torch.linspace(-1, 1, 2 * 9 * 16 * 16).view(2, 1, 9, 16, 16)
    out = preprocess_i3d(videos)
    assert out.shape == (2, 3, 9, 224, 224)
    assert out.min() >= -1 and out.max() <= 1
    torch.testing.assert_close(out[:, 0], out[:, 2])
    # bilinear upsampling keeps each frame's mean close
    torch.testing.assert_close(out.mean(dim=(1, 3, 4)), videos.mean(dim=(1, 3, 4)), atol=2e-3, rtol=0)


def test_load_i3d_from_pytorch_i3d_names(tmp_path, i3d):
    path = tmp_path / "rgb_imagenet.safetensors"
    save_file(as_pytorch_i3d(i3d), str(path))
    extractor = load_extractor(path)  # no metadata: FVD's default architecture, I3D
    assert extractor.name == "i3d" and extractor.min_frames == I3D_MIN_FRAMES
    assert extractor.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    for key, value in i3d.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            torch.testing.assert_close(extractor.network.state_dict()[key], value, rtol=0, atol=0)


def test_convert_legacy_i3d_checkpoint(tmp_path, i3d):
    legacy = tmp_path / "rgb_imagenet.pt"
    torch.save({"module." + k: v for k, v in as_pytorch_i3d(i3d).items()}, legacy)
    with pytest.raises(ValueError, match="legacy PyTorch checkpoint"):
        load_extractor(legacy)
    out = tmp_path / "i3d.safetensors"
    digest = convert_extractor("i3d", legacy, out)
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest()
    extractor = load_extractor(out, default_architecture="c3d")  # the file's metadata wins
    assert extractor.name == "i3d"
    torch.testing.assert_close(extractor.network.logits.weight, i3d.logits.weight, rtol=0, atol=0)
    assert extractor.describe()["converted_from_bgr"] is False
    # a BGR-trained network: its first layer's input channels are reversed so it takes RGB
    flipped = tmp_path / "i3d_bgr.safetensors"
    convert_extractor("i3d", legacy, flipped, bgr=True)
    bgr = load_extractor(flipped)
    torch.testing.assert_close(
        bgr.network.conv1a.conv.weight, i3d.conv1a.conv.weight[:, [2, 1, 0]], rtol=0, atol=0
    )
    assert bgr.describe()["converted_from_bgr"] is True


def test_convert_keeps_an_existing_destination(tmp_path, i3d):
    legacy = tmp_path / "rgb_imagenet.pt"
    torch.save(as_pytorch_i3d(i3d), legacy)
    out = tmp_path / "i3d.safetensors"
    out.write_bytes(b"my notes")
    with pytest.raises(FileExistsError, match=r"^dst: .*i3d.safetensors already exists; .*overwrite=True"):
        convert_extractor("i3d", legacy, out)
    assert out.read_bytes() == b"my notes"
    digest = convert_extractor("i3d", legacy, out, overwrite=True)
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="dst: .* is the source file"):
        convert_extractor("i3d", legacy, legacy, overwrite=True)
    assert torch.load(legacy, weights_only=True).keys() == as_pytorch_i3d(i3d).keys()
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError, match="dst: .* is a folder"):
        convert_extractor("i3d", legacy, tmp_path / "folder", overwrite=True)
    with pytest.raises(TypeError, match="overwrite must be a bool"):
        convert_extractor("i3d", legacy, out, overwrite="yes")


def test_convert_refuses_bad_sources(tmp_path):
    wrong = tmp_path / "wrong.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong)
    with pytest.raises(KeyError):
        convert_extractor("i3d", wrong, tmp_path / "x.safetensors")
    torch.save({"fc8.bias": torch.zeros(101), "fc8.weight": torch.zeros(101, 4096)}, wrong)
    with pytest.raises(ValueError, match="--mean"):
        convert_extractor("c3d", wrong, tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="does not hold c3d weights"):
        convert_extractor("c3d", wrong, tmp_path / "x.safetensors", mean="90,98,102")

    evil = tmp_path / "evil.pt"
    torch.save({"obj": Evil()}, evil)
    with pytest.raises(ValueError, match="loaded safely"):
        convert_extractor("i3d", evil, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_c3d_layout_and_preprocess():
    with torch.device("meta"):
        model = C3D()
        with pytest.raises(ValueError, match="preprocess_c3d"):
            model(torch.zeros(1, 3, 16, 128, 128))
    state = model.state_dict()
    assert state["fc6.weight"].shape == (4096, 8192) and state["fc8.weight"].shape == (101, 4096)
    mean = torch.tensor([90.0, 98.0, 102.0])
    black = -torch.ones(2, 1, 16, 64, 80)
    out = preprocess_c3d(black, mean)
    assert out.shape == (2, 3, 16, 112, 112)
    torch.testing.assert_close(out[0, :, 0, 0, 0], -mean)
    with pytest.raises(ValueError, match="16 frames"):
        preprocess_c3d(torch.zeros(1, 3, 15, 64, 64), mean)


def test_c3d_file_without_mean_is_refused(tmp_path):
    path = tmp_path / "c3d.safetensors"
    save_file({"fc8.bias": torch.zeros(3)}, str(path))
    with pytest.raises(ValueError, match="'mean' tensor"):
        load_extractor(path, default_architecture="c3d")


# ---------------------------------------------------------------- generic loading and wrong files


def test_tiny_extractor_round_trip(tmp_path):
    torch.manual_seed(0)
    net = TinyVideoCNN(width=4, feature_dim=6).eval()
    path = tmp_path / "tiny.safetensors"
    digest = save_extractor(net, path, "tiny-3dcnn", {"width": 4, "feature_dim": 6})
    extractor = load_extractor(str(path))
    assert extractor.name == "tiny-3dcnn" and extractor.sha256 == digest
    videos = torch.rand(3, 1, 4, 16, 16) * 2 - 1
    with torch.no_grad():
        expected = net(videos.expand(-1, 3, -1, -1, -1))
    torch.testing.assert_close(extractor(videos), expected)
    assert extractor.describe()["sha256"] == digest


def test_wrong_extractor_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_extractor(tmp_path / "nope.safetensors")
    text = tmp_path / "weights.bin"
    text.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a safetensors file"):
        load_extractor(text)
    pickled = tmp_path / "old.pth"
    torch.save({"a": torch.zeros(2)}, pickled, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="legacy PyTorch checkpoint.*vganzoo convert"):
        load_extractor(pickled)
    tiny = tmp_path / "tiny.safetensors"
    save_file(dict(TinyVideoCNN().state_dict().items()), str(tiny))  # no metadata: taken as I3D
    with pytest.raises(ValueError, match=r"does not hold i3d weights \(missing 287: .*unexpected 6: body"):
        load_extractor(tiny)
    shapes = tmp_path / "shapes.safetensors"
    save_extractor(TinyVideoCNN(width=4), shapes, "tiny-3dcnn", {"width": 8})
    with pytest.raises(ValueError, match="wrong tensor shapes"):
        load_extractor(shapes)
    unknown = tmp_path / "unknown.safetensors"
    save_file({"w": torch.zeros(1)}, str(unknown), metadata={"vganzoo.architecture": "resnet"})
    with pytest.raises(ValueError, match="unknown extractor architecture"):
        load_extractor(unknown)


def test_hf_hub_spec_offline_and_malformed():
    with pytest.raises(ValueError, match="hf-hub:org/repo"):
        load_extractor("hf-hub:just-a-name")
    with pytest.raises(ValueError, match="only .safetensors"):
        load_extractor("hf-hub:org/repo/i3d.pt")
    with pytest.raises(LookupError, match="could not get model.safetensors from Hub repo org/i3d@abc"):
        load_extractor("hf-hub:org/i3d@abc")  # HF_HUB_OFFLINE=1 in tests


def test_module_output_must_be_2d():
    class PerFrame(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 3, 4), keepdim=True)

    extractor = load_extractor(PerFrame())
    with pytest.raises(ValueError, match=r"must return \(N, D\)"):
        extractor(torch.zeros(2, 3, 4, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, C, T, H, W\)"):
        extractor(torch.zeros(2, 3, 8, 8))
    assert isinstance(build_extractor("tiny-3dcnn"), VideoExtractor)


# ---------------------------------------------------------------- Inception Score


def test_inception_score_known_values():
    k = 10
    one_hot = np.eye(k)[np.arange(200) % k]  # every split holds all classes equally
    mean, std = inception_score(one_hot, splits=10)
    assert mean == pytest.approx(k) and std == pytest.approx(0.0, abs=1e-12)
    uniform = np.full((50, k), 1.0 / k)
    assert inception_score(uniform, splits=5)[0] == pytest.approx(1.0)
    # two classes, p(y|x) = (0.9, 0.1) or (0.1, 0.9) half the time: exp(KL to (0.5, 0.5))
    p = np.array([[0.9, 0.1], [0.1, 0.9]] * 10)
    kl = 0.9 * np.log(0.9 / 0.5) + 0.1 * np.log(0.1 / 0.5)
    assert inception_score(p, splits=1)[0] == pytest.approx(np.exp(kl))


def test_inception_score_errors():
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(np.ones((20, 3)), splits=2)
    with pytest.raises(ValueError, match="splits=10"):
        inception_score(np.full((5, 2), 0.5), splits=10)


def test_hub_extractor_follows_the_vganzoo_endpoint(monkeypatch, tmp_path):
    """hf-hub: extractors are fetched through vganzoo.hub (the endpoint vganzoo.load uses, VGANZOO_ENDPOINT
    at call time), and a revision that is not a commit is reported as unpinned."""
    import huggingface_hub

    from vganzoo.hub import UnpinnedWeightsWarning
    from vganzoo.metrics.extractors import resolve_extractor_file

    seen = {}

    def fake_download(repo_id, filename, **kw):
        seen.update(kw, repo_id=repo_id, filename=filename)
        (tmp_path / filename).write_bytes(b"weights")
        return str(tmp_path / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setenv("VGANZOO_ENDPOINT", "http://127.0.0.1:9")
    with pytest.warns(UnpinnedWeightsWarning, match="neither a commit nor a sha256"):
        local, _ = resolve_extractor_file("hf-hub:org/feats/i3d.safetensors@v1")
    wanted = {
        "repo_id": "org/feats",
        "filename": "i3d.safetensors",
        "revision": "v1",
        "endpoint": "http://127.0.0.1:9",
    }
    assert {k: seen[k] for k in wanted} == wanted
    assert local == str(tmp_path / "i3d.safetensors")


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"width": 100000}, "builds .* weights while the file holds"),  # 2 TB if it were allocated
        ({"feature_dim": 10**9}, "builds .* weights while the file holds"),
        ({"width": -4}, "does not build tiny-3dcnn"),
        ([1], "must be a JSON object"),
    ],
)
def test_a_shared_extractor_config_cannot_allocate_what_its_file_does_not_hold(tmp_path, config, match):
    import json as json_module

    from vganzoo.metrics.extractors import TinyVideoCNN, load_extractor, save_extractor

    path = tmp_path / "tiny.safetensors"
    save_extractor(TinyVideoCNN(), path, "tiny-3dcnn", {})
    load_extractor(str(path))  # the honest file loads
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json_module.loads(data[8 : 8 + size])
    header["__metadata__"]["vganzoo.config"] = json_module.dumps(config)
    text = json_module.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + size :])
    with pytest.raises(ValueError, match=match) as info:
        load_extractor(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)
