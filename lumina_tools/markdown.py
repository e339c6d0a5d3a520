"""Markdown of the result files and printed tables: tables, number cells, the header of a run."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["gib", "md_table", "num", "pct", "run_header"]


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> list[str]:
    """A GitHub Markdown table; ``align`` is one of ``l``/``r`` per column (default: first left, rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    if len(align) != len(header) or any(len(r) != len(header) for r in rows):
        raise ValueError(f"a table of {len(header)} columns needs as many cells per row and alignments")
    rule = ["---" if a == "l" else "---:" for a in align]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |",
            *("| " + " | ".join(r) + " |" for r in rows)]


def pct(x: float | None) -> str:
    """A share as a whole percentage; ``-`` for none."""
    return "-" if x is None else f"{100 * x:.0f}%"


def num(x: float | None, digits: int = 3) -> str:
    """A number with ``digits`` decimals; ``-`` for none or a non-finite float."""
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def gib(n: float) -> str:
    """``n`` bytes in GiB, two decimals."""
    return f"{n / 2**30:.2f}"


def run_header(doc: Mapping[str, Any]) -> list[str]:
    """The lines every result file opens with: its command, date and run time, working tree and versions.

    ``doc`` holds ``command``, ``niceness``, ``date`` (:func:`lumina_tools.invocation.run_record`),
    ``run_seconds``, ``git`` (:func:`lumina_tools.environment.git_state`) and ``versions``.
    """
    git = doc["git"]
    commit = f"`{git['commit'][:12]}`" if git.get("commit") else "unknown"
    n = git["changed_files"]
    listed = ", listed in the JSON" if "changed" in git else ""
    tree = f"dirty ({n} changed or new file(s){listed})" if n else "clean"
    versions = ", ".join(f"{k} {v}" for k, v in doc["versions"].items())
    return [f"- Command: `{doc['command'].strip()}` (niceness {doc['niceness']}; re-executed under the numerical "
            "pins, 1 thread)",
            f"- Date: {doc['date']}; run time {doc['run_seconds'] / 60:.1f} min on this project's 2-core machine "
            "(shared with other jobs, so times are indicative)",
            f"- Working tree: commit {commit}, {tree}; {versions}"]
