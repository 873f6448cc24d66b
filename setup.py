"""Build script for the compiled extension ``vganzoo._C`` (metadata lives in pyproject.toml).

* The C++ CPU operators (csrc/ops.cpp, csrc/cpu/*.cpp) are always built.
* The CUDA operators (csrc/cuda/*.cu) are built too when the installed torch is a CUDA build and
  either a GPU is visible or ``FORCE_CUDA=1`` is set (compile-only CI machines).
* With no GPU visible, ``TORCH_CUDA_ARCH_LIST`` defaults to 9.0 (torch's build crashes on an empty
  architecture list) and ``CUDA_HOME`` to /usr/local/cuda when it exists (torch guesses it wrong from
  an nvcc wrapper). Both must be set before torch.utils.cpp_extension is imported.
* ``VGANZOO_SKIP_EXT=1`` builds no extension at all (pure-Python install; ops use the reference).

Install: ``pip install --no-build-isolation -e .`` or ``python setup.py build_ext --inplace``.
"""

from __future__ import annotations

import glob
import os

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ARCH_LIST = "9.0"
DEFAULT_CUDA_HOME = "/usr/local/cuda"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "0").strip().lower() in ("1", "true", "yes", "on")


def _want_cuda() -> bool:
    import torch

    if torch.version.cuda is None:
        return False
    gpu_visible = torch.cuda.is_available()
    if not gpu_visible:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_ARCH_LIST)
        if "CUDA_HOME" not in os.environ and os.path.isdir(DEFAULT_CUDA_HOME):
            os.environ["CUDA_HOME"] = DEFAULT_CUDA_HOME
    return gpu_visible or _env_flag("FORCE_CUDA")


def _sources(pattern: str) -> list[str]:
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)))


def _extensions() -> tuple[list, dict]:
    if _env_flag("VGANZOO_SKIP_EXT"):
        return [], {}
    with_cuda = _want_cuda()
    # Imported only now: CUDA_HOME / TORCH_CUDA_ARCH_LIST above are read at import time.
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    sources = ["csrc/ops.cpp", "csrc/autograd.cpp", "csrc/autocast.cpp", *_sources("csrc/cpu/*.cpp")]
    cxx_flags = ["-O3", "-fvisibility=hidden"]
    macros = []
    include_dirs = [os.path.join(ROOT, "csrc")]
    if with_cuda:
        sources += _sources("csrc/cuda/*.cu")
        macros.append(("VGANZOO_WITH_CUDA", None))
        nvcc_flags = [
            "-O3",
            "--use_fast_math",
            "-lineinfo",
            "--expt-relaxed-constexpr",
            "-Xptxas=-warn-spills",
        ]
        ext = CUDAExtension(
            "vganzoo._C",
            sources,
            include_dirs=include_dirs,
            define_macros=macros,
            extra_compile_args={"cxx": cxx_flags, "nvcc": nvcc_flags},
        )
    else:
        ext = CppExtension(
            "vganzoo._C",
            sources,
            include_dirs=include_dirs,
            define_macros=macros,
            extra_compile_args={"cxx": cxx_flags},
        )
    return [ext], {"build_ext": BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = _extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
