"""The package keeps the layering of the design (../shared/DESIGN.md, mirrored in the README's developer
notes): every import in vganzoo, at module level and inside functions, goes down the layers, never up;
no cycles between units; library code never imports the package root; no private names across units.

The table below is the design's, with the refinements the README documents (convert reads the families'
and detectors' modules it maps files onto; every unit may use the bottom: errors, files, resources, the
version and the registry).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vganzoo"

BOTTOM = {"errors", "files", "resources", "_version", "registry"}  # every unit may use these
ALLOWED: dict[str, set[str]] = {
    "cli": {"*"},  # the top: anything below
    "demo": {"hub", "models", "sampling", "videoio", "metrics", "data"},
    "train": {"hub", "losses", "data", "videoio", "nn", "models"},
    "metrics": {"hub", "nn", "videoio"},
    "convert": {"hub", "models", "metrics"},
    "hub": {"models"},
    "sampling": {"models", "videoio", "nn"},  # nn: CUDA-graph replay of the generator
    "models": {"nn", "losses"},
    "losses": {"nn"},
    "data": {"videoio"},
    "nn": {"ops"},
    "ops": {"_C", "_C_cuda", "_build_info"},  # the compiled extensions and their build record
    "plugins": set(),
    "videoio": set(),
    "registry": set(),  # errors only (checked below: not even the other bottom units)
    "errors": set(),
    "files": set(),
    "resources": set(),
    "_version": set(),
    "_build_info": set(),  # written by setup.py (not in git): what the extensions were built for
}
# Units that may reach only part of another unit: the public types of models, not the families.
PUBLIC_PART = {("hub", "models"): {"vganzoo.models", "vganzoo.models.base"}}
ROOT_ONLY = {"__init__", "__main__"}  # the package root wires the layers; __main__ runs the CLI
PRIVATE_UNITS = ("_version", "_C", "_C_cuda", "_build_info")  # private names that are units of their own


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """Every ``vganzoo...`` module or name imported by ``module`` (module level and in functions)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("vganzoo")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "vganzoo":
                continue
            for alias in node.names:  # `from . import hub` imports the module vganzoo.hub
                found.append((f"{target}.{alias.name}" if node.module is None else target, node.lineno))
                if node.module is not None and alias.name.startswith("_") and alias.name != "__version__":
                    found.append((f"{target}.{alias.name}", node.lineno))  # a private name: checked below
    return found


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _edges() -> list[tuple[str, str, str, int]]:
    modules = _modules()
    return [
        (module, target, str(path), line)
        for module, path in modules.items()
        for target, line in _imports(module, path)
    ]


def test_the_walk_sees_the_package():
    modules = _modules()
    assert {"vganzoo.registry", "vganzoo.hub", "vganzoo.train.trainer", "vganzoo.cli"} <= set(modules)
    edges = _edges()
    assert ("vganzoo.hub.loading", "vganzoo.registry") in {(m, t) for m, t, _, _ in edges}
    assert any(_unit(m) == "cli" and _unit(t) == "hub" for m, t, _, _ in edges)  # imports inside functions


def test_every_unit_is_in_the_table():
    units = {_unit(m) for m in _modules()} - ROOT_ONLY
    assert units <= set(ALLOWED), f"add {sorted(units - set(ALLOWED))} to the layering table"


def test_imports_go_down_the_layers():
    bad = []
    for module, target, path, line in _edges():
        src, dst = _unit(module), _unit(target)
        if src in ROOT_ONLY or src == dst:
            continue
        where = f"{Path(path).relative_to(PACKAGE.parent)}:{line}: {module} imports {target}"
        if dst == "__init__":
            bad.append(f"{where} (the package root hides the dependency: import the unit itself)")
            continue
        if src == "registry":
            if dst != "errors":
                bad.append(f"{where} (the registry imports errors only)")
            continue
        allowed = ALLOWED.get(src, set())
        if "*" in allowed or dst in BOTTOM or dst in allowed:
            part = PUBLIC_PART.get((src, dst))
            if part is not None and not any(target == p or target.startswith(p + ".__") for p in part):
                bad.append(f"{where} (only {sorted(part)} of {dst})")
            continue
        bad.append(f"{where} ({src} may import {sorted(allowed | BOTTOM)})")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_no_private_names_across_units():
    bad = []
    for module, target, path, line in _edges():
        if _unit(module) == _unit(target) or _unit(module) in ROOT_ONLY:
            continue
        private = [p for p in target.split(".")[1:] if p.startswith("_") and p not in PRIVATE_UNITS]
        if private:
            bad.append(f"{Path(path).relative_to(PACKAGE.parent)}:{line}: {module} uses {target}")
    assert not bad, "private names used across units (make them public where they live):\n" + "\n".join(bad)


def test_no_cycles_between_units():
    graph: dict[str, set[str]] = {}
    for module, target, _, _ in _edges():
        src, dst = _unit(module), _unit(target)
        if src != dst and src not in ROOT_ONLY and dst != "__init__":
            graph.setdefault(src, set()).add(dst)
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            assert cycle is None, "import cycle between units: " + " -> ".join(cycle)


@pytest.mark.parametrize(
    "source,expected",
    [
        ("from .. import hub\n", "vganzoo.hub"),
        ("from ..hub import load\n", "vganzoo.hub"),
        ("def f():\n    import vganzoo\n", "vganzoo"),
    ],
)
def test_the_import_reader_resolves_relative_imports(tmp_path, source, expected):
    path = tmp_path / "x.py"
    path.write_text(source)
    assert [t for t, _ in _imports("vganzoo.metrics.x", path)] == [expected]
