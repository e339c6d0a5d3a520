"""Tests of the HDF5 signature store (lumina_audit.attribution.store)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lumina_audit.attribution import store_writer as store_mod
from lumina_audit.attribution.store import FORMAT, iter_blocks, open_info, read_store
from lumina_audit.attribution.store_writer import create_or_append
from lumina_audit.errors import StoreError
from lumina_audit.signature.methods import GRADSTATS
from lumina_audit.signature.result import DIM, Signature
from lumina_audit.signature.space import SignatureConfig, SignatureSpace

DIGESTS = {"state_dict.bin": "a" * 64, "compression_state_dict.bin": "b" * 64}
# A version 1 store holds lumina-gradstats-v1, named explicitly (a space that names no method is gradproj's).
SPACE = SignatureConfig().space(DIGESTS, GRADSTATS)
OTHER_SPACE = SignatureConfig(codebook_boosts=(0.5, 1.2, 1.3, 1.4)).space(DIGESTS, GRADSTATS)


def make_sig(rng: np.random.Generator, song_id: str, pcm: str | None = None) -> Signature:
    raw_p = rng.standard_normal(DIM)
    raw_m = rng.standard_normal(DIM)
    return Signature(
        song_id=song_id,
        file_sha256=hashlib.sha256(("file" + song_id).encode()).hexdigest(),
        pcm_sha256=pcm or hashlib.sha256(("pcm" + song_id).encode()).hexdigest(),
        chunks=int(rng.integers(1, 90)),
        raw_p=raw_p,
        raw_m=raw_m,
        p=(raw_p / np.linalg.norm(raw_p)).astype(np.float32),
        m=(raw_m / np.linalg.norm(raw_m)).astype(np.float32),
    )


def make_sigs(n: int, seed: int = 0, prefix: str = "song") -> list[Signature]:
    rng = np.random.default_rng(seed)
    return [make_sig(rng, f"{prefix}-{i}") for i in range(n)]


def assert_same(got: Signature, want: Signature) -> None:
    assert got.bitwise_equal(want)


def assert_store_holds(path: Path, sigs: Sequence[Signature]) -> None:
    st_ = read_store(path)
    assert len(st_) == len(sigs)
    for i, sig in enumerate(sigs):
        assert_same(st_.signature(i), sig)


def dir_listing(path: Path) -> list[str]:
    return sorted(os.listdir(path))


# --------------------------------------------------------------------------- round trip


def test_round_trip_and_header(tmp_path: Path) -> None:
    path = tmp_path / "cat.h5"
    sigs = make_sigs(5)
    sigs.append(make_sig(np.random.default_rng(9), "Ünïcødé ☃ 曲 🎵"))
    summary = create_or_append(path, SPACE, sigs)
    assert (summary.created, summary.added, summary.total) == (True, 6, 6)
    assert summary.space_digest == SPACE.digest
    assert_store_holds(path, sigs)
    info = open_info(path)
    assert (info.format, info.version, info.count) == (FORMAT, 1, 6)  # one space: version 1
    assert info.method == "lumina-gradstats-v1"
    assert info.space == SPACE
    with h5py.File(path, "r") as f:
        assert list(f.attrs) == ["format", "version", "method", "signature_space", "signature_space_sha256"]
        assert f.attrs["signature_space"] == SPACE.canonical_json.decode()
        assert f.attrs["signature_space_sha256"] == SPACE.digest
        assert f["signatures_p"].dtype == np.float32 and f["raw_m"].dtype == np.float64
        assert f["pcm_sha256"].dtype == np.dtype("S64") and f["chunks"].dtype == np.int64
    got = read_store(path)
    assert got.space == SPACE
    assert got.song_ids[-1] == "Ünïcødé ☃ 曲 🎵"
    assert got.p.shape == (6, DIM) and not got.p.flags.writeable
    assert_same(got.signature(-1), sigs[-1])
    with pytest.raises(IndexError):
        got.signature(6)


ids_strategy = st.lists(
    st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
            min_size=1, max_size=20),
    min_size=1, max_size=6, unique=True,
)
finite64 = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ids=ids_strategy, seed=st.integers(0, 2**32 - 1), special=st.lists(finite64, min_size=1, max_size=8))
def test_round_trip_property(ids: list[str], seed: int, special: list[float]) -> None:
    rng = np.random.default_rng(seed)
    sigs = []
    for k, song_id in enumerate(ids):
        base = make_sig(rng, song_id, pcm=hashlib.sha256(f"{seed}-{k}".encode()).hexdigest())
        raw_p = base.raw_p.copy()
        raw_p[: len(special)] = special  # extreme, subnormal and signed-zero values survive
        p = base.p.copy()
        with np.errstate(over="ignore"):
            p[: len(special)] = np.asarray(special, dtype=np.float64).astype(np.float32)
        p[~np.isfinite(p)] = 0.0
        sigs.append(Signature(base.song_id, base.file_sha256, base.pcm_sha256, base.chunks,
                              raw_p, base.raw_m, p, base.m))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.h5"
        create_or_append(path, SPACE, sigs)
        assert_store_holds(path, sigs)


# --------------------------------------------------------------------------- determinism


def test_byte_identical_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sigs = make_sigs(10)
    sigs[3] = make_sig(np.random.default_rng(3), "ünï ☃")
    one, two, split, three = (tmp_path / n for n in ("one.h5", "two.h5", "split.h5", "three.h5"))
    create_or_append(one, SPACE, sigs)
    create_or_append(two, SPACE, sigs)
    assert one.read_bytes() == two.read_bytes()
    create_or_append(split, SPACE, sigs[:4])
    summary = create_or_append(split, SPACE, sigs[4:])
    assert (summary.created, summary.added, summary.total) == (False, 6, 10)
    assert split.read_bytes() == one.read_bytes()
    monkeypatch.setattr(store_mod, "_COPY_ROWS", 3)  # old rows copied in several blocks
    for part in (sigs[:1], sigs[1:2], sigs[2:7], sigs[7:]):
        create_or_append(three, SPACE, part)
    assert three.read_bytes() == one.read_bytes()
    assert dir_listing(tmp_path) == ["one.h5", "split.h5", "three.h5", "two.h5"]


def test_empty_batch(tmp_path: Path) -> None:
    path = tmp_path / "e.h5"
    assert create_or_append(path, SPACE, []).total == 0
    assert len(read_store(path)) == 0 and open_info(path).count == 0
    assert list(iter_blocks(path, "P", 4)) == []
    sigs = make_sigs(3)
    create_or_append(path, SPACE, sigs)
    before = path.read_bytes()
    summary = create_or_append(path, SPACE, [])
    assert (summary.added, summary.total) == (0, 3)
    assert path.read_bytes() == before
    fresh = tmp_path / "f.h5"
    create_or_append(fresh, SPACE, sigs)
    assert fresh.read_bytes() == before


# --------------------------------------------------------------------------- append refusals


@pytest.fixture
def existing(tmp_path: Path) -> tuple[Path, bytes, list[Signature]]:
    path = tmp_path / "cat.h5"
    sigs = make_sigs(4)
    create_or_append(path, SPACE, sigs)
    return path, path.read_bytes(), sigs


def refused(path: Path, before: bytes, space: SignatureSpace, batch: list[Signature], match: str) -> None:
    with pytest.raises(StoreError, match=match) as info:
        create_or_append(path, space, batch)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert path.read_bytes() == before
    assert dir_listing(path.parent) == [path.name]


def test_refuses_other_space(existing: tuple[Path, bytes, list[Signature]]) -> None:
    path, before, _ = existing
    with pytest.raises(StoreError) as info:
        create_or_append(path, OTHER_SPACE, make_sigs(1, prefix="new"))
    assert SPACE.digest in str(info.value) and OTHER_SPACE.digest in str(info.value)
    assert path.read_bytes() == before
    refused(path, before, OTHER_SPACE, [], "signature space differs")


def test_refuses_invalid_space(existing: tuple[Path, bytes, list[Signature]]) -> None:
    path, before, _ = existing
    forged = SignatureSpace(canonical_json=SPACE.canonical_json, digest="0" * 64)
    refused(path, before, forged, make_sigs(1, prefix="new"), "signature space to store is invalid")


def test_refuses_duplicate_song_id(existing: tuple[Path, bytes, list[Signature]]) -> None:
    path, before, sigs = existing
    rng = np.random.default_rng(7)
    clash = make_sig(rng, sigs[1].song_id, pcm="c" * 64)
    refused(path, before, SPACE, [clash], "duplicate song id 'song-1'")
    twice = [make_sig(rng, "x", pcm="d" * 64), make_sig(rng, "x", pcm="e" * 64)]
    refused(path, before, SPACE, twice, "duplicate song id 'x'")


def test_refuses_duplicate_pcm_hash(existing: tuple[Path, bytes, list[Signature]]) -> None:
    path, before, sigs = existing
    rng = np.random.default_rng(8)
    refused(path, before, SPACE, [make_sig(rng, "new", pcm=sigs[0].pcm_sha256)], "duplicate PCM hash")
    twice = [make_sig(rng, "a", pcm="d" * 64), make_sig(rng, "b", pcm="d" * 64)]
    refused(path, before, SPACE, twice, "duplicate PCM hash")


def test_refuses_duplicates_in_new_store(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "n.h5"
    with pytest.raises(StoreError, match="duplicate song id"):
        create_or_append(path, SPACE, [make_sig(rng, "x", pcm="d" * 64), make_sig(rng, "x", pcm="e" * 64)])
    assert not path.exists() and dir_listing(tmp_path) == []


def _replace(sig: Signature, **changes: object) -> Signature:
    fields = {k: getattr(sig, k) for k in Signature.__dataclass_fields__}
    fields.update(changes)
    return Signature(**fields)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"p": np.zeros(DIM, dtype=np.float64)}, "p must be <f4"),
        ({"m": np.zeros(DIM + 1, dtype=np.float32)}, "m must be <f4"),
        ({"raw_p": np.zeros((2, DIM))}, "raw_p must be <f8"),
        ({"raw_m": np.zeros(DIM, dtype=np.float32)}, "raw_m must be <f8"),
        ({"raw_m": [0.0] * DIM}, "raw_m must be <f8"),
        ({"raw_p": np.full(DIM, np.nan)}, "raw_p holds a non-finite value"),
        ({"m": np.full(DIM, np.inf, dtype=np.float32)}, "m holds a non-finite value"),
        ({"pcm_sha256": "A" * 64}, "pcm_sha256 must be 64 lowercase hex"),
        ({"file_sha256": "a" * 63}, "file_sha256 must be 64 lowercase hex"),
        ({"chunks": 0}, "chunks must be a positive integer"),
        ({"song_id": ""}, "song id must be a non-empty string"),
        ({"song_id": "bad\udc80"}, "not encodable as UTF-8"),
        ({"song_id": "nul\x00id"}, "must not contain a NUL"),
    ],
)
def test_refuses_bad_vectors_and_fields(
    existing: tuple[Path, bytes, list[Signature]], changes: dict[str, object], match: str
) -> None:
    path, before, _ = existing
    good = make_sigs(2, seed=5, prefix="new")
    refused(path, before, SPACE, [good[0], _replace(good[1], **changes)], match)


# --------------------------------------------------------------------------- atomicity


def test_crash_mid_write_keeps_old_store(
    existing: tuple[Path, bytes, list[Signature]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, before, sigs = existing
    real = store_mod._write_vectors

    def crash(dst: object, *args: object) -> None:
        real(dst, *args)  # type: ignore[arg-type]
        assert len(list(path.parent.iterdir())) == 2  # the temp file exists, fully written
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(store_mod, "_write_vectors", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        create_or_append(path, SPACE, make_sigs(3, prefix="new"))
    assert path.read_bytes() == before
    assert dir_listing(path.parent) == [path.name]
    assert_store_holds(path, sigs)


def test_failed_replace_keeps_old_store(
    existing: tuple[Path, bytes, list[Signature]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, before, sigs = existing

    def no_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(StoreError, match="cannot write store"):
        create_or_append(path, SPACE, make_sigs(3, prefix="new"))
    assert path.read_bytes() == before
    assert dir_listing(path.parent) == [path.name]
    assert_store_holds(path, sigs)


def test_append_keeps_file_mode(existing: tuple[Path, bytes, list[Signature]]) -> None:
    path, _, sigs = existing
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o640)
    create_or_append(path, SPACE, make_sigs(2, prefix="new"))
    assert path.stat().st_mode & 0o777 == 0o640
    assert_store_holds(path, sigs + make_sigs(2, prefix="new"))


# --------------------------------------------------------------------------- reader refusals


def tampered(src: Path, dst: Path, edit: object) -> Path:
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)  # type: ignore[operator]
    return dst


def read_refused(path: Path, match: str) -> None:
    for reader in (open_info, read_store, lambda p: iter_blocks(p, "M", 2)):
        with pytest.raises(StoreError, match=match) as info:
            reader(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)
    with pytest.raises(StoreError, match=match):
        create_or_append(path, SPACE, make_sigs(1, prefix="new"))


def test_refuses_non_hdf5_and_missing(tmp_path: Path) -> None:
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not an HDF5 file\n" * 10)
    for reader in (open_info, read_store):
        with pytest.raises(StoreError, match="not a readable HDF5 file"):
            reader(junk)
        with pytest.raises(StoreError, match="no such store file"):
            reader(tmp_path / "missing.h5")
    with pytest.raises(StoreError, match="not a readable HDF5 file"):
        create_or_append(junk, SPACE, make_sigs(1))
    assert junk.read_bytes() == b"this is not an HDF5 file\n" * 10


def _set_attr(name: str, value: object) -> object:
    def edit(f: h5py.File) -> None:
        f.attrs[name] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (_set_attr("format", "lumina-other"), "not a lumina-signatures store"),
        (lambda f: f.attrs.__delitem__("format"), "not a lumina-signatures store"),
        (_set_attr("version", np.int64(3)), "unknown lumina-signatures version 3"),
        (_set_attr("version", "1"), "unknown lumina-signatures version"),
        (_set_attr("signature_space_sha256", "0" * 64), "signature space sha256 is"),
        (_set_attr("signature_space", OTHER_SPACE.canonical_json.decode()), "signature space sha256 is"),
        (_set_attr("signature_space", '{"method": "x"}'), "invalid signature space"),
        (_set_attr("method", "lumina-other"), "method attribute"),
        (lambda f: f.__delitem__("chunks"), "expected datasets"),
        (lambda f: f.create_dataset("extra", data=[1]), "expected datasets"),
        (lambda f: (f.__delitem__("chunks"), f.create_dataset("chunks", data=np.ones(3, "i8"))),
         "dataset chunks has shape"),
        (lambda f: (f.__delitem__("raw_p"), f.create_dataset("raw_p", data=np.ones((4, DIM), "f4"))),
         "dataset raw_p has shape"),
        (lambda f: (f.__delitem__("signatures_m"), f.create_dataset("signatures_m", data=np.ones((4, 7)))),
         "dataset signatures_m has shape"),
        (lambda f: (f.__delitem__("pcm_sha256"), f.create_dataset("pcm_sha256", data=np.array([b"a"] * 4))),
         "dataset pcm_sha256 has shape"),
    ],
)
def test_reader_refuses_tampered(
    existing: tuple[Path, bytes, list[Signature]], tmp_path: Path, edit: object, match: str
) -> None:
    path, _, _ = existing
    bad = tampered(path, tmp_path / "bad.h5", edit)
    before = bad.read_bytes()
    read_refused(bad, match)
    assert bad.read_bytes() == before


@pytest.mark.parametrize(
    ("dataset", "row", "value", "match"),
    [
        ("pcm_sha256", 2, b"Z" * 64, "not 64 lowercase hex"),
        ("pcm_sha256", 2, None, "duplicate PCM hash"),
        ("song_ids", 3, "song-0", "duplicate song id"),
        ("chunks", 1, 0, "count below 1"),
        ("raw_m", 0, np.nan, "non-finite"),
    ],
)
def test_read_store_refuses_bad_rows(
    existing: tuple[Path, bytes, list[Signature]], tmp_path: Path,
    dataset: str, row: int, value: object, match: str,
) -> None:
    path, _, _ = existing

    def edit(f: h5py.File) -> None:
        f[dataset][row] = f[dataset][0] if value is None else value

    bad = tampered(path, tmp_path / "rows.h5", edit)
    with pytest.raises(StoreError, match=match):
        read_store(bad)


# --------------------------------------------------------------------------- blocks


@pytest.mark.parametrize("block_rows", [1, 2, 3, 7, 10, 11, 1000])
def test_iter_blocks_covers_all_rows(tmp_path: Path, block_rows: int) -> None:
    path = tmp_path / "b.h5"
    sigs = make_sigs(10)
    create_or_append(path, SPACE, sigs)
    for channel, field in (("P", "p"), ("M", "m")):
        starts, blocks = [], []
        for start, block in iter_blocks(path, channel, block_rows):  # type: ignore[arg-type]
            assert block.dtype == np.float32 and block.shape[1] == DIM
            assert 1 <= block.shape[0] <= block_rows
            starts.append(start)
            blocks.append(block)
        assert starts == list(range(0, 10, block_rows))
        want = np.stack([getattr(s, field) for s in sigs])
        assert np.concatenate(blocks).tobytes() == want.tobytes()


def test_iter_blocks_rejects_bad_arguments(existing: tuple[Path, bytes, list[Signature]]) -> None:
    path, _, _ = existing
    with pytest.raises(ValueError, match="channel"):
        iter_blocks(path, "X", 2)  # type: ignore[arg-type]
    for rows in (0, -1, True):
        with pytest.raises(ValueError, match="block_rows"):
            iter_blocks(path, "P", rows)
