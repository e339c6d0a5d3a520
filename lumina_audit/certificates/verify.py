"""Offline verification of a signed certificate.

:func:`verify_certificate` checks a signed certificate in numbered steps that raise :class:`CertificateError`
(the ``certificate verify`` command prints the result of the same function):

1. exactly one signature; its ``/Contents`` (the only bytes a signature cannot cover) is byte for
   byte what the signer writes: ``<``, the DER-encoded CMS object in upper-case hexadecimal, the
   digit ``0`` up to the reserved size, ``>`` (:func:`check_contents`), DER all the way down; the
   parts of the CMS object that its signature does not cover are what the signer writes too (the
   signer named byte for byte, the versions RFC 5652 gives, one digest algorithm: the signer's,
   detached ``data`` content, no CRLs, no unsigned attribute but a timestamp token, whose own
   unsigned parts are checked the same way), so that a changed byte there does not go unnoticed
   for want of a signature over it; the signature is cryptographically intact and valid and
   covers the whole file (nothing appended after it); a timestamp token, when there is one, must
   verify too (whether its authority is trusted is reported, not required);
2. the signer's certificate chains to one of the trusted roots, and every certificate the
   signature carries is on that path (the timestamp token's too, when its authority is trusted);
3. ``report.json`` and ``inclusion-proof.json`` are attached, and the SHA-256 of
   ``report.json`` is listed in the outputs of the proven ledger record;
4. the inclusion proof verifies (:func:`lumina_audit.evidence.ledger.verify_proof`) against its
   checkpoint, whose signature verifies against the ledger trust;
5. with ``ledger`` (a local copy of the ledger): the ledger verifies with the certificate's
   checkpoint as an external checkpoint (consistent with it), and a ``certificate`` record of that
   ledger for this report (its ledger record and SHA-256) names the SHA-256 of this very file as
   ``signed_pdf_sha256``: the file is byte for byte the certificate that was issued
   (:func:`check_against_ledger`);
6. with ``rerender``: a fresh rendering of the attached report, on the first page's size and at
   the proven record's time, is byte for byte the signed revision (:func:`rerender_matches`).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import rfc8785

from ..evidence.ledger import Ledger, LedgerError, verify, verify_proof
from ..evidence.trust import TrustStore
from .pdf import PROOF_ATTACHMENT, REPORT_ATTACHMENT, CertificateError, page_size_of, read_attachments

__all__ = ["CertificateReport", "check_against_ledger", "check_contents", "rerender_matches", "verify_certificate"]

#: What the signer (pyHanko) writes between the two parts of the byte range: upper-case hexadecimal digits.
_UPPER_HEX = re.compile(rb"[0-9A-F]*")


@dataclass(frozen=True)
class CertificateReport:
    """A certificate that verified (failures raise)."""

    signer_subject: str
    signer_fingerprint: str
    report_sha256: str
    report: dict[str, Any]
    ledger_origin: str
    ledger_record: int
    tree_size: int
    root: str
    #: The SHA-256 of the certificate file itself.
    pdf_sha256: str
    #: The signature timestamp (PAdES B-T), when the signature carries one; its token verified.
    timestamp: datetime | None = None
    #: Whether the timestamp authority chains to one of the trusted roots given to the verifier.
    timestamp_trusted: bool = False
    #: Step 5 was checked: the local ledger given as ``ledger``, which this field names.
    checked_against_ledger: Path | None = None
    #: Step 5: the ledger's ``certificate`` record that names this file's SHA-256.
    certificate_record: int | None = None
    #: Step 6 was checked: a fresh rendering equals the signed revision.
    rerendered: bool = False

    @property
    def bottom_line(self) -> bool:
        return True


def check_contents(pdf: bytes, byte_range: Sequence[int], contents: bytes) -> None:
    """Step 1: the bytes the signature leaves out are the signature's ``/Contents`` as the signer wrote it.

    ``byte_range`` is the signature's ``/ByteRange`` and ``contents`` the ``/Contents`` string a
    PDF reader decoded. The gap between the two signed parts must be ``<``, the upper-case hex of
    ``contents``, ``>``; ``contents`` must be one DER element (the CMS object; DER all the way
    down) followed by zero bytes only (written as ``0`` digits: the space the signer reserved
    and did not use).
    """
    if len(byte_range) != 4 or not all(isinstance(v, int) and v >= 0 for v in byte_range):
        raise CertificateError("step 1: the signature's /ByteRange is not four non-negative integers")
    start, first, second, rest = byte_range
    gap_start, gap_end = start + first, second
    if start != 0 or gap_end <= gap_start:
        raise CertificateError("step 1: the signature's /ByteRange does not leave out exactly its /Contents")
    if second + rest != len(pdf):
        raise CertificateError(f"step 1: the signature does not cover the whole file (its byte range ends at byte "
                               f"{second + rest} of {len(pdf)}); the file was cut or something appended after signing")
    gap = pdf[gap_start:gap_end]
    hex_digits = gap[1:-1]
    if gap[:1] != b"<" or gap[-1:] != b">" or len(hex_digits) % 2 or not _UPPER_HEX.fullmatch(hex_digits):
        raise CertificateError("step 1: the bytes the signature leaves out are not a hexadecimal string of "
                               "upper-case digits, as the signer writes /Contents (the file was changed there)")
    if bytes.fromhex(hex_digits.decode("ascii")) != contents:
        raise CertificateError("step 1: the bytes the signature leaves out are not the signature's /Contents")
    try:
        length = _der_end(contents, 0, len(contents))
    except ValueError as exc:
        raise CertificateError(f"step 1: the signature's /Contents does not start with one DER element "
                               f"({exc})") from None
    if contents[length:].strip(b"\0"):
        raise CertificateError("step 1: the signature's /Contents has other bytes than zeros after its DER "
                               "signature, in the padding the signer reserved (the file was changed there)")


def _check_signed_data(signed_data: Any, signer_cert: Any, *, content_type: str, what: str) -> None:
    """Step 1: what a CMS ``SignedData`` (asn1crypto) of one signer does not sign is what its signer writes.

    The parts its signature does not cover: the signer named by ``signer_cert``'s issuer and
    serial number (or key identifier) byte for byte (a name differing in letter case alone
    would still match), RFC 5652's versions (SignerInfo 1 with an issuer and serial number, 3
    with a subject key identifier; SignedData 1 for ``data`` signed with version 1, else 3),
    exactly one digest algorithm (the signer's), the ``content_type`` (``data``: detached, the
    PDF's byte range; else attached), no CRLs, and no unsigned attribute but, for ``data``, one
    signature timestamp token. Certificates are step 2's.
    """
    try:
        (signer_info,) = signed_data["signer_infos"]
        sid = signer_info["sid"]
        si_version = "v1" if sid.name == "issuer_and_serial_number" else "v3"
        sd_version = "v1" if si_version == "v1" and content_type == "data" else "v3"
        if si_version == "v1":
            tbs = signer_cert["tbs_certificate"]
            names_signer = (sid.chosen["issuer"].dump() == tbs["issuer"].dump()
                            and sid.chosen["serial_number"].dump() == tbs["serial_number"].dump())
        else:
            names_signer = sid.chosen.native == signer_cert.key_identifier
        versions = (signed_data["version"].native, signer_info["version"].native)
        algorithms = [a.dump() for a in signed_data["digest_algorithms"]]
        encap = signed_data["encap_content_info"]
        content = (encap["content_type"].native, encap["content"].native is None)
        crls = signed_data["crls"].native
        attrs = signer_info["unsigned_attrs"]
        unsigned = [] if attrs.native is None else [(a["type"].native, len(a["values"])) for a in attrs]
        digest_algorithm = signer_info["digest_algorithm"].dump()
    except Exception as exc:
        raise CertificateError(f"step 1: {what}'s CMS object cannot be read ({exc})") from None
    if not names_signer:
        raise CertificateError(f"step 1: {what}'s CMS does not name its signer's certificate byte for byte")
    if versions != (sd_version, si_version):
        raise CertificateError(f"step 1: {what}'s CMS versions {versions} are not the ones RFC 5652 gives")
    if algorithms != [digest_algorithm]:
        raise CertificateError(f"step 1: {what}'s CMS lists other digest algorithms than its signer's")
    if content != (content_type, content_type == "data") or crls:
        raise CertificateError(f"step 1: {what}'s CMS does not hold {content_type} content as its signer writes it, "
                               "or holds CRLs")
    allowed: list[list[tuple[str, int]]] = [[], [("signature_time_stamp_token", 1)]] if content_type == "data" else [[]]
    if unsigned not in allowed:
        raise CertificateError(f"step 1: {what}'s CMS carries other unsigned attributes than one timestamp token")


def _carried_on_path(signed_data: Any, path: Any, what: str) -> None:
    """Step 2: every certificate a CMS ``SignedData`` carries is on ``path`` (its signer's validated path)."""
    try:
        on_path = {c.dump() for c in path.iter_certs(include_root=True)}
        carried = [(c.name, c.chosen.dump()) for c in signed_data["certificates"]]
    except Exception as exc:
        raise CertificateError(f"step 2: {what}'s certificates cannot be read ({exc})") from None
    if any(kind != "certificate" or der not in on_path for kind, der in carried):
        raise CertificateError(f"step 2: {what} carries a certificate that is not on its signer's path to the "
                               "trusted root")


def _der_end(data: bytes, at: int, end: int, depth: int = 0) -> int:
    """Where the DER element at ``at`` ends (by ``end`` at the latest); :class:`ValueError` if it is not DER.

    Definite, minimal lengths only, no end-of-contents octets, and each constructed element exactly
    filled by the elements it holds (checked all the way down), so that no length can grow over
    bytes that then mean nothing.
    """
    if depth > 64 or at + 2 > end or data[at] == 0:
        raise ValueError("not a DER element")
    constructed, i = bool(data[at] & 0x20), at + 1
    if data[at] & 0x1F == 0x1F:  # a tag number in the following octets
        while i < end and data[i] & 0x80:
            i += 1
        i += 1
    if i >= end:
        raise ValueError("truncated DER header")
    first, i = data[i], i + 1
    if first < 0x80:
        length = first
    else:
        octets = first & 0x7F
        length = int.from_bytes(data[i : i + octets], "big")
        if not 1 <= octets <= 4 or i + octets > end or data[i] == 0 or length < 0x80:
            raise ValueError("an indefinite or non-minimal DER length")
        i += octets
    stop = i + length
    if stop > end:
        raise ValueError("a DER element longer than what holds it")
    if constructed:
        while i < stop:
            i = _der_end(data, i, stop, depth + 1)
    return stop


def verify_certificate(pdf: bytes, *, trust_roots_pem: Sequence[bytes], ledger_trust: TrustStore,
                       ledger: Path | None = None, rerender: bool = False) -> CertificateReport:
    """Verify a signed certificate offline, in the numbered steps of the module docstring.

    Steps 1 to 4 always; step 5 with ``ledger`` (a local copy of the ledger, checked under
    ``ledger_trust``); step 6 with ``rerender``. Any failure raises :class:`CertificateError`
    whose message starts with ``step N:``.
    """
    from pyhanko.keys import load_certs_from_pemder_data
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import SignatureCoverageLevel, validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    if not isinstance(pdf, bytes):
        raise CertificateError("step 1: the certificate must be given as bytes")
    # Step 1: one signature, its /Contents as the signer wrote it, intact and valid, over the whole file.
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        sigs = reader.embedded_signatures
    except Exception as exc:
        raise CertificateError(f"step 1: not a readable PDF ({exc})") from None
    if len(sigs) != 1:
        raise CertificateError(f"step 1: expected exactly one signature, found {len(sigs)}")
    try:
        byte_range, contents = list(sigs[0].byte_range), bytes(sigs[0].pkcs7_content)
        signed_data, signer_cert = sigs[0].signed_data, sigs[0].signer_cert
    except Exception as exc:
        raise CertificateError(f"step 1: the signature's /ByteRange, /Contents or signer cannot be read "
                               f"({exc})") from None
    check_contents(pdf, byte_range, contents)
    _check_signed_data(signed_data, signer_cert, content_type="data", what="the signature")
    try:
        roots = [c for data in trust_roots_pem for c in load_certs_from_pemder_data(data)]
    except Exception as exc:
        raise CertificateError(f"step 2: cannot load the trusted roots ({exc})") from None
    try:
        vc = ValidationContext(trust_roots=roots, allow_fetching=False)
        status = validate_pdf_signature(sigs[0], signer_validation_context=vc, ts_validation_context=vc)
    except Exception as exc:
        raise CertificateError(f"step 1: the signature cannot be validated ({exc})") from None
    if not (status.intact and status.valid):
        raise CertificateError("step 1: the signature does not verify (the signed bytes were changed)")
    stamp = status.timestamp_validity
    if stamp is not None and not (stamp.intact and stamp.valid):
        raise CertificateError("step 1: the signature's timestamp token does not verify")
    token: Any = None
    if stamp is not None:
        try:
            token = signed_data["signer_infos"][0]["unsigned_attrs"][0]["values"][0]["content"]
        except Exception as exc:
            raise CertificateError(f"step 1: the signature's timestamp token cannot be read ({exc})") from None
        _check_signed_data(token, stamp.signing_cert, content_type="tst_info", what="the signature's timestamp token")
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        level = getattr(status.coverage, "name", "UNCLEAR")
        raise CertificateError(f"step 1: the signature does not cover the whole file ({level}); "
                               "something was appended after signing")
    # Step 2: the signer chains to a trusted root.
    if not status.trusted:
        raise CertificateError("step 2: the signer's certificate does not chain to a trusted root")
    cert = status.signing_cert
    if status.validation_path is None:
        raise CertificateError("step 2: the signer's path to a trusted root is unknown")
    _carried_on_path(signed_data, status.validation_path, "the signature")
    if token is not None and stamp is not None and stamp.validation_path is not None:
        _carried_on_path(token, stamp.validation_path, "the signature's timestamp token")
    # Step 3: the attached report is the one the proven ledger record lists.
    try:
        files = read_attachments(reader)
    except CertificateError:
        raise
    except Exception as exc:
        raise CertificateError(f"step 3: cannot read the attachments ({exc})") from None
    for name in (REPORT_ATTACHMENT, PROOF_ATTACHMENT):
        if name not in files:
            raise CertificateError(f"step 3: attachment {name} is missing")
    report_bytes = files[REPORT_ATTACHMENT]
    digest = hashlib.sha256(report_bytes).hexdigest()
    try:
        report = json.loads(report_bytes)
        proof = json.loads(files[PROOF_ATTACHMENT])
        record = json.loads(proof["record"])
        outputs = record["body"]["outputs"]
        listed = {o["sha256"] for o in outputs if isinstance(o, dict)}
    except (ValueError, TypeError, KeyError):
        raise CertificateError("step 3: the attachments or the record they hold are malformed") from None
    if not isinstance(report, dict) or rfc8785.dumps(report) != report_bytes:
        raise CertificateError("step 3: report.json is not canonical JSON")
    if digest not in listed:
        raise CertificateError(f"step 3: report.json (SHA-256 {digest}) is not among the outputs of ledger "
                               f"record {record.get('seq')!r}")
    position = report.get("ledger", {})
    if position.get("record") != record.get("seq") or position.get("origin") != proof.get("origin"):
        raise CertificateError("step 3: the report names another ledger position than the proven record")
    # Step 4: the inclusion proof against its checkpoint, under the ledger trust.
    try:
        proven = verify_proof(proof, ledger_trust, expected_record=str(proof["record"]).encode())
    except LedgerError as exc:
        raise CertificateError(f"step 4: {exc.message}") from None
    pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    # Step 5: consistent with the local ledger, whose certificate record names this very file.
    certificate_record = None
    if ledger is not None:
        certificate_record = _check_ledger(pdf_sha256, digest, proven.origin, proven.seq, proof.get("checkpoint"),
                                           Path(ledger), ledger_trust)
    # Step 6: a fresh rendering is the signed revision.
    if rerender:
        rerender_matches(pdf)
    return CertificateReport(cert.subject.human_friendly, cert.sha256.hex(), digest, report, proven.origin,
                             proven.seq, proven.tree_size, proven.root, pdf_sha256,
                             timestamp=stamp.timestamp if stamp is not None else None,
                             timestamp_trusted=bool(stamp is not None and stamp.trusted),
                             checked_against_ledger=Path(ledger) if ledger is not None else None,
                             certificate_record=certificate_record, rerendered=bool(rerender))


def _check_ledger(pdf_sha256: str, report_sha256: str, origin: str, seq: int, checkpoint: Any, ledger_dir: Path,
                  trust: TrustStore) -> int:
    """Step 5; returns the ``certificate`` record that names ``pdf_sha256``."""
    if not isinstance(checkpoint, str):
        raise CertificateError("step 5: the certificate's inclusion proof holds no checkpoint text")
    report = verify(ledger_dir, trust, check_outputs=False, external_checkpoint=checkpoint)
    if not report.bottom_line:
        first = report.findings[0].message if report.findings else report.status
        raise CertificateError(f"step 5: the certificate's checkpoint does not match the ledger {ledger_dir}: {first}")
    try:
        opened = Ledger.open(ledger_dir)
        records = opened.records()
    except LedgerError as exc:
        raise CertificateError(f"step 5: cannot read the ledger {ledger_dir}: {exc.message}") from None
    if opened.origin != origin:
        raise CertificateError(f"step 5: the ledger {ledger_dir} is {opened.origin!r}, the certificate's is {origin!r}")
    issued = [r for r in records if r.kind == "certificate" and r.body.get("report_record") == seq
              and r.body.get("report_sha256") == report_sha256]
    if not issued:
        raise CertificateError(f"step 5: the ledger {ledger_dir} records no certificate issued for the report of "
                               f"record {seq}")
    for rec in reversed(issued):
        if rec.body.get("signed_pdf_sha256") == pdf_sha256:
            return rec.seq
    named = ", ".join(f"record {r.seq}: {r.body.get('signed_pdf_sha256')}" for r in issued)
    raise CertificateError(f"step 5: this file (SHA-256 {pdf_sha256}) is not the certificate the ledger recorded "
                           f"for this report ({named}): it was changed after it was issued")


def _embedded(pdf: bytes, step: int) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
    """The attached report (parsed and as bytes) and inclusion proof; any problem is a :class:`CertificateError`."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        files = read_attachments(PdfFileReader(io.BytesIO(pdf), strict=False))
        report_bytes = files[REPORT_ATTACHMENT]
        doc, proof = json.loads(report_bytes), json.loads(files[PROOF_ATTACHMENT])
    except Exception as exc:
        what = exc.message if isinstance(exc, CertificateError) else f"{type(exc).__name__}: {exc}"
        raise CertificateError(f"step {step}: cannot read the attachments ({what})") from None
    if not isinstance(doc, dict) or not isinstance(proof, dict):
        raise CertificateError(f"step {step}: the attachments are not JSON objects")
    return doc, report_bytes, proof


def check_against_ledger(pdf: bytes, ledger_dir: Path, trust: TrustStore) -> int:
    """Step 5 alone (``certificate verify --ledger``), on the attachments as they are (steps 1-4 not checked).

    Returns the ``certificate`` record of the ledger that names the SHA-256 of ``pdf``.
    """
    _, report_bytes, proof = _embedded(pdf, 5)
    try:
        record = json.loads(proof["record"])
        origin, seq = proof["origin"], record["seq"]
    except (ValueError, TypeError, KeyError):
        raise CertificateError("step 5: the attached inclusion proof is malformed") from None
    return _check_ledger(hashlib.sha256(pdf).hexdigest(), hashlib.sha256(report_bytes).hexdigest(), origin, seq,
                         proof.get("checkpoint"), Path(ledger_dir), trust)


def rerender_matches(pdf: bytes) -> None:
    """Step 6 alone (``certificate verify --rerender``): a fresh rendering equals the signed revision.

    The attached report is rendered again on the first page's size (A4 or Letter) at the proven
    record's time; the signed file must start with exactly those bytes.
    """
    from .render import render_certificate

    doc, report_bytes, proof = _embedded(pdf, 6)
    try:
        issued_at = datetime.fromisoformat(json.loads(proof["record"])["time"].replace("Z", "+00:00"))
    except (ValueError, TypeError, KeyError, AttributeError):
        raise CertificateError("step 6: the attached inclusion proof holds no record time") from None
    try:
        fresh = render_certificate(doc, report_bytes, proof, issued_at=issued_at, page_size=page_size_of(pdf))
    except CertificateError as exc:
        raise CertificateError(f"step 6: cannot render the attached report again: {exc.message}") from None
    if not pdf.startswith(fresh):
        raise CertificateError("step 6: a fresh rendering of the attached report differs from the signed revision")
