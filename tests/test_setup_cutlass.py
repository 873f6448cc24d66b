"""setup.py's CUTLASS lookup for the CUDA build (issue 18): CUTLASS_HOME, then third_party/cutlass/include,
then the installed cutlass_library package; VGANZOO_REQUIRE_CUTLASS=1 turns "not found" into an error.
setup.py's functions are loaded without running its module-level build (which would call setup())."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODULE_LEVEL_BUILD = {"_extensions", "setup"}


def _calls_build(node: ast.stmt) -> bool:
    value = getattr(node, "value", None)
    return isinstance(value, ast.Call) and getattr(value.func, "id", None) in MODULE_LEVEL_BUILD


@pytest.fixture
def setup_module(tmp_path, monkeypatch):
    """setup.py's namespace with ROOT at an empty tmp folder and no CUTLASS in the environment."""
    tree = ast.parse((REPO / "setup.py").read_text())
    tree.body = [node for node in tree.body if not _calls_build(node)]
    namespace = {"__file__": str(REPO / "setup.py"), "__name__": "vganzoo_setup_under_test"}
    exec(compile(tree, "setup.py", "exec"), namespace)
    namespace["ROOT"] = str(tmp_path / "repo")
    for name in ("CUTLASS_HOME", "VGANZOO_REQUIRE_CUTLASS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a, **k: None)  # no cutlass_library
    return namespace


def _headers(folder: Path) -> Path:
    (folder / "cutlass").mkdir(parents=True)
    (folder / "cutlass" / "cutlass.h").write_text("// stand-in\n")
    return folder


def test_third_party_copy_is_found(setup_module, tmp_path):
    include = _headers(tmp_path / "repo" / "third_party" / "cutlass" / "include")
    assert setup_module["_find_cutlass"]() == str(include)


def test_cutlass_home_comes_first(setup_module, tmp_path, monkeypatch):
    _headers(tmp_path / "repo" / "third_party" / "cutlass" / "include")
    home = tmp_path / "cutlass-src"
    include = _headers(home / "include")
    monkeypatch.setenv("CUTLASS_HOME", str(home))
    assert setup_module["_find_cutlass"]() == str(include)
    # CUTLASS_HOME may also name the include folder itself
    monkeypatch.setenv("CUTLASS_HOME", str(include))
    assert setup_module["_find_cutlass"]() == str(include)


def test_missing_cutlass_builds_without_it_unless_required(setup_module, monkeypatch, capsys):
    assert setup_module["_find_cutlass"]() is None
    assert "without the CUTLASS kernels" in capsys.readouterr().err
    monkeypatch.setenv("VGANZOO_REQUIRE_CUTLASS", "1")
    with pytest.raises(RuntimeError, match="VGANZOO_REQUIRE_CUTLASS=1 but no CUTLASS headers"):
        setup_module["_find_cutlass"]()


def test_cutlass_sources_are_the_kernel_families(setup_module):
    """One CUTLASS kernel family per source (they compile in parallel), apart from the other CUDA sources."""
    setup_module["ROOT"] = str(REPO)
    sources = [Path(p).name for p in setup_module["_cutlass_sources"]()]
    families = [
        f"{kind}_{dtype}.cu"
        for kind in ("dgrad_strided", "dgrad_unit_stride", "fprop", "wgrad")
        for dtype in ("bf16", "f16", "tf32")
    ]
    assert sorted(sources) == sorted([*families, "conv3d_cutlass_dispatch.cu"])
    assert not set(sources) & {Path(p).name for p in setup_module["_sources"]("csrc/cuda/*.cu")}


def _versioned(folder: Path, major: int, minor: int, patch: int) -> Path:
    _headers(folder)
    numbers = zip(("MAJOR", "MINOR", "PATCH"), (major, minor, patch))
    text = "#pragma once\n" + "".join(f"#define CUTLASS_{k} {v}\n" for k, v in numbers)
    (folder / "cutlass" / "version.h").write_text(text)
    return folder


def test_cutlass_release_is_part_of_the_build_fingerprint(setup_module, tmp_path):
    """A kept build is reused only with the same CUTLASS release at the same path (the path alone is in
    the flags), and _build_info records the release."""
    import types

    include = _versioned(tmp_path / "repo" / "third_party" / "cutlass" / "include", 4, 2, 0)
    ext = types.SimpleNamespace(
        name="vganzoo._C_cuda",
        sources=["csrc/cuda/x.cu"],
        extra_compile_args={"cxx": [], "nvcc": ["-O3", f"-I{include}"]},
        define_macros=[],
    )
    assert setup_module["_cutlass_include"](ext) == str(include)
    assert setup_module["_cutlass_version"](str(include)) == "4.2.0"
    before = setup_module["_fingerprint"](ext)
    assert setup_module["_fingerprint"](ext) == before
    _versioned(include.parent / "new", 4, 3, 0)  # another release copied over the same path
    newer = (include.parent / "new" / "cutlass" / "version.h").read_text()
    (include / "cutlass" / "version.h").write_text(newer)
    assert setup_module["_cutlass_version"](str(include)) == "4.3.0"
    assert setup_module["_fingerprint"](ext) != before
    after_release = setup_module["_fingerprint"](ext)
    (include / "cutlass" / "cutlass.h").write_text("// patched, same version.h\n")
    assert setup_module["_fingerprint"](ext) != after_release
    info = setup_module["_build_info"](True, "0.1", "4.3.0")
    assert "CUTLASS_VERSION = '4.3.0'" in info
    assert "CUTLASS_VERSION = None" in setup_module["_build_info"](False, "0.1", "4.3.0")  # no CUDA build
    no_cutlass = types.SimpleNamespace(**{**vars(ext), "extra_compile_args": {"cxx": [], "nvcc": ["-O3"]}})
    assert setup_module["_cutlass_include"](no_cutlass) is None
    assert setup_module["_cutlass_version"](str(tmp_path)) is None


def test_cutlass_version_and_digest_never_block_and_read_defines_only(setup_module, tmp_path):
    import os
    import threading

    include = _headers(tmp_path / "inc")
    version = include / "cutlass" / "version.h"
    version.write_text(
        "// #define CUTLASS_MAJOR 9\n#define CUTLASS_MAJOR 4\n"
        "# define CUTLASS_MINOR 2\n#define CUTLASS_PATCH 1\n"
    )
    assert setup_module["_cutlass_version"](str(include)) == "4.2.1"  # not the commented-out 9
    version.unlink()
    os.mkfifo(version)  # a FIFO would block open() until a writer comes
    result = {}
    worker = threading.Thread(
        target=lambda: result.update(
            v=setup_module["_cutlass_version"](str(include)), d=setup_module["_tree_digest"](str(include))
        ),
        daemon=True,
    )
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "blocked on a FIFO"
    assert result["v"] is None and len(result["d"]) == 64


def test_tree_digest_follows_symlinked_files(setup_module, tmp_path):
    """A symlink farm (Nix, Spack, stow): patching the target of a linked header changes the digest."""
    real = tmp_path / "store" / "gemm.h"
    real.parent.mkdir()
    real.write_text("// v1\n")
    include = _headers(tmp_path / "farm")
    (include / "cutlass" / "gemm.h").symlink_to(real)
    before = setup_module["_tree_digest"](str(include))
    real.write_text("// v2\n")
    assert setup_module["_tree_digest"](str(include)) != before
