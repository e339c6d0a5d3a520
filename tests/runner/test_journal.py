"""The Extract journal (``lumina-extract-journal`` v1): whole entries, read back bit for bit, foreign ones refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lumina_audit.runner.journal import Journal, JournalError, SongEntry, journal_path
from lumina_audit.signature.methods import GRADPROJ, GRADSTATS
from lumina_audit.signature.result import Signature

from ..attribution.test_store_v2 import PROJ, STATS, songs

MANIFEST, OTHER = "1" * 64, "2" * 64
SPACES = {GRADPROJ.name: PROJ.digest, GRADSTATS.name: STATS.digest}
DIMS = {GRADPROJ.name: GRADPROJ.dim, GRADSTATS.name: GRADSTATS.dim}
WORKER = {"id": "0123456789ab", "engine": "local", "host": "h", "pid": 1, "device": "cpu",
          "environment": {"versions": {"torch": "x"}}}


def entry(index: int, sig: Signature) -> SongEntry:
    return SongEntry(index, sig.song_id, f"/audio/{sig.song_id}.wav", 1000 + index, sig.file_sha256, sig.pcm_sha256,
                     sig.chunks, str(WORKER["id"]))


def journal_with_two(tmp_path: Path) -> tuple[Journal, list[dict[str, Signature]]]:
    path = journal_path(tmp_path / "out" / "c.h5")
    j = Journal.open(path, MANIFEST, SPACES, DIMS, "c.h5")
    assert not path.exists()  # nothing is written before the first song
    batch = songs(3)
    j.add_worker(WORKER)
    for i in (0, 2):
        j.put(entry(i, batch[i][GRADPROJ.name]), batch[i])
    return j, batch


def test_songs_read_back_bit_for_bit(tmp_path: Path) -> None:
    j, batch = journal_with_two(tmp_path)
    assert j.path == tmp_path / "out" / ".c.h5.journal"
    (j.path / "songs" / ".00000001.json.abc.tmp").write_text("torn")  # a crash mid-write leaves only this
    again = Journal.open(j.path, MANIFEST, SPACES, DIMS, "c.h5")
    assert again.indexes() == [0, 2] and not (j.path / "songs" / ".00000001.json.abc.tmp").exists()
    for i in (0, 2):
        got, sigs = again.read(i)
        assert got == entry(i, batch[i][GRADPROJ.name])
        for method in SPACES:
            assert sigs[method].bitwise_equal(batch[i][method])
    assert again.workers() == {WORKER["id"]: WORKER}
    again.drop(2)
    assert again.indexes() == [0]
    again.remove()
    assert not j.path.exists()


@pytest.mark.parametrize(("manifest", "spaces", "match"), [
    (OTHER, SPACES, f"journal of manifest {MANIFEST}, this run's manifest is {OTHER}"),
    (MANIFEST, {GRADPROJ.name: PROJ.digest}, f"journal of signature spaces .*{STATS.digest}.*this run computes"),
    (MANIFEST, {GRADSTATS.name: STATS.digest, GRADPROJ.name: PROJ.digest}, "journal of signature spaces"),
])
def test_a_journal_of_another_manifest_or_space_is_refused_by_name(tmp_path: Path, manifest: str,
                                                                   spaces: dict[str, str], match: str) -> None:
    j, _ = journal_with_two(tmp_path)
    before = sorted(p.name for p in (j.path / "songs").iterdir())
    with pytest.raises(JournalError, match=match) as info:
        Journal.open(j.path, manifest, spaces, DIMS, "c.h5")
    assert str(j.path) in info.value.message and "rm -r" in (info.value.hint or "")
    assert sorted(p.name for p in (j.path / "songs").iterdir()) == before


def _rewrite(path: Path, **changes: object) -> None:
    doc = json.loads(path.read_bytes())
    doc.update(changes)
    path.write_text(json.dumps(doc))


def test_unknown_versions_and_corrupt_entries_are_refused(tmp_path: Path) -> None:
    j, _ = journal_with_two(tmp_path)
    song = j.path / "songs" / "00000002.json"
    text = song.read_text()
    _rewrite(song, chunks=7)
    with pytest.raises(JournalError, match="00000002.json: entry_sha256 does not match"):
        j.read(2)
    song.write_text(text.replace('"version":1', '"version":2'))
    with pytest.raises(JournalError, match="not a lumina-extract-journal-song version 1 file .*version 2"):
        j.read(2)
    song.write_text(text[: len(text) // 2])
    with pytest.raises(JournalError, match="00000002.json: unreadable journal file"):
        j.read(2)
    (j.path / "songs" / "notes.txt").write_text("?")
    with pytest.raises(JournalError, match="notes.txt: not a journal file"):
        j.indexes()
    _rewrite(j.path / "journal.json", version=9)
    with pytest.raises(JournalError, match="journal.json: not a lumina-extract-journal version 1 file .*version 9"):
        Journal.open(j.path, MANIFEST, SPACES, DIMS, "c.h5")
