"""Stores written a block of songs at a time (``write_streamed``): the bytes of the whole-batch writers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lumina_audit.attribution.store import read_store
from lumina_audit.attribution.store_writer import (
    StoreRows,
    create_or_append,
    create_or_append_multi,
    write_streamed,
)
from lumina_audit.errors import StoreError
from lumina_audit.signature.methods import GRADPROJ, GRADSTATS
from lumina_audit.signature.result import Signature

from .test_store_v2 import PROJ, SPACES, STATS, songs


def rows_of(batch: Sequence[Mapping[str, Signature]], method: str) -> StoreRows:
    first = [b[method] for b in batch]
    return StoreRows([s.song_id for s in first], [s.file_sha256 for s in first], [s.pcm_sha256 for s in first],
                     [s.chunks for s in first])


class Reader:
    """The songs of ``batch`` for ``methods``, block by block, remembering every block asked for."""

    def __init__(self, batch: Sequence[Mapping[str, Signature]], methods: Sequence[str]) -> None:
        self.batch, self.methods = batch, methods
        self.calls: list[tuple[int, int]] = []

    def __call__(self, start: int, stop: int) -> list[dict[str, Signature]]:
        self.calls.append((start, stop))
        return [{m: song[m] for m in self.methods} for song in self.batch[start:stop]]


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 70), st.integers(1, 40), st.booleans(), st.integers(0, 2**16))
def test_streamed_store_is_byte_identical_to_the_whole_batch_writers(
        tmp_path_factory: pytest.TempPathFactory, n: int, block: int, version_1: bool, seed: int) -> None:
    folder = tmp_path_factory.mktemp("stream")
    batch = songs(n, seed=seed)
    spaces = [STATS] if version_1 else SPACES
    methods = [s.as_dict()["method"] for s in spaces]
    whole, streamed = folder / "whole.h5", folder / "streamed.h5"
    if version_1:
        create_or_append(whole, STATS, [b[GRADSTATS.name] for b in batch])
    else:
        create_or_append_multi(whole, SPACES, batch)
    reader = Reader(batch, methods)
    summary = write_streamed(streamed, spaces, rows_of(batch, methods[0]), reader, version=1 if version_1 else 2,
                             block_rows=block)
    assert streamed.read_bytes() == whole.read_bytes()
    assert (summary.created, summary.total) == (True, n)
    # every song asked for once, in order, never more than a block at a time
    assert [s for a, b in reader.calls for s in range(a, b)] == list(range(n))
    assert max(b - a for a, b in reader.calls) <= block


def test_streamed_store_refusals_write_nothing(tmp_path: Path) -> None:
    batch = songs(5)
    methods = [GRADPROJ.name, GRADSTATS.name]
    path = tmp_path / "s.h5"
    other = songs(5, prefix="other")
    with pytest.raises(StoreError, match="song 3: its lumina-gradproj-v1 signature names another song"):
        write_streamed(path, SPACES, rows_of(batch, GRADPROJ.name),
                       lambda a, b: [other[i] if i == 3 else batch[i] for i in range(a, b)], block_rows=2)
    dup = rows_of(batch, GRADPROJ.name)
    dup = StoreRows(dup.song_ids, dup.file_sha256, [dup.pcm_sha256[0]] * 5, dup.chunks)
    with pytest.raises(StoreError, match="duplicate PCM hash"):
        write_streamed(path, SPACES, dup, Reader(batch, methods))
    with pytest.raises(StoreError, match="version 1 holds one method"):
        write_streamed(path, SPACES, rows_of(batch, GRADPROJ.name), Reader(batch, methods), version=1)
    assert list(tmp_path.iterdir()) == []
    write_streamed(path, [PROJ], rows_of(batch, GRADPROJ.name), Reader(batch, [GRADPROJ.name]))
    before = path.read_bytes()
    with pytest.raises(StoreError, match="already exists"):
        write_streamed(path, [PROJ], rows_of(batch, GRADPROJ.name), Reader(batch, [GRADPROJ.name]))
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]
    assert read_store(path, PROJ.digest).song_ids == tuple(rows_of(batch, GRADPROJ.name).song_ids)
