"""Build script for the compiled extensions ``vganzoo._C`` and ``vganzoo._C_cuda`` (metadata lives in
pyproject.toml).

* ``vganzoo._C``: every operator's schema, the CPU kernels, autograd and autocast (csrc/ops.cpp,
  csrc/autograd.cpp, csrc/autocast.cpp, csrc/cpu/*.cpp); always built.
* ``vganzoo._C_cuda``: the CUDA kernels (csrc/cuda/*.cu), registered into the same operators; built when
  the installed torch is a CUDA build and either a GPU is visible or ``FORCE_CUDA=1`` is set (compile-only
  CI and wheel machines). A separate library, so a CUDA build's CPU operators load without a GPU and a
  CPU-only torch never loads CUDA code.
* ``vganzoo/_build_info.py`` (not in git) is written beside them: the torch, CUDA, C++ ABI and GPU
  architectures they were built for, which the loader (vganzoo/ops/_ext.py) checks against the running
  torch before loading them.
* The version is ``vganzoo/_version.py``'s, plus a local tag from ``VGANZOO_LOCAL_VERSION`` when set:
  ``auto`` names the torch and CUDA the wheel is built for (``0.1.0+torch2.13.cpu``,
  ``0.1.0+torch2.14.cu130``: one wheel per torch minor and CUDA, .ci/build_wheels.sh), anything else
  is used as given. ``VGANZOO_WHEEL_INDEX`` (the find-links folder or URL the wheel is published to) is
  recorded in the build info, so a mismatch message can name the command that fetches the right wheel.
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

Install: ``pip install --no-build-isolation -e .`` or ``python setup.py build_ext --inplace``; wheels:
``bash .ci/build_wheels.sh OUT_DIR``.
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
VERSION_FILE = os.path.join(ROOT, "vganzoo", "_version.py")
BUILD_INFO_NAME = "_build_info.py"
# argument checks and shape rules (csrc/common.h) that both devices' kernels call: compiled into both
# libraries, as neither exports symbols to the other (-fvisibility=hidden)
SHARED_SOURCES = ["csrc/cpu/checks.cpp"]
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


def _fingerprint(ext) -> str:
    """What a build of ``ext`` depends on: csrc/'s own files and every folder under csrc/ holding one of its
    sources (so a CUDA-only change keeps the CPU build), the flags, torch, Python, CUDA."""
    import torch

    csrc = os.path.join(ROOT, "csrc")
    folders = {os.path.dirname(os.path.join(ROOT, source)) for source in ext.sources} - {csrc}
    files = set(glob.glob(os.path.join(csrc, "*")))  # its own files only: csrc/cuda/ is not _C's
    for folder in folders:
        files.update(glob.glob(os.path.join(folder, "**", "*"), recursive=True))
    digest = hashlib.sha256()
    for path in sorted(files):
        if os.path.isfile(path):
            digest.update(os.path.relpath(path, ROOT).encode() + b"\0")
            digest.update(_file_digest(path))
    facts = [
        ext.name,
        torch.__version__,
        str(torch.version.cuda),
        sysconfig.get_config_var("EXT_SUFFIX") or "",
        repr(sorted(ext.sources)),
        repr(ext.extra_compile_args),
        repr(ext.define_macros),
        *(f"{k}={os.environ.get(k, '')}" for k in BUILD_ENV),
    ]
    cutlass = _cutlass_include(ext)
    if cutlass is not None:  # the headers at one path may be replaced by another release, or patched
        facts.append(f"cutlass={_cutlass_version(cutlass)} {_tree_digest(cutlass)}")
    digest.update("\n".join(facts).encode())
    return digest.hexdigest()[:20]


def _file_digest(path: str) -> bytes:
    """sha256 of a regular file's contents, read 1 MiB at a time (constant memory for any size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def _tree_digest(folder: str) -> str:
    """sha256 over the path and contents of every regular file under ``folder``, a symlinked file's
    target included (a symlink farm's headers count); FIFOs, devices and symlinked folders are not
    read (CUTLASS: 27 MB, well under a second)."""
    digest = hashlib.sha256()
    for base, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(base, name)
            if os.path.isfile(path):  # regular files only (after links): never blocks on a FIFO
                digest.update(os.path.relpath(path, folder).encode() + b"\0")
                digest.update(_file_digest(path))
    return digest.hexdigest()


