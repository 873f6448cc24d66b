"""Weights from files someone else wrote: configs are sized before they are built, tensors are checked
before they are loaded (weight sets, training runs and checkpoints, converted originals)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import vganzoo
from vganzoo import hub, registry
from vganzoo.cli import main
from vganzoo.train import checkpoint as ckpt

BUNDLED = Path(vganzoo.__file__).parent / "weights" / "mocogan-rnn.digits"


def _rehash(folder: Path) -> None:
    index = json.loads((folder / "weights.json").read_text())
    index["sha256"] = {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in index["sha256"]}
    (folder / "weights.json").write_text(json.dumps(index))


@pytest.fixture
def shared(tmp_path) -> Path:
    """A copy of the bundled digits weight set, as someone might share it."""
    folder = tmp_path / "shared-set"
    shutil.copytree(BUNDLED, folder)
    return folder


@pytest.fixture
def nothing_built(monkeypatch):
    """Fail the test if any model is built for real (the meta-device estimate is allowed)."""

    def built(name, **config):
        raise AssertionError(f"built {name} {config}")

    monkeypatch.setattr(registry, "create", built)


def _set_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    _rehash(folder)


# ----------------------------------------------------------------------------------------------
# a config.json that builds far more than its weights
# ----------------------------------------------------------------------------------------------
def test_a_config_far_larger_than_its_weights_is_refused_before_building(shared, nothing_built):
    _set_config(shared, width=40)
    with pytest.raises(hub.OversizedConfigError) as info:
        vganzoo.load(str(shared))
    message = str(info.value)
    assert "config.json" in message and "width=40" in message
    assert "generator would allocate 4.2 GB" in message and "620.5 kB" in message
    with pytest.raises(hub.OversizedConfigError):  # the discriminators' files bound them too
        vganzoo.load(str(shared), components="all")


def test_the_command_line_says_so_in_one_line(shared, tmp_path, monkeypatch, capsys):
    _set_config(shared, width=40)
    monkeypatch.chdir(tmp_path)
    assert main(["sample", str(shared), "--out", "x.gif"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.json" in err[0] and "refusing to build it" in err[0]
    assert not (tmp_path / "x.gif").exists()


def test_an_honest_set_loads_and_float16_files_are_not_mistaken(shared):
    model = vganzoo.load(str(shared), components="all")  # its files are float16: half the model's size
    assert model.generator.main[0].weight.dtype == torch.float32


def test_beyond_what_memory_allows_is_refused(shared, monkeypatch, nothing_built):
    monkeypatch.setenv("VGANZOO_MEMORY_LIMIT", "1M")
    with pytest.raises(hub.OversizedConfigError, match=r"needs at least .* but 1\.0 MB is available"):
        vganzoo.load(str(shared))


def test_random_weights_beyond_memory_are_refused(monkeypatch, nothing_built):
    monkeypatch.setenv("VGANZOO_MEMORY_LIMIT", "10M")
    with pytest.raises(vganzoo.errors.ResourceLimitError, match="building tgan .*needs at least 62"):
        hub.load_or_create("tgan")


def test_a_run_folder_config_is_sized_against_its_checkpoint(tmp_path, nothing_built):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    config = {"model": "mocogan-rnn", "resolution": 32, "width": 40}
    (run / "config.json").write_text(json.dumps({"model": config, "recipe": {}, "train": {}}))
    ckpt.save_checkpoint(
        run / "checkpoints" / "ckpt-00000001.safetensors", {"x": torch.zeros(4)}, {"step": 1}
    )
    before = sorted(p.name for p in run.rglob("*"))
    from vganzoo.train import train

    with pytest.raises(hub.OversizedConfigError, match=r"resume: .*config\.json.*width=40"):
        train("mocogan-rnn", data="moving-digits", out=str(run), resume=True)
    assert sorted(p.name for p in run.rglob("*")) == before


def test_a_checkpoint_config_is_sized_against_its_tensors(tmp_path, nothing_built):
    from vganzoo.train import export_checkpoint

    path = tmp_path / "ckpt-00000001.safetensors"
    state = {"step": 1, "model_config": {"model": "mocogan-rnn", "width": 40}}
    ckpt.save_checkpoint(path, {"model.generator.w": torch.zeros(8)}, state)
    with pytest.raises(hub.OversizedConfigError, match="checkpoint .*width=40.*would allocate"):
        export_checkpoint(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_fine_tuning_from_an_oversized_set_is_refused(shared, nothing_built):
    from vganzoo.train import train

    _set_config(shared, width=40)
    with pytest.raises(hub.OversizedConfigError, match="width=40"):
        train("mocogan-rnn", data="moving-digits", init_from=str(shared), out=str(shared.parent / "run"))
    assert not (shared.parent / "run").exists()


def test_a_converter_does_not_build_more_than_it_converted(tmp_path, nothing_built):
    from vganzoo.convert import write_weight_folder

    with pytest.raises(hub.OversizedConfigError, match="converted mocogan-rnn"):
        write_weight_folder(
            tmp_path / "out", {"model": "mocogan-rnn", "width": 40}, {"generator": {"w": torch.zeros(8)}}
        )


# ----------------------------------------------------------------------------------------------
# tensors of another dtype, NaN and inf
# ----------------------------------------------------------------------------------------------
def _edit_generator(folder: Path, key: str, value: torch.Tensor) -> None:
    path = folder / "generator.safetensors"
    tensors = load_file(str(path))
    tensors[key] = value
    save_file(tensors, str(path))
    _rehash(folder)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.uint8])
def test_a_weight_of_a_non_float_dtype_is_refused_by_name(shared, dtype):
    shape = load_file(str(shared / "generator.safetensors"))["main.0.weight"].shape
    _edit_generator(shared, "main.0.weight", torch.zeros(shape, dtype=dtype))
    with pytest.raises(hub.UnsafeTensorError, match=r"'main\.0\.weight' is (int64|bool|uint8).*float32"):
        vganzoo.load(str(shared))


def test_a_float_counter_is_refused(shared):
    _edit_generator(shared, "main.1.num_batches_tracked", torch.tensor(3.5))
    with pytest.raises(hub.UnsafeTensorError, match="num_batches_tracked"):
        vganzoo.load(str(shared))


def test_float64_weights_load_with_a_warning(shared):
    weight = load_file(str(shared / "generator.safetensors"))["main.0.weight"].double()
    _edit_generator(shared, "main.0.weight", weight)
    with pytest.warns(UserWarning, match=r"float64 \('main\.0\.weight'\)"):
        model = vganzoo.load(str(shared))
    assert model.generator.main[0].weight.dtype == torch.float32


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_weights_are_refused_by_name(shared, bad):
    weight = load_file(str(shared / "generator.safetensors"))["main.1.bias"].clone()
    weight[3] = bad
    _edit_generator(shared, "main.1.bias", weight)
    with pytest.raises(hub.UnsafeTensorError, match=r"'main\.1\.bias' holds 1 NaN or infinite"):
        vganzoo.load(str(shared))
    model = vganzoo.create("mocogan-rnn", resolution=32, channels=1, width=0.5, num_classes=10)
    with pytest.raises(hub.UnsafeTensorError):  # loading into a model you built: the same check
        hub.load_weights(model, str(shared), strict=False)


def test_a_checkpoint_with_nan_weights_is_refused_by_name(tmp_path):
    from vganzoo.train import export_checkpoint

    model = vganzoo.create("tgan", resolution=32, frames=16, width=0.25)
    tensors = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
    key = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[key].view(-1)[0] = float("nan")
    path = tmp_path / "ckpt-00000001.safetensors"
    ckpt.save_checkpoint(path, tensors, {"step": 1, "model_config": dict(model.config)})
    with pytest.raises(ckpt.CheckpointError, match=f"{key.removeprefix('model.')!r} holds 1 NaN"):
        export_checkpoint(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------
# links out of a shared folder (a README.md -> ~/.ssh/id_rsa would be shown by serve, pushed by push)
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("filename", ["README.md", "generator.safetensors", "weights.json"])
def test_a_link_out_of_a_weight_set_is_refused_on_load_and_push(shared, tmp_path, filename):
    from vganzoo.hub.save import verify_folder

    outside = tmp_path / "secret"
    outside.write_bytes((shared / filename).read_bytes())  # even the right bytes: it is not the folder's
    (shared / filename).unlink()
    (shared / filename).symlink_to(outside)
    with pytest.raises(hub.WeightsError, match=f"{filename} in .* is a link to a file outside the folder"):
        vganzoo.load(f"local-dir:{shared}")
    with pytest.raises(hub.WeightsError, match="outside the folder"):
        verify_folder(shared)  # what push_to_hub checks before uploading a folder
    assert main(["info", f"local-dir:{shared}"]) == 2


def test_a_link_inside_the_folder_is_fine_and_the_catalog_reads_no_card_out_of_it(shared, tmp_path):
    from vganzoo.hub.weightsets import file_in_weight_set

    (shared / "card.md").write_text("# inside\n")
    (shared / "README.md").unlink()
    (shared / "README.md").symlink_to(shared / "card.md")
    vganzoo.load(f"local-dir:{shared}")
    assert file_in_weight_set(shared, "README.md") == shared / "README.md"
    # a Hugging Face cache snapshot links to its repo's blobs; a link beyond the repo is not read
    snapshot = tmp_path / "models--a--b" / "snapshots" / ("0" * 40)
    blobs = tmp_path / "models--a--b" / "blobs"
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    (blobs / "abc").write_text("# card\n")
    (snapshot / "README.md").symlink_to(blobs / "abc")
    assert file_in_weight_set(snapshot, "README.md") == snapshot / "README.md"
    (tmp_path / "secret").write_text("key")
    (snapshot / "README.md").unlink()
    (snapshot / "README.md").symlink_to(tmp_path / "secret")
    assert file_in_weight_set(snapshot, "README.md") is None


# ----------------------------------------------------------------------------------------------
# deeply nested or non-standard JSON: one line naming the file or option, never a RecursionError
# ----------------------------------------------------------------------------------------------
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("filename", ["weights.json", "config.json"])
def test_deeply_nested_json_in_a_weight_set_is_one_error(shared, filename, capsys):
    (shared / filename).write_text(DEEP)
    if filename == "config.json":
        _rehash(shared)
    with pytest.raises(hub.WeightsError, match=f"{filename}: JSON nested more than 64 deep"):
        vganzoo.load(f"local-dir:{shared}")
    assert main(["info", f"local-dir:{shared}"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_the_shared_json_reader_bounds_size_and_depth(tmp_path):
    from vganzoo.files import json_or_text, loads_json, read_json_file

    assert loads_json("[[1]]", "x", max_depth=2) == [[1]]
    with pytest.raises(ValueError, match="^x: JSON nested more than 2 deep$"):
        loads_json("[[[1]]]", "x", max_depth=2)
    with pytest.raises(ValueError, match="^x: 11 bytes of JSON, more than the 10"):
        loads_json('"123456789"', "x", max_bytes=10)
    (tmp_path / "big.json").write_text("[" + "1," * 100 + "1]")
    with pytest.raises(ValueError, match="more than the 100 vganzoo reads"):
        read_json_file(tmp_path / "big.json", max_bytes=100)
    assert json_or_text("1e-4", "--set lr") == 1e-4 and json_or_text("adam", "--set name") == "adam"
    with pytest.raises(ValueError, match="--set lr: JSON nested"):
        json_or_text(DEEP, "--set lr")


def test_command_line_json_is_bounded(tmp_path, capsys):
    deep = tmp_path / "meta.json"
    deep.write_text(DEEP)
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "out"), "--metadata", str(deep)]) == 2
    for args in (
        ["train", "tgan", "--data", "moving-digits", "--out", str(tmp_path / "r"), "--set", f"lr={DEEP}"],
        [
            "train",
            "tgan",
            "--data",
            "moving-digits",
            "--out",
            str(tmp_path / "r"),
            "--model-arg",
            f"width={DEEP}",
        ],
    ):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "JSON nested more than" in err and len(err.strip().splitlines()) <= 2, err[-300:]


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({"metrics": {"fvd": float("nan")}}, "without NaN or Infinity"),
        ({"steps": float("inf")}, "without NaN or Infinity"),
        ({"title": "x\n---\nlicense: evil"}, r"metadata\['title'\] must be a one-line string"),
        ({"license": {"name": "mit"}}, r"metadata\['license'\] must be a one-line string"),
        ({"tags": ["ok", "a\nb"]}, r"metadata\['tags'\] must be a one-line string"),
    ],
)
def test_metadata_that_would_break_weights_json_or_the_card_is_refused(shared, tmp_path, metadata, match):
    model = vganzoo.load(f"local-dir:{shared}")
    with pytest.raises(ValueError, match=match):
        hub.save_pretrained(model, tmp_path / "out", metadata=metadata)
    assert not (tmp_path / "out").exists()
