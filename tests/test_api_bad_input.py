"""The Python API under bad input: non-finite config values, unknown devices and sizes beyond memory
are errors that name the argument, raised before anything is allocated or written."""

from __future__ import annotations

import pytest
import torch

import vganzoo
from vganzoo.errors import InvalidConfigError, ResourceLimitError


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -float("inf")])
def test_non_finite_config_values_are_refused_by_name(value):
    with pytest.raises(InvalidConfigError, match="'width' must be a finite number"):
        vganzoo.create("tgan", width=value)


@pytest.mark.parametrize("device", ["potato", "meta"])
def test_train_refuses_a_device_by_name_before_writing(device, tmp_path):
    from vganzoo.train import train

    with pytest.raises(ValueError, match="^device: "):
        train("tgan", data="moving-digits", device=device, out=str(tmp_path / "run"))
    assert list(tmp_path.iterdir()) == []


def test_sampling_more_than_memory_holds_is_refused_before_drawing(monkeypatch):
    model = vganzoo.create("tgan", resolution=32, width=0.125)
    drawn = []
    monkeypatch.setattr(model.generator, "sample_latents", lambda n, **kw: drawn.append(n))
    with pytest.raises(ResourceLimitError, match=r"sample: n=1000000000 videos .* needs at least"):
        model.sample(10**9)
    assert drawn == []


@pytest.mark.parametrize(
    ("name", "overrides"),
    [("mocogan-rnn", {"num_classes": 20_000_000}), ("stylegan-v", {"time_dim": 1_000_000})],
)
def test_create_refuses_giant_configs_before_building(name, overrides, monkeypatch):
    from vganzoo import registry

    built = []
    monkeypatch.setenv("VGANZOO_MEMORY_LIMIT", "1G")  # far below either model, whatever the machine
    monkeypatch.setattr(registry, "create", lambda *a, **k: built.append(a))
    with pytest.raises(ResourceLimitError, match=r"^building .* needs at least .* choose smaller settings"):
        vganzoo.create(name, **overrides)
    assert built == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"revision": 5}, TypeError, "^revision must be a branch, tag or commit name"),
        ({"components": 5}, TypeError, "^components must be a name or a list of names"),
        ({"dtype": torch.complex64}, TypeError, "^dtype must be a floating-point dtype"),
        ({"dtype": "int8"}, TypeError, "^dtype must be a floating-point dtype"),
        ({"device": 3}, ValueError, "^device: give a device name such as 'cuda:3'"),
        ({"device": "cuda:x"}, ValueError, "^device: 'cuda:x' is not a device"),
    ],
)
def test_load_arguments_are_named_in_one_line(kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        vganzoo.load("mocogan-rnn.digits", **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_only_machine_is_one_line():
    unusable = "^device: 'cuda', but (this PyTorch .* is a CPU-only build|no CUDA GPU is visible)"
    with pytest.raises(ValueError, match=unusable):
        vganzoo.load("mocogan-rnn.digits", device="cuda")
    with pytest.raises(ValueError, match="^device: 'cuda'"):
        vganzoo.load("mocogan-rnn.digits").sample(1, device="cuda")


def test_sample_and_list_arguments_are_checked():
    model = vganzoo.load("mocogan-rnn.digits")
    with pytest.raises(ValueError, match=r"^labels must be class indices"):
        model.sample(1, labels=[2**70])
    with pytest.raises(TypeError, match="^return_latents must be True or False, got 'yes'"):
        model.sample(1, return_latents="yes")
    with pytest.raises(TypeError, match="^pretrained must be True or False, got 'yes'"):
        vganzoo.list_models(pretrained="yes")
    with pytest.raises(ResourceLimitError, match="^sample: n=100000000000000000000"):
        model.sample(10**20)


def test_complex_tensors_are_refused_for_integer_buffers():
    from vganzoo.hub.checks import UnsafeTensorError, check_tensors

    with pytest.raises(UnsafeTensorError, match="tensor 'n' is complex64"):
        check_tensors(
            {"n": torch.zeros(1, dtype=torch.complex64)}, {"n": torch.zeros(1, dtype=torch.long)}, "x"
        )


def test_write_errors_name_the_folder_not_a_temporary(tmp_path, monkeypatch):
    import errno

    from vganzoo import files

    model = vganzoo.create("tgan", resolution=32, width=0.125)

    def too_large(handle, data):
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(files, "_write_all", too_large)
    with pytest.raises(OSError, match=r"File too large: '.*/out'$") as info:
        vganzoo.save_pretrained(model, tmp_path / "out")
    assert ".tmp-" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_info_accepts_weight_set_folders(tmp_path, capsys):
    from vganzoo.cli import main

    folder = vganzoo.save_pretrained(vganzoo.create("tgan", resolution=32, width=0.125), tmp_path / "w")
    for name in (str(folder), f"local-dir:{folder}"):
        assert main(["info", name]) == 0
        out = capsys.readouterr().out
        assert out.startswith("tgan  (tgan") and f"config of the local-dir:{folder} weights" in out
