"""``lumina-audit run``: a signed manifest in, outputs and a ledger record out (registered by :mod:`.main`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    JsonOpt,
    PassEnvOpt,
    TrustOpt,
    echo,
    private_key,
    trust_store,
)

__all__ = ["run"]


def run(
    manifest: Annotated[Path, typer.Argument(help="Signed manifest YAML.")],
    trust: TrustOpt,
    key: Annotated[Path, typer.Option("--key", help="Operator key that signs the ledger record.")],
    passphrase_env: PassEnvOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a signed manifest: verify it, compute, write outputs atomically, record the run in the ledger."""
    from ..runner.run import run_manifest

    progress = _Progress()
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
    elif "controls" in s:
        echo(f"  {s['controls']} control(s) against {s['catalog_songs']} catalog song(s): tau P {s['P_tau']:.6g}, "
             f"M {s['M_tau']:.6g}")
    elif "queries" in s:
        echo(f"  {s['queries']} query(ies); `lumina-audit report show REPORT` prints the verdicts")
    echo(f"  signature space {str(s.get('signature_space_sha256'))[:16]}...")


class _Progress:
    """A rich progress bar on a terminal; nothing otherwise."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._task: Any = None

    def update(self, name: str, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if self._bar is None:
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("chunks", total=total)
        self._bar.update(self._task, completed=done, description=name)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
