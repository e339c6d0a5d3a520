"""CLI commands of the evidence layer: keys, manifests, run, ledger, verification.

Thin: each command parses its options, calls the library, prints. Registered on the
main app by :mod:`lumina_audit.cli`.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from .errors import ConfigError

__all__ = ["certificate_app", "keys_app", "ledger_app", "manifest_app", "pki_app", "report_app", "run", "verify_app"]

keys_app = typer.Typer(no_args_is_help=True, help="Ed25519 signing keys and key events.")
manifest_app = typer.Typer(no_args_is_help=True, help="Sign and verify run manifests.")
ledger_app = typer.Typer(no_args_is_help=True, help="Inspect, prove and repair a ledger.")
verify_app = typer.Typer(no_args_is_help=True, help="Verify evidence offline.")

TrustOpt = Annotated[Path, typer.Option("--trust", help="Trust file (allowed_signers style).")]
KeyOpt = Annotated[Path, typer.Option("--key", help="Ed25519 private key (PEM).")]
PassEnvOpt = Annotated[str | None, typer.Option(help="Read the key passphrase from this environment variable.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]

#: ``verify`` exit codes.
EXIT_VALID, EXIT_INVALID, EXIT_UNCHECKED = 0, 1, 3


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _passphrase(env: str | None, *, confirm: bool = False, ask: bool = False) -> bytes | None:
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"environment variable {env} is empty or unset")
        return value.encode()
    if ask and sys.stdin.isatty():
        first = getpass.getpass("passphrase (empty for none): ")
        if confirm and first and getpass.getpass("again: ") != first:
            raise ConfigError("the passphrases differ")
        return first.encode() or None
    return None


def _private_key(path: Path, env: str | None) -> Any:
    from .keys import KeyFileError, load_private_key

    try:
        return load_private_key(path, _passphrase(env))
    except KeyFileError as exc:
        if "encrypted" in exc.message and env is None and sys.stdin.isatty():
            return load_private_key(path, _passphrase(None, ask=True))
        raise


def _trust(path: Path) -> Any:
    from .trust import load_trust

    return load_trust(path)


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"invalid time {value!r} (ISO 8601, e.g. 2026-01-01 or 2026-01-01T00:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ------------------------------------------------------------------ keys

@keys_app.command("generate", epilog="Example: lumina-audit keys generate --out keys/alice --principal alice@lab "
                  "--namespace lumina-audit/manifest --namespace lumina-audit/ledger")
def keys_generate(
    out: Annotated[Path, typer.Option(help="Path prefix: writes PREFIX.key (mode 0600) and PREFIX.pub.")],
    principal: Annotated[str | None, typer.Option(help="Print a trust-file line for this principal.")] = None,
    namespace: Annotated[list[str], typer.Option(help="Namespaces of that line; repeatable.")] = [],  # noqa: B006
    passphrase_env: PassEnvOpt = None,
    ask_passphrase: Annotated[bool, typer.Option(help="Prompt for a passphrase to encrypt the key.")] = False,
) -> None:
    """Generate an Ed25519 key pair; the private key is never overwritten."""
    from .keys import generate, key_id, write_private_key, write_public_key
    from .trust import NAMESPACES, format_entry

    out.parent.mkdir(parents=True, exist_ok=True)
    key = generate()
    write_private_key(out.with_name(out.name + ".key"), key, _passphrase(passphrase_env, confirm=True,
                                                                         ask=ask_passphrase))
    write_public_key(out.with_name(out.name + ".pub"), key.public_key(), principal or out.name)
    _out(f"key id {key_id(key.public_key())}")
    _out(f"wrote {out}.key (private, mode 0600) and {out}.pub")
    if principal:
        _out(format_entry(principal, namespace or list(NAMESPACES), key.public_key(), comment=out.name))


@keys_app.command("trust-line", epilog="Example: lumina-audit keys trust-line keys/bob.pub --principal bob@lab "
                  "--namespace lumina-audit/manifest --valid-before 2027-01-01")
def keys_trust_line(
    public_key: Annotated[Path, typer.Argument(help="Public key file (ssh-ed25519 line).")],
    principal: Annotated[str, typer.Option(help="Who holds the key.")],
    namespace: Annotated[list[str], typer.Option(help="Namespace; repeatable.")],
    valid_after: Annotated[str | None, typer.Option(help="ISO date or time (UTC).")] = None,
    valid_before: Annotated[str | None, typer.Option(help="ISO date or time (UTC).")] = None,
) -> None:
    """Print the trust-file line that lets PRINCIPAL's key sign in the given namespaces."""
    from .keys import parse_public_key
    from .trust import format_entry, parse_trust

    pub = parse_public_key(public_key.read_text(encoding="utf-8"))
    line = format_entry(principal, namespace, pub, _time(valid_after), _time(valid_before))
    parse_trust(line)  # refuse what the parser would refuse
    _out(line)


