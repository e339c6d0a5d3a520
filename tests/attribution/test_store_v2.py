"""Version 2 signature stores: several methods, each in its own signature space."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lumina_audit.attribution.search import similarities
from lumina_audit.attribution.store import iter_blocks, open_info, read_index, read_store
from lumina_audit.attribution.store_writer import create_or_append, create_or_append_multi
from lumina_audit.errors import StoreError
from lumina_audit.signature.methods import GRADPROJ, GRADSTATS
from lumina_audit.signature.result import DIM, Signature
from lumina_audit.signature.space import SignatureConfig

DIGESTS = {"state_dict.bin": "a" * 64, "compression_state_dict.bin": "b" * 64}
PROJ = SignatureConfig().space(DIGESTS, GRADPROJ)
STATS = SignatureConfig().space(DIGESTS, GRADSTATS)
SPACES = [PROJ, STATS]


def _sig(rng: np.random.Generator, song_id: str, pcm: str) -> Signature:
    raw_p, raw_m = rng.standard_normal(DIM), rng.standard_normal(DIM)
    p, m = (raw_p / np.linalg.norm(raw_p)).astype(np.float32), (raw_m / np.linalg.norm(raw_m)).astype(np.float32)
    return Signature(song_id, hashlib.sha256(song_id.encode()).hexdigest(), pcm, 2, raw_p, raw_m, p, m)


def songs(n: int, seed: int = 0, prefix: str = "song") -> list[dict[str, Signature]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        sid, pcm = f"{prefix}{i:03d}", hashlib.sha256(f"{prefix}-pcm-{i}".encode()).hexdigest()
        out.append({GRADPROJ.name: _sig(rng, sid, pcm), GRADSTATS.name: _sig(rng, sid, pcm)})
    return out


def test_round_trip_keeps_every_method_in_its_space(tmp_path: Path) -> None:
    path = tmp_path / "cat.h5"
    batch = songs(5)
    summary = create_or_append_multi(path, SPACES, batch)
    assert (summary.created, summary.added, summary.total, summary.space_digest) == (True, 5, 5, PROJ.digest)
    info = open_info(path)
    assert (info.version, info.methods, info.count) == (2, (GRADPROJ.name, GRADSTATS.name), 5)
    assert info.spaces[GRADPROJ.name] == PROJ and info.spaces[GRADSTATS.name] == STATS
    index = read_index(path)
    assert index.song_ids == tuple(s[GRADPROJ.name].song_id for s in batch)
    for space in SPACES:
        store = read_store(path, space.digest)
        name = space.as_dict()["method"]
        assert store.space == space
        for i, song in enumerate(batch):
            assert store.signature(i).bitwise_equal(song[name])
        blocks = np.concatenate([b for _, b in iter_blocks(path, "M", 2, space.digest)])
        assert blocks.tobytes() == np.stack([s[name].m for s in batch]).tobytes()
    q = np.stack([batch[1][GRADSTATS.name].p])
    sims = similarities(path, "P", q, space_digest=STATS.digest)
    assert abs(sims[0, 1] - 1.0) < 1e-6


def test_same_inputs_give_the_same_bytes_however_batched(tmp_path: Path) -> None:
    batch = songs(7, seed=3)
    one, two, split = tmp_path / "one.h5", tmp_path / "two.h5", tmp_path / "split.h5"
    create_or_append_multi(one, SPACES, batch)
    create_or_append_multi(two, SPACES, batch)
    create_or_append_multi(split, SPACES, batch[:3])
    assert create_or_append_multi(split, SPACES, batch[3:]).total == 7
    assert one.read_bytes() == two.read_bytes() == split.read_bytes()


def test_a_store_needs_a_digest_when_it_holds_several_spaces(tmp_path: Path) -> None:
    path = tmp_path / "cat.h5"
    create_or_append_multi(path, SPACES, songs(2))
    for call in (lambda: read_store(path), lambda: open_info(path).space):
        with pytest.raises(StoreError, match=f"holds {PROJ.digest} \\(lumina-gradproj-v1\\), {STATS.digest}"):
            call()
    other = SignatureConfig(codebook_boosts=(0.5, 1.2, 1.3, 1.4)).space(DIGESTS, GRADPROJ)
    with pytest.raises(StoreError, match=f"store has {PROJ.digest}.*{STATS.digest}.*queries have {other.digest}"):
        read_store(path, other.digest)


def _meta_mismatch(batch: list[dict[str, Signature]]) -> list[dict[str, Signature]]:
    s = batch[0][GRADSTATS.name]
    batch[0][GRADSTATS.name] = Signature("other", s.file_sha256, s.pcm_sha256, s.chunks, s.raw_p, s.raw_m, s.p, s.m)
    return batch


@pytest.mark.parametrize(("spaces", "mutate", "match"), [
    ([PROJ, STATS], lambda b: [{GRADPROJ.name: b[0][GRADPROJ.name]}], "must carry exactly the methods"),
    ([PROJ, STATS], _meta_mismatch, "name different songs"),
    ([PROJ, PROJ], lambda b: b, "each once"),
    ([], lambda b: [], "each once"),
    ([PROJ, STATS], lambda b: [b[0], b[0]], "duplicate song id"),
])
def test_bad_batches_are_refused_and_nothing_written(tmp_path: Path, spaces: list[Any],
                                                     mutate: Callable[[Any], Any], match: str) -> None:
    path = tmp_path / "cat.h5"
    with pytest.raises(StoreError, match=match):
        create_or_append_multi(path, spaces, mutate(songs(2)))
    assert list(tmp_path.iterdir()) == []


def test_append_to_other_spaces_or_versions_is_refused_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "cat.h5"
    create_or_append_multi(path, SPACES, songs(2))
    before = path.read_bytes()
    with pytest.raises(StoreError, match=f"store has {PROJ.digest}.*batch has {STATS.digest}"):
        create_or_append_multi(path, [STATS], [{GRADSTATS.name: s[GRADSTATS.name]} for s in songs(1, prefix="x")])
    with pytest.raises(StoreError, match="version 2.*version 1"):
        create_or_append(path, PROJ, [s[GRADPROJ.name] for s in songs(1, prefix="y")])
    assert path.read_bytes() == before
    v1 = tmp_path / "v1.h5"
    create_or_append(v1, STATS, [s[GRADSTATS.name] for s in songs(2)])
    with pytest.raises(StoreError, match="version 1.*version 2"):
        create_or_append_multi(v1, SPACES, songs(1, prefix="z"))


def _edit(fn: Callable[[Any], None]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            fn(f)
    return apply


def _attr(group: str, key: str, value: Any) -> Callable[[Path], None]:
    return _edit(lambda f: f[group].attrs.__setitem__(key, value))


@pytest.mark.parametrize(("tamper", "match"), [
    (_edit(lambda f: f.attrs.__delitem__("methods")), "methods attribute is not a JSON list"),
    (_edit(lambda f: f.attrs.__setitem__("methods", "not json")), "methods attribute is not a JSON list"),
    (_edit(lambda f: f.attrs.__setitem__("methods", json.dumps([GRADPROJ.name, GRADPROJ.name]))),
     "methods attribute is not a JSON list of distinct"),
    (_edit(lambda f: f.attrs.__setitem__("methods", json.dumps([GRADPROJ.name, "lumina-other-v9"]))),
     "no group for method 'lumina-other-v9'"),
    (_edit(lambda f: f.attrs.__setitem__("version", np.int64(3))), "unknown lumina-signatures version 3"),
    (_attr(GRADPROJ.name, "signature_space_sha256", "0" * 64), "signature space sha256 is .* of method"),
    (_attr(GRADPROJ.name, "signature_space", STATS.canonical_json.decode()), "signature space sha256 is"),
    (_edit(lambda f: (f[GRADPROJ.name].attrs.__setitem__("signature_space", STATS.canonical_json.decode()),
                      f[GRADPROJ.name].attrs.__setitem__("signature_space_sha256", STATS.digest))),
     "group 'lumina-gradproj-v1' holds a signature space of another method"),
    (_edit(lambda f: f[GRADSTATS.name].__delitem__("raw_m")), "group 'lumina-gradstats-v1' must hold exactly"),
    (_edit(lambda f: f.create_dataset("extra", data=[1])), "expected datasets and method groups"),
    (_edit(lambda f: (f[GRADPROJ.name].__delitem__("signatures_p"),
                      f[GRADPROJ.name].create_dataset("signatures_p", data=np.zeros((2, 100), "<f4")))),
     "vectors of lumina-gradproj-v1 have 100 values"),
    (_edit(lambda f: (f[GRADPROJ.name].__delitem__("raw_p"),
                      f[GRADPROJ.name].create_dataset("raw_p", data=np.zeros((3, DIM), "<f8")))),
     "dataset lumina-gradproj-v1/raw_p has shape"),
])
def test_tampered_v2_stores_are_refused(tmp_path: Path, tamper: Callable[[Path], None], match: str) -> None:
    path = tmp_path / "cat.h5"
    create_or_append_multi(path, SPACES, songs(2))
    tamper(path)
    with pytest.raises(StoreError, match=match):
        read_store(path, PROJ.digest)


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1,
                        max_size=12), min_size=0, max_size=6, unique=True),
       st.integers(0, 2**32 - 1), st.booleans())
def test_round_trip_property(tmp_path_factory: pytest.TempPathFactory, ids: list[str], seed: int,
                             stats_first: bool) -> None:
    rng = np.random.default_rng(seed)
    batch = []
    for i, sid in enumerate(ids):
        pcm = hashlib.sha256(f"{seed}-{i}".encode()).hexdigest()
        batch.append({GRADPROJ.name: _sig(rng, sid, pcm), GRADSTATS.name: _sig(rng, sid, pcm)})
    spaces = [STATS, PROJ] if stats_first else [PROJ, STATS]
    path = tmp_path_factory.mktemp("prop") / "cat.h5"
    create_or_append_multi(path, spaces, batch)
    info = open_info(path)
    assert list(info.spaces.values()) == spaces and info.count == len(ids)
    for space in spaces:
        store = read_store(path, space.digest)
        assert store.song_ids == tuple(ids)
        for i, song in enumerate(batch):
            assert store.signature(i).bitwise_equal(song[space.as_dict()["method"]])
