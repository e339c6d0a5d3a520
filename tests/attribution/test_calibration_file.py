"""``lumina-calibration`` version 3: a ZIP of canonical JSON and .npy arrays, written the same every time."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lumina_audit.attribution import calibration_file as cf
from lumina_audit.attribution.reports import ReportError, canonical, read_calibration


def _arrays(n: int = 5, c: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    return {"cohort-P.npy": rng.uniform(0, 1, (n, 2)), "cohort-M.npy": rng.uniform(0, 1, (n, 2)),
            "controls-P.npy": rng.standard_normal((c, 216)).astype(np.float32),
            "controls-M.npy": rng.standard_normal((c, 216)).astype(np.float32)}


def _doc(n: int = 5, c: int = 3) -> dict[str, object]:
    ch = {"model": {"a": 1.5, "b": -2.0, "iterations": 6}, "bounds": {"lower": -1.0, "upper": 2.0},
          "validation": {"cllr": 0.25}}
    return {"method": "lumina-attribution-v2", "N": n, "C": c, "channels": {"P": ch, "M": ch}}


def test_round_trip_and_identical_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    digest = cf.write(a, _doc(), _arrays())
    assert cf.write(b, _doc(), _arrays()) == digest and a.read_bytes() == b.read_bytes()
    doc, d2 = read_calibration(a)
    assert d2 == digest and doc["version"] == 3 and doc["channels"]["P"]["model"]["a"] == 1.5
    got = cf.read_arrays(a)
    for name, want in _arrays().items():
        assert got[name].dtype == want.dtype and np.array_equal(got[name], want)
    with zipfile.ZipFile(a) as z:
        assert [i.filename for i in z.infolist()] == ["calibration.json", *cf.ARRAY_MEMBERS]
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in z.infolist())
        assert np.array_equal(np.load(io.BytesIO(z.read("cohort-P.npy"))), _arrays()["cohort-P.npy"])
    with pytest.raises(ReportError, match="already exists"):
        cf.write(a, _doc(), _arrays())


def test_every_flipped_byte_is_refused_or_harmless(tmp_path: Path) -> None:
    """A changed byte anywhere: the reader refuses, or (zip bookkeeping only) reads the same document and arrays."""
    path = tmp_path / "c.zip"
    cf.write(path, _doc(2, 1), _arrays(n=2, c=1))
    data = path.read_bytes()
    want_doc, _ = read_calibration(path)
    want = cf.read_arrays(path)
    refused = 0
    bad = tmp_path / "bad.zip"
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x01
        bad.write_bytes(bytes(flipped))
        try:
            doc, _ = read_calibration(bad)
            arrays = cf.read_arrays(bad)
        except ReportError:
            refused += 1
            continue
        assert doc == want_doc and all(np.array_equal(arrays[k], want[k]) for k in want), i
    assert refused > len(data) * 0.9


def test_wrong_version_member_list_and_shapes_are_refused(tmp_path: Path) -> None:
    good = tmp_path / "g.zip"
    cf.write(good, _doc(), _arrays())
    with zipfile.ZipFile(good) as z:
        members = {i.filename: z.read(i.filename) for i in z.infolist()}
    doc = dict(__import__("json").loads(members["calibration.json"]))

    def rewrite(name: str, payload: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> Path:
        out = tmp_path / name
        with zipfile.ZipFile(out, "w") as z:
            for k, v in payload.items():
                z.writestr(zipfile.ZipInfo(k, date_time=(1980, 1, 1, 0, 0, 0)), v, compress_type=compress)
        return out

    with pytest.raises(ReportError, match=r"lumina-calibration version 4 is not supported \(only 3 in an archive"):
        read_calibration(rewrite("v4.zip", members | {"calibration.json": canonical(doc | {"version": 4})}))
    with pytest.raises(ReportError, match="in this order"):
        read_calibration(rewrite("order.zip", dict(reversed(list(members.items())))))
    with pytest.raises(ReportError, match="stored, not compressed"):
        read_calibration(rewrite("deflate.zip", members, zipfile.ZIP_DEFLATED))
    with pytest.raises(ReportError, match="not in canonical form"):
        read_calibration(rewrite("pretty.zip", members | {"calibration.json": members["calibration.json"] + b" "}))
    with pytest.raises(ReportError, match=r"expected <f8 \[5, 2\]"):
        cf.write(tmp_path / "shape.zip", _doc(), _arrays() | {"cohort-P.npy": np.zeros((4, 2))})