def _key_event(ledger: Path, trust: Path, key: Path, passphrase_env: str | None, kind: str,
               body: dict[str, Any]) -> None:
    from .keys import key_id
    from .ledger import NAMESPACE, Ledger

    signer = _private_key(key, passphrase_env)
    entry = _trust(trust).authorise(key_id(signer.public_key()), NAMESPACE, datetime.now(UTC))
    appended = Ledger.open(ledger).append(kind, body, signer, entry.principal)
    _out(f"recorded {kind} as ledger record {appended.seq}")


@keys_app.command("revoke", epilog="Example: lumina-audit keys revoke 3f2a...e1 --ledger work/ledger "
                  "--trust trust --key keys/admin.key --reason 'laptop stolen'")
def keys_revoke(
    key_id_hex: Annotated[str, typer.Argument(metavar="KEY_ID", help="Key id (SHA-256 hex) to revoke.")],
    ledger: Annotated[Path, typer.Option(help="Ledger directory.")],
    trust: TrustOpt,
    key: KeyOpt,
    reason: Annotated[str, typer.Option(help="Why the key is revoked.")],
    passphrase_env: PassEnvOpt = None,
) -> None:
    """Record a key revocation: later records signed by that key are invalid."""
    _key_event(ledger, trust, key, passphrase_env, "key-revocation", {"key_id": key_id_hex, "reason": reason})


@keys_app.command("rotate", epilog="Example: lumina-audit keys rotate --ledger work/ledger --trust trust "
                  "--key keys/old.key --new keys/new.pub")
def keys_rotate(
    ledger: Annotated[Path, typer.Option(help="Ledger directory.")],
    trust: TrustOpt,
    key: Annotated[Path, typer.Option("--key", help="The OLD private key (it signs the rotation).")],
    new: Annotated[Path, typer.Option(help="The new public key file.")],
    passphrase_env: PassEnvOpt = None,
) -> None:
    """Record a key rotation, signed by the old key; the old key may not sign later records."""
    from .keys import key_id, parse_public_key

    old = _private_key(key, passphrase_env)
    new_id = key_id(parse_public_key(new.read_text(encoding="utf-8")))
    _key_event(ledger, trust, key, passphrase_env, "key-rotation",
               {"old_key_id": key_id(old.public_key()), "new_key_id": new_id})


# ------------------------------------------------------------------ manifests

@manifest_app.command("sign", epilog="Example: lumina-audit manifest sign manifests/demo/extract.yaml "
                      "--key keys/alice.key")
def manifest_sign(
    manifest: Annotated[Path, typer.Argument(help="Manifest YAML.")],
    key: KeyOpt,
    passphrase_env: PassEnvOpt = None,
) -> None:
    """Sign a manifest (adds a signature to MANIFEST.sig; several signers may sign)."""
    from .keys import key_id
    from .manifest import load_manifest, sign_manifest

    signer = _private_key(key, passphrase_env)
    sig = sign_manifest(manifest, signer)
    _out(f"signed {manifest} (digest {load_manifest(manifest).digest}) with key "
         f"{key_id(signer.public_key())[:16]}...; signatures in {sig}")


@manifest_app.command("verify", epilog="Example: lumina-audit manifest verify manifests/demo/extract.yaml "
                      "--trust trust")
def manifest_verify(
    manifest: Annotated[Path, typer.Argument(help="Manifest YAML.")],
    trust: TrustOpt,
    as_json: JsonOpt = False,
) -> None:
    """Verify a manifest's signatures against the trust file (exit 0 valid, 1 invalid)."""
    from .manifest import verify_manifest

    verified = verify_manifest(manifest, _trust(trust))
    signers = [{"principal": s.principal, "key_id": s.key_id} for s in verified.signers]
    if as_json:
        _out(json.dumps({"valid": True, "manifest_digest": verified.loaded.digest, "signers": signers}, indent=1))
    else:
        _out(f"valid: {manifest} (digest {verified.loaded.digest})")
        for s in signers:
            _out(f"  signed by {s['principal']} (key {s['key_id'][:16]}...)")


