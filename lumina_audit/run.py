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
   removed: the ledger never holds work that did not finish, and no output lacks a record;
9. an Attribute manifest with ``certificates`` then issues one signed PDF per report, each
   its own ledger record (kind ``certificate``), as ``lumina-audit certificate issue`` does.
   The signer's key and certificate were loaded and checked before step 6, so a bad key
   stops the run before any work; a later failure (a timestamp server that does not
   answer) names the reports left without a certificate and the command that issues them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ._internal.hashing import sha256_path
from .dsse import SignatureVerificationError
from .errors import LuminaError
from .keys import key_id
from .ledger import NAMESPACE as LEDGER_NAMESPACE
from .manifest import (
    AttributeManifest,
    CalibrateManifest,
    CertificateSettings,
    LoadedManifest,
    resolve_inputs,
    verify_manifest,
)
from .trust import TrustStore

__all__ = ["RunError", "RunResult", "recorded_outputs", "run_manifest"]

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
    certificates: tuple[Any, ...] = ()  #: :class:`~lumina_audit.certify.Issued`, one per report, when asked


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


@dataclass
class _Plan:
    """What a kind computed: ledger entries for what it read, its result, and how to write its outputs.

    ``write(seq)`` runs under the ledger's writer lock and returns ``(path, kind)`` of
    every file it wrote; the record then holds their hashes.
    """

    inputs: list[dict[str, Any]]
    result: dict[str, Any]
    write: Callable[[int], list[tuple[Path, str]]]
    #: Run after the record is appended, with its sequence number and the files written (step 9).
    after: Callable[[int, list[Path]], tuple[Any, ...]] | None = None


@dataclass(frozen=True)
class _Context:
    """Everything a kind's computation sees."""

    loaded: LoadedManifest
    session: Any
    inputs: list[Any]
    audios: list[Any]
    on_progress: Callable[[str, int, int], None] | None
    pre: Any  #: what the kind read before the model loaded
    signers: list[dict[str, str]]  #: the manifest's verified signers
    origin: str  #: the ledger's origin line
    operator_key: Ed25519PrivateKey
    principal: str  #: the operator's principal in the trust file


def _refuse_existing_outputs(loaded: LoadedManifest) -> None:
    recorded = recorded_outputs(loaded.ledger_dir)
    for name, path in loaded.outputs.items():
        hits = sorted(seq for p, seq in recorded.items() if p == path or path in p.parents)
        if hits:
            raise RunError(f"{path}: output {name!r} is already recorded by ledger record {hits[-1]}; refusing to "
                           "overwrite", hint="name a new output in a new manifest")
        if path.exists():
            raise RunError(f"{path}: output {name!r} already exists (not recorded by the ledger); refusing to "
                           "overwrite")


def _audio_inputs(loaded: LoadedManifest, config: Any) -> tuple[list[Any], list[Any]]:
    """Resolve the kind's audio inputs and decode them, each digest checked before decoding (step 5)."""
    from .audio import load_audio

    inputs = resolve_inputs(loaded)
    return inputs, [load_audio(i.path, config, i.expected_sha256) for i in inputs]


def _signatures(session: Any, inputs: list[Any], audios: list[Any],
                on_progress: Callable[[str, int, int], None] | None) -> list[Any]:
    from .extract import signature_of_audio

    sigs = []
    total = sum(len(a.chunks) for a in audios)
    done = 0
    for i, a in zip(inputs, audios, strict=True):
        def tick(n: int, _k: int, base: int = done, name: str = i.path.name) -> None:
            if on_progress is not None:
                on_progress(name, base + n, total)
        sigs.append(signature_of_audio(a, session.model, session.config, session.pins, i.song_id, on_chunk=tick))
        done += len(a.chunks)
    return sigs


def _audio_entries(inputs: list[Any], audios: list[Any]) -> list[dict[str, Any]]:
    """Ledger entries of the audio inputs: size and SHA-256 of the very bytes that were decoded."""
    return [{"path": str(i.path), "size": a.file_size, "sha256": a.file_sha256, "song_id": i.song_id,
             "pcm_sha256": a.pcm_sha256, "chunks": len(a.chunks)} for i, a in zip(inputs, audios, strict=True)]


