"""The package layout stays true: one area per folder, imports between areas one way only, through public names.

The walker reads every module's source (imports at any depth, inside functions and
``TYPE_CHECKING`` blocks too), maps each imported ``lumina_audit`` module to its area and
checks the graph of areas: no cycle, and no edge outside :data:`ALLOWED`.

The import rule (``docs/architecture.md``): code outside an area (another area, the package's
``__init__`` and ``__main__``, ``benchmarks/``, ``scripts/`` and what they share, ``lumina_tools/``;
not ``tests/``) imports from it only names in the area's ``__all__``, each one either from the area
package (``from lumina_audit.signature import Pins``) or from a module on the way to where the name
lives, its *home* as the area's ``__init__`` names it (``from lumina_audit.signature.pins import
Pins``). A module may itself be a public name (``from lumina_audit.signature import golden``).
``import lumina_audit.<area>...`` across areas is refused (its attributes cannot be checked).
Conversely every name of an ``__all__`` is used outside its area (or is a console script), so that
an ``__all__`` is exactly the area's surface. No private name (``_x``) is imported from another
module anywhere in the package.

Once, each check runs on a copy with a violation planted, to show that it catches one.
"""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
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


# --------------------------------------------------------------------------- the public surface

#: Code outside the package that may import only public names (``tests/`` may import anything): the benchmarks,
#: the scripts and what they share (``lumina_tools``).
CONSUMERS = ("benchmarks", "scripts", "lumina_tools")


@dataclass(frozen=True)
class Public:
    """One name of an area's ``__all__``: where it lives (its home module) and whether it is that module."""

    home: str
    is_module: bool


def _is_module(dotted: str, root: Path) -> bool:
    parts = dotted.split(".")[1:]
    return bool(parts) and ((root.joinpath(*parts).with_suffix(".py")).is_file()
                            or (root.joinpath(*parts) / "__init__.py").is_file())


def _init_tree(root: Path, area: str) -> ast.Module:
    return ast.parse((root / area / "__init__.py").read_text(encoding="utf-8"))


