"""Loading of the compiled extensions (never compiles anything).

``vganzoo._C`` declares every operator and holds the CPU kernels, autograd and autocast; ``vganzoo._C_cuda``
holds the CUDA kernels and is imported after it only when torch is a CUDA build, so a CPU-only torch never
loads CUDA code and a CUDA build runs its CPU operators on a machine without a GPU.

Both are tied to the torch they were compiled against (torch's C++ ABI changes between releases), which
``vganzoo/_build_info.py`` records (setup.py writes it). Before loading them, that is compared with the
running torch (major.minor version, CUDA version, C++ ABI): on a mismatch, or a library that fails to load
(``undefined symbol: ...``), nothing is raised; the ops use the plain-PyTorch reference and one warning, on
first use, says what the build was for, what runs, and the command that fixes it. If the extension is
simply missing (pure-Python install), the warning says that instead.
"""

from __future__ import annotations

import importlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch

OPS = ("conv3d_bias_act", "conv_transpose3d_bias_act", "explain")
DEVICES = (("cpu", "CPU"), ("cuda", "CUDA"))
PACKAGE = __name__.rsplit(".", 2)[0]  # "vganzoo"
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_build_info() -> ModuleType | None:
    """``vganzoo._build_info`` (what the extensions were built for), or None for a tree never built."""
    try:
        from .. import _build_info
    except ImportError:
        return None
    return _build_info


def torch_release(version: str) -> str:
    """``"2.13"`` for ``"2.13.0+cpu"``: the part of torch's version that its C++ ABI follows."""
    return ".".join(version.split("+")[0].split(".")[:2])


def local_version_tag(torch_version: str, cuda_version: str | None) -> str:
    """The wheel's local version tag for a torch: ``torch2.13.cpu``, ``torch2.14.cu130`` (setup.py's rule)."""
    device = "cpu" if cuda_version is None else "cu" + cuda_version.replace(".", "")
    return f"torch{torch_release(torch_version)}.{device}"


def _describe(torch_version: str, cuda_version: str | None) -> str:
    return f"torch {torch_version} ({'CPU only' if cuda_version is None else 'CUDA ' + cuda_version})"


def _running() -> dict[str, Any]:
    return {
        "TORCH_VERSION": torch.__version__,
        "CUDA_VERSION": torch.version.cuda,
        "CXX11_ABI": bool(torch._C._GLIBCXX_USE_CXX11_ABI),
    }


def mismatch(build_info: ModuleType | None, running: dict[str, Any] | None = None) -> str | None:
    """How the build recorded in `build_info` differs from the running torch (None: it matches, or no
    record). Patch releases of torch keep the ABI; a library that still fails to load is caught on import."""
    if build_info is None:
        return None
    running = running or _running()
    built_torch = getattr(build_info, "TORCH_VERSION", "?")
    differences = []
    if torch_release(built_torch) != torch_release(running["TORCH_VERSION"]):
        differences.append(f"torch {torch_release(built_torch)} vs {torch_release(running['TORCH_VERSION'])}")
    built_cuda = getattr(build_info, "CUDA_VERSION", None)
    if built_cuda != running["CUDA_VERSION"]:
        differences.append(f"CUDA {built_cuda or 'none'} vs {running['CUDA_VERSION'] or 'none'}")
    built_abi = getattr(build_info, "CXX11_ABI", running["CXX11_ABI"])
    if built_abi != running["CXX11_ABI"]:
        differences.append(f"_GLIBCXX_USE_CXX11_ABI {int(built_abi)} vs {int(running['CXX11_ABI'])}")
    return ", ".join(differences) or None


def _source_checkout() -> str | None:
    """The source tree vganzoo runs from (an editable or in-place build), or None for an installed wheel."""
    checkout = os.path.dirname(PACKAGE_DIR)
    return checkout if os.path.isfile(os.path.join(checkout, "setup.py")) else None


def fix_command(build_info: ModuleType | None, running: dict[str, Any] | None = None) -> str:
    """The command that installs vganzoo's compiled ops for the running torch: a source rebuild in a
    source checkout, else the wheel whose local version tag names the running torch and CUDA."""
    running = running or _running()
    checkout = _source_checkout()
    if checkout is not None:
        return f"pip install --no-build-isolation -e {checkout}  (compiles against the running torch)"
    base = (getattr(build_info, "VERSION", None) or "").split("+")[0]
    tag = local_version_tag(running["TORCH_VERSION"], running["CUDA_VERSION"])
    requirement = f'"vganzoo=={base}+{tag}"' if base else "vganzoo"
    index = getattr(build_info, "WHEEL_INDEX", None) or "<vganzoo's wheel index>"
    return f"pip install --force-reinstall --no-deps {requirement} --find-links {index}"


