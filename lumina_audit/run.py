"""``lumina-audit run``: a signed manifest in, outputs and one ledger record out.

Steps, each of which raises before anything is written:

1. the manifest verifies against the trust file (signed, trusted signers, unchanged);
2. the operator's key may sign ledger records (trust file, namespace ``lumina-audit/ledger``);
3. the process runs under the manifest's numerical pins (the CLI re-executes itself under them);
4. outputs: none exists yet, and the ledger records none of them;
5. inputs: each pinned input digest matches before the file is decoded; every file decodes;
6. the model: its files' digests match the manifest before anything is unpickled;
7. the work runs; outputs are written atomically;
8. one ledger record (kind ``run``) with the manifest, inputs, outputs and environment,
   then a signed checkpoint. If the record cannot be written, the outputs of this run are
   removed: the ledger never holds work that did not finish, and no output lacks a record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ._internal.hashing import sha256_path
from .errors import LuminaError
from .keys import key_id
from .manifest import ExtractManifest, LoadedManifest, resolve_inputs, verify_manifest
from .trust import TrustStore

__all__ = ["RunError", "RunResult", "recorded_outputs", "run_manifest"]

LEDGER_NAMESPACE = "lumina-audit/ledger"


class RunError(LuminaError):
    """A run was refused before it changed anything."""


@dataclass(frozen=True)
class RunResult:
    manifest_digest: str
    seq: int
    ledger: Path
    outputs: tuple[Path, ...]
    checkpoint: str
    summary: dict[str, Any]


def _file_entry(path: Path, root: Path | None = None, **extra: Any) -> dict[str, Any]:
    """Path (relative to ``root`` when given: the ledger's parent folder), size and SHA-256."""
    shown = os.path.relpath(path, root) if root is not None else str(path)
    return {"path": shown, "size": path.stat().st_size, "sha256": sha256_path(path), **extra}


def recorded_outputs(ledger_dir: Path) -> dict[Path, int]:
    """Output paths (resolved) recorded by a ledger, with the sequence number of the latest record."""
    from .ledger import Ledger

    if not (ledger_dir / "ledger.json").exists():
        return {}
    out: dict[Path, int] = {}
    for rec in Ledger.open(ledger_dir).records():
        for entry in rec.body.get("outputs", []):
            out[(ledger_dir.parent / str(entry.get("path"))).resolve()] = rec.seq
    return out


def run_manifest(manifest_path: Path, trust: TrustStore, operator_key: Ed25519PrivateKey,
                 on_progress: Callable[[str, int, int], None] | None = None) -> RunResult:
    from .environment import describe
    from .ledger import Ledger
    from .pins import apply_torch_pins, check_runtime

    now = datetime.now(UTC)
    verified = verify_manifest(manifest_path, trust, now)  # step 1
    loaded: LoadedManifest = verified.loaded
    operator = trust.authorise(key_id(operator_key.public_key()), LEDGER_NAMESPACE, now)  # step 2
    pins, config = loaded.pins(), loaded.config()
    device = apply_torch_pins(pins)  # step 3 (refuses a process outside the pins)
    check_runtime(pins)
    manifest = loaded.manifest
    if not isinstance(manifest, ExtractManifest):
        raise RunError(f"{manifest_path}: kind {manifest.kind!r} cannot run yet")
    store = loaded.store_path  # step 4
    recorded = recorded_outputs(loaded.ledger_dir)
    if store.resolve() in recorded:
        raise RunError(f"{store}: already recorded by ledger record {recorded[store.resolve()]}; refusing to overwrite",
                       hint="name a new output in a new manifest")
    if store.exists():
        raise RunError(f"{store}: already exists (not recorded by the ledger); refusing to overwrite")
    inputs = resolve_inputs(loaded)  # step 5
    from .audio import load_audio

    audios = [load_audio(i.path, config, i.expected_sha256) for i in inputs]
    from ._internal.session import Session

    session = Session.open(loaded.model_dir, manifest.model.digests(), pins, config)  # step 6
    from .extract import signature_of_audio
    from .store import create_or_append

    sigs = []
    total = sum(len(a.chunks) for a in audios)
    done = 0
    for i, a in zip(inputs, audios, strict=True):  # step 7
        def tick(n: int, _k: int, base: int = done, name: str = i.path.name) -> None:
            if on_progress is not None:
                on_progress(name, base + n, total)
        sigs.append(signature_of_audio(a, session.model, config, pins, i.song_id, on_chunk=tick))
        done += len(a.chunks)
    store.parent.mkdir(parents=True, exist_ok=True)
    create_or_append(store, session.space, sigs)
    try:  # step 8
        ledger = Ledger.open(loaded.ledger_dir) if (loaded.ledger_dir / "ledger.json").exists() \
            else Ledger.create(loaded.ledger_dir)
        body = {
            "manifest_digest": loaded.digest,
            "manifest": json.loads(loaded.canonical_json),
            "manifest_signers": [{"key_id": s.key_id, "principal": s.principal} for s in verified.signers],
            "inputs": [_file_entry(i.path, song_id=i.song_id, pcm_sha256=a.pcm_sha256, chunks=len(a.chunks))
                       for i, a in zip(inputs, audios, strict=True)],
            "outputs": [_file_entry(store, loaded.ledger_dir.parent, kind="signature-store")],
            "result": {"signature_space_sha256": session.space.digest, "songs": len(sigs), "chunks": total},
            "environment": describe(pins),
            "device": str(device),
        }
        appended = ledger.append("run", body, operator_key, operator.principal)
    except BaseException:
        store.unlink(missing_ok=True)
        raise
    return RunResult(loaded.digest, appended.seq, loaded.ledger_dir, (store,), appended.checkpoint, body["result"])
