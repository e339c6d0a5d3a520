"""The calibration file of ``lumina-attribution-v2``: ``lumina-calibration`` version 3.

A v2 calibration holds, per channel, the cohort statistics of every catalog song (``mu_j``,
``sd_j``: 16 bytes a song, 32 MB for both channels at N = 10**6) and the control signatures
that normalise a query; JSON would make that 80 MB of text to parse for every attribution. So
version 3 is a ZIP archive (members stored, not compressed, in a fixed order, every date
1980-01-01, so the same calibration gives the same bytes) of:

- ``calibration.json``: the document, RFC 8785 canonical JSON: every figure of the
  calibration (see ``docs/evidence.md``), and under ``arrays`` the name, dtype, shape and
  SHA-256 of each array member;
- ``cohort-P.npy``, ``cohort-M.npy``: float64 ``[N, 2]`` (columns ``mu_j``, ``sd_j``, rows in
  catalog order), NumPy ``.npy`` format 1.0, little-endian;
- ``controls-P.npy``, ``controls-M.npy``: float32 ``[C, 216]``, the controls' signatures in
  input order.

Any ZIP tool lists it and ``numpy.load`` reads each array. The reader refuses anything else:
another member list or order, a compressed member, a document that is not canonical or of
another format or version, an array whose bytes, dtype or shape differ from the document's.
The file's SHA-256 names the calibration (the ledger records it).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._internal.documents import read_versioned
from .reports import CALIBRATION_FORMAT, ReportError, canonical, write_new_file

__all__ = ["ARRAY_MEMBERS", "DOCUMENT", "VERSION", "is_container", "read_arrays", "read_document", "write"]

VERSION = 3
DOCUMENT = "calibration.json"
#: The array members, in file order, with their dtype and the shape they must have ("N", "C": the document's).
ARRAY_MEMBERS: dict[str, tuple[str, tuple[str | int, ...]]] = {
    "cohort-P.npy": ("<f8", ("N", 2)),
    "cohort-M.npy": ("<f8", ("N", 2)),
    "controls-P.npy": ("<f4", ("C", 216)),
    "controls-M.npy": ("<f4", ("C", 216)),
}
_MAGIC = b"PK\x03\x04"
_DATE = (1980, 1, 1, 0, 0, 0)


def is_container(data: bytes) -> bool:
    """Whether ``data`` starts as a ZIP archive (a version 3 calibration) rather than JSON."""
    return data[:4] == _MAGIC


def _npy(array: npt.NDArray[Any]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), version=(1, 0), allow_pickle=False)
    return buf.getvalue()


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    return info


def _shape(spec: tuple[str | int, ...], doc: Mapping[str, Any]) -> tuple[int, ...]:
    return tuple(int(doc[d]) if isinstance(d, str) else d for d in spec)


def write(path: Path, doc: dict[str, Any], arrays: Mapping[str, npt.NDArray[Any]]) -> str:
    """Write a version 3 calibration (never overwriting; whole or not at all). Returns its SHA-256.

    ``doc`` is the document without ``format``, ``version`` and ``arrays``, which this adds;
    ``arrays`` holds every member of :data:`ARRAY_MEMBERS`.
    """
    if set(arrays) != set(ARRAY_MEMBERS):
        raise ReportError(f"a calibration holds the arrays {sorted(ARRAY_MEMBERS)}, got {sorted(arrays)}")
    blobs: dict[str, bytes] = {}
    described: dict[str, Any] = {}
    for name, (dtype, spec) in ARRAY_MEMBERS.items():
        a = np.asarray(arrays[name])
        if a.dtype.str != dtype or a.shape != _shape(spec, doc):
            raise ReportError(f"array {name}: {a.dtype.str} {list(a.shape)}, expected {dtype} "
                              f"{list(_shape(spec, doc))}")
        blobs[name] = _npy(a)
        described[name] = {"dtype": dtype, "shape": list(a.shape), "sha256": hashlib.sha256(blobs[name]).hexdigest()}
    full = {"format": CALIBRATION_FORMAT, "version": VERSION, **doc, "arrays": described}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(_member(DOCUMENT), canonical(full))
        for name in ARRAY_MEMBERS:
            z.writestr(_member(name), blobs[name])
    return write_new_file(path, buf.getvalue())


def _open(path: Path, data: bytes) -> zipfile.ZipFile:
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # a damaged central directory: BadZipFile, ValueError, EOFError, ...
        raise ReportError(f"{path}: not a readable calibration archive ({exc})") from None
    names = [i.filename for i in z.infolist()]
    want = [DOCUMENT, *ARRAY_MEMBERS]
    if names != want:
        raise ReportError(f"{path}: a version 3 calibration holds {want} in this order, this one {names}")
    if any(i.compress_type != zipfile.ZIP_STORED or i.flag_bits & 0x1 for i in z.infolist()):
        raise ReportError(f"{path}: a calibration's members are stored, not compressed or encrypted")
    return z


def _read_member(path: Path, z: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes (its CRC checked by zipfile), or a refusal naming the file."""
    try:
        return z.read(name)
    except Exception as exc:  # zipfile raises many kinds for a damaged archive: each is a refusal here
        raise ReportError(f"{path}: member {name} of the calibration archive is damaged ({exc})") from None


def read_document(path: Path, data: bytes) -> dict[str, Any]:
    """The document of a version 3 calibration whose bytes are ``data`` (arrays not read)."""
    z = _open(path, data)
    raw = _read_member(path, z, DOCUMENT)
    doc = read_versioned(raw, f"{path}: {DOCUMENT}", CALIBRATION_FORMAT, (VERSION,), ReportError,
                         note=" in an archive; versions 1 and 2 are JSON")
    arrays = doc.get("arrays")
    if not isinstance(arrays, dict) or set(arrays) != set(ARRAY_MEMBERS):
        raise ReportError(f"{path}: the document must describe the arrays {sorted(ARRAY_MEMBERS)}")
    return doc


def read_arrays(path: Path, doc: Mapping[str, Any] | None = None) -> dict[str, npt.NDArray[Any]]:
    """Every array of a version 3 calibration, each checked against its document entry."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read ({exc.strerror})") from None
    doc = read_document(path, data) if doc is None else doc
    z = _open(path, data)
    out: dict[str, npt.NDArray[Any]] = {}
    for name, (dtype, spec) in ARRAY_MEMBERS.items():
        blob = _read_member(path, z, name)
        entry = doc["arrays"][name]
        if hashlib.sha256(blob).hexdigest() != entry.get("sha256"):
            raise ReportError(f"{path}: array {name} does not match the SHA-256 its document states")
        try:
            a = np.lib.format.read_array(io.BytesIO(blob), allow_pickle=False)
        except ValueError as exc:
            raise ReportError(f"{path}: array {name} is not a .npy array ({exc})") from None
        if a.dtype.str != dtype or a.shape != _shape(spec, doc) or list(a.shape) != entry.get("shape"):
            raise ReportError(f"{path}: array {name} is {a.dtype.str} {list(a.shape)}, expected {dtype} "
                              f"{list(_shape(spec, doc))}")
        out[name] = a
    return out
