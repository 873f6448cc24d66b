"""The library's one device check, vganzoo.resources.as_device: what the API, the CLI, the trainer, the
demo and CUDA graphs accept as a device, and the one-line reasons for what they refuse."""

import pytest
import torch

from vganzoo.resources import as_device


def test_names_and_devices():
    assert as_device(None) is None  # the caller's default
    assert as_device("cpu") == as_device("cpu:0") == as_device(" CPU ") == torch.device("cpu")
    assert as_device(torch.device("cpu")) == torch.device("cpu")
    assert as_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize(
    ("device", "error", "match"),
    [
        ("potato", ValueError, r"^where: 'potato' is not a device; use 'cpu'"),
        ("", ValueError, r"^where: '' is not a device"),
        ("meta", ValueError, r"^where: 'meta' tensors hold no data, so nothing can run there"),
        ("hpu", ValueError, r"^where: 'hpu' devices are not supported; use 'cpu'"),
        ("cpu:1", ValueError, r"^where: there is one CPU device, 'cpu' \(got 'cpu:1'\)$"),
        (2, ValueError, r"^where: give a device name such as 'cuda:2', not the number 2$"),
        (True, TypeError, r"^where: expected a device name such as 'cpu' or 'cuda:0', got bool$"),
        ("x" * 10_000, ValueError, r"^where: 'x+\.\.\.x+' is not a device"),  # never the whole value
    ],
)
def test_refusals_name_the_argument_in_one_line(device, error, match):
    with pytest.raises(error, match=match) as info:
        as_device(device, "where")
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


def test_accelerators_this_torch_cannot_use(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(
        ValueError, match=r"^device: 'cuda', but this PyTorch \(.*\) is a CPU-only build; use 'cpu'$"
    ):
        as_device("cuda")
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    with pytest.raises(ValueError, match=r"^'cuda:1', but no CUDA GPU is visible"):
        as_device("cuda:1", "")  # no prefix: the CLI adds "argument --device: "
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert as_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(
        ValueError, match=r"^device: 'cuda:2', but this machine has 2 cuda device\(s\), cuda:0 to cuda:1$"
    ):
        as_device("cuda:2")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(
        ValueError,
        match=r"^device: 'mps', but MPS \(Apple GPUs\) is not available here; use 'cpu', 'cuda' or 'cuda:N'$",
    ):
        as_device("mps")
