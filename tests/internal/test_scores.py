"""Tests for the seeded General MIDI scores ``lumina_audit._internal.scores``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lumina_audit._internal import scores
from lumina_audit._internal.scores import (
    BENCHMARK_SEEDS,
    DEFAULT_SOUNDFONT,
    DRUM_CHANNEL,
    PPQ,
    TRAIN_SEEDS,
    VALIDATION_SEEDS,
    midi_bytes,
    render,
    score,
)
from lumina_audit.errors import ConfigError

Event = tuple[int, int, bytes]  # (absolute tick, status, data)


def _vlq(data: bytes, i: int) -> tuple[int, int]:
    value = 0
    while True:
        byte = data[i]
        i += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, i


def _parse(data: bytes) -> tuple[tuple[int, int, int], list[list[Event]]]:
    """A strict SMF reader: the header and every track's events; fails on any malformed byte."""
    assert data[:4] == b"MThd" and int.from_bytes(data[4:8], "big") == 6
    fmt, ntrks, division = (int.from_bytes(data[8 + 2 * k: 10 + 2 * k], "big") for k in range(3))
    pos, tracks = 14, []
    while pos < len(data):
        assert data[pos: pos + 4] == b"MTrk"
        length = int.from_bytes(data[pos + 4: pos + 8], "big")
        body, pos = data[pos + 8: pos + 8 + length], pos + 8 + length
        assert len(body) == length
        i, tick, events = 0, 0, []
        while i < len(body):
            delta, i = _vlq(body, i)
            tick += delta
            status = body[i]
            assert status & 0x80, "running status is never written"
            if status == 0xFF:
                n, j = _vlq(body, i + 2)
                events.append((tick, status, body[i + 1: i + 2] + body[j: j + n]))
                i = j + n
            else:
                n = 1 if status & 0xF0 in (0xC0, 0xD0) else 2
                payload = body[i + 1: i + 1 + n]
                assert len(payload) == n and all(b < 0x80 for b in payload)
                events.append((tick, status, payload))
                i += 1 + n
        assert i == len(body)
        assert events[-1][1:] == (0xFF, b"\x2f"), "each track ends with End of Track"
        assert all(e[1:] != (0xFF, b"\x2f") for e in events[:-1])
        tracks.append(events)
    assert pos == len(data)
    return (fmt, ntrks, division), tracks


@pytest.mark.parametrize("seed", [0, 1, 7, 12345, 100_003, 1_000_000])
def test_midi_is_a_valid_smf(seed: int) -> None:
    song = score(seed, 20.0)
    (fmt, ntrks, division), tracks = _parse(midi_bytes(song))
    assert (fmt, division) == (1, PPQ)
    assert ntrks == len(tracks) == len(song.parts) + 1
    tempo = [e for e in tracks[0] if e[1] == 0xFF and e[2][:1] == b"\x51"]
    assert len(tempo) == 1 and int.from_bytes(tempo[0][2][1:], "big") == round(60_000_000 / song.tempo_bpm)
    assert tracks[0][-1][0] == song.ticks
    for part, events in zip(song.parts, tracks[1:], strict=True):
        channels = {status & 0x0F for _t, status, _d in events if status < 0xF0}
        assert channels == {part.channel}
        on = sorted((t, d[0]) for t, s, d in events if s & 0xF0 == 0x90 and d[1] > 0)
        off = sorted((t, d[0]) for t, s, d in events if s & 0xF0 == 0x80)
        assert len(on) == len(off) == len(part.notes)
        assert on == sorted((n.start, n.pitch) for n in part.notes)
        assert off == sorted((n.start + n.length, n.pitch) for n in part.notes)
        programs = [d[0] for _t, s, d in events if s & 0xF0 == 0xC0]
        assert programs == ([] if part.program is None else [part.program])
        assert max(t for t, _s, _d in events) <= song.ticks


def test_same_seed_same_bytes_and_different_seeds_differ() -> None:
    assert midi_bytes(score(42, 30.0)) == midi_bytes(score(42, 30.0))
    assert len({midi_bytes(score(s, 30.0)) for s in range(20)}) == 20


