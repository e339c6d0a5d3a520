"""Derived copies: the pinned battery, its records, and its refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.attribution.derive import TRANSFORMS, DeriveError, read_sidecar
from lumina_audit.attribution.derive import derive_audio as derive
from lumina_audit.signature.audio import load_audio
from lumina_audit.signature.pins import MARKER
from lumina_audit.signature.space import SignatureConfig

from ..conftest import ROOT


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("src")
    a, b = d / "song-a.wav", d / "song-b.wav"
    write_wav(a, render(SongSpec(seed=8101, seconds=22.0, sample_rate=44100, channels=2)), 44100, 16)
    write_wav(b, render(SongSpec(seed=8102, seconds=12.0, sample_rate=32000, channels=1)), 32000, 16)
    return a, b


def _pcm(path: Path) -> tuple[np.ndarray, int]:
    data, rate = soundfile.read(path, dtype="float64", always_2d=True)
    return data.T, rate


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_each_transform_writes_audio_and_its_record(songs: tuple[Path, Path], tmp_path: Path, transform: str) -> None:
    a, b = songs
    sources = [a, b] if transform == "splice" else [a]
    done = derive(sources, transform, tmp_path / "out")
    assert done.path.exists() and done.sidecar.name == done.path.name + ".derive.json"
    record = read_sidecar(done.path)
    assert record is not None and record["transform"] == transform
    assert record["source_ids"] == [p.stem for p in sources] and record["output"]["sha256"] == done.sha256
    for src, entry in zip(sources, json.loads(done.sidecar.read_bytes())["sources"], strict=True):
        assert entry["pcm_sha256"] == load_audio(src, SignatureConfig()).pcm_sha256
    audio = load_audio(done.path, SignatureConfig())  # decodes like any input
    assert audio.pcm_sha256 != load_audio(a, SignatureConfig()).pcm_sha256


def test_what_the_transforms_do(songs: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = songs
    x, rate = _pcm(a)
    gain, _ = _pcm(derive([a], "gain-6db", tmp_path / "g").path)
    np.testing.assert_allclose(gain, x * 10 ** (-6 / 20), atol=1.5 / 32768)
    noisy, _ = _pcm(derive([a], "noise-20db", tmp_path / "n").path)
    snr = 10 * np.log10(np.mean(x**2) / np.mean((noisy - x) ** 2))
    assert abs(snr - 20.0) < 0.2
    fast, _ = _pcm(derive([a], "speed+2", tmp_path / "f").path)
    slow, _ = _pcm(derive([a], "speed-2", tmp_path / "s").path)
    assert abs(fast.shape[1] - x.shape[1] * 50 / 51) <= 2 and abs(slow.shape[1] - x.shape[1] * 50 / 49) <= 2
    excerpt, _ = _pcm(derive([a], "excerpt-20s", tmp_path / "e").path)
    start = (x.shape[1] - 20 * rate) // 2
    assert excerpt.shape[1] == 20 * rate and np.array_equal(excerpt, x[:, start:start + 20 * rate])
    mp3 = derive([a], "mp3-128k", tmp_path / "m")
    kbps = mp3.path.stat().st_size * 8 / (x.shape[1] / rate) / 1000
    assert mp3.path.suffix == ".mp3" and 120 < kbps < 140
    opus = derive([a], "opus-64k", tmp_path / "o")
    assert soundfile.info(opus.path).samplerate == 48000 and read_sidecar(opus.path)["encoding"]["bitrate_bps"] == 64000


def test_refusals_write_nothing(songs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = songs
    with pytest.raises(DeriveError, match="unknown transform 'mp3-320k'"):
        derive([a], "mp3-320k", tmp_path / "x")
    with pytest.raises(DeriveError, match="takes 2 source"):
        derive([a], "splice", tmp_path / "x")
    with pytest.raises(DeriveError, match="too short for a 20 s excerpt"):
        derive([b], "excerpt-20s", tmp_path / "x")
    assert list(tmp_path.iterdir()) == []
    done = derive([a], "gain-3db", tmp_path / "x")
    before = done.path.read_bytes()
    with pytest.raises(DeriveError, match="already exists"):
        derive([a], "gain-3db", tmp_path / "x")
    assert done.path.read_bytes() == before
    done.path.write_bytes(before + b"\0")
    with pytest.raises(DeriveError, match="is not the .* its derivation record names"):
        read_sidecar(done.path)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != MARKER} | {"PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "lumina_audit", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def test_cli_battery_and_one_line_refusals(songs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = songs
    out = _cli("audio", "derive", str(a), "--transform", "battery", "--out-dir", "derived", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    written = json.loads(out.stdout)
    assert sorted(w["transform"] for w in written) == sorted(k for k, v in TRANSFORMS.items() if v[0] == 1)
    assert all(Path(tmp_path, w["path"]).name.startswith("song-a.") for w in written)
    listing = sorted(p.name for p in (tmp_path / "derived").iterdir())
    for args, fragment in (
        (["--transform", "wobble", "--out", "w.wav"], "unknown transform 'wobble'"),
        (["--transform", "battery", "--out-dir", "derived"], "already exists; refusing to overwrite"),
        (["--transform", "gain-3db", "--transform", "gain-6db", "--out", "two.wav"], "--out takes one transform"),
    ):
        bad = _cli("audio", "derive", str(a), *args, cwd=tmp_path)
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 2 and lines[0].startswith("error: ") and fragment in lines[0], bad.stderr
        assert "Traceback" not in bad.stderr
    assert sorted(p.name for p in (tmp_path / "derived").iterdir()) == listing
    assert not (tmp_path / "w.wav").exists() and not (tmp_path / "two.wav").exists()
    splice = _cli("audio", "derive", str(a), str(b), "--transform", "splice", "--out", "mix", "--song-id", "s1",
                  "--song-id", "s2", cwd=tmp_path)
    assert splice.returncode == 0, splice.stderr
    assert read_sidecar(tmp_path / "mix.wav")["source_ids"] == ["s1", "s2"]
