"""``lumina-audit manifest run``: a signed manifest in, outputs and a ledger record out (registered by :mod:`.main`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import (
    JsonOpt,
    PassEnvOpt,
    TrustOpt,
    echo,
    err,
    private_key,
    trust_store,
)

if TYPE_CHECKING:
    from ..runner.base import Progress

__all__ = ["RUN_EPILOG", "RUN_OPTIONS_WITH_VALUES", "run"]

RUN_EPILOG = ("Example: lumina-audit manifest run manifests/demo/extract.yaml --trust work/trust "
              "--key work/keys/operator.key")

#: The options of :func:`run` that take a value: :func:`lumina_audit.cli.main._pins_from_argv` skips them to find
#: the manifest before torch starts (a test checks this against the command).
RUN_OPTIONS_WITH_VALUES = frozenset({"--trust", "--key", "--passphrase-env"})


def run(
    manifest: Annotated[Path, typer.Argument(help="Signed manifest YAML.")],
    trust: TrustOpt,
    key: Annotated[Path, typer.Option("--key", help="Operator key that signs the ledger record.")],
    passphrase_env: PassEnvOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a signed manifest: verify it, compute, write outputs atomically, record the run in the ledger.

    Progress goes to stderr: a bar on a terminal, or with --json one JSON object per line.
    """
    from ..runner.run import run_manifest

    progress = _Progress(as_json)
    try:
        result = run_manifest(manifest, trust_store(trust), private_key(key, passphrase_env), progress.update)
    finally:
        progress.close()
    certificates = [{"path": str(c.path), "record": c.seq, "signed_pdf_sha256": c.signed_sha256}
                    for c in result.certificates]
    doc = {"manifest_digest": result.manifest_digest, "ledger": str(result.ledger), "record": result.seq,
           "outputs": [str(p) for p in result.outputs], **result.summary, "certificates": certificates}
    if as_json:
        echo(json.dumps(doc, indent=1))
        return
    s = result.summary
    echo(f"run recorded as ledger record {result.seq} in {result.ledger}")
    for p in result.outputs:
        echo(f"  output {p}")
    for c in certificates:
        echo(f"  certificate {c['path']} (ledger record {c['record']})")
    if "songs" in s:
        echo(f"  {s['songs']} song(s), {s['chunks']} chunk(s)")
        skipped = s.get("skipped") or []
        if skipped:
            echo(f"  skipped {len(skipped)} bad input(s), listed in the ledger record:")
        for k in skipped:
            echo(f"    {k['reason']}" if k["reason"].startswith(k["path"]) else f"    {k['path']}: {k['reason']}")
    elif "controls" in s and "P_cllr" in s:  # lumina-attribution-v2
        echo(f"  {s['controls']} control(s), {s['positives']} positive(s)"
             + (f", {s['negatives']} negative(s)" if s.get("negatives") else "")
             + f" against {s['catalog_songs']} catalog song(s), proposition {s['proposition']}: cross-validated "
             f"Cllr P {s['P_cllr']:.3f}, M {s['M_cllr']:.3f}; `lumina-audit calibration show` prints the validation")
    elif "controls" in s:
        echo(f"  {s['controls']} control(s) against {s['catalog_songs']} catalog song(s): tau P {s['P_tau']:.6g}, "
             f"M {s['M_tau']:.6g}")
    elif "queries" in s:
        echo(f"  {s['queries']} query(ies); `lumina-audit report show REPORT` prints the verdicts")
    echo(f"  signature space {str(s.get('signature_space_sha256'))[:16]}...")


class _Progress:
    """Progress on stderr: with ``--json`` one JSON object per line; else a rich bar on a terminal, or nothing."""

    def __init__(self, as_json: bool) -> None:
        self._json = as_json
        self._bar: Any = None
        self._task: Any = None

    def update(self, p: Progress) -> None:
        if self._json:
            err(json.dumps(p.as_dict()))
            return
        if not sys.stderr.isatty():
            return
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), console=Console(stderr=True),
                                 transient=True)
            self._bar.start()
            self._task = self._bar.add_task(p.unit, total=p.total)
        self._bar.update(self._task, completed=p.done + p.skipped, total=p.total, description=_line(p))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _line(p: Progress) -> str:
    """``songs 12/200  3.10 songs/s  ETA 0:01:01  2 skipped  song12.wav``."""
    parts = [f"{p.unit} {p.done}/{p.total}"]
    if p.rate is not None:
        parts.append(f"{p.rate:.3g} {p.unit}/s")
    if p.eta_s is not None:
        eta = int(round(p.eta_s))
        parts.append(f"ETA {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}")
    if p.skipped:
        parts.append(f"{p.skipped} skipped")
    return "  ".join([*parts, p.name])
