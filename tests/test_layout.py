"""The package layout stays true: one area per folder, imports between areas one way only.

The walker reads every module's source (imports at any depth, inside functions and
``TYPE_CHECKING`` blocks too), maps each imported ``lumina_audit`` module to its area and
checks the graph of areas: no cycle, and no edge outside :data:`ALLOWED`. Once, it runs on a
copy of the package with a back-import planted, to show that it catches one.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT

PACKAGE = ROOT / "lumina_audit"

#: Which areas each area may import (the lower layers never import the CLI).
ALLOWED: dict[str, set[str]] = {
    "signature": set(),
    "attribution": {"signature"},
    "evidence": {"signature"},
    "customization": {"signature"},
    "certificates": {"signature", "attribution", "evidence"},
    "runner": {"signature", "attribution", "evidence", "certificates", "customization"},
    "cli": {"signature", "attribution", "evidence", "certificates", "runner", "customization"},
}
#: Shared by every area; they import no area.
SHARED = ("_internal", "errors")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, root: Path) -> Iterator[tuple[str, int]]:
    """Every ``lumina_audit`` module ``path`` imports, with its line (relative imports resolved)."""
    name = _module_name(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # ``from lumina_audit.evidence import ledger`` imports a module
                yield f"{target}.{alias.name}", node.lineno


def _area(module: str, root: Path) -> str | None:
    """The area (first component under the package: a subpackage or a top-level module) of ``module``."""
    parts = module.split(".")
    if parts[0] != root.name or len(parts) < 2:
        return None
    name = parts[1]
    return name if (root / name).is_dir() or (root / f"{name}.py").exists() else None


def area_edges(root: Path) -> dict[tuple[str, str], list[str]]:
    """``(from_area, to_area) -> ["module:line imports target", ...]`` over the package at ``root``."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        source = _module_name(path, root)
        src_area = _area(source, root)
        if src_area is None:
            continue
        for target, line in _imports(path, root):
            dst_area = _area(target, root)
            if dst_area is None or dst_area == src_area:
                continue
            edges.setdefault((src_area, dst_area), []).append(f"{source}:{line} imports {target}")
    return edges


def find_cycle(edges: dict[tuple[str, str], list[str]]) -> list[str] | None:
    """One cycle of areas (``[a, b, ..., a]``), or None."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def violations(root: Path) -> list[str]:
    """Every edge the layout forbids, and a cycle if there is one; empty when the layout holds."""
    edges = area_edges(root)
    problems = []
    for (a, b), where in sorted(edges.items()):
        if a in SHARED or a == "__main__":
            if a != "__main__" and b not in SHARED:
                problems.append(f"shared {a} imports area {b}: {where[0]}")
            continue
        if b in SHARED:
            continue
        if b not in ALLOWED.get(a, set()):
            problems.append(f"area {a} may not import area {b}: {where[0]}")
    cycle = find_cycle({k: v for k, v in edges.items() if k[0] != "__main__"})
    if cycle is not None:
        problems.append("import cycle between areas: " + " -> ".join(cycle))
    return problems


def test_areas_import_one_way_only() -> None:
    assert violations(PACKAGE) == []


def test_the_check_catches_a_planted_back_import(tmp_path: Path) -> None:
    copy = tmp_path / "lumina_audit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert violations(copy) == []
    pins = copy / "signature" / "pins.py"
    pins.write_text(pins.read_text(encoding="utf-8") + "\n\ndef _planted() -> None:\n    from ..cli import main\n",
                    encoding="utf-8")
    found = violations(copy)
    assert any(p.startswith("area signature may not import area cli: lumina_audit.signature.pins:") for p in found)
    assert any(p.startswith("import cycle between areas:") and "signature" in p and "cli" in p for p in found)


def test_areas_and_module_sizes() -> None:
    areas = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()
                   and not p.name.startswith("_"))
    assert set(ALLOWED) <= set(areas) and len(areas) >= 4, areas
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= 3, top
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {k: v for k, v in sizes.items() if v > 450} == {}


@pytest.mark.parametrize("area", sorted(ALLOWED))
def test_each_area_says_what_it_does_and_has_a_public_surface(area: str) -> None:
    init = PACKAGE / area / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree)
    assert doc and doc.startswith(f"Area ``{area}``: "), doc
    names = [n for n in tree.body if isinstance(n, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)]
    assert names, f"{init} has no __all__"
    import importlib

    module = importlib.import_module(f"lumina_audit.{area}")
    for name in module.__all__:
        assert getattr(module, name) is not None, f"lumina_audit.{area}.{name}"


def test_importing_the_light_modules_does_not_import_torch() -> None:
    """The CLI reads pins and manifests before torch may start; these must stay free of it."""
    modules = ["lumina_audit", "lumina_audit.signature", "lumina_audit.signature.pins",
               "lumina_audit.signature.space", "lumina_audit.signature.methods", "lumina_audit.evidence.manifest",
               "lumina_audit.evidence.ledger", "lumina_audit.attribution", "lumina_audit.certificates",
               "lumina_audit.runner", "lumina_audit.cli"]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_the_repository_names_no_path_outside_itself() -> None:
    """The normative texts are docs/spec/; no file points to a folder a clone does not have."""
    out = subprocess.run(["git", "grep", "-l", "-e", "../" + "shared", "--", ".", ":!*.lock"], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert out.returncode in (0, 1), out.stderr
    assert out.stdout.strip() == "", out.stdout
    for name in ("signature-v1.md", "gradproj-v1.md", "attribution-v1.md", "attribution-v2.md"):
        assert (ROOT / "docs" / "spec" / name).is_file(), name
