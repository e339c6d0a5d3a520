"""``lumina-audit calibration``: read calibration files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ._common import JsonOpt, echo

__all__ = ["calibration_app", "calibration_show"]

calibration_app = typer.Typer(no_args_is_help=True, help="Read calibration files.")


@calibration_app.command("show", epilog="Example: lumina-audit calibration show work/demo/out/calibration-gradproj.zip")
def calibration_show(
    calibration: Annotated[Path, typer.Argument(help="Calibration file (version 3: .zip archive; 1 and 2: JSON).")],
    as_json: JsonOpt = False,
) -> None:
    """Print a calibration. Version 3 (likelihood ratios): the proposition, C, N, P, settings, and per
    channel the model, bounds, trial counts and the validation figures overall and per transform.
    Versions 1 and 2: per channel the noise floor (mu, sigma, k, tau) and its error rates. --json: the
    document (the arrays only described) and its sha256.
    """
    from ..attribution.reports import read_calibration
    from ..attribution.summary import calibration_blocks
    from .report import print_blocks

    doc, digest = read_calibration(calibration)
    if as_json:
        echo(json.dumps(doc | {"sha256": digest}, indent=1))
        return
    print_blocks(calibration_blocks(doc, digest, source=str(calibration)))
