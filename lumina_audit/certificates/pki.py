"""A throwaway X.509 PKI (root and signer) for tests and the demo: never trusted by default.

Real certificates are signed with a key and certificate from the expert's own PKI (PEM or
DER files, or a PKCS#12 bundle; see :func:`lumina_audit.certificates.signer.load_signer`); this
module only exists so that the chain can be shown end to end. Kinds: ``ec`` (ECDSA P-256),
``rsa`` (RSA 2048) and ``ed25519``; the root and the signer use the same kind. With
``purpose="timestamping"`` the leaf is a time-stamping authority's certificate (extended key
usage ``timeStamping``, critical, as RFC 3161 requires), for testing PAdES B-T.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["KINDS", "Kind", "ThrowawayPki", "throwaway_pki", "write_throwaway_pki"]

Kind = Literal["ec", "rsa", "ed25519"]
KINDS: tuple[str, ...] = get_args(Kind)


@dataclass(frozen=True)
class ThrowawayPki:
    root_pem: bytes
    signer_key_pem: bytes = field(repr=False)
    signer_cert_pem: bytes

    def pkcs12(self, passphrase: bytes, name: str = "lumina-audit throwaway signer") -> bytes:
        """The signer's key and certificate, with the root as CA certificate, in a PKCS#12 bundle."""
        if not passphrase:
            raise ValueError("a PKCS#12 bundle of the throwaway PKI needs a passphrase")
        key = serialization.load_pem_private_key(self.signer_key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            raise TypeError(f"unexpected key type {type(key).__name__}")
        return pkcs12.serialize_key_and_certificates(
            name.encode(), key, x509.load_pem_x509_certificate(self.signer_cert_pem),
            [x509.load_pem_x509_certificate(self.root_pem)], serialization.BestAvailableEncryption(passphrase))


def _usage(ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not ca, content_commitment=not ca, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


def _new_key(kind: Kind) -> Any:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa":
        return rsa.generate_private_key(65537, 2048)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key kind {kind!r} (one of {', '.join(KINDS)})")


def throwaway_pki(kind: Kind = "ec", name: str = "lumina-audit throwaway", days: int = 30, *,
                  now: datetime | None = None,
                  purpose: Literal["document", "timestamping"] = "document") -> ThrowawayPki:
    """A root CA and a document-signing (or time-stamping) certificate, valid from ``now`` for ``days``.

    ``now`` (default: the clock) lets tests make certificates that have expired or are not yet valid.
    """
    now = now or datetime.now(UTC)
    root_key, signer_key = _new_key(kind), _new_key(kind)
    algorithm = None if kind == "ed25519" else hashes.SHA256()  # Ed25519 signs without a separate hash
    role = "time-stamping authority" if purpose == "timestamping" else "signer"
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} root ({kind})")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, algorithm))
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} {role} ({kind})")]))
               .issuer_name(root_name).public_key(signer_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(_usage(False), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                              critical=False))
    if purpose == "timestamping":
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    signer = builder.sign(root_key, algorithm)
    pem = serialization.Encoding.PEM
    key_pem = signer_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ThrowawayPki(root.public_bytes(pem), key_pem, signer.public_bytes(pem))


def write_throwaway_pki(folder: Path, kind: Kind = "ec", *, pkcs12_passphrase: bytes | None = None) -> dict[str, Path]:
    """Write ``root.pem``, ``signer.key`` (mode 0600) and ``signer.pem`` into ``folder``, never overwriting.

    With ``pkcs12_passphrase``, also ``signer.p12`` (mode 0600): the key, the certificate and the
    root, encrypted with that passphrase. Returns the paths by role (``root``, ``key``, ``cert``,
    ``pkcs12``).
    """
    from .._internal.fileio import FILE_MODE, SECRET_MODE, write_file
    from .pdf import CertificateError

    if kind not in KINDS:
        raise CertificateError(f"unknown key kind {kind!r} (one of {', '.join(KINDS)})")
    if pkcs12_passphrase is not None and not pkcs12_passphrase:
        raise CertificateError("the PKCS#12 passphrase is empty")
    pki = throwaway_pki(kind)
    files = {"root": ("root.pem", pki.root_pem, FILE_MODE), "key": ("signer.key", pki.signer_key_pem, SECRET_MODE),
             "cert": ("signer.pem", pki.signer_cert_pem, FILE_MODE)}
    if pkcs12_passphrase is not None:
        files["pkcs12"] = ("signer.p12", pki.pkcs12(pkcs12_passphrase), SECRET_MODE)
    paths = {role: folder / fname for role, (fname, _, _) in files.items()}
    for path in paths.values():
        if path.exists() or path.is_symlink():
            raise CertificateError(f"{path}: already exists; refusing to overwrite")
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for role, (_, data, mode) in files.items():
            write_file(paths[role], data, mode=mode)
            written.append(paths[role])
    except FileExistsError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise CertificateError(f"{exc.filename}: already exists; refusing to overwrite") from None
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise CertificateError(f"{folder}: cannot write the throwaway PKI ({exc.strerror})") from None
    return paths
