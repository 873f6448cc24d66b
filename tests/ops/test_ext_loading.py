"""Loading the compiled extensions: a build for another torch (or CUDA) is refused before it is loaded, a
library that fails to load (undefined symbol) is caught, and both give one warning with the fix while the
ops run on the reference. The mismatches are simulated: a fake ``vganzoo._build_info`` recording another
torch, and an import that raises the ImportError text a real ABI break gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch

from vganzoo.ops import _ext

REPO = Path(__file__).resolve().parents[2]
RUNNING_RELEASE = _ext.torch_release(torch.__version__)
OTHER_TORCH = f"2.{int(RUNNING_RELEASE.split('.')[1]) + 1}.0"  # the next minor release: another C++ ABI
# What CPython raised for the torch 2.13.0+cpu wheel's _C under torch 2.14.1+cu130 with its record removed:
# torch::autograd::_wrap_outputs (csrc/autograd.cpp's autograd Function) as 2.13 declared it is not in 2.14.1.
UNDEFINED_SYMBOL = (
    "{path}/_C.cpython-311-x86_64-linux-gnu.so: undefined symbol: "
    "_ZN5torch8autograd13_wrap_outputsERKSt6vectorIN2at6TensorESaIS3_EERKSt13unordered_setIPN3c1010TensorImpl"
    "ESt4hashISB_ESt8equal_toISB_ESaISB_EESJ_NS9_8ArrayRefISt8optionalIS3_EEERKNS9_13intrusive_ptrINS0_4Node"
    "ENS9_6detail34intrusive_target_default_null_typeISP_EEEERKSt8functionIFS5_S5_S5_EESJ_RKSW_IFS3_S3_EEb"
)


def _build_info(**overrides) -> types.ModuleType:
    """A ``vganzoo._build_info`` as setup.py writes it, for the running torch unless overridden."""
    info = types.ModuleType("vganzoo._build_info")
    facts = {
        "VERSION": "0.1.0+" + _ext.local_version_tag(torch.__version__, torch.version.cuda),
        "TORCH_VERSION": torch.__version__,
        "CUDA_VERSION": torch.version.cuda,
        "CXX11_ABI": bool(torch._C._GLIBCXX_USE_CXX11_ABI),
        "CUDA_ARCHS": None,
        "EXTENSIONS": ("_C",),
        "WHEEL_INDEX": "/srv/vganzoo-wheels",
    }
    facts.update(overrides)
    for name, value in facts.items():
        setattr(info, name, value)
    return info


class RecordingImporter:
    """Stands in for importlib.import_module: records the names, raises what it is told to."""

    def __init__(self, raises: dict[str, BaseException] | None = None):
        self.raises = raises or {}
        self.imported: list[str] = []

    def __call__(self, name: str) -> types.ModuleType:
        self.imported.append(name)
        if name in self.raises:
            raise self.raises[name]
        return types.ModuleType(name)


def test_build_for_another_torch_is_not_loaded_and_names_the_wheel(monkeypatch):
    monkeypatch.setattr(_ext, "_source_checkout", lambda: None)  # as from an installed wheel
    info = _build_info(TORCH_VERSION=f"{OTHER_TORCH}+cpu", CUDA_VERSION=None, VERSION="0.1.0+torch2.99.cpu")
    importer = RecordingImporter()
    failures = _ext.load(info, importer)
    assert importer.imported == []  # the library of another torch is never dlopened
    assert failures["cpu"] is failures["cuda"] and failures["cpu"].mismatch
    message = failures["cpu"].reason
    assert f"built for torch {OTHER_TORCH}+cpu (CPU only)" in message
    assert f"but torch {torch.__version__} " in message
    assert f"torch {_ext.torch_release(OTHER_TORCH)} vs {RUNNING_RELEASE}" in message
    assert "plain-PyTorch reference" in message
    tag = _ext.local_version_tag(torch.__version__, torch.version.cuda)
    assert (
        f'pip install --force-reinstall --no-deps "vganzoo==0.1.0+{tag}" --find-links /srv/vganzoo-wheels'
        in (message)
    )


def test_build_for_another_cuda_is_a_mismatch():
    running = {"TORCH_VERSION": "2.14.1+cu130", "CUDA_VERSION": "13.0", "CXX11_ABI": True}
    info = _build_info(TORCH_VERSION="2.14.1+cu128", CUDA_VERSION="12.8", CXX11_ABI=True)
    assert _ext.mismatch(info, running) == "CUDA 12.8 vs 13.0"
    cpu_wheel_under_cuda_torch = _build_info(TORCH_VERSION="2.14.1+cpu", CUDA_VERSION=None, CXX11_ABI=True)
    assert _ext.mismatch(cpu_wheel_under_cuda_torch, running) == "CUDA none vs 13.0"
    patch_release = _build_info(TORCH_VERSION="2.14.0+cu130", CUDA_VERSION="13.0", CXX11_ABI=True)
    assert _ext.mismatch(patch_release, running) is None  # patch releases keep the ABI
    assert _ext.mismatch(None, running) is None  # no record: loading decides


def test_in_a_source_checkout_the_fix_is_the_rebuild(monkeypatch, tmp_path):
    monkeypatch.setattr(_ext, "PACKAGE_DIR", str(REPO / "vganzoo"))  # as when run from the checkout
    info = _build_info(TORCH_VERSION=f"{OTHER_TORCH}+cpu")
    assert _ext._source_checkout() == str(REPO)
    assert (
        f"Fix: pip install --no-build-isolation -e {REPO}"
        in _ext.load(info, RecordingImporter())["cpu"].reason
    )


def test_undefined_symbol_is_caught_with_the_fix(monkeypatch):
    monkeypatch.setattr(_ext, "_source_checkout", lambda: None)
    error = ImportError(UNDEFINED_SYMBOL.format(path=Path(_ext.PACKAGE_DIR)))
    importer = RecordingImporter(raises={"vganzoo._C": error})
    failures = _ext.load(_build_info(), importer)  # the record matches: only loading can tell
    assert importer.imported == ["vganzoo._C"]
    assert failures["cpu"].mismatch and failures["cuda"] is failures["cpu"]
    message = failures["cpu"].reason
    assert "loading it failed: " in message and "undefined symbol: _ZN5torch8autograd13_wrap" in message
    assert "--force-reinstall" in message


def test_missing_extension_is_the_plain_fallback():
    error = ModuleNotFoundError("No module named 'vganzoo._C'", name="vganzoo._C")
    failures = _ext.load(None, RecordingImporter(raises={"vganzoo._C": error}))
    assert not failures["cpu"].mismatch
    assert failures["cpu"].reason == "ModuleNotFoundError: No module named 'vganzoo._C'"


@pytest.mark.skipif(not _ext.available(), reason="vganzoo._C not built")
@pytest.mark.parametrize(
    ("torch_cuda", "extensions", "expected"),
    [
        (None, ("_C", "_C_cuda"), ["vganzoo._C"]),  # a CPU-only torch never loads CUDA code
        ("13.0", ("_C", "_C_cuda"), ["vganzoo._C", "vganzoo._C_cuda"]),
        ("13.0", ("_C",), ["vganzoo._C"]),  # a source build under a CUDA torch without FORCE_CUDA
    ],
)
def test_cuda_kernels_load_only_under_a_cuda_torch(monkeypatch, torch_cuda, extensions, expected):
    monkeypatch.setattr(torch.version, "cuda", torch_cuda)
    info = _build_info(CUDA_VERSION=torch_cuda, EXTENSIONS=extensions)
    importer = RecordingImporter()
    assert _ext.load(info, importer) == {"cpu": None, "cuda": None}
    assert importer.imported == expected


@pytest.mark.skipif(not _ext.available(), reason="vganzoo._C not built")
def test_cuda_library_that_fails_to_load_leaves_the_cpu_ops(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    error = ImportError("libcudart.so.13: cannot open shared object file: No such file or directory")
    info = _build_info(CUDA_VERSION="13.0", EXTENSIONS=("_C", "_C_cuda"))
    failures = _ext.load(info, RecordingImporter(raises={"vganzoo._C_cuda": error}))
    assert failures["cpu"] is None
    assert failures["cuda"].mismatch and "(vganzoo._C_cuda)" in failures["cuda"].reason


# End to end, in a fresh interpreter: the simulated install problem is in place before vganzoo.ops is
# imported, as it would be in a venv whose torch was upgraded under the wheel.
SCENARIO = textwrap.dedent(
    """
    import importlib.abc, json, sys, types, warnings
    import torch, torch.nn.functional as F

    scenario, other_torch, undefined_symbol = sys.argv[1:4]
    info = types.ModuleType("vganzoo._build_info")  # what a wheel records
    info.VERSION, info.CUDA_VERSION, info.EXTENSIONS = "0.1.0+torch9.9.cpu", torch.version.cuda, ("_C",)
    info.CXX11_ABI, info.WHEEL_INDEX = bool(torch._C._GLIBCXX_USE_CXX11_ABI), "/srv/vganzoo-wheels"
    info.TORCH_VERSION = other_torch if scenario == "other-torch" else torch.__version__
    sys.modules["vganzoo._build_info"] = info
    if scenario == "undefined-symbol":  # the record matches, and the library does not load
        class Refuse(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "vganzoo._C":
                    raise ImportError(undefined_symbol, name=name)
        sys.meta_path.insert(0, Refuse())

    import vganzoo.ops as ops

    x, w, b = torch.randn(1, 2, 3, 5, 5), torch.randn(4, 2, 3, 3, 3), torch.randn(4)
    with warnings.catch_warnings():  # as vganzoo.registry builds a model on meta first, silenced
        warnings.simplefilter("ignore")
        ops.conv3d_bias_act(x.to("meta"), w.to("meta"), b.to("meta"), padding=1)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        y = ops.conv3d_bias_act(x, w, b, padding=1, activation="relu")
        ops.conv_transpose3d_bias_act(y, w, None)  # (C_in=4, C_out=2, ...)
    print(json.dumps({
        "available": ops.extension_available("cpu"),
        "close": torch.allclose(y, F.relu(F.conv3d(x, w, b, padding=1)), atol=1e-5),
        "warnings": [str(warning.message) for warning in seen],
        "explain": ops.explain(x, w, b, padding=1),
    }))
    """
)


@pytest.mark.parametrize("scenario", ["other-torch", "undefined-symbol"])
def test_install_for_another_torch_warns_once_and_falls_back(scenario):
    symbol_error = UNDEFINED_SYMBOL.format(path=Path(_ext.PACKAGE_DIR))
    done = subprocess.run(
        [sys.executable, "-c", SCENARIO, scenario, f"{OTHER_TORCH}+cpu", symbol_error],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout)
    assert result["available"] is False and result["close"]
    assert len(result["warnings"]) == 1, result["warnings"]  # two ops used, one warning
    message = result["warnings"][0]
    assert message.startswith("vganzoo's compiled ops (vganzoo._C) were built for ")
    assert f"but torch {torch.__version__} " in message and "Fix: pip install" in message
    if scenario == "other-torch":
        assert f"built for torch {OTHER_TORCH}+cpu " in message
    else:
        assert "undefined symbol: _ZN5torch8autograd13_wrap_outputs" in message
    assert result["explain"].startswith("ref: plain-PyTorch reference (vganzoo's compiled ops")
