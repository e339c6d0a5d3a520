"""Verification of a whole ledger: every rule, each finding naming the record it concerns.

Rules :func:`verify` checks (each finding names the record it concerns):

1. header format and version; 2. every frame complete: an incomplete last frame that is a
prefix of one frame is a *torn tail* (a crash mid-write) or, when checkpoints cover the records
it cut off, a torn record inside the checkpointed range; anything else is a corrupt frame;
3. each record is canonical with exactly the members above; 4. seq equals position, ``prev``
chains, time never goes backwards; 5. the signer key is trusted for ``lumina-audit/ledger``
at the record's own time, under the trust-file principal, and the signature verifies;
6. a ``key-revocation`` record (body ``{"key_id", "reason"}``) or a ``key-rotation`` record
(body ``{"old_key_id", "new_key_id"}``, signed by the old key, the new key trusted) retires a
key: later records, and checkpoints covering later records, signed by it are invalid; any
trusted ledger key may revoke any key (itself included); 7. every checkpoint is signed by a
key trusted at the time of the last record it covers, has the ledger's origin, covers no more
records than exist, has the Merkle root of the records it covers, and is consistent (RFC 9162
proof) with the previous one; 8. coverage: a complete record that no valid checkpoint covers
makes the ledger invalid. A record is evidence only once the log commits to it; such a record
comes from a crash between the record and its checkpoint, and ``repair`` with a key (or the
next append) commits it; 9. an external checkpoint kept elsewhere must verify and match the
ledger's prefix of its size (this catches truncation and rewriting by the key holder);
10. outputs: a body ``"outputs": [{"path", "size", "sha256"}]`` names files that must exist
with that size and hash; relative paths are resolved against ``outputs_root`` (default: the
directory holding the ledger directory); when several records list the same path, only the
latest record's entry is checked (a re-run legitimately replaces a file).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from .. import merkle, note
from ..trust import TrustError, TrustStore
from .format import (
    CHECKPOINTS,
    HEX64,
    LEDGER_NAMESPACE,
    RECORDS,
    ZERO_HASH,
    LedgerError,
    LedgerUnreadable,
    Record,
    checkpoint_size,
    decode_frames,
    decode_record,
    format_time,
    is_int,
    key_event_error,
    read_header,
)
from .signatures import check_record_signature, open_checkpoint
from .tree import consistency_problem, prefix_roots
from .writer import lock

__all__ = ["Finding", "LedgerReport", "Status", "verify"]

#: A verification's bottom line.
Status = Literal["valid", "invalid", "could-not-check"]


@dataclass(frozen=True)
class Finding:
    seq: int | None  #: the record concerned (None: the ledger as a whole)
    step: str
    message: str
    severity: Literal["invalid", "could-not-check"] = "invalid"


@dataclass(frozen=True)
class LedgerReport:
    path: Path
    status: Status
    records: int
    checkpoints: int
    findings: tuple[Finding, ...]

    @property
    def bottom_line(self) -> bool:
        return self.status == "valid"


def verify(path: Path, trust: TrustStore, *, check_outputs: bool = True, external_checkpoint: str | None = None,
           outputs_root: Path | None = None) -> LedgerReport:
    """Check everything the module docstring lists; never raises for a problem of the ledger."""
    path = Path(path)
    found: list[Finding] = []
    n_rec, n_cp = _verify(path, trust, check_outputs, external_checkpoint,
                          Path(outputs_root) if outputs_root is not None else path.resolve().parent, found)
    status: Status = "valid"
    if any(f.severity == "invalid" for f in found):
        status = "invalid"
    elif found:
        status = "could-not-check"
    return LedgerReport(path, status, n_rec, n_cp, tuple(found))


def _verify(path: Path, trust: TrustStore, check_outputs: bool, external: str | None, outputs_root: Path,
            found: list[Finding]) -> tuple[int, int]:
    def add(seq: int | None, step: str, message: str, cnc: bool = False) -> None:
        found.append(Finding(seq, step, message, "could-not-check" if cnc else "invalid"))

    # Step 1: header.
    try:
        origin, created = read_header(path)
    except LedgerError as exc:
        add(None, "1 header", exc.message, isinstance(exc, LedgerUnreadable))
        return 0, 0
    # Step 2: frames (read under a shared lock, so that no append is half-seen).
    try:
        with lock(path, exclusive=False, required=False):
            rec_data, cp_data = (path / RECORDS).read_bytes(), (path / CHECKPOINTS).read_bytes()
    except FileNotFoundError as exc:
        add(None, "2 frames", f"{exc.filename} is missing")
        return 0, 0
    except OSError as exc:
        add(None, "2 frames", f"{exc.filename}: cannot read ({exc.strerror})", cnc=True)
        return 0, 0
    recs, cps = decode_frames(rec_data), decode_frames(cp_data)
    n = len(recs.payloads)
    leaves = [merkle.leaf_hash(p) for p in recs.payloads]
    roots = prefix_roots(leaves)
    # Steps 3 to 6: each record.
    records: list[Record | None] = []
    last_time: datetime | None = None
    retired: dict[str, tuple[int, str]] = {}  # key id -> (record that retired it, how)
    for i, payload in enumerate(recs.payloads):
        try:
            rec = decode_record(payload)
        except LedgerError as exc:
            add(i, "3 record", f"record {i}: {exc.message}")
            records.append(None)
            continue
        records.append(rec)
        prev = hashlib.sha256(recs.payloads[i - 1]).hexdigest() if i else ZERO_HASH
        if rec.seq != i:
            add(i, "4 chain", f"record {i}: seq is {rec.seq}, expected {i}")
        if rec.prev != prev:
            add(i, "4 chain", f"record {i}: prev is not the hash of record {i - 1}" if i else
                "record 0: prev is not 64 zeros")
        if last_time is not None and rec.time < last_time:
            add(i, "4 chain", f"record {i}: time {format_time(rec.time)} goes backwards")
        last_time = rec.time if last_time is None else max(last_time, rec.time)
        try:
            check_record_signature(rec, trust)
        except LedgerError as exc:
            add(i, "5 signature", f"record {i}: {exc.message}")
            continue
        if rec.key_id in retired:
            add(i, "6 keys", f"record {i}: signed by key {rec.key_id[:16]}... {retired[rec.key_id][1]}")
            continue
        if (problem := key_event_error(rec.kind, rec.body)) is not None:
            add(i, "6 keys", f"record {i}: {problem}")
        elif rec.kind == "key-revocation":
            retired.setdefault(rec.body["key_id"], (i, f"revoked by record {i}"))
        elif rec.kind == "key-rotation":
            if rec.key_id != rec.body["old_key_id"]:
                add(i, "6 keys", f"record {i}: a key-rotation must be signed by the old key")
                continue
            try:
                trust.authorise(rec.body["new_key_id"], LEDGER_NAMESPACE, rec.time)
            except TrustError as exc:
                add(i, "6 keys", f"record {i}: rotation to an untrusted key: {exc.message}")
            retired.setdefault(rec.key_id, (i, f"rotated out by record {i}"))

    # The time a checkpoint of each size was made at the earliest: its last readable record's.
    times = [created]
    for r in records:
        times.append(r.time if r is not None else times[-1])

    def at_for(size: int) -> datetime:
        return times[min(size, n)]

    # Step 7: checkpoints.
    max_size, latest = 0, None
    for j, raw in enumerate(cps.payloads):
        try:
            cp, kid = open_checkpoint(raw.decode("utf-8"), trust, at_for)
        except (LedgerError, UnicodeDecodeError) as exc:
            size = checkpoint_size(raw)
            add(size - 1 if 0 < size <= n else None, "7 checkpoints", f"checkpoint {j}: {exc}")
            continue
        about = cp.size - 1 if 0 < cp.size <= n else None
        problem = None
        if cp.origin != origin:
            problem = f"origin {cp.origin!r} is not the ledger's {origin!r}"
        elif cp.size > n:
            problem = f"covers {cp.size} records, the ledger has {n}"
        elif cp.root_hash != roots[cp.size]:
            problem = f"root differs from the Merkle root of records 0..{cp.size - 1}"
        elif kid in retired and cp.size > retired[kid][0] + 1:
            problem = f"signed by key {kid[:16]}... {retired[kid][1]}"
        elif latest is not None:
            problem = consistency_problem(leaves, latest, cp)
        if problem is not None:
            add(about, "7 checkpoints", f"checkpoint {j}: {problem}")
            continue
        latest, max_size = cp, max(max_size, cp.size)
    # Step 2 (continued), now that the checkpointed range is known.
    claimed = max((checkpoint_size(p) for p in cps.payloads), default=0)
    if recs.tail:
        where = f"{len(recs.tail)} bytes at offset {recs.end}"
        if recs.torn and n >= claimed:
            add(n, "2 frames", f"torn tail after the last checkpoint: {where}")
        elif recs.torn:
            add(n, "2 frames", f"torn record inside the checkpointed range: {where}")
        else:
            add(n, "2 frames", f"corrupt record frame: {where} cannot be read")
    if cps.tail:
        what = "torn checkpoint tail" if cps.torn else "corrupt checkpoint frame"
        add(None, "2 frames", f"{what}: {len(cps.tail)} bytes at offset {cps.end}")
    # Step 8: coverage.
    for i in range(max_size, n):
        add(i, "8 coverage", f"record {i} is not covered by a signed checkpoint")
    # Step 9: the external checkpoint.
    if external is not None:
        _check_external(external, trust, origin, n, leaves, roots, latest, retired, at_for, add)
    # Step 10: outputs.
    if check_outputs:
        _check_outputs(records, outputs_root, add)
    return n, len(cps.payloads)


def _check_external(text: str, trust: TrustStore, origin: str, n: int, leaves: list[bytes], roots: list[bytes],
                    latest: note.Checkpoint | None, retired: dict[str, tuple[int, str]],
                    at_for: Callable[[int], datetime], add: Callable[[int | None, str, str], None]) -> None:
    step = "9 external checkpoint"
    try:
        cp, kid = open_checkpoint(text, trust, at_for)
    except LedgerError as exc:
        add(None, step, f"external checkpoint: {exc.message}")
        return
    if cp.origin != origin:
        add(None, step, f"external checkpoint is for origin {cp.origin!r}, the ledger's is {origin!r}")
    elif cp.size > n:
        add(n - 1 if n else None, step, f"truncated: external checkpoint covers {cp.size} records, ledger has {n}")
    elif cp.root_hash != roots[cp.size]:
        add(cp.size - 1 if cp.size else None, step,
            f"external checkpoint root differs from the root of records 0..{cp.size - 1}: history was rewritten")
    elif kid in retired and cp.size > retired[kid][0] + 1:
        add(cp.size - 1, step, f"external checkpoint signed by key {kid[:16]}... {retired[kid][1]}")
    elif latest is not None and latest.size >= cp.size and (problem := consistency_problem(leaves, cp, latest)):
        add(None, step, f"latest checkpoint {problem}")


def _check_outputs(records: list[Record | None], root: Path,
                   add: Callable[[int | None, str, str, bool], None]) -> None:
    step = "10 outputs"
    latest: dict[Path, tuple[int, dict[str, Any]]] = {}
    for rec in records:
        if rec is None or "outputs" not in rec.body:
            continue
        outputs = rec.body["outputs"]
        if not isinstance(outputs, list) or not all(
                isinstance(o, dict) and isinstance(o.get("path"), str) and is_int(o.get("size"))
                and isinstance(o.get("sha256"), str) and HEX64.fullmatch(o["sha256"]) for o in outputs):
            add(rec.seq, step, f"record {rec.seq}: outputs must be [{{path, size, sha256}}, ...]", False)
            continue
        for o in outputs:
            latest[root / o["path"]] = (rec.seq, o)  # an absolute path replaces root
    for file, (seq, o) in latest.items():
        where = f"record {seq}: output {o['path']}"
        try:
            digest, size = hashlib.sha256(), 0
            with open(file, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
        except (FileNotFoundError, ValueError):  # ValueError: a NUL in the path
            add(seq, step, f"{where} is missing", False)
            continue
        except OSError as exc:
            add(seq, step, f"{where} cannot be read ({exc.strerror})", True)
            continue
        if size != o["size"] or digest.hexdigest() != o["sha256"]:
            add(seq, step, f"{where} has changed: {size} bytes, sha256 {digest.hexdigest()[:16]}...", False)
