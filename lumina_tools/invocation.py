"""How a benchmark or script names, re-executes and records itself: always as ``python -m PACKAGE.MODULE``."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib.machinery import ModuleSpec
from typing import TYPE_CHECKING, Any

from lumina_tools import ROOT, ToolError

if TYPE_CHECKING:
    from lumina_audit.signature.pins import Pins

__all__ = ["module_command", "module_name", "reexec_pinned", "run_module", "run_record"]


def module_name(spec: ModuleSpec | None) -> str:
    """The dotted name of a running module, from its ``__spec__`` (``benchmarks.bench_search``, not ``__main__``)."""
    if spec is None or not spec.name:
        raise ToolError("run this as a module from the repository root: python -m benchmarks.NAME or "
                        "python -m scripts.NAME")
    return spec.name


def module_command(spec: ModuleSpec | None) -> list[str]:
    """``[python, -m, MODULE]``: the command that runs the module of ``spec`` again."""
    return [sys.executable, "-m", module_name(spec)]


def reexec_pinned(pins: Pins, argv: Sequence[str], spec: ModuleSpec | None) -> None:
    """Re-execute the module of ``spec`` with ``argv`` under the numerical pins unless already there.

    :func:`lumina_audit.signature.pins.reexec_if_needed` with ``python -m MODULE`` as the entry: the
    working directory stays, and it is the repository root that ``python -m`` started in.
    """
    from lumina_audit.signature.pins import reexec_if_needed

    reexec_if_needed(pins, list(argv), entry=module_command(spec))


def run_module(spec: ModuleSpec | None, args: Sequence[str], env: Mapping[str, str] | None = None,
               prefix: Sequence[str] = (), **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run the module of ``spec`` with ``args`` in a child process from the repository root (text output),
    started behind ``prefix`` when given (an emulator: ``qemu-x86_64 -cpu EPYC-Rome``).

    Paths in ``args`` should be absolute: the child's working directory is the repository root.
    """
    return subprocess.run([*prefix, *module_command(spec), *args], cwd=ROOT,
                          env=dict(env if env is not None else os.environ), text=True, check=False, **kwargs)


def run_record(spec: ModuleSpec | None, argv: Sequence[str]) -> dict[str, Any]:
    """What a result file records of its run: ``command`` (``python -m MODULE ARGS``), UTC ``date``, ``niceness``."""
    return {"command": shlex.join(["python", "-m", module_name(spec), *argv]),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), "niceness": os.nice(0)}
