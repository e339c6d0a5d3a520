"""The X.509 document signer of certificates, and PAdES signing (pyHanko).

:func:`load_signer` loads the X.509 document signer once, before any work: a private key and
a certificate (PEM or DER), or a PKCS#12 bundle, plus chain certificates; it refuses a wrong
or missing passphrase, a certificate file without exactly one certificate, a key that does
not match the certificate's public key, a certificate that is not valid now or may not sign,
and key types other than ECDSA P-256/P-384, RSA >= 2048 bits and Ed25519. Ed25519
signatures (RFC 8419, SHA-512) are made and checked by pyHanko, which marks the PDF with the
ISO 32002 extension; PDF readers that do not implement ISO 32002 cannot check them, so
prefer ECDSA or RSA for certificates that people open in arbitrary readers.

:func:`sign_certificate` adds one PAdES signature (pyHanko): B-B, or B-T with a signature
timestamp token from an RFC 3161 timestamp authority (``timestamp_url``); an unreachable or
refusing authority is an error, never a silent B-B.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._internal.urls import timestamp_url_problem
from .pdf import CertificateError, page_size_of, stamp_box

__all__ = ["SignerCredentials", "check_timestamp_url", "load_signer", "sign_certificate"]

_TSA_TIMEOUT = 10  # seconds for one request to the timestamp authority


# --------------------------------------------------------------------------- signer credentials

#: ECDSA curves a signer may use (cryptography's curve name -> how it is shown).
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}
_MIN_RSA_BITS = 2048


@dataclass(frozen=True, repr=False)
class SignerCredentials:
    """The X.509 document signer: private key, certificate and extra chain certificates, checked.

    Made by :func:`load_signer`. ``key`` is an ``asn1crypto.keys.PrivateKeyInfo`` and ``cert`` and
    ``chain`` hold ``asn1crypto.x509.Certificate`` objects, as pyHanko wants them. ``repr`` shows
    :meth:`describe`, never the key.
    """

    key: Any
    cert: Any
    chain: tuple[Any, ...]
    key_type: str

    def __repr__(self) -> str:
        return f"SignerCredentials({self.describe()})"

    @property
    def subject(self) -> str:
        return str(self.cert.subject.human_friendly)

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the certificate's DER encoding."""
        return str(self.cert.sha256.hex())

    @property
    def not_after(self) -> datetime:
        return datetime.fromtimestamp(self.cert.not_valid_after.timestamp(), UTC)

    def describe(self) -> str:
        """One line for people: who signs, with what, until when."""
        return (f"{self.subject} ({self.key_type}, certificate SHA-256 {self.fingerprint[:16]}..., valid until "
                f"{self.not_after:%Y-%m-%d %H:%M} UTC, {len(self.chain)} chain certificate(s))")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None


