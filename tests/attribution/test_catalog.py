"""Extraction into a store: all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lumina_audit.attribution.catalog import extract_to_store
from lumina_audit.attribution.store import read_store
from lumina_audit.errors import AudioError, StoreError

from ..conftest import GOLDEN

CLIPS = GOLDEN / "clips"


def test_bad_input_leaves_the_store_untouched(session: Any, tmp_path: Path) -> None:
    store = tmp_path / "catalog.h5"
    summary = extract_to_store(session, [CLIPS / "d_mono32k_float.wav"], store)
    assert summary.total == 1
    before = store.read_bytes()
    (tmp_path / "broken.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="broken.wav: cannot decode audio"):
        extract_to_store(session, [CLIPS / "a_stereo44k_pcm16.wav", tmp_path / "broken.wav"], store)
    with pytest.raises(StoreError, match="duplicate"):
        extract_to_store(session, [CLIPS / "d_mono32k_float.wav"], store, song_ids=["another-id"])
    assert store.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.wav", "catalog.h5"]
    extract_to_store(session, [CLIPS / "a_stereo44k_pcm16.wav"], store)
    got = read_store(store)
    assert got.song_ids == ("d_mono32k_float", "a_stereo44k_pcm16")
    assert got.space.digest == session.space.digest
