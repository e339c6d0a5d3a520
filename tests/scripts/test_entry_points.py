"""Benchmarks and scripts are packages run as ``python -m benchmarks.NAME`` / ``python -m scripts.NAME``.

No module of theirs, of ``lumina_tools`` or of the tests puts a folder on the import path; every module
imports by its dotted name; every runnable one states its ``python -m`` command; the Makefile and the
shell scripts run them that way; and the evidence package neither imports them nor ships them.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import re
import tomllib
from pathlib import Path

import pytest

from ..conftest import ROOT

PACKAGES = ("benchmarks", "scripts")
#: Writing to the import path, in any form (assembled here so that this file does not match itself).
PATH_EDIT = re.compile("sys" + r"\.path\s*(\.\s*(insert|append|extend)\b|\[[^\]]*\]\s*=|\+=|=[^=])")
#: A benchmark or script run as a file.
AS_FILE = re.compile(r"python3?\s+(benchmarks|scripts)/\w+\.py")


def _modules() -> list[str]:
    return sorted(f"{pkg}.{p.stem}" for pkg in PACKAGES for p in (ROOT / pkg).glob("*.py") if p.stem != "__init__")


def _sources(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (ROOT / f).rglob("*.py") if "__pycache__" not in p.parts)


def test_nothing_edits_the_import_path() -> None:
    found = [f"{p.relative_to(ROOT)}:{n}" for p in _sources(*PACKAGES, "lumina_tools", "tests", "lumina_audit")
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if PATH_EDIT.search(line)]
    assert found == []


def test_both_folders_are_packages() -> None:
    for pkg in (*PACKAGES, "lumina_tools"):
        assert (ROOT / pkg / "__init__.py").is_file(), pkg


@pytest.mark.parametrize("name", _modules())
def test_every_module_imports_by_its_dotted_name(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__name__ == name and Path(module.__file__ or "").is_relative_to(ROOT)


@pytest.mark.parametrize("name", _modules())
def test_every_runnable_module_states_its_command(name: str) -> None:
    path = ROOT / (name.replace(".", "/") + ".py")
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    runnable = any(isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body)
    doc = ast.get_docstring(tree) or ""
    if runnable:
        assert f"python -m {name}" in doc, f"{name}: its docstring does not give `python -m {name}`"
    assert not AS_FILE.search(source), f"{name} names a benchmark or script run as a file"


def test_make_and_the_shell_scripts_run_modules() -> None:
    for path in (ROOT / "Makefile", ROOT / ".ci" / "run", *sorted((ROOT / "scripts").glob("*.sh"))):
        text = path.read_text(encoding="utf-8")
        assert not AS_FILE.search(text) and not re.search(r"(python|FULL\"?)\s+\S*(benchmarks|scripts)/\w+\.py",
                                                          text), path
    make = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "$(BIN)/python -m scripts.demo" in make and "$(BIN)/python -m benchmarks.bench_signature" in make


def test_the_evidence_package_neither_imports_nor_ships_them() -> None:
    tops = {*PACKAGES, "lumina_tools"}
    for path in _sources("lumina_audit"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not {n.split(".")[0] for n in names} & tops, f"{path.relative_to(ROOT)}:{node.lineno}"
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert include == ["lumina_audit*"]
    assert not any(fnmatch.fnmatchcase(top, pattern) for top in tops for pattern in include)
