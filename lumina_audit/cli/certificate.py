"""``lumina-audit certificate issue`` and ``pki``: signed PDF certificates and a demo PKI.

``certificate verify`` is in :mod:`.verify`.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from ..errors import ConfigError
from ._common import (
    JsonOpt,
    PassEnvOpt,
    TrustOpt,
    echo,
    passphrase,
    private_key,
    trust_store,
)

__all__ = ["certificate_app", "pki_app"]

certificate_app = typer.Typer(no_args_is_help=True, help="Issue and verify signed PDF attribution certificates.")

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
    as_json: JsonOpt = False,
) -> None:
    """Make a throwaway root CA and document-signing certificate (demos and tests only)."""
    from ..certificates.pki import write_throwaway_pki

    if rsa and kind not in ("ec", "rsa"):
        raise ConfigError("--rsa is the old spelling of --kind rsa; give only --kind")
    p12_pass = passphrase(pkcs12_passphrase_env) if pkcs12_passphrase_env is not None else None
    paths = write_throwaway_pki(out, "rsa" if rsa else kind, pkcs12_passphrase=p12_pass)
    if as_json:
        echo(json.dumps({"kind": "rsa" if rsa else kind, "throwaway": True,
                         "files": {role: str(path) for role, path in paths.items()}}, indent=1))
        return
    echo(f"wrote {', '.join(str(p) for p in paths.values())} (throwaway {'rsa' if rsa else kind}: trust it only "
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
    as_json: JsonOpt = False,
) -> None:
    """Render the report as a PDF/A-3b certificate, sign it (PAdES), record the issuance in the ledger.

    The signer is loaded and checked first (key matches certificate, valid now, supported key type).
    """
    from ..certificates.issue import issue_certificate
    from ..certificates.pdf import CertificateError
    from ..certificates.signer import load_signer
    from ..evidence.keys import key_id
    from ..evidence.ledger import LEDGER_NAMESPACE

    operator = private_key(key, passphrase_env)
    entry = trust_store(trust).authorise(key_id(operator.public_key()), LEDGER_NAMESPACE, datetime.now(UTC))

    def signer_from(passphrase: bytes | None) -> Any:
        return load_signer(key=signer_key, cert=signer_cert, chain=chain, pkcs12=pkcs12, passphrase=passphrase)

    try:
        signer = signer_from(passphrase(signer_passphrase_env))
    except CertificateError as exc:
        if "give its passphrase" not in exc.message or signer_passphrase_env is not None or not sys.stdin.isatty():
            raise
        signer = signer_from(passphrase(None, ask=True))
    if not as_json:
        echo(f"signer {signer.describe()}")
    issued = issue_certificate(report, ledger, out, operator_key=operator, principal=entry.principal, signer=signer,
                               timestamp_url=timestamp_url, page_size=page_size)
    if as_json:
        echo(json.dumps({"path": str(issued.path), "ledger": str(ledger), "record": issued.seq,
                         "page_size": issued.page_size, "report_sha256": issued.report_sha256,
                         "signed_pdf_sha256": issued.signed_sha256, "timestamped": timestamp_url is not None,
                         "signer": signer.subject, "signer_fingerprint": signer.fingerprint,
                         "signer_not_after": signer.not_after.isoformat()}, indent=1))
        return
    echo(f"issued {issued.path} ({issued.page_size}, signed PDF SHA-256 {issued.signed_sha256}"
         f"{', timestamped' if timestamp_url else ''}), recorded as ledger record {issued.seq}")