def _cutlass_version(include: str) -> str | None:
    """CUTLASS's version ("4.2.0") from ``include``/cutlass/version.h's ``#define CUTLASS_MAJOR`` etc.
    lines, or None when it is not a regular file or they are not there (read at most 1 MiB)."""
    path = os.path.join(include, "cutlass", "version.h")
    if not os.path.isfile(path):  # a FIFO or a device would block or never end
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(1 << 20)
    except OSError:
        return None
    parts = [
        re.search(rf"^[ \t]*#[ \t]*define[ \t]+CUTLASS_{key}[ \t]+(\d+)", text, re.M)
        for key in ("MAJOR", "MINOR", "PATCH")
    ]
    return ".".join(m.group(1) for m in parts) if all(parts) else None


def _cutlass_include(ext) -> str | None:
    """The CUTLASS include folder in ``ext``'s nvcc flags (see _find_cutlass), or None."""
    flags = ext.extra_compile_args.get("nvcc", []) if isinstance(ext.extra_compile_args, dict) else []
    for flag in flags:
        if flag.startswith("-I") and os.path.isfile(os.path.join(flag[2:], "cutlass", "cutlass.h")):
            return flag[2:]
    return None


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


def _is_cuda(ext) -> bool:
    return any(source.endswith(".cu") for source in ext.sources)


def _build_info(with_cuda: bool, version: str, cutlass: str | None = None) -> str:
    """The text of vganzoo/_build_info.py: what the extensions were built for (read by vganzoo/ops/_ext.py
    before it loads them)."""
    import torch

    facts = {
        "VERSION": version,
        "TORCH_VERSION": torch.__version__,
        "CUDA_VERSION": torch.version.cuda,  # torch's (None: a CPU-only torch), even without _C_cuda
        "CXX11_ABI": bool(torch._C._GLIBCXX_USE_CXX11_ABI),
        "CUDA_ARCHS": os.environ.get("TORCH_CUDA_ARCH_LIST") if with_cuda else None,
        "CUTLASS_VERSION": cutlass if with_cuda else None,  # the CUTLASS kernels' headers (None: not built)
        "EXTENSIONS": ("_C", "_C_cuda") if with_cuda else ("_C",),
        "WHEEL_INDEX": os.environ.get("VGANZOO_WHEEL_INDEX") or None,
    }
    lines = [
        "# Written by setup.py when vganzoo's compiled extensions were built (not in git): what they were",
        "# built for. vganzoo/ops/_ext.py compares it with the running torch before loading them.",
        *(f"{name} = {value!r}" for name, value in facts.items()),
    ]
    return "\n".join(lines) + "\n"


def _build_ext_class(base, version: str):
    """``base`` (torch's BuildExtension) that reuses a kept build with the same fingerprint and writes
    vganzoo/_build_info.py beside the extensions."""

    class ReusingBuildExtension(base):
        def build_extension(self, ext) -> None:
            target = self.get_ext_fullpath(ext.name)
            kept = os.path.join(CACHE_DIR, _fingerprint(ext), os.path.basename(target))
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            if os.path.isfile(kept):
                _log(f"reusing the compiled {ext.name} {os.path.relpath(kept, ROOT)} (sources unchanged)")
                shutil.copy2(kept, target)
                return
            jobs = os.environ.get("MAX_JOBS")
            how = ", through ccache" if _CCACHE else ""
            took = "several minutes per source" if _is_cuda(ext) else "about a minute per source per core"
            _log(f"compiling {ext.name}: {len(ext.sources)} sources, {jobs} at a time{how} ({took})")
            super().build_extension(ext)
            os.makedirs(os.path.dirname(kept), exist_ok=True)
            shutil.copy2(target, kept + ".part")
            os.replace(kept + ".part", kept)

        def run(self) -> None:
            super().run()
            if not self.extensions:
                return
            cutlass = next((c for c in map(_cutlass_include, self.extensions) if c is not None), None)
            cutlass_version = (_cutlass_version(cutlass) or "unknown") if cutlass is not None else None
            text = _build_info(any(_is_cuda(ext) for ext in self.extensions), version, cutlass_version)
            # beside the built extensions: build/lib* for a wheel, and the source tree when in place
            # (setuptools builds in build/lib* and then copies in place, as for an editable install)
            folders = {os.path.dirname(self.get_ext_fullpath(self.extensions[0].name))}
            if self.inplace:
                self.inplace = 0
                folders.add(os.path.dirname(self.get_ext_fullpath(self.extensions[0].name)))
                self.inplace = 1
            for folder in folders:
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, BUILD_INFO_NAME), "w") as handle:
                    handle.write(text)

    return ReusingBuildExtension


