"""What the benchmarks (``benchmarks/``) and the scripts (``scripts/``) share; not part of the wheel.

``benchmarks`` and ``scripts`` are packages, run as modules from the repository root::

    python -m benchmarks.bench_search --max 100000
    python -m scripts.demo

(``.venv/bin/python -m ...`` outside the virtual environment). Nothing puts a folder on ``sys.path``:
the repository root is there because ``python -m`` starts in it, and the tests find these packages
the same way. ``lumina_audit`` (the evidence package, the only one ``pyproject.toml`` ships) never
imports anything from here.

- :mod:`lumina_tools.files`: the repository's folders and checkpoints, digest files, file SHA-256,
  work folders that may be emptied, paths as shown in reports;
- :mod:`lumina_tools.environment`: Debian packages installed on demand, the git state, versions,
  ``/proc/self/status`` figures and the resident-memory high-water mark;
- :mod:`lumina_tools.invocation`: a module's own ``python -m`` command (to re-execute itself under
  the numerical pins, or to start a child), and the record of a run (command, date, niceness);
- :mod:`lumina_tools.markdown`: Markdown tables, number cells and the header of a result file;
- :mod:`lumina_tools.songs`: the project's seeded scores rendered to audio.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ROOT", "ToolError"]

#: The repository root.
ROOT = Path(__file__).resolve().parents[1]


class ToolError(Exception):
    """A refusal of a benchmark or script (bad option, missing input or package); printed as one line."""
