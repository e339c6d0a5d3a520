"""A throwaway X.509 PKI (root and signer) for tests and the demo: never trusted by default.

Real certificates are signed with a key and certificate from the expert's own PKI
(PEM files); this module only exists so that the chain can be shown end to end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

__all__ = ["ThrowawayPki", "throwaway_pki", "write_throwaway_pki"]


@dataclass(frozen=True)
class ThrowawayPki:
    root_pem: bytes
    signer_key_pem: bytes
    signer_cert_pem: bytes


def _usage(ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not ca, content_commitment=not ca, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


def throwaway_pki(kind: Literal["ec", "rsa"] = "ec", name: str = "lumina-audit throwaway",
                  days: int = 30) -> ThrowawayPki:
    """A root CA and a document-signing certificate (ECDSA P-256 or RSA 2048)."""
    def key() -> Any:
        return ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)

    now = datetime.now(UTC)
    root_key, signer_key = key(), key()
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} root ({kind})")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    signer = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} signer ({kind})")]))
              .issuer_name(root_name).public_key(signer_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=days))
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(_usage(False), critical=True)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
              .sign(root_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = signer_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ThrowawayPki(root.public_bytes(pem), key_pem, signer.public_bytes(pem))


def write_throwaway_pki(folder: Path, kind: Literal["ec", "rsa"] = "ec") -> dict[str, Path]:
    """Write ``root.pem``, ``signer.key`` (mode 0600) and ``signer.pem`` into ``folder``."""
    from ._internal.fileio import write_new

    pki = throwaway_pki(kind)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"root": folder / "root.pem", "key": folder / "signer.key", "cert": folder / "signer.pem"}
    paths["root"].write_bytes(pki.root_pem)
    write_new(paths["key"], pki.signer_key_pem, 0o600)
    paths["cert"].write_bytes(pki.signer_cert_pem)
    return paths