_CCACHE = False


def _cxx_flags() -> list[str]:
    # -g0: Python's CFLAGS ask for debug info, which more than doubled the compile time of a source
    # here (autocast.cpp: 74-110 s with -g, 48 s without, on the 2-core box) and made a 16 MB library
    return ["-O3", "-fvisibility=hidden", *([] if _env_flag("VGANZOO_BUILD_DEBUG") else ["-g0"])]


def _cpu_extension(CppExtension):
    """``vganzoo._C``: the operators' schemas, autograd, autocast and the CPU kernels."""
    sources = ["csrc/ops.cpp", "csrc/autograd.cpp", "csrc/autocast.cpp", *_sources("csrc/cpu/*.cpp")]
    return CppExtension(
        "vganzoo._C",
        sources,
        include_dirs=[os.path.join(ROOT, "csrc")],
        extra_compile_args={"cxx": _cxx_flags()},
    )


def _cuda_extension(CUDAExtension):
    """``vganzoo._C_cuda``: the CUDA kernels, registered into ``vganzoo._C``'s operators."""
    sources = [*SHARED_SOURCES, *_sources("csrc/cuda/*.cpp"), *_sources("csrc/cuda/*.cu")]
    macros = [("VGANZOO_WITH_CUDA", None)]
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
    return CUDAExtension(
        "vganzoo._C_cuda",
        sources,
        include_dirs=[os.path.join(ROOT, "csrc")],
        define_macros=macros,
        extra_compile_args={"cxx": _cxx_flags(), "nvcc": nvcc_flags},
    )


def _extensions(version: str) -> tuple[list, dict]:
    global _CCACHE
    if _env_flag("VGANZOO_SKIP_EXT"):
        return [], {}
    with_cuda = _want_cuda()
    _parallel_jobs()
    _CCACHE = _use_ccache()
    # Imported only now: CUDA_HOME / TORCH_CUDA_ARCH_LIST above are read at import time.
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    _quiet_ninja()
    extensions = [_cpu_extension(CppExtension)]
    if with_cuda:
        extensions.append(_cuda_extension(CUDAExtension))
    build_ext = _build_ext_class(BuildExtension.with_options(use_ninja=True), version)
    return extensions, {"build_ext": build_ext}


def _local_version_tag() -> str:
    """``torch2.13.cpu`` / ``torch2.14.cu130``: the torch minor release and CUDA a wheel is built for."""
    import torch

    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    if torch.version.cuda is None:
        return f"torch{major}.{minor}.cpu"
    if not _want_cuda():
        raise RuntimeError(
            "VGANZOO_LOCAL_VERSION=auto with a CUDA build of torch names a CUDA wheel, but the CUDA kernels "
            "would not be built here (no GPU visible): set FORCE_CUDA=1"
        )
    return f"torch{major}.{minor}.cu{torch.version.cuda.replace('.', '')}"


def _version() -> str:
    """vganzoo/_version.py's version, plus the local tag ``VGANZOO_LOCAL_VERSION`` asks for (``auto``:
    the torch and CUDA this build is for)."""
    with open(VERSION_FILE) as handle:
        base = re.search(r'^__version__ = "([^"]+)"', handle.read(), re.M).group(1)
    local = os.environ.get("VGANZOO_LOCAL_VERSION", "").strip()
    if not local:
        return base
    if _env_flag("VGANZOO_SKIP_EXT"):
        raise RuntimeError("VGANZOO_LOCAL_VERSION names a compiled build, but VGANZOO_SKIP_EXT=1 builds none")
    if local == "auto":
        local = _local_version_tag()
    if not re.fullmatch(r"[a-z0-9]+(\.[a-z0-9]+)*", local):
        raise RuntimeError(f"VGANZOO_LOCAL_VERSION={local!r} is not a PEP 440 local tag (e.g. torch2.13.cpu)")
    return f"{base}+{local}"


VERSION = _version()
ext_modules, cmdclass = _extensions(VERSION)
setup(version=VERSION, ext_modules=ext_modules, cmdclass=cmdclass)
