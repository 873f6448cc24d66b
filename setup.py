"""Build script for the compiled extension ``vganzoo._C`` (metadata lives in pyproject.toml).

* The C++ CPU operators (csrc/ops.cpp, csrc/cpu/*.cpp) are always built.
* The CUDA operators (csrc/cuda/*.cu) are built too when the installed torch is a CUDA build and
  either a GPU is visible or ``FORCE_CUDA=1`` is set (compile-only CI machines).
* With no GPU visible, ``TORCH_CUDA_ARCH_LIST`` defaults to 9.0 (torch's build crashes on an empty
  architecture list) and ``CUDA_HOME`` to /usr/local/cuda when it exists (torch guesses it wrong from
  an nvcc wrapper). Both must be set before torch.utils.cpp_extension is imported.
* ``VGANZOO_SKIP_EXT=1`` builds no extension at all (pure-Python install; ops use the reference).
* The CUDA build adds NVIDIA CUTLASS conv3d kernels (csrc/cuda/cutlass/*.cu) when CUTLASS's headers are
  found: ``CUTLASS_HOME`` (its ``include/`` or the folder itself), else third_party/cutlass/include
  (filled by .ci/fetch_cutlass.sh), else the installed ``cutlass_library`` package (pip install
  nvidia-cutlass). Without them it builds without those kernels (a note says so), unless
  ``VGANZOO_REQUIRE_CUTLASS=1`` makes that an error. The CPU-only build never looks for CUTLASS.

As fast and as quiet as it can be:

* ninja compiles the sources in parallel, ``MAX_JOBS`` of them at once (default: the cores this
  process may use); ccache is used when it is installed (``VGANZOO_NO_CCACHE=1`` turns that off);
* no debug information (``VGANZOO_BUILD_DEBUG=1`` keeps Python's ``-g``): it more than doubled
  the compile time of a source and made a 16 MB library;
* the compiler's command lines are not printed (``VGANZOO_BUILD_VERBOSE=1`` prints them), its
  messages (warnings, ptxas spill reports) are; a failed compile shows its whole output;
* a build is kept in ``build/vganzoo-ext/<fingerprint>/`` (sources, headers, torch and Python
  versions, CUDA settings, flags): installing again (``pip install -e ".[test]"`` after
  ``".[video]"``) reuses it instead of compiling again.

Install: ``pip install --no-build-isolation -e .`` or ``python setup.py build_ext --inplace``.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ARCH_LIST = "9.0"
DEFAULT_CUDA_HOME = "/usr/local/cuda"
CACHE_DIR = os.path.join(ROOT, "build", "vganzoo-ext")
# what else a build depends on besides its sources: the environment variables that change it
BUILD_ENV = ("TORCH_CUDA_ARCH_LIST", "CUDA_HOME", "CXX", "CC", "CFLAGS", "CXXFLAGS", "LDFLAGS", "NVCC_FLAGS")
# (VGANZOO_BUILD_DEBUG changes the flags, which are part of the fingerprint too)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "0").strip().lower() in ("1", "true", "yes", "on")


def _log(message: str) -> None:
    print(f"vganzoo setup: {message}", file=sys.stderr, flush=True)


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


def _parallel_jobs() -> None:
    """``MAX_JOBS`` (ninja's parallel compiles, read by torch's build) from the usable cores."""
    if "MAX_JOBS" not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        os.environ["MAX_JOBS"] = str(max(1, cores or 1))


def _use_ccache() -> bool:
    """Put ccache in front of the C++ compiler (a folder of ``c++``/``g++``/``cc``/``gcc`` links to it
    first on PATH: the way ccache masquerades, which torch's compiler check accepts)."""
    ccache = shutil.which("ccache")
    if ccache is None or _env_flag("VGANZOO_NO_CCACHE") or "CXX" in os.environ:
        return False
    links = os.path.join(ROOT, "build", "ccache-bin")
    os.makedirs(links, exist_ok=True)
    for name in ("c++", "g++", "cc", "gcc"):
        link = os.path.join(links, name)
        if not os.path.lexists(link):
            os.symlink(ccache, link)
    os.environ["PATH"] = links + os.pathsep + os.environ.get("PATH", "")
    return True


def _quiet_ninja() -> None:
    """Compile without printing every command line (torch's build always asks ninja for them): the
    compiler's own messages (warnings, ptxas spill reports) are still shown, and a failure raises with
    the whole output."""
    from torch.utils import cpp_extension

    if _env_flag("VGANZOO_BUILD_VERBOSE") or cpp_extension.IS_WINDOWS:
        return

    def run_ninja(build_directory: str, verbose: bool, error_prefix: str) -> None:
        workers = cpp_extension._get_num_workers(False)
        command = ["ninja", *(["-j", str(workers)] if workers is not None else [])]
        done = subprocess.run(command, cwd=build_directory, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output = done.stdout.decode(errors="replace")
        if done.returncode != 0:
            raise RuntimeError(f"{error_prefix}: {output}")
        notes = [line for line in output.splitlines() if line.strip() and not re.match(r"\[\d+/\d+\] ", line)]
        if notes:
            print("\n".join(notes), flush=True)

    cpp_extension._run_ninja_build = run_ninja


def _fingerprint(ext, with_cuda: bool) -> str:
    """What a build of ``ext`` depends on: every file under csrc/, the flags, torch, Python, CUDA."""
    import torch

    digest = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(ROOT, "csrc", "**", "*"), recursive=True)):
        if os.path.isfile(path):
            digest.update(os.path.relpath(path, ROOT).encode() + b"\0")
            with open(path, "rb") as handle:
                digest.update(hashlib.sha256(handle.read()).digest())
    facts = [
        torch.__version__,
        str(torch.version.cuda),
        str(with_cuda),
        sysconfig.get_config_var("EXT_SUFFIX") or "",
        repr(sorted(ext.sources)),
        repr(ext.extra_compile_args),
        repr(ext.define_macros),
        *(f"{k}={os.environ.get(k, '')}" for k in BUILD_ENV),
    ]
    digest.update("\n".join(facts).encode())
    return digest.hexdigest()[:20]


