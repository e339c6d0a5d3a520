"""``lumina-audit report``: read attribution reports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ._common import (
    JsonOpt,
    echo,
)

if TYPE_CHECKING:
    from ..attribution.summary import Block

__all__ = ["print_blocks", "report_app", "report_show"]

report_app = typer.Typer(no_args_is_help=True, help="Read attribution reports.")


def print_blocks(blocks: Sequence[Block]) -> None:
    """Print lines and tables of :mod:`lumina_audit.attribution.summary`, as they are (no markup).

    On a terminal too narrow for a table its cells fold (no figure is cut short); piped or captured,
    the output is as wide as the widest table, so each row stays on one line.
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ..attribution.summary import Table as TextTable

    console = Console(highlight=False, soft_wrap=True)
    tables = []
    for block in blocks:
        if isinstance(block, TextTable):
            table = Table()
            for name, justify in zip(block.columns, block.justify, strict=True):
                table.add_column(Text(name), justify=justify, overflow="fold")  # never cut a figure short
            for row in block.rows:
                table.add_row(*(Text(cell) for cell in row))
            tables.append(table)
    if not console.is_terminal and tables:
        wide = console.options.update_width(100_000)
        console.width = max(console.width, *(console.measure(t, options=wide).maximum for t in tables))
    rendered = iter(tables)
    for block in blocks:
        if isinstance(block, TextTable):
            console.print(Text(block.title))
            console.print(next(rendered))
        else:
            console.print(Text(block))


@report_app.command("show", epilog="Example: lumina-audit report show work/demo/out/reports/query.json")
def report_show(
    report: Annotated[Path, typer.Argument(help="Attribution report (JSON).")],
    as_json: JsonOpt = False,
) -> None:
    """Print a report. Version 3 (likelihood ratios): the propositions, then per channel the listed songs
    with their LR and verbal band, the bounds, the validation and the database-search figure. Versions 1
    and 2: a table per channel of share, similarity, z, above or below the threshold. --json: the document
    and its sha256.
    """
    from rich.console import Console
    from rich.table import Table

    from ..attribution.reports import read_report

    doc, digest = read_report(report)
    if as_json:
        echo(json.dumps(doc | {"sha256": digest}, indent=1))
        return
    if doc["version"] >= 3:
        from ..attribution.summary import report_blocks

        print_blocks(report_blocks(doc, digest, source=str(report)))
        return
    console = Console(highlight=False, soft_wrap=True)  # header lines stay whole in a narrow or piped terminal
    q = doc["query"]
    console.print(f"query {q['song_id']}  (file {q['file_sha256'][:16]}..., PCM {q['pcm_sha256'][:16]}...)")
    console.print(f"report {digest[:16]}...  ledger record {doc['ledger']['record']} of {doc['ledger']['origin']}")
    names = {"P": "P (composition)", "M": "M (production)"}
    for ch in ("P", "M"):
        res = doc["channels"][ch]
        cal = doc["calibration"]["channels"][ch]
        console.print(f"\n{names[ch]}: {res['verdict']}")
        console.print(f"  tau {cal['tau']:.4f} = mu {cal['mu']:.4f} + {cal['k']:g} x sigma {cal['sigma']:.4f}; "
                      f"false-positive rate {cal['false_positive_rate']:.4f}")
        table = Table()
        for col in ("song", "share", "similarity", "z", ""):
            table.add_column(col, justify="left" if col in ("song", "") else "right")
        for e in res["entries"]:
            table.add_row(e["song_id"], f"{e['share']:.4f}", f"{e['similarity']:.4f}", f"{e['z']:.2f}",
                          "above threshold" if e["above_threshold"] else "below threshold")
        console.print(table)
