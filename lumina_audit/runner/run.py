"""``lumina-audit manifest run``: a signed manifest in, outputs and one ledger record out.

Steps, each of which raises before anything is written:

1. the manifest verifies against the trust file (signed, trusted signers, unchanged) and its
   signers meet the trust file's signing policy (two distinct principals when it states none);
2. the operator's key may sign ledger records (trust file, namespace ``lumina-audit/ledger``);
3. the process runs under the manifest's numerical pins (the CLI re-executes itself under them);
4. outputs: none exists yet, and the ledger records none of them;
5. inputs: each pinned input digest matches before the file is decoded; every file decodes.
   An Extract checks every input cheaply here instead (size, header, pinned digest) and opens
   its journal; it decodes one song at a time in step 7 (:mod:`.extract`);
6. the model: its files' digests match the manifest before anything is unpickled (an Extract's
   workers each load it so);
7. the work runs; outputs are written atomically. An Extract journals each song as it is
   computed, and a run of the same manifest after a crash computes only the songs missing;
8. one ledger record (kind ``run``) with the manifest, its signers and the signing policy they
   met (its SHA-256 and content), inputs, outputs and environment,
   then a signed checkpoint. If the record cannot be written, the outputs of this run are
   removed: the ledger never holds work that did not finish, and no output lacks a record;
9. an Attribute manifest with ``certificates`` then issues one signed PDF per report, each
   its own ledger record (kind ``certificate``), as ``lumina-audit certificate issue`` does.
   The signer's key and certificate were loaded and checked before step 6, so a bad key
   stops the run before any work; a later failure (a timestamp server that does not
   answer) names the reports left without a certificate and the command that issues them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..evidence.dsse import SignatureVerificationError
from ..evidence.keys import key_id
from ..evidence.ledger import LEDGER_NAMESPACE
from ..evidence.manifest import (
    LoadedManifest,
    resolve_inputs,
    verify_manifest,
)
from ..evidence.trust import TrustStore
from . import attribute, calibrate, extract
from .base import (
    Context,
    Plan,
    ProgressFn,
    RunError,
    file_entry,
)
from .journal import journal_path

__all__ = ["RunError", "RunResult", "recorded_outputs", "run_manifest"]


@dataclass(frozen=True)
class RunResult:
    manifest_digest: str
    seq: int
    ledger: Path
    outputs: tuple[Path, ...]
    checkpoint: str
    summary: dict[str, Any]
    certificates: tuple[Any, ...] = ()  #: :class:`~lumina_audit.certificates.issue.Issued`, one per report, when asked


def recorded_outputs(ledger_dir: Path) -> dict[Path, int]:
    """Output paths (resolved) recorded by a ledger, with the sequence number of the latest record."""
    from ..evidence.ledger import Ledger

    if not (ledger_dir / "ledger.json").exists():
        return {}
    out: dict[Path, int] = {}
    for rec in Ledger.open(ledger_dir).records():
        for entry in rec.body.get("outputs", []):
            out[(ledger_dir.parent / str(entry.get("path"))).resolve()] = rec.seq
    return out


def _refuse_existing_outputs(loaded: LoadedManifest) -> None:
    recorded = recorded_outputs(loaded.ledger_dir)
    for name, path in loaded.outputs.items():
        hits = sorted(seq for p, seq in recorded.items() if p == path or path in p.parents)
        if hits:
            left = journal_path(path) if name == "store" and journal_path(path).exists() else None
            raise RunError(f"{path}: output {name!r} is already recorded by ledger record {hits[-1]}; refusing to "
                           "overwrite", hint="name a new output in a new manifest" + (
                               f"; the journal {left} is left from that run and can be removed" if left else ""))
        if path.exists():
            raise RunError(f"{path}: output {name!r} already exists (not recorded by the ledger); refusing to "
                           "overwrite")


def _audio_inputs(loaded: LoadedManifest, config: Any) -> tuple[list[Any], list[Any]]:
    """Resolve the kind's audio inputs and decode them, each digest checked before decoding (step 5).

    A query carried as codes (a generated piece) is read as its codes.
    """
    from .base import load_input

    inputs = resolve_inputs(loaded)
    return inputs, [load_input(i.path, config, i.expected_sha256) for i in inputs]


def run_manifest(manifest_path: Path, trust: TrustStore, operator_key: Ed25519PrivateKey,
                 on_progress: ProgressFn | None = None) -> RunResult:
    """Run a signed manifest (the steps of this module); ``on_progress`` hears where the work is."""
    from ..evidence.ledger import Ledger
    from ..signature.environment import describe
    from ..signature.pins import apply_torch_pins, check_runtime

    now = datetime.now(UTC)
    try:
        verified = verify_manifest(manifest_path, trust, now)  # step 1
    except SignatureVerificationError as exc:  # for `manifest run` a refusal (exit 2), not a verdict
        raise RunError(f"refusing to run {manifest_path}: {exc.message}", hint=exc.hint) from None
    loaded: LoadedManifest = verified.loaded
    operator = trust.authorise(key_id(operator_key.public_key()), LEDGER_NAMESPACE, now)  # step 2
    pins, config = loaded.pins(), loaded.config()
    device = apply_torch_pins(pins)  # step 3 (refuses a process outside the pins)
    check_runtime(pins)
    manifest = loaded.manifest
    _refuse_existing_outputs(loaded)  # step 4
    kind = _KINDS[manifest.kind]
    session = None
    inputs: list[Any]
    audios: list[Any]
    if kind.streams:  # step 5 is the kind's own: cheap checks now, each song decoded when it is computed
        inputs, audios = [], []
        pre = kind.read(loaded)
    else:
        inputs, audios = _audio_inputs(loaded, config)  # step 5
        pre = kind.read(loaded)  # the stores and calibrations it reads, checked before the model loads
        from ..signature.session import Session

        session = Session.open(loaded.model_dir, manifest.model.digests(), pins, config, loaded.methods())  # 6
    ledger = Ledger.open(loaded.ledger_dir) if (loaded.ledger_dir / "ledger.json").exists() \
        else Ledger.create(loaded.ledger_dir)
    signers = [{"key_id": s.key_id, "principal": s.principal} for s in verified.signers]
    plan = kind.plan(Context(loaded, session, inputs, audios, on_progress, pre, signers, ledger.origin,
                             operator_key, operator.principal))  # step 7
    written: list[Path] = []

    def body(seq: int) -> dict[str, Any]:  # step 8, under the ledger's lock
        outs = plan.write(seq)
        written.extend(p for p, _ in outs)
        return {
            "manifest_digest": loaded.digest,
            "manifest": json.loads(loaded.canonical_json),
            "manifest_signers": signers,
            "signing_policy": verified.policy.to_json(),
            "inputs": plan.inputs,
            "outputs": [file_entry(p, loaded.ledger_dir.parent, kind=k) for p, k in outs],
            "result": plan.result,
            "environment": describe(pins),
            "device": str(device),
            **plan.record,
        }

    try:
        appended = ledger.append("run", body, operator_key, operator.principal)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        for folder in {p.parent for p in written if p.parent in loaded.outputs.values()}:
            folder.rmdir()
        raise
    issued = plan.after(appended.seq, written) if plan.after is not None else ()  # step 9
    return RunResult(loaded.digest, appended.seq, loaded.ledger_dir, tuple(written), appended.checkpoint,
                     plan.result, issued)


@dataclass(frozen=True)
class _Kind:
    """What a kind reads and checks before the model loads, and how it computes its plan.

    ``streams``: the kind checks its inputs in ``read`` and decodes them one at a time in
    ``plan``, and opens the model itself (an Extract, whose catalog need not fit in memory).
    """

    read: Callable[[LoadedManifest], Any]
    plan: Callable[[Context], Plan]
    streams: bool = False


_KINDS: dict[str, _Kind] = {
    "Extract": _Kind(extract.read, extract.plan, streams=True),
    "Calibrate": _Kind(calibrate.read, calibrate.plan),
    "Attribute": _Kind(attribute.read, attribute.plan),
}
