"""``customize``: pieces of fine-tuned copies of the pinned LM and of the LM itself, with their records.

Run twice with the same songs and settings it writes the same bytes; every refusal leaves nothing
behind (no output folder, no temporary folder).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.customization import CustomizationError, FineTune, Sampling, customize, read_record
from lumina_audit.errors import ConfigError, LuminaError
from lumina_audit.signature.codes import read_codes
from lumina_audit.signature.pins import Pins

from ..conftest import TINY, tiny_digests

TUNING = FineTune(steps=2, lr=1e-3)
SAMPLING = Sampling(count=2, seconds=1.0)


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str, str | None]]:
    root = tmp_path_factory.mktemp("songs")
    out = []
    for i in range(2):
        path = root / f"s{i}.wav"
        write_wav(path, render(SongSpec(seed=61000 + i, seconds=10.5)), 32000, 16)
        out.append((path, f"s{i}", None))
    return out


@pytest.fixture(scope="module")
def twice(songs: list[tuple[Path, str, str | None]], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("custom")
    for name in ("a", "b"):
        customize(TINY, tiny_digests(), songs, root / name, tuning=TUNING, sampling=SAMPLING, pins=Pins())
    return root / "a", root / "b"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_twice_gives_the_same_pieces_and_records_byte_for_byte(twice: tuple[Path, Path]) -> None:
    a, b = twice
    files = _files(a)
    assert files == _files(b)
    assert sorted(files) == sorted([
        "negatives/base.piece-000.codes", "negatives/base.piece-000.codes.customization.json",
        "negatives/base.piece-001.codes", "negatives/base.piece-001.codes.customization.json",
        *[f"positives/s{i}/s{i}.piece-00{k}.codes{ext}" for i in range(2) for k in range(2)
          for ext in ("", ".customization.json")]])


def test_records_hold_every_setting_and_digest(twice: tuple[Path, Path], songs: list[tuple[Path, str, str | None]]
                                               ) -> None:
    a, _ = twice
    piece = a / "positives" / "s1" / "s1.piece-001.codes"
    rec = read_record(piece)
    assert rec["kind"] == "fine-tuned" and rec["base_model"] == dict(sorted(tiny_digests().items()))
    assert rec["song"]["song_id"] == "s1" and rec["song"]["file_sha256"] == hashlib.sha256(
        songs[1][0].read_bytes()).hexdigest() and rec["song"]["chunks"] == 1
    assert rec["finetune"] == TUNING.as_dict() and rec["sampling"] == SAMPLING.as_dict()
    assert rec["seed"] == SAMPLING.seed + 1 and rec["index"] == 1 and len(rec["losses"]) == TUNING.steps
    assert rec["piece"]["sha256"] == hashlib.sha256(piece.read_bytes()).hexdigest()
    assert rec["piece"]["carried_as"] == "codes" and rec["decoder"]["round_trip_correlation"] < 0.5
    base = read_record(a / "negatives" / "base.piece-001.codes")
    assert base["kind"] == "base" and "song" not in base and base["seed"] == rec["seed"]
    assert base["lm_sha256"] != rec["lm_sha256"]  # the fine-tuned copy's weights differ from the base model's
    other = read_record(a / "positives" / "s0" / "s0.piece-001.codes")
    assert other["lm_sha256"] != rec["lm_sha256"]
    codes = read_codes(piece)
    assert codes.codes_sha256 == rec["piece"]["codes_sha256"] and codes.frames == rec["piece"]["frames"] == 50
    assert codes.sample_count == rec["piece"]["samples"] == 32000
    # The same seed, another model: another piece (the fine-tuning changed what the LM generates).
    assert not np.array_equal(codes.codes, read_codes(a / "negatives" / "base.piece-001.codes").codes)


def test_a_changed_piece_or_record_is_refused(twice: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = twice
    piece = a / "negatives" / "base.piece-000.codes"
    copy = tmp_path / piece.name
    copy.write_bytes(piece.read_bytes().replace(b'"frames":50', b'"frames":51'))
    (tmp_path / (piece.name + ".customization.json")).write_bytes(
        (piece.parent / (piece.name + ".customization.json")).read_bytes())
    with pytest.raises(CustomizationError, match="is not the one its record states"):
        read_record(copy)
    with pytest.raises(LuminaError, match="not in canonical form|do not make"):
        read_codes(copy)
    doc = json.loads(piece.read_bytes())
    doc["version"] = 2
    copy.write_text(json.dumps(doc))
    with pytest.raises(LuminaError, match="version 2 is not supported"):
        read_codes(copy)


def test_refusals_leave_nothing_behind(songs: list[tuple[Path, str, str | None]], tmp_path: Path) -> None:
    short = tmp_path / "short.wav"
    write_wav(short, render(SongSpec(seed=61010, seconds=4.0)), 32000, 16)
    cases = [
        ([(short, "short", None)], r"short.wav: 4.00 s; fine-tuning needs at least one whole chunk of 10 s"),
        ([(songs[0][0], "a/b", None)], r"song id 'a/b' must be"),
        ([(songs[0][0], "base", None)], r"and not 'base'"),
        ([(songs[0][0], "x", None), (songs[1][0], "x", None)], r"song ids must be distinct"),
        ([(songs[0][0], "x", "0" * 64)], r"differs from the expected"),
    ]
    for i, (items, match) in enumerate(cases):
        with pytest.raises(LuminaError, match=match):
            customize(TINY, tiny_digests(), items, tmp_path / f"out{i}", tuning=TUNING, sampling=SAMPLING,
                      pins=Pins())
    wrong = dict(tiny_digests()) | {"state_dict.bin": "0" * 64}
    with pytest.raises(LuminaError, match="state_dict.bin"):
        customize(TINY, wrong, songs, tmp_path / "outw", tuning=TUNING, sampling=SAMPLING, pins=Pins())
    (tmp_path / "exists").mkdir()
    with pytest.raises(CustomizationError, match="already exists; refusing to overwrite"):
        customize(TINY, tiny_digests(), songs, tmp_path / "exists", tuning=TUNING, sampling=SAMPLING, pins=Pins())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists", "short.wav"]
    with pytest.raises(ConfigError, match="steps must be an integer above 0"):
        FineTune(steps=0)
    with pytest.raises(ConfigError, match="layers must be distinct"):
        FineTune(layers=(3, 3))


def test_named_layers_train_alone(songs: list[tuple[Path, str, str | None]]) -> None:
    from lumina_audit.customization import finetune
    from lumina_audit.signature.gradients import chunk_codes
    from lumina_audit.signature.session import Session

    model = Session.open(TINY, tiny_digests(), Pins()).model
    from lumina_audit.signature.audio import load_audio
    from lumina_audit.signature.space import SignatureConfig

    audio = load_audio(songs[0][0], SignatureConfig())
    codes = chunk_codes(model, torch.from_numpy(audio.samples[:320000]))
    lm, _ = finetune(model, codes, FineTune(steps=1, lr=1e-2, layers=(47,)), Pins())
    before, after = model.lm.state_dict(), lm.state_dict()
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed and all(n.startswith("transformer.layers.47.") for n in changed)
    with pytest.raises(CustomizationError, match=r"layers \[99\] do not exist"):
        finetune(model, codes, FineTune(steps=1, layers=(99,)), Pins())