def mismatch_message(
    build_info: ModuleType | None, what: str, running: dict[str, Any] | None = None, module: str = "_C"
) -> str:
    """One warning: what the extension was built for, what runs, why it is not used, and the fix."""
    running = running or _running()
    now = _describe(running["TORCH_VERSION"], running["CUDA_VERSION"])
    if build_info is None:
        built = "a torch it did not record"
    else:
        built = _describe(
            getattr(build_info, "TORCH_VERSION", "?"), getattr(build_info, "CUDA_VERSION", None)
        )
    return (
        f"vganzoo's compiled ops ({PACKAGE}.{module}) were built for {built} but {now} is running "
        f"({what}); using the plain-PyTorch reference ops instead (same results, slower). "
        f"Fix: {fix_command(build_info, running)}"
    )


@dataclass(frozen=True)
class LoadFailure:
    """Why a device's compiled kernels are not used; `mismatch`: a build for another torch (its reason is
    the whole warning, with the fix)."""

    reason: str
    mismatch: bool = False


Importer = Callable[[str], ModuleType]


def load(
    build_info: ModuleType | None, import_module: Importer = importlib.import_module
) -> dict[str, LoadFailure | None]:
    """Import the extensions that fit the running torch; return, per device type, None where its kernels
    loaded, else why not (`build_info` and `import_module` are parameters for the tests)."""
    problem = mismatch(build_info)
    if problem is not None:  # never dlopen a library built for another torch: it may not fail cleanly
        failure = LoadFailure(mismatch_message(build_info, f"{problem} differ"), mismatch=True)
        return {"cpu": failure, "cuda": failure}
    try:
        import_module(f"{PACKAGE}._C")  # registers torch.ops.vganzoo.* and the CPU kernels
    except ModuleNotFoundError as exc:  # a pure-Python install
        failure = LoadFailure(f"{type(exc).__name__}: {exc}")
        return {"cpu": failure, "cuda": failure}
    except ImportError as exc:  # undefined symbol: a library of another torch that no record caught
        failure = LoadFailure(mismatch_message(build_info, f"loading it failed: {exc}"), mismatch=True)
        return {"cpu": failure, "cuda": failure}
    if not hasattr(torch.ops.vganzoo, OPS[0]):
        failure = LoadFailure(f"{PACKAGE}._C imported but registered no operators")
        return {"cpu": failure, "cuda": failure}
    failures: dict[str, LoadFailure | None] = {"cpu": None, "cuda": None}
    cuda_built = build_info is None or "_C_cuda" in getattr(build_info, "EXTENSIONS", ())
    if torch.version.cuda is not None and cuda_built:  # a CPU-only torch never loads CUDA code
        try:
            import_module(f"{PACKAGE}._C_cuda")  # registers the CUDA kernels into the same operators
        except ModuleNotFoundError as exc:  # recorded as built but missing (no record: never built)
            failures["cuda"] = None if build_info is None else LoadFailure(f"{type(exc).__name__}: {exc}")
        except ImportError as exc:
            reason = mismatch_message(build_info, f"loading it failed: {exc}", module="_C_cuda")
            failures["cuda"] = LoadFailure(reason, mismatch=True)
    return failures


# Resolved once at import (loading a shared object compiles nothing) so that torch.compile sees
# plain constants rather than tracing the lookups.
BUILD_INFO: ModuleType | None = read_build_info()
FAILURES: dict[str, LoadFailure | None] = load(BUILD_INFO)
KERNELS: dict[str, bool] = {
    dev: FAILURES["cpu"] is None
    and FAILURES[dev] is None
    and torch._C._dispatch_has_kernel_for_dispatch_key("vganzoo::conv3d_bias_act", key)
    for dev, key in DEVICES
}


def _failure(device_type: str) -> LoadFailure | None:
    return FAILURES.get(device_type, FAILURES["cpu"])


def load_error(device_type: str = "cpu") -> str | None:
    """None if the extension's operators (and `device_type`'s kernels) loaded, else why they did not."""
    failure = _failure(device_type)
    return None if failure is None else failure.reason


def available() -> bool:
    """True if the compiled operators are registered."""
    return FAILURES["cpu"] is None


def has_kernel(device_type: str) -> bool:
    """True if the extension has a kernel for `device_type` ("cpu", "cuda")."""
    return KERNELS.get(device_type, False)


_warned: set[str] = set()


def warn_fallback_once(device_type: str) -> None:
    """Warn that the reference implementation is used instead of the extension: once per reason (a build
    for another torch is one warning, whichever devices fall back). Not for the meta device: shapes only,
    which models are first built on with warnings silenced (that would use up the warning)."""
    if device_type == "meta":
        return
    failure = _failure(device_type)
    key = failure.reason if failure is not None else device_type
    if key in _warned:
        return
    _warned.add(key)
    if failure is not None and failure.mismatch:
        warnings.warn(failure.reason, RuntimeWarning, stacklevel=4)
        return
    reason = (
        failure.reason if failure is not None else f"the extension was built without {device_type} support"
    )
    warnings.warn(
        f"vganzoo: fused ops for {device_type} are not available ({reason}); using the plain-PyTorch "
        "reference implementation",
        RuntimeWarning,
        stacklevel=4,
    )