def _extract_plan(ctx: _Context) -> _Plan:
    from .store import create_or_append

    loaded, session, inputs, audios, on_progress = ctx.loaded, ctx.session, ctx.inputs, ctx.audios, ctx.on_progress
    sigs = _signatures(session, inputs, audios, on_progress)
    store = loaded.store_path

    def write(_seq: int) -> list[tuple[Path, str]]:
        store.parent.mkdir(parents=True, exist_ok=True)
        create_or_append(store, session.space, sigs)
        return [(store, "signature-store")]

    result = {"signature_space_sha256": session.space.digest, "songs": len(sigs),
              "chunks": sum(len(a.chunks) for a in audios)}
    return _Plan(_audio_entries(inputs, audios), result, write)


def run_manifest(manifest_path: Path, trust: TrustStore, operator_key: Ed25519PrivateKey,
                 on_progress: Callable[[str, int, int], None] | None = None) -> RunResult:
    from .environment import describe
    from .ledger import Ledger
    from .pins import apply_torch_pins, check_runtime

    now = datetime.now(UTC)
    try:
        verified = verify_manifest(manifest_path, trust, now)  # step 1
    except SignatureVerificationError as exc:  # for `run` this is a refusal (exit 2), not a verdict
        raise RunError(f"refusing to run {manifest_path}: {exc.message}", hint=exc.hint) from None
    loaded: LoadedManifest = verified.loaded
    operator = trust.authorise(key_id(operator_key.public_key()), LEDGER_NAMESPACE, now)  # step 2
    pins, config = loaded.pins(), loaded.config()
    device = apply_torch_pins(pins)  # step 3 (refuses a process outside the pins)
    check_runtime(pins)
    manifest = loaded.manifest
    _refuse_existing_outputs(loaded)  # step 4
    inputs, audios = _audio_inputs(loaded, config)  # step 5
    read_first, compute = _KINDS[manifest.kind]
    pre = read_first(loaded)  # the stores and calibrations it reads, checked before the model loads
    from ._internal.session import Session

    session = Session.open(loaded.model_dir, manifest.model.digests(), pins, config)  # step 6
    ledger = Ledger.open(loaded.ledger_dir) if (loaded.ledger_dir / "ledger.json").exists() \
        else Ledger.create(loaded.ledger_dir)
    signers = [{"key_id": s.key_id, "principal": s.principal} for s in verified.signers]
    plan = compute(_Context(loaded, session, inputs, audios, on_progress, pre, signers, ledger.origin,
                            operator_key, operator.principal))  # step 7
    written: list[Path] = []

    def body(seq: int) -> dict[str, Any]:  # step 8, under the ledger's lock
        outs = plan.write(seq)
        written.extend(p for p, _ in outs)
        return {
            "manifest_digest": loaded.digest,
            "manifest": json.loads(loaded.canonical_json),
            "manifest_signers": signers,
            "inputs": plan.inputs,
            "outputs": [_file_entry(p, loaded.ledger_dir.parent, kind=k) for p, k in outs],
            "result": plan.result,
            "environment": describe(pins),
            "device": str(device),
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


def _read_store(loaded: LoadedManifest, ref: Any, loc: str) -> tuple[Path, Any, dict[str, Any]]:
    """A store the run reads: its pinned digest checked, its index read (no vectors)."""
    from .store import read_index

    path = loaded.anywhere(ref.path)
    entry = _checked_file(path, ref.sha256, loc)
    return path, read_index(path), entry | {"kind": "signature-store"}


def _checked_file(path: Path, expected: str | None, loc: str) -> dict[str, Any]:
    if not path.is_file():
        raise RunError(f"{path}: {loc} not found")
    entry = _file_entry(path)
    if expected is not None and entry["sha256"] != expected:
        raise RunError(f"{path}: {loc} SHA-256 {entry['sha256']} differs from the pinned {expected}")
    return entry


def _same_space(what: str, theirs: str, ours: str) -> None:
    if theirs != ours:
        raise RunError(f"{what} is of signature space {theirs}, this run computes signatures of space {ours}; "
                       "they are never compared")


def _queries(sigs: list[Any]) -> dict[str, Any]:
    import numpy as np

    return {"P": np.stack([s.p for s in sigs]), "M": np.stack([s.m for s in sigs])}


def _calibrate_read(loaded: LoadedManifest) -> Any:
    return _read_store(loaded, cast(CalibrateManifest, loaded.manifest).catalog, "catalog store")


def _calibrate_plan(ctx: _Context) -> _Plan:
    from .attribution import calibrate
    from .reports import CALIBRATION_FORMAT, write_canonical
    from .search import similarities

    loaded, session, inputs, audios, on_progress, pre = (ctx.loaded, ctx.session, ctx.inputs, ctx.audios,
                                                         ctx.on_progress, ctx.pre)
    store, index, store_entry = pre
    _same_space(f"catalog store {store}", index.info.space.digest, session.space.digest)
    settings = cast(CalibrateManifest, loaded.manifest).calibration
    if len(inputs) < settings.min_controls:  # refuse before the expensive part
        raise RunError(f"{len(inputs)} control(s); calibration needs at least {settings.min_controls}")
    sigs = _signatures(session, inputs, audios, on_progress)
    q = _queries(sigs)
    sims = {ch: similarities(store, ch, q[ch], space_digest=session.space.digest) for ch in ("P", "M")}
    cal = calibrate(sims, settings.k, control_ids=[s.song_id for s in sigs],
                    control_pcm_sha256=[s.pcm_sha256 for s in sigs], catalog_pcm_sha256=set(index.pcm_sha256),
                    control_space=session.space.digest, catalog_space=index.info.space.digest,
                    min_controls=settings.min_controls)
    doc = {
        "format": CALIBRATION_FORMAT, "version": 1, "method": settings.method,
        "signature_space_sha256": session.space.digest, "signature_space": session.space.as_dict(),
        "catalog": {"sha256": store_entry["sha256"], "songs": index.info.count},
        "controls": [{"song_id": s.song_id, "file_sha256": s.file_sha256, "pcm_sha256": s.pcm_sha256}
                     for s in sigs],
        "C": len(sigs), "N": index.info.count, "k": settings.k,
        "channels": {ch: c.as_dict() for ch, c in cal.items()},
        "manifest_digest": loaded.digest,
    }
    out = loaded.outputs["calibration"]

    def write(_seq: int) -> list[tuple[Path, str]]:
        write_canonical(out, doc)
        return [(out, "calibration")]

    result = {"signature_space_sha256": session.space.digest, "controls": len(sigs), "catalog_songs": index.info.count,
              **{f"{ch}_tau": c.tau for ch, c in cal.items()},
              **{f"{ch}_false_positive_rate": c.false_positive_rate for ch, c in cal.items()}}
    return _Plan([*_audio_entries(inputs, audios), store_entry], result, write)


def _attribute_read(loaded: LoadedManifest) -> Any:
    from .reports import read_calibration

    m = cast(AttributeManifest, loaded.manifest)
    store = _read_store(loaded, m.catalog, "catalog store")
    cal_path = loaded.anywhere(m.calibration.path)
    cal_entry = _checked_file(cal_path, m.calibration.sha256, "calibration")
    cal, cal_digest = read_calibration(cal_path)
    _same_space(f"calibration {cal_path}", str(cal.get("signature_space_sha256")), store[1].info.space.digest)
    if cal["catalog"]["sha256"] != store[2]["sha256"]:
        raise RunError(f"calibration {cal_path} was made on catalog store {cal['catalog']['sha256']}, not on "
                       f"{store[0]} ({store[2]['sha256']})")
    signer = _certificate_signer(loaded, m.certificates) if m.certificates is not None else None
    return store, (cal_path, cal, cal_digest, cal_entry | {"kind": "calibration"}), signer


def _certificate_signer(loaded: LoadedManifest, settings: CertificateSettings) -> Any:
    """The manifest's X.509 signer, loaded and checked (key matches certificate, valid now, pinned digest)."""
    from .signer import load_signer

    spec = settings.signer
    passphrase = None
    if spec.passphrase_env is not None:
        value = os.environ.get(spec.passphrase_env)
        if value is None:
            raise RunError(f"environment variable {spec.passphrase_env} (certificates.signer.passphrase_env) "
                           "is not set",
                           hint="export the signer key's passphrase in it before running")
        passphrase = value.encode()
    creds = load_signer(key=loaded.anywhere(spec.key) if spec.key else None,
                        cert=loaded.anywhere(spec.cert) if spec.cert else None,
                        chain=[loaded.anywhere(c) for c in spec.chain],
                        pkcs12=loaded.anywhere(spec.pkcs12) if spec.pkcs12 else None, passphrase=passphrase)
    if spec.cert_sha256 is not None:
        if creds.fingerprint != spec.cert_sha256:
            raise RunError(f"signer certificate SHA-256 {creds.fingerprint} differs from the pinned "
                           f"certificates.signer.cert_sha256 {spec.cert_sha256}")
    return creds


def _attribute_plan(ctx: _Context) -> _Plan:
    from .attribution import attribute_hits
    from .reports import REPORT_FORMAT, write_canonical
    from .search import top_and_threshold

    loaded, session, inputs, audios, on_progress, pre = (ctx.loaded, ctx.session, ctx.inputs, ctx.audios,
                                                         ctx.on_progress, ctx.pre)
    (store, index, store_entry), (cal_path, cal, cal_digest, cal_entry), signer = pre
    _same_space(f"catalog store {store}", index.info.space.digest, session.space.digest)
    m = cast(AttributeManifest, loaded.manifest)
    top_k = m.attribution.top_k
    sigs = _signatures(session, inputs, audios, on_progress)
    q = _queries(sigs)
    results: dict[str, list[Any]] = {}
    for ch in ("P", "M"):
        c = cal["channels"][ch]
        hits = top_and_threshold(store, ch, q[ch], float(c["tau"]), top_k, space_digest=session.space.digest)
        results[ch] = [attribute_hits(h, index.song_ids, float(c["mu"]), float(c["sigma"]), float(c["tau"]), top_k)
                       for h in hits]
    folder = loaded.outputs["reports"]
    calibration = {"sha256": cal_digest, "C": cal["C"], "N": cal["N"], "k": cal["k"],
                   "channels": {ch: {key: cal["channels"][ch][key] for key in (
                       "mu", "sigma", "k", "tau", "false_positive_rate", "counts_above_mean", "counts_above_max")}
                       for ch in ("P", "M")}}
    def write(seq: int) -> list[tuple[Path, str]]:
        folder.mkdir(parents=True, exist_ok=False)
        outs = []
        for i, (inp, sig) in enumerate(zip(inputs, sigs, strict=True)):
            doc = {
                "format": REPORT_FORMAT, "version": 1, "method": m.attribution.method,
                "query": {"song_id": sig.song_id, "file": inp.path.name, "file_sha256": sig.file_sha256,
                          "pcm_sha256": sig.pcm_sha256, "chunks": sig.chunks},
                "signature_space_sha256": session.space.digest,
                "catalog": {"sha256": store_entry["sha256"], "songs": index.info.count},
                "calibration": calibration,
                "channels": {ch: results[ch][i].as_dict() for ch in ("P", "M")},
                "manifest_digest": loaded.digest, "manifest_signers": ctx.signers,
                "ledger": {"origin": ctx.origin, "record": seq},
            }
            path = folder / f"{sig.song_id}.json"
            write_canonical(path, doc)
            outs.append((path, "attribution-report"))
        return outs

    verdicts = {f"{sig.song_id}:{ch}": results[ch][i].verdict for ch in ("P", "M") for i, sig in enumerate(sigs)}
    result = {"signature_space_sha256": session.space.digest, "queries": len(sigs), "verdicts": verdicts}
    after = None if signer is None or m.certificates is None else _certificates_after(ctx, signer, m.certificates)
    return _Plan([*_audio_entries(inputs, audios), store_entry, cal_entry], result, write, after)


def _certificates_after(ctx: _Context, signer: Any,
                        settings: CertificateSettings) -> Callable[[int, list[Path]], tuple[Any, ...]]:
    """Step 9: one certificate per report, each its own ledger record."""
    from .certify import issue_certificate

    loaded = ctx.loaded
    folder = loaded.outputs["certificates"]

    def after(seq: int, reports: list[Path]) -> tuple[Any, ...]:
        issued: list[Any] = []
        folder.mkdir(parents=True, exist_ok=False)
        for i, report in enumerate(reports):
            try:
                issued.append(issue_certificate(
                    report, loaded.ledger_dir, folder / f"{report.stem}.pdf", operator_key=ctx.operator_key,
                    principal=ctx.principal, signer=signer, timestamp_url=settings.timestamp_url,
                    page_size=settings.page_size))
            except LuminaError as exc:
                left = ", ".join(r.name for r in reports[i:])
                raise RunError(f"the run is ledger record {seq}, but no certificate was issued for {left}: "
                               f"{exc.message}",
                               hint="issue them with `lumina-audit certificate issue REPORT`") from None
        return tuple(issued)

    return after


#: Per kind: what it reads and checks before the model loads, and how it computes its plan.
_KINDS: dict[str, tuple[Callable[[LoadedManifest], Any], Callable[[_Context], _Plan]]] = {
    "Extract": (lambda _loaded: None, _extract_plan),
    "Calibrate": (_calibrate_read, _calibrate_plan),
    "Attribute": (_attribute_read, _attribute_plan),
}
