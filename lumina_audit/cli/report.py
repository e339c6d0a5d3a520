"""``lumina-audit report``: read attribution reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ._common import (
    JsonOpt,
    echo,
)

__all__ = ["report_app", "report_show"]

report_app = typer.Typer(no_args_is_help=True, help="Read attribution reports.")


@report_app.command("show", epilog="Example: lumina-audit report show work/demo/out/reports/query.json")
def report_show(
    report: Annotated[Path, typer.Argument(help="Attribution report (JSON).")],
    as_json: JsonOpt = False,
) -> None:
    """Print a report as a table per channel: share, similarity, z, above or below the threshold."""
    from rich.console import Console
    from rich.table import Table

    from ..attribution.reports import read_report

    doc, digest = read_report(report)
    if as_json:
        echo(json.dumps(doc | {"sha256": digest}, indent=1))
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