# ------------------------------------------------------------------ run

def run(
    manifest: Annotated[Path, typer.Argument(help="Signed manifest YAML.")],
    trust: TrustOpt,
    key: Annotated[Path, typer.Option("--key", help="Operator key that signs the ledger record.")],
    passphrase_env: PassEnvOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a signed manifest: verify it, compute, write outputs atomically, record the run in the ledger."""
    from .run import run_manifest

    progress = _Progress()
    try:
        result = run_manifest(manifest, _trust(trust), _private_key(key, passphrase_env), progress.update)
    finally:
        progress.close()
    certificates = [{"path": str(c.path), "record": c.seq, "signed_pdf_sha256": c.signed_sha256}
                    for c in result.certificates]
    doc = {"manifest_digest": result.manifest_digest, "ledger": str(result.ledger), "record": result.seq,
           "outputs": [str(p) for p in result.outputs], **result.summary, "certificates": certificates}
    if as_json:
        _out(json.dumps(doc, indent=1))
        return
    s = result.summary
    _out(f"run recorded as ledger record {result.seq} in {result.ledger}")
    for p in result.outputs:
        _out(f"  output {p}")
    for c in certificates:
        _out(f"  certificate {c['path']} (ledger record {c['record']})")
    if "songs" in s:
        _out(f"  {s['songs']} song(s), {s['chunks']} chunk(s)")
    elif "controls" in s:
        _out(f"  {s['controls']} control(s) against {s['catalog_songs']} catalog song(s): tau P {s['P_tau']:.6g}, "
             f"M {s['M_tau']:.6g}")
    elif "queries" in s:
        _out(f"  {s['queries']} query(ies); `lumina-audit report show REPORT` prints the verdicts")
    _out(f"  signature space {str(s.get('signature_space_sha256'))[:16]}...")


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


# ------------------------------------------------------------------ ledger

def _report_json(report: Any) -> dict[str, Any]:
    return {"path": str(report.path), "status": report.status, "bottom_line": report.bottom_line,
            "records": report.records, "checkpoints": report.checkpoints,
            "findings": [{"record": f.seq, "step": f.step, "message": f.message, "severity": f.severity}
                         for f in report.findings]}


@verify_app.command("ledger", epilog="Example: lumina-audit verify ledger work/ledger --trust trust "
                    "--checkpoint saved-checkpoint.txt")
def verify_ledger(
    path: Annotated[Path, typer.Argument(help="Ledger directory.")] = Path("ledger"),
    trust: TrustOpt = Path("trust"),
    checkpoint: Annotated[Path | None, typer.Option(help="A checkpoint kept elsewhere (catches truncation "
                                                    "and rewrites).")] = None,
    outputs: Annotated[bool, typer.Option(help="Check that recorded outputs still have their hashes.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Verify a ledger: chain, signatures, Merkle roots, checkpoint consistency, outputs on disk.

    Exit 0 valid, 1 invalid, 3 could not check.
    """
    from .ledger import verify

    external = checkpoint.read_text(encoding="utf-8") if checkpoint is not None else None
    report = verify(path, _trust(trust), check_outputs=outputs, external_checkpoint=external)
    if as_json:
        _out(json.dumps(_report_json(report), indent=1))
    else:
        _out(f"{report.status.upper()}: {path}: {report.records} record(s), {report.checkpoints} checkpoint(s)")
        for f in report.findings:
            where = f"record {f.seq}" if f.seq is not None else "ledger"
            _out(f"  {where}: [{f.step}] {f.message}")
    raise typer.Exit({"valid": EXIT_VALID, "invalid": EXIT_INVALID}.get(report.status, EXIT_UNCHECKED))


@ledger_app.command("show", epilog="Example: lumina-audit ledger show work/ledger --json")
def ledger_show(
    path: Annotated[Path, typer.Argument(help="Ledger directory.")],
    as_json: JsonOpt = False,
) -> None:
    """List the records of a ledger (inspection; use `verify ledger` to check it)."""
    from .ledger import Ledger

    led = Ledger.open(path)
    rows: list[dict[str, Any]] = [
        {"record": r.seq, "time": r.time.isoformat(), "kind": r.kind, "principal": r.principal, "key_id": r.key_id,
         "manifest_digest": r.body.get("manifest_digest"),
         "outputs": [o.get("path") for o in r.body.get("outputs", [])]} for r in led.records()]
    if as_json:
        _out(json.dumps({"origin": led.origin, "records": rows}, indent=1))
        return
    _out(f"ledger {path} (origin {led.origin})")
    for row in rows:
        _out(f"  {row['record']:>5}  {row['time']}  {row['kind']:<15} {row['principal']:<20} "
             f"{', '.join(str(o) for o in row['outputs'])}")


@ledger_app.command("checkpoint", epilog="Example: lumina-audit ledger checkpoint work/ledger > checkpoint.txt")
def ledger_checkpoint(path: Annotated[Path, typer.Argument(help="Ledger directory.")]) -> None:
    """Print the latest signed checkpoint (C2SP signed note); keep copies elsewhere to catch truncation."""
    from .ledger import Ledger, LedgerError

    latest = Ledger.open(path).latest_checkpoint()
    if latest is None:
        raise LedgerError(f"{path}: the ledger has no checkpoint yet")
    sys.stdout.write(latest)


@ledger_app.command("prove", epilog="Example: lumina-audit ledger prove 3 --ledger work/ledger > proof-3.json")
def ledger_prove(
    record: Annotated[int, typer.Argument(help="Record number (from 0).")],
    ledger: Annotated[Path, typer.Option(help="Ledger directory.")] = Path("ledger"),
) -> None:
    """Print an inclusion proof of a record against the latest checkpoint (JSON, verifiable offline)."""
    from .ledger import prove

    _out(json.dumps(prove(ledger, record), indent=1))


@verify_app.command("proof", epilog="Example: lumina-audit verify proof proof-3.json --trust trust")
def verify_proof_cmd(
    proof: Annotated[Path, typer.Argument(help="Inclusion proof JSON from `ledger prove`.")],
    trust: TrustOpt,
    as_json: JsonOpt = False,
) -> None:
    """Verify an inclusion proof offline: checkpoint signature, leaf, Merkle path (exit 0/1)."""
    from .ledger import verify_proof

    try:
        doc = json.loads(proof.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{proof}: cannot read proof ({exc})") from None
    report = verify_proof(doc, _trust(trust))
    if as_json:
        _out(json.dumps({"valid": report.bottom_line, "origin": report.origin, "record": report.seq,
                         "kind": report.kind, "tree_size": report.tree_size, "root": report.root,
                         "record_signer": report.record_signer,
                         "checkpoint_key_id": report.checkpoint_key_id}, indent=1))
    else:
        _out(f"valid: record {report.seq} ({report.kind}, signed by {report.record_signer}) is in ledger "
             f"{report.origin} of size {report.tree_size}, checkpoint key {report.checkpoint_key_id[:16]}...")


@ledger_app.command("repair", epilog="Example: lumina-audit ledger repair work/ledger --trust trust --key keys/op.key")
def ledger_repair(
    path: Annotated[Path, typer.Argument(help="Ledger directory.")],
    key: Annotated[Path | None, typer.Option("--key", help="Also checkpoint complete records that no "
                                             "checkpoint covers, signed with this key.")] = None,
    trust: Annotated[Path | None, typer.Option("--trust", help="Trust file (needed with --key).")] = None,
    passphrase_env: PassEnvOpt = None,
) -> None:
    """Remove a torn tail left by a crashed writer; never removes a complete record or checkpoint."""
    from .keys import key_id
    from .ledger import NAMESPACE, repair

    signer, principal = None, None
    if key is not None:
        if trust is None:
            raise ConfigError("--key needs --trust (to find the key's principal)")
        signer = _private_key(key, passphrase_env)
        principal = _trust(trust).authorise(key_id(signer.public_key()), NAMESPACE, datetime.now(UTC)).principal
    report = repair(path, signer_key=signer, principal=principal)
    _out(f"repaired {path}: removed {report.records_bytes_removed} torn byte(s) of records and "
         f"{report.checkpoints_bytes_removed} of checkpoints; {report.records} record(s), "
         f"{report.checkpoints} checkpoint(s)" + (" ; new checkpoint written" if report.checkpoint_added else ""))


# ------------------------------------------------------------------ reports

report_app = typer.Typer(no_args_is_help=True, help="Read attribution reports.")


@report_app.command("show", epilog="Example: lumina-audit report show work/demo/out/reports/query.json")
def report_show(
    report: Annotated[Path, typer.Argument(help="Attribution report (JSON).")],
    as_json: JsonOpt = False,
) -> None:
    """Print a report as a table per channel: share, similarity, z, above or below the threshold."""
    from rich.console import Console
    from rich.table import Table

    from .reports import read_report

    doc, digest = read_report(report)
    if as_json:
        _out(json.dumps(doc | {"sha256": digest}, indent=1))
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


# ------------------------------------------------------------------ certificates

certificate_app = typer.Typer(no_args_is_help=True, help="Issue signed PDF attribution certificates.")
pki_app = typer.Typer(no_args_is_help=True, help="A throwaway X.509 PKI for tests and demos (never trusted).")


@pki_app.command("throwaway", epilog="Example: lumina-audit pki throwaway --out work/pki --kind ed25519 "
                 "--pkcs12-passphrase-env P12_PASS")
def pki_throwaway(
    out: Annotated[Path, typer.Option(help="Folder for root.pem, signer.key (0600) and signer.pem (never "
                                      "overwritten).")],
    kind: Annotated[Literal["ec", "rsa", "ed25519"], typer.Option(
        case_sensitive=False, help="Key type of the root and the signer: ECDSA P-256, RSA 2048 or Ed25519.")] = "ec",
    pkcs12_passphrase_env: Annotated[str | None, typer.Option(
        help="Also write signer.p12 (key, certificate and root; mode 0600), encrypted with the passphrase in "
             "this environment variable.")] = None,
    rsa: Annotated[bool, typer.Option(hidden=True, help="Same as --kind rsa (kept for old scripts).")] = False,
) -> None:
    """Make a throwaway root CA and document-signing certificate (demos and tests only)."""
    from .pki import write_throwaway_pki

    if rsa and kind not in ("ec", "rsa"):
        raise ConfigError("--rsa is the old spelling of --kind rsa; give only --kind")
    p12_pass = _passphrase(pkcs12_passphrase_env) if pkcs12_passphrase_env is not None else None
    paths = write_throwaway_pki(out, "rsa" if rsa else kind, pkcs12_passphrase=p12_pass)
    _out(f"wrote {', '.join(str(p) for p in paths.values())} (throwaway {'rsa' if rsa else kind}: trust it only "
         "for a demo)")


@certificate_app.command("issue", epilog="Example: lumina-audit certificate issue out/reports/q.json --ledger ledger "
                         "--trust trust --key keys/operator.key --signer-key pki/signer.key "
                         "--signer-cert pki/signer.pem --page-size Letter --out out/q.pdf ; or, with a PKCS#12 "
                         "bundle and a timestamp: lumina-audit certificate issue out/reports/q.json --ledger ledger "
                         "--trust trust --key keys/operator.key --pkcs12 pki/signer.p12 --signer-passphrase-env "
                         "P12_PASS --timestamp-url http://tsa.example.org/tsr --out out/q.pdf")
def certificate_issue(
    report: Annotated[Path, typer.Argument(help="Attribution report (JSON) recorded in the ledger.")],
    ledger: Annotated[Path, typer.Option(help="Ledger directory that recorded the report.")],
    trust: TrustOpt,
    key: Annotated[Path, typer.Option("--key", help="Operator key that signs the ledger record.")],
    out: Annotated[Path, typer.Option(help="Signed PDF to write (never overwritten).")],
    signer_key: Annotated[Path | None, typer.Option(help="Private key of the X.509 document signer (PEM or DER; "
                                                    "ECDSA P-256/P-384, RSA >= 2048 or Ed25519).")] = None,
    signer_cert: Annotated[Path | None, typer.Option(help="Certificate of the document signer (PEM or "
                                                     "DER).")] = None,
    pkcs12: Annotated[Path | None, typer.Option(help="PKCS#12 bundle with the signer's key, certificate and chain, "
                                                "instead of --signer-key and --signer-cert.")] = None,
    chain: Annotated[list[Path], typer.Option(help="Intermediate certificates (PEM or DER); "
                                              "repeatable.")] = [],  # noqa: B006
    page_size: Annotated[Literal["A4", "Letter"], typer.Option(case_sensitive=False,
                                                               help="Page size: A4 or US Letter.")] = "A4",
    timestamp_url: Annotated[str | None, typer.Option(help="RFC 3161 timestamp authority (PAdES B-T); issuing "
                                                      "fails if it does not answer.")] = None,
    passphrase_env: PassEnvOpt = None,
    signer_passphrase_env: Annotated[str | None, typer.Option(
        help="Read the passphrase of the signer key or PKCS#12 bundle from this environment variable "
             "(else it is asked for on a terminal when needed).")] = None,
) -> None:
    """Render the report as a PDF/A-3b certificate, sign it (PAdES), record the issuance in the ledger.

    The signer is loaded and checked first (key matches certificate, valid now, supported key type).
    """
    from .certificate import CertificateError
    from .certify import issue_certificate
    from .keys import key_id
    from .ledger import NAMESPACE
    from .signer import load_signer

    operator = _private_key(key, passphrase_env)
    entry = _trust(trust).authorise(key_id(operator.public_key()), NAMESPACE, datetime.now(UTC))

    def signer_from(passphrase: bytes | None) -> Any:
        return load_signer(key=signer_key, cert=signer_cert, chain=chain, pkcs12=pkcs12, passphrase=passphrase)

    try:
        signer = signer_from(_passphrase(signer_passphrase_env))
    except CertificateError as exc:
        if "give its passphrase" not in exc.message or signer_passphrase_env is not None or not sys.stdin.isatty():
            raise
        signer = signer_from(_passphrase(None, ask=True))
    _out(f"signer {signer.describe()}")
    issued = issue_certificate(report, ledger, out, operator_key=operator, principal=entry.principal, signer=signer,
                               timestamp_url=timestamp_url, page_size=page_size)
    _out(f"issued {issued.path} ({issued.page_size}, signed PDF SHA-256 {issued.signed_sha256}"
         f"{', timestamped' if timestamp_url else ''}), recorded as ledger record {issued.seq}")


@verify_app.command("certificate", epilog="Example: lumina-audit verify certificate out/q.pdf --roots pki/root.pem "
                    "--trust trust --ledger ledger --rerender")
def verify_certificate_cmd(
    pdf: Annotated[Path, typer.Argument(help="Signed certificate (PDF).")],
    roots: Annotated[list[Path], typer.Option(help="Trusted root certificates (PEM); repeatable.")],
    trust: TrustOpt,
    ledger: Annotated[Path | None, typer.Option(help="Also check the certificate's checkpoint against this "
                                                "ledger.")] = None,
    rerender: Annotated[bool, typer.Option(help="Also check that a fresh rendering equals the signed "
                                           "revision.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify a certificate offline, step by step (exit 0 valid, 1 invalid)."""
    from .certificate import verify_certificate
    from .certify import check_against_ledger, rerender_matches

    data = pdf.read_bytes()
    ledger_trust = _trust(trust)
    report = verify_certificate(data, trust_roots_pem=[p.read_bytes() for p in roots], ledger_trust=ledger_trust)
    if ledger is not None:
        check_against_ledger(data, ledger, ledger_trust)
    if rerender:
        rerender_matches(data)
    stamp = report.timestamp.isoformat() if report.timestamp is not None else None
    doc = {"valid": True, "signer": report.signer_subject, "signer_fingerprint": report.signer_fingerprint,
           "timestamp": stamp, "timestamp_trusted": report.timestamp_trusted,
           "report_sha256": report.report_sha256, "ledger_origin": report.ledger_origin,
           "ledger_record": report.ledger_record, "checked_against_ledger": ledger is not None, "rerendered": rerender}
    if as_json:
        _out(json.dumps(doc, indent=1))
    else:
        _out(f"valid: {pdf}")
        _out(f"  1-2 signed by {report.signer_subject} (whole file, trusted root; certificate SHA-256 "
             f"{report.signer_fingerprint[:16]}...)")
        if stamp is not None:
            trusted = "a trusted" if report.timestamp_trusted else "an UNTRUSTED (not chained to --roots)"
            _out(f"      RFC 3161 timestamp {stamp} from {trusted} timestamp authority")
        else:
            _out("      no timestamp (PAdES B-B): the signing time is the signer's claim")
        _out(f"  3   attached report {report.report_sha256[:16]}... is an output of ledger record "
             f"{report.ledger_record}")
        _out(f"  4   that record is in ledger {report.ledger_origin} (size {report.tree_size}, signed checkpoint)")
        if ledger is not None:
            _out(f"  5   the checkpoint is consistent with {ledger}")
        if rerender:
            _out("  6   a fresh rendering of the report equals the signed revision")
