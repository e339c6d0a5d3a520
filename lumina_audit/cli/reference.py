"""The CLI reference ``docs/cli.md``, generated from the commands themselves.

    python -m lumina_audit.cli.reference docs/cli.md      (``make cli-docs``)

It is what typer's generator writes (``python -m typer lumina_audit.cli.main utils docs --name
lumina-audit``), less the hidden commands: the deprecated spellings (:mod:`._grammar`) are not part
of the reference. ``tests/cli/test_grammar.py`` regenerates it and fails when the committed file differs.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import typer

from .._internal.fileio import write_file

__all__ = ["REGENERATE", "render"]

#: The command that rewrites ``docs/cli.md``.
REGENERATE = "python -m lumina_audit.cli.reference docs/cli.md"

_HEADER = f"<!-- Generated from the commands by `make cli-docs` ({REGENERATE}); do not edit. -->\n\n"


_Command = typer.core.TyperCommand | typer.core.TyperGroup


def _visible(command: _Command) -> _Command:
    """COMMAND, and in a group every command but the hidden ones (a copy: the app is not changed)."""
    if not isinstance(command, typer.core.TyperGroup):
        return command
    shown = copy.copy(command)
    shown.commands = {name: _visible(sub) for name, sub in command.commands.items()  # type: ignore[arg-type]
                      if not sub.hidden}
    return shown


def render() -> str:
    """The Markdown of ``docs/cli.md``."""
    from typer.cli import get_docs_for_click
    from typer.core import MARKUP_MODE_KEY
    from typer.main import get_command

    from .main import app

    root = _visible(get_command(app))  # type: ignore[arg-type]
    ctx = typer.Context(root, info_name="lumina-audit", obj={MARKUP_MODE_KEY: app.rich_markup_mode})
    return _HEADER + get_docs_for_click(obj=root, ctx=ctx, name="lumina-audit").strip() + "\n"


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit(f"usage: {REGENERATE}")
    write_file(Path(argv[0]), render().encode("utf-8"), replace=True)
    print(f"wrote {argv[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