def _find_cutlass() -> str | None:
    """The folder holding CUTLASS's ``cutlass/cutlass.h`` (and ``cute/``), or None: ``CUTLASS_HOME`` (its
    include/ or itself), then third_party/cutlass/include, then the ``cutlass_library`` package's copy."""
    candidates = []
    home = os.environ.get("CUTLASS_HOME")
    if home:
        candidates += [os.path.join(home, "include"), home]
    candidates.append(os.path.join(ROOT, "third_party", "cutlass", "include"))
    try:
        import importlib.util

        spec = importlib.util.find_spec("cutlass_library")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates += [os.path.join(p, "source", "include") for p in spec.submodule_search_locations]
    for folder in candidates:
        if os.path.isfile(os.path.join(folder, "cutlass", "cutlass.h")):
            return os.path.abspath(folder)
    if _env_flag("VGANZOO_REQUIRE_CUTLASS"):
        raise RuntimeError(
            "VGANZOO_REQUIRE_CUTLASS=1 but no CUTLASS headers were found (looked in: "
            + ", ".join(candidates)
            + "): run .ci/fetch_cutlass.sh, set CUTLASS_HOME, or pip install nvidia-cutlass"
        )
    _log("no CUTLASS headers: building the CUDA ops without the CUTLASS kernels (.ci/fetch_cutlass.sh)")
    return None


def _cutlass_sources() -> list[str]:
    """The CUTLASS kernel instantiations: one kernel family per source, so ninja compiles them in parallel."""
    return _sources("csrc/cuda/cutlass/*.cu")


def _build_ext_class(base, with_cuda: bool):
    """``base`` (torch's BuildExtension) that reuses a kept build with the same fingerprint."""

    class ReusingBuildExtension(base):
        def build_extension(self, ext) -> None:
            target = self.get_ext_fullpath(ext.name)
            kept = os.path.join(CACHE_DIR, _fingerprint(ext, with_cuda), os.path.basename(target))
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            if os.path.isfile(kept):
                _log(f"reusing the compiled extension {os.path.relpath(kept, ROOT)} (sources unchanged)")
                shutil.copy2(kept, target)
                return
            jobs = os.environ.get("MAX_JOBS")
            how = ", through ccache" if _CCACHE else ""
            took = "CUDA included: several minutes" if with_cuda else "about a minute per source per core"
            _log(f"compiling vganzoo._C: {len(ext.sources)} sources, {jobs} at a time{how} ({took})")
            super().build_extension(ext)
            os.makedirs(os.path.dirname(kept), exist_ok=True)
            shutil.copy2(target, kept + ".part")
            os.replace(kept + ".part", kept)

    return ReusingBuildExtension


_CCACHE = False


def _extensions() -> tuple[list, dict]:
    global _CCACHE
    if _env_flag("VGANZOO_SKIP_EXT"):
        return [], {}
    with_cuda = _want_cuda()
    _parallel_jobs()
    _CCACHE = _use_ccache()
    # Imported only now: CUDA_HOME / TORCH_CUDA_ARCH_LIST above are read at import time.
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    _quiet_ninja()
    sources = ["csrc/ops.cpp", "csrc/autograd.cpp", "csrc/autocast.cpp", *_sources("csrc/cpu/*.cpp")]
    # -g0: Python's CFLAGS ask for debug info, which more than doubled the compile time of a source
    # here (autocast.cpp: 74-110 s with -g, 48 s without, on the 2-core box) and made a 16 MB library
    cxx_flags = ["-O3", "-fvisibility=hidden", *([] if _env_flag("VGANZOO_BUILD_DEBUG") else ["-g0"])]
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
        cutlass_include = _find_cutlass()
        if cutlass_include is not None:
            sources += _cutlass_sources()
            macros.append(("VGANZOO_WITH_CUTLASS", None))
            # nvcc only: no C++ source includes CUTLASS (the path is in the flags, so in the fingerprint)
            nvcc_flags.append(f"-I{cutlass_include}")
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
    build_ext = _build_ext_class(BuildExtension.with_options(use_ninja=True), with_cuda)
    return [ext], {"build_ext": build_ext}


ext_modules, cmdclass = _extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