def _load_key(path: Path, data: bytes, passphrase: bytes | None) -> Any:
    """A private key from PEM or DER (PKCS#8, PKCS#1 or SEC1), encrypted or not."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    loader = serialization.load_pem_private_key if b"-----BEGIN" in data else serialization.load_der_private_key

    def attempt(password: bytes | None) -> Any:
        return loader(data, password=password)

    try:
        return attempt(passphrase)
    except UnsupportedAlgorithm as exc:
        raise CertificateError(f"{path}: unsupported private key ({exc})") from None
    except TypeError:  # encrypted without a passphrase, or a passphrase for a key that is not encrypted
        if passphrase is None:
            raise CertificateError(f"{path}: the private key is encrypted; give its passphrase") from None
        with contextlib.suppress(TypeError, ValueError, UnsupportedAlgorithm):
            return attempt(None)
        raise CertificateError(f"{path}: not a readable private key") from None
    except ValueError:
        if passphrase is not None:
            try:
                attempt(None)
            except TypeError:  # it is encrypted: the passphrase is wrong
                raise CertificateError(f"{path}: wrong passphrase for the private key") from None
            except (ValueError, UnsupportedAlgorithm):
                pass
        raise CertificateError(f"{path}: not a private key (PEM or DER: PKCS#8, PKCS#1 or SEC1)") from None


def _load_certs(path: Path, data: bytes) -> list[Any]:
    """Certificates (cryptography objects) from PEM (one or more) or DER (one)."""
    from cryptography import x509

    try:
        if b"-----BEGIN" in data:
            return list(x509.load_pem_x509_certificates(data))
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise CertificateError(f"{path}: not an X.509 certificate (PEM or DER)") from None


def _load_pkcs12(path: Path, data: bytes, passphrase: bytes | None) -> tuple[Any, Any, list[Any]]:
    from asn1crypto import pkcs12 as asn1_pkcs12  # type: ignore[import-untyped]
    from cryptography.hazmat.primitives.serialization import pkcs12

    attempts = [passphrase, None] if passphrase is not None else [None]
    for password in attempts:  # an unneeded passphrase is ignored, as for keys
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, password)
        except (ValueError, TypeError):
            continue
        except Exception as exc:  # unsupported algorithms inside the bundle
            raise CertificateError(f"{path}: cannot open the PKCS#12 bundle ({exc})") from None
        if key is None:
            raise CertificateError(f"{path}: the PKCS#12 bundle holds no private key")
        if cert is None:
            raise CertificateError(f"{path}: the PKCS#12 bundle holds no certificate for its key")
        return key, cert, list(extra)
    try:
        is_pkcs12 = asn1_pkcs12.Pfx.load(data)["auth_safe"]["content_type"].native is not None
    except Exception:
        is_pkcs12 = False
    if not is_pkcs12:
        raise CertificateError(f"{path}: not a PKCS#12 bundle")
    if passphrase is None:
        raise CertificateError(f"{path}: the PKCS#12 bundle is encrypted; give its passphrase")
    raise CertificateError(f"{path}: wrong passphrase for the PKCS#12 bundle")


def _key_type(path: Path, key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVES:
        return f"ECDSA {_CURVES[key.curve.name]}"
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= _MIN_RSA_BITS:
        return f"RSA {key.key_size}"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "Ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        found = f"ECDSA on curve {key.curve.name}"
    elif isinstance(key, rsa.RSAPrivateKey):
        found = f"RSA {key.key_size}"
    else:
        found = type(key).__name__.lstrip("_")
    raise CertificateError(f"{path}: unsupported signing key ({found}); use ECDSA P-256 or P-384, "
                           f"RSA of {_MIN_RSA_BITS} bits or more, or Ed25519")


def _check_certificate(path: Path, key: Any, cert: Any, now: datetime) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        cert_public = cert.public_key().public_bytes(*spki)
    except Exception as exc:
        raise CertificateError(f"{path}: cannot read the certificate's public key ({exc})") from None
    if key.public_key().public_bytes(*spki) != cert_public:
        raise CertificateError(f"{path}: the private key does not match the certificate's public key")
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now < start:
        raise CertificateError(f"{path}: the certificate is not valid yet (valid from {start:%Y-%m-%d %H:%M} UTC)")
    if now > end:
        raise CertificateError(f"{path}: the certificate expired on {end:%Y-%m-%d %H:%M} UTC")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise CertificateError(f"{path}: the certificate's key usage allows neither digitalSignature nor "
                               "nonRepudiation, so it cannot sign documents")


def load_signer(*, key: Path | None = None, cert: Path | None = None, chain: Sequence[Path] = (),
                pkcs12: Path | None = None, passphrase: bytes | None = None) -> SignerCredentials:
    """Load and check the X.509 document signer, before any work is done.

    Either ``key`` and ``cert`` (PEM or DER; ``passphrase`` decrypts the key) or ``pkcs12`` (a
    bundle holding the key, its certificate and maybe chain certificates; ``passphrase`` opens
    it), never both; ``chain`` adds intermediate certificates (PEM or DER files, several
    certificates per PEM file allowed). Refused with a :class:`CertificateError`: unreadable
    files, a missing or wrong passphrase, a certificate file that does not hold exactly one
    certificate, a key that does not match the certificate, a certificate that is not valid now
    or whose key usage forbids signing, and key types other than ECDSA P-256/P-384, RSA of 2048
    bits or more, and Ed25519.
    """
    from cryptography.hazmat.primitives import serialization
    from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data

    if pkcs12 is not None and (key is not None or cert is not None):
        raise CertificateError("give the signer either as a PKCS#12 bundle or as a key and a certificate, not both")
    if pkcs12 is not None:
        where = pkcs12
        private, certificate, extra = _load_pkcs12(pkcs12, _read(pkcs12, "PKCS#12 bundle"), passphrase)
    elif key is not None and cert is not None:
        where = cert
        private = _load_key(key, _read(key, "signer key"), passphrase)
        certs = _load_certs(cert, _read(cert, "signer certificate"))
        if len(certs) != 1:
            raise CertificateError(f"{cert}: must hold exactly one certificate, not {len(certs)} "
                                   "(give intermediates as chain files)")
        certificate, extra = certs[0], []
    elif key is None and cert is None:
        raise CertificateError("no document signer given: a key and a certificate, or a PKCS#12 bundle")
    else:
        raise CertificateError("the signer needs both a private key and its certificate")
    for path in chain:
        found = _load_certs(path, _read(path, "chain certificate"))
        if not found:
            raise CertificateError(f"{path}: holds no certificate")
        extra += found
    key_type = _key_type(key or where, private)
    _check_certificate(where, private, certificate, datetime.now(UTC))
    der = serialization.Encoding.DER
    pkcs8 = private.private_bytes(der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    def asn1_cert(c: Any) -> Any:  # cryptography's certificate as pyHanko's (asn1crypto)
        return next(iter(load_certs_from_pemder_data(c.public_bytes(der))))

    return SignerCredentials(key=load_private_key_from_pemder_data(pkcs8, passphrase=None),
                             cert=asn1_cert(certificate), chain=tuple(asn1_cert(c) for c in extra), key_type=key_type)


# --------------------------------------------------------------------------- signing


def check_timestamp_url(url: str) -> str:
    """An ``http`` or ``https`` URL with a host (RFC 3161 over HTTP), else :class:`CertificateError`."""
    problem = timestamp_url_problem(url)
    if problem is not None:
        raise CertificateError(problem)
    return url


#: Candidates for the stamp's embedded font (PDF/A needs every font embedded); Debian's fonts-dejavu-core.
STAMP_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", "/usr/share/fonts/TTF/DejaVuSansMono.ttf")
#: The visible signature on page 1: who signed (the certificate subject's name), when, and the certificate.
STAMP_TEXT = "Digitally signed by\n%(signer)s\non %(ts)s\ncertificate SHA-256\n%(fp1)s\n%(fp2)s"


def _font_1000_upem(path: Path) -> Path:
    """``path`` scaled to 1,000 units per em, written once beside the temporary files.

    pyHanko 0.38 writes a font's glyph widths into the PDF in the font's own units, which the PDF
    takes as thousandths of an em: right only for fonts of 1,000 units per em. DejaVu has 2,048,
    so its stamp text would be spaced twice too wide.
    """
    import hashlib
    import tempfile

    from fontTools.ttLib import TTFont
    from fontTools.ttLib.scaleUpem import scale_upem

    from .._internal.fileio import write_file

    data = path.read_bytes()
    out = Path(tempfile.gettempdir()) / f"lumina-audit-stamp-{hashlib.sha256(data).hexdigest()[:16]}.ttf"
    if not out.is_file():
        font = TTFont(io.BytesIO(data))
        if font["head"].unitsPerEm != 1000:
            scale_upem(font, 1000)
        buf = io.BytesIO()
        font.save(buf)
        write_file(out, buf.getvalue(), replace=True)
    return out


def _stamp_style(font: str | None = None) -> Any:
    from pyhanko import stamp
    from pyhanko.pdf_utils import text
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory

    found = font or next((f for f in STAMP_FONTS if Path(f).is_file()), None)
    if found is None:
        raise CertificateError(f"no font for the visible signature ({' or '.join(STAMP_FONTS)})",
                               hint="install Debian's fonts-dejavu-core")
    path = str(_font_1000_upem(Path(found)))
    return stamp.TextStampStyle(stamp_text=STAMP_TEXT, border_width=1, timestamp_format="%Y-%m-%d %H:%M:%S %Z",
                                text_box_style=text.TextBoxStyle(font=GlyphAccumulatorFactory(path, font_size=7),
                                                                 font_size=7))


def sign_certificate(pdf: bytes, signer: SignerCredentials, *, timestamp_url: str | None = None) -> bytes:
    """Sign with one PAdES B-B signature; B-T when ``timestamp_url`` names an RFC 3161 server.

    The signature is visible: a stamp in the corner of page 1 that the template keeps free
    (:func:`.pdf.stamp_box`) names the signer (the certificate subject's name), the signing time
    and the certificate's SHA-256. It is still the one signature, over the whole file.
    A timestamp authority that cannot be reached, or that refuses, is a :class:`CertificateError`
    (no unstamped signature is made instead).
    """
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers, timestamps
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    simple = signers.SimpleSigner(signing_cert=signer.cert, signing_key=signer.key,
                                  cert_registry=SimpleCertificateStore.from_certs(list(signer.chain)))  # type: ignore[no-untyped-call]
    meta = signers.PdfSignatureMetadata(field_name="LuminaCertificate", subfilter=fields.SigSeedSubFilter.PADES,
                                        reason="lumina-audit attribution certificate")
    tsa = None
    if timestamp_url is not None:
        tsa = timestamps.HTTPTimeStamper(check_timestamp_url(timestamp_url), timeout=_TSA_TIMEOUT)
    box = stamp_box(page_size_of(pdf))
    field = fields.SigFieldSpec(sig_field_name="LuminaCertificate", on_page=0, box=box)  # type: ignore[arg-type]
    style = _stamp_style()
    fp = signer.fingerprint
    out = io.BytesIO()
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        signers.PdfSigner(meta, signer=simple, timestamper=tsa, stamp_style=style, new_field_spec=field).sign_pdf(
            writer, output=out, appearance_text_params={"fp1": fp[:32], "fp2": fp[32:]})
    except Exception as exc:
        tsa_error = _timestamp_error(exc)
        if tsa_error is not None:
            raise CertificateError(f"cannot get a timestamp from {timestamp_url}: {tsa_error}") from None
        raise CertificateError(f"cannot sign the certificate ({type(exc).__name__}: {exc})") from None
    return out.getvalue()


def _timestamp_error(exc: BaseException) -> str | None:
    """What went wrong with the timestamp authority, when ``exc`` (or a cause of it) is about that."""
    from pyhanko.sign.timestamps import TimestampRequestError

    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, TimestampRequestError):
            cause = seen.__cause__ or seen.__context__
            return f"{seen} ({cause})" if cause is not None and str(cause) else str(seen)
        seen = seen.__cause__ or seen.__context__
    return None