def _all_of(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return []


def _areas(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if (p / "__init__.py").is_file() and not p.name.startswith("_"))


def surface(root: Path) -> dict[str, dict[str, Public]]:
    """``area -> name -> Public`` for every name of every area's ``__all__``, homes read from the ``__init__``'s
    imports (its ``TYPE_CHECKING`` block, or the imports it runs); a name the ``__init__`` does not import has
    the home ``?``."""
    out: dict[str, dict[str, Public]] = {}
    for area in _areas(root):
        tree, package = _init_tree(root, area), f"{root.name}.{area}"
        homes: dict[str, Public] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                module = f"{package}.{node.module}" if node.module else package
                for alias in node.names:
                    sub = f"{module}.{alias.name}"
                    homes[alias.asname or alias.name] = Public(sub, True) if _is_module(sub, root) else Public(
                        module, False)
        out[area] = {name: homes.get(name, Public("?", False)) for name in _all_of(tree)}
    return out


def lazy_map(root: Path, area: str) -> dict[str, Public]:
    """What the area's ``lazy_exports`` call loads for each name (absolute homes)."""
    package = f"{root.name}.{area}"
    for node in ast.walk(_init_tree(root, area)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "lazy_exports":
            names = ast.literal_eval(node.args[1])
            modules: dict[str, str] = next((ast.literal_eval(k.value) for k in node.keywords if k.arg == "modules"), {})
            return {**{n: Public(package + m, False) for n, m in names.items()},
                    **{n: Public(package + m, True) for n, m in modules.items()}}
    return {}


def _consumer_files(root: Path, extra: tuple[Path, ...]) -> Iterator[tuple[Path, str, str | None]]:
    """``(path, module name, area)`` of every file whose imports of an area must be public (area None: outside)."""
    for path in sorted(root.rglob("*.py")):
        name = _module_name(path, root)
        area = _area(name, root)
        yield path, name, None if area == "__main__" else area
    for folder in extra:
        for path in sorted(folder.rglob("*.py")):  # nothing when the folder does not exist
            parts = list(path.relative_to(folder.parent).with_suffix("").parts)
            yield path, ".".join(parts[:-1] if parts[-1] == "__init__" else parts), folder.name


def _from_imports(path: Path, name: str) -> Iterator[tuple[ast.ImportFrom | ast.Import, str]]:
    """Every import statement of the file, with the absolute module a ``from`` import reads (relative resolved)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            yield node, ".".join([*base, *(node.module.split(".") if node.module else [])])
        elif isinstance(node, ast.Import):
            yield node, ""


def surface_violations(root: Path, extra: tuple[Path, ...] = ()) -> list[str]:
    """Every import of a name across areas that the import rule (module docstring) refuses."""
    public = surface(root)
    problems = []
    for path, name, src_area in _consumer_files(root, extra):
        for node, target in _from_imports(path, name):
            where = f"{name}:{node.lineno}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    area = _area(alias.name, root)
                    if area in public and area != src_area:
                        problems.append(f"{where} imports module {alias.name}: import names from the area instead")
                continue
            area = _area(target, root)
            if target == root.name:
                problems += [f"{where} imports the area {a.name} as a module: import its names instead"
                             for a in node.names if a.name in public]
            if area not in public or area == src_area:
                continue
            for alias in node.names:
                found = public[area].get(alias.name)
                if found is None:
                    problems.append(f"{where} imports {alias.name} from {target}: not in {area}'s __all__")
                elif not (found.home == target or found.home.startswith(target + ".")) or (
                        found.is_module and found.home == target):
                    problems.append(f"{where} imports {alias.name} from {target}: its home is {found.home}; import "
                                    f"it from {root.name}.{area} or from a module on the way there")
    return problems


def unused_public_names(root: Path, extra: tuple[Path, ...] = (), entry_points: tuple[str, ...] = ()) -> list[str]:
    """Names of an area's ``__all__`` that nothing outside the area imports (nor a console script names)."""
    used = {(e.split(":")[0], e.split(":")[1]) for e in entry_points}
    for path, name, src_area in _consumer_files(root, extra):
        for node, target in _from_imports(path, name):
            if isinstance(node, ast.ImportFrom) and _area(target, root) not in (None, src_area):
                used.update((f"{root.name}.{_area(target, root)}", a.name) for a in node.names)
    return [f"{root.name}.{area}.{n}" for area, names in surface(root).items() for n in names
            if (f"{root.name}.{area}", n) not in used]


def private_imports(root: Path) -> list[str]:
    """Imports of a private name (``_x``) from another module of the package (a private submodule of one's own
    package, ``from . import _common``, is a module, not a name)."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        name = _module_name(path, root)
        for node, target in _from_imports(path, name):
            if not isinstance(node, ast.ImportFrom) or target.split(".")[0] != root.name or target == name:
                continue
            problems += [f"{name}:{node.lineno} imports {a.name} from {target}" for a in node.names
                         if a.name.startswith("_") and not a.name.startswith("__")
                         and not _is_module(f"{target}.{a.name}", root)]
    return problems


def _entry_points() -> tuple[str, ...]:
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return tuple(doc["project"].get("scripts", {}).values())


def test_imports_across_areas_name_public_names_only() -> None:
    extra = tuple(ROOT / c for c in CONSUMERS)
    assert surface_violations(PACKAGE, extra) == []
    assert unused_public_names(PACKAGE, extra, _entry_points()) == []
    assert private_imports(PACKAGE) == []


def test_each_public_name_loads_from_its_home() -> None:
    """The lazy map (what runs) and the ``__init__``'s imports (what mypy and the checks read) agree, name by name;
    no public name is private, and none loaded lazily is a submodule's name unless it is that submodule (once the
    submodule is imported, the package's attribute would be the module). ``cli`` binds its one name at import."""
    for area, names in surface(PACKAGE).items():
        assert not [n for n in names if n.startswith("_")], area
        module = importlib.import_module(f"lumina_audit.{area}")
        lazy = lazy_map(PACKAGE, area)
        for name, public in names.items():
            assert public.home != "?", f"lumina_audit.{area}.{name} is in __all__ but the __init__ does not import it"
            assert not lazy or public.is_module or not _is_module(f"lumina_audit.{area}.{name}", PACKAGE), (
                f"lumina_audit.{area}.{name} names both a submodule and something else")
            value = getattr(module, name)
            home = importlib.import_module(public.home)
            assert value is (home if public.is_module else getattr(home, name)), f"lumina_audit.{area}.{name}"
        assert not lazy or lazy == names, area


def test_the_surface_checks_catch_planted_violations(tmp_path: Path) -> None:
    copy = tmp_path / "lumina_audit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    planted = tmp_path / "benchmarks"
    planted.mkdir()
    extra = (*(ROOT / c for c in CONSUMERS), planted)
    assert surface_violations(copy, extra) == [] and private_imports(copy) == []
    pdf = copy / "certificates" / "pdf.py"
    pdf.write_text(pdf.read_text(encoding="utf-8") + "\n\ndef _planted() -> None:\n"
                   "    from ..evidence.merkle import leaf_hash\n"  # not in evidence's __all__
                   "    from ..signature.space import STATS\n"  # public, but its home is signature.methods.gradstats
                   "    import lumina_audit.signature.pins\n"  # a module import across areas
                   "    from ..attribution.store import _HEX64\n", encoding="utf-8")  # a private name
    (planted / "bench_planted.py").write_text("from lumina_audit.attribution.numeric import fsum\n", encoding="utf-8")
    found = surface_violations(copy, extra)
    assert [p.split(" ", 1)[1] for p in found if p.startswith("lumina_audit.certificates.pdf:")] == [
        "imports leaf_hash from lumina_audit.evidence.merkle: not in evidence's __all__",
        "imports STATS from lumina_audit.signature.space: its home is lumina_audit.signature.methods.gradstats; "
        "import it from lumina_audit.signature or from a module on the way there",
        "imports module lumina_audit.signature.pins: import names from the area instead",
        "imports _HEX64 from lumina_audit.attribution.store: not in attribution's __all__"]
    assert found[-1] == ("benchmarks.bench_planted:1 imports fsum from lumina_audit.attribution.numeric: not in "
                         "attribution's __all__")
    assert [p.split(":", 1)[0] for p in private_imports(copy)] == ["lumina_audit.certificates.pdf"]
    assert unused_public_names(copy, extra, _entry_points()) == []
    init = copy / "runner" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8").replace('__all__ = [', '__all__ = [\n    "extract_plan",'),
                    encoding="utf-8")
    assert unused_public_names(copy, extra, _entry_points()) == ["lumina_audit.runner.extract_plan"]


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
