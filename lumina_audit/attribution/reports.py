"""Calibration files and attribution reports: versioned, canonical JSON (attribution-v1 sections 1 and 3).

Both are RFC 8785 canonical JSON, so their SHA-256 names them and every float64 reads
back to the same value. Readers refuse an unknown format or version.

- ``lumina-calibration`` v1: the noise floor per channel (mu, sigma, k, tau), the
  stated error rates, C and N, and the digests of the signature space, the catalog
  store and every control.
- ``lumina-attribution-report`` v1: the query's identity, the digests of the space,
  store and calibration, the calibration figures, both channels' results, the
  manifest digest and signers, and the ledger position of the run that made it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import rfc8785

from .._internal.documents import read_versioned
from .._internal.fileio import write_file
from ..errors import LuminaError
from ..signature.methods.gradstats import GRADSTATS_V1

__all__ = [
    "ATTRIBUTION_V1",
    "ATTRIBUTION_V2",
    "CALIBRATION_FORMAT",
    "REPORT_FORMAT",
    "ReportError",
    "canonical",
    "read_calibration",
    "read_report",
    "signature_method_of",
    "write_canonical",
    "write_new_file",
]

#: The attribution method of :mod:`.method`: its calibrations are version 1 or 2, its reports version 1 or 2.
ATTRIBUTION_V1 = "lumina-attribution-v1"
#: The attribution method of :mod:`.likelihood_ratio`: its calibration and reports are version 3.
ATTRIBUTION_V2 = "lumina-attribution-v2"
CALIBRATION_FORMAT = "lumina-calibration"
REPORT_FORMAT = "lumina-attribution-report"
VERSION = 1
#: Versions read, per format. Report version 2 adds ``signature_method`` (version 1 implies ``lumina-gradstats-v1``)
#: and, from a version 2 calibration, its error rates; calibration version 2 adds the positives and, per channel,
#: ``unrelated_attributed_rate`` and ``detection``. Version 3 of both is ``lumina-attribution-v2``: the
#: calibration is an archive (:mod:`.calibration_file`), the report states likelihood ratios.
VERSIONS: dict[str, tuple[int, ...]] = {CALIBRATION_FORMAT: (1, 2, 3), REPORT_FORMAT: (1, 2, 3)}
#: The JSON versions (version 3 of the calibration is an archive, not JSON).
_JSON_VERSIONS: dict[str, tuple[int, ...]] = {CALIBRATION_FORMAT: (1, 2), REPORT_FORMAT: (1, 2, 3)}
#: The signature method of a version 1 report, which had only one.
V1_SIGNATURE_METHOD = GRADSTATS_V1


class ReportError(LuminaError):
    """A calibration file or report is unreadable, of an unknown version, or malformed."""


def canonical(doc: dict[str, Any]) -> bytes:
    try:
        return rfc8785.dumps(doc)
    except rfc8785.CanonicalizationError as exc:
        raise ReportError(f"cannot write canonical JSON ({exc})") from None


def write_canonical(path: Path, doc: dict[str, Any]) -> str:
    """Write ``doc`` as canonical JSON, whole or not at all; refuse to overwrite. Returns its SHA-256."""
    return write_new_file(path, canonical(doc))


def write_new_file(path: Path, data: bytes) -> str:
    """Write ``data`` at ``path`` whole or not at all, mode 0644 (:func:`~.._internal.fileio.write_file`); never
    overwrite, even a file that appears meanwhile. Returns its SHA-256.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_file(path, data)
    except FileExistsError:
        raise ReportError(f"{path}: already exists; refusing to overwrite") from None
    return hashlib.sha256(data).hexdigest()


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read ({exc.strerror})") from None


def _read(path: Path, fmt: str, data: bytes) -> tuple[dict[str, Any], str]:
    note = " as JSON; version 3 is an archive" if fmt == CALIBRATION_FORMAT else ""
    doc = read_versioned(data, str(path), fmt, _JSON_VERSIONS[fmt], ReportError, note=note)
    return doc, hashlib.sha256(data).hexdigest()


def read_calibration(path: Path) -> tuple[dict[str, Any], str]:
    """The calibration document and its SHA-256 (of the whole file; for version 3, the arrays are not read)."""
    from . import calibration_file

    data = _bytes(path)
    if calibration_file.is_container(data):
        doc = calibration_file.read_document(path, data)
        for ch in ("P", "M"):
            figures = doc.get("channels", {}).get(ch)
            if not isinstance(figures, dict) or not all(k in figures for k in ("model", "bounds", "validation")):
                raise ReportError(f"{path}: channel {ch} lacks its model, bounds or validation")
        return doc, hashlib.sha256(data).hexdigest()
    doc, digest = _read(path, CALIBRATION_FORMAT, data)
    for ch in ("P", "M"):
        figures = doc.get("channels", {}).get(ch)
        if not isinstance(figures, dict) or not all(isinstance(figures.get(k), float | int)
                                                    for k in ("mu", "sigma", "k", "tau")):
            raise ReportError(f"{path}: channel {ch} lacks mu, sigma, k or tau")
        if doc["version"] >= 2 and not (isinstance(figures.get("unrelated_attributed_rate"), float | int)
                                        and "detection" in figures):
            raise ReportError(f"{path}: channel {ch} of a version 2 calibration lacks its error rates")
    return doc, digest


def read_report(path: Path) -> tuple[dict[str, Any], str]:
    """The report document and its SHA-256."""
    doc, digest = _read(path, REPORT_FORMAT, _bytes(path))
    if set(doc.get("channels", {})) != {"P", "M"}:
        raise ReportError(f"{path}: a report holds channels P and M")
    if doc["version"] >= 2 and not isinstance(doc.get("signature_method"), str):
        raise ReportError(f"{path}: a version {doc['version']} report names its signature_method")
    if (doc["version"] >= 3) != (doc.get("method") == ATTRIBUTION_V2):
        raise ReportError(f"{path}: a version 3 report is exactly one of {ATTRIBUTION_V2}, this one is "
                          f"version {doc['version']} of {doc.get('method')!r}")
    return doc, digest


def signature_method_of(report: dict[str, Any]) -> str:
    """The signature method a report's similarities come from."""
    return str(report.get("signature_method", V1_SIGNATURE_METHOD))