def test_same_bytes_in_another_process() -> None:
    code = "import sys; from lumina_audit._internal.scores import *; sys.stdout.write(midi_bytes(score(9, 15.0)).hex())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert bytes.fromhex(out) == midi_bytes(score(9, 15.0))


def test_longer_score_plays_the_same_song_further() -> None:
    short, long = score(5, 10.0), score(5, 40.0)
    assert (short.tempo_bpm, short.key, short.mode) == (long.tempo_bpm, long.key, long.mode)
    for a, b in zip(short.parts, long.parts, strict=True):
        assert (a.program, a.channel) == (b.program, b.channel)
        cut = [n for n in b.notes if n.start < short.ticks]
        assert [(n.start, n.pitch, n.velocity) for n in a.notes] == [(n.start, n.pitch, n.velocity) for n in cut]


@pytest.mark.parametrize("seed", range(40))
def test_notes_in_range_and_drums_on_channel_10(seed: int) -> None:
    song = score(seed, 45.0)
    assert 70 <= song.tempo_bpm <= 150 and 0 <= song.key < 12
    drums = [p for p in song.parts if p.channel == DRUM_CHANNEL]
    assert len(drums) == 1 and drums[0].role == "drums" and drums[0].program is None
    pitched = [p for p in song.parts if p.channel != DRUM_CHANNEL]
    assert all(p.program is not None and 0 <= p.program < 128 for p in pitched)
    assert 2 <= len({p.program for p in pitched}) <= 4
    assert len({p.channel for p in song.parts}) == len(song.parts)
    for part in song.parts:
        assert part.notes, part.role
        for n in part.notes:
            assert 0 <= n.start and n.length > 0 and n.start + n.length <= song.ticks
            assert 1 <= n.velocity <= 127
            low, high = (35, 81) if part.channel == DRUM_CHANNEL else (28, 108)
            assert low <= n.pitch <= high, (part.role, n)


def test_programs_and_modes_vary_over_seeds() -> None:
    songs = [score(s, 5.0) for s in range(60)]
    assert len({s.mode for s in songs}) == 4 and len({s.key for s in songs}) == 12
    assert len({p.program for s in songs for p in s.parts if p.program is not None}) >= 20
    assert {len(s.parts) for s in songs} == {4, 5}


def test_seed_ranges_are_disjoint() -> None:
    ranges = [TRAIN_SEEDS, VALIDATION_SEEDS, BENCHMARK_SEEDS]
    for i, a in enumerate(ranges):
        for b in ranges[i + 1:]:
            assert a.stop <= b.start or b.stop <= a.start
    assert all(len(r) >= 10_000 for r in ranges)


@pytest.mark.parametrize("seed, seconds", [(-1, 5.0), (True, 5.0), (1.5, 5.0), (0, 0.0), (0, 4000.0), (0, "5")])
def test_invalid_arguments(seed: object, seconds: object) -> None:
    with pytest.raises(ConfigError):
        score(seed, seconds)  # type: ignore[arg-type]


def test_render_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(scores.shutil, "which", lambda _name: None)
    with pytest.raises(ConfigError) as err:
        render(midi_bytes(score(0, 1.0)), tmp_path / "x.wav")
    assert "fluidsynth" in err.value.message and "fluid-soundfont-gm" in (err.value.hint or "")
    monkeypatch.setattr(scores.shutil, "which", lambda _name: "/usr/bin/fluidsynth")
    with pytest.raises(ConfigError) as err:
        render(midi_bytes(score(0, 1.0)), tmp_path / "x.wav", soundfont=tmp_path / "none.sf2")
    assert "fluid-soundfont-gm" in (err.value.hint or "")


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not DEFAULT_SOUNDFONT.is_file(),
                    reason="needs the Debian packages fluidsynth and fluid-soundfont-gm")
def test_render(tmp_path: Path) -> None:
    midi = midi_bytes(score(3, 4.0))
    x = render(midi, tmp_path / "a.wav", seconds=4.0)
    assert x.dtype == np.float32 and x.shape == (4 * 32000,)
    assert np.isfinite(x).all() and np.abs(x).max() <= 1.0
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    assert 0.01 < rms < 0.5
    assert np.array_equal(x, render(midi, tmp_path / "b.wav", seconds=4.0))
