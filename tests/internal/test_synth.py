"""Tests for the deterministic synthetic-music generator ``lumina_audit._internal.synth``."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from lumina_audit._internal import synth
from lumina_audit._internal.synth import SongSpec, plan, render, splice, to_pcm, write_wav
from lumina_audit.errors import ConfigError

SR = 32000
FRAME = 4096


def _power(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Mean Hann-windowed power spectrum of mono ``x`` [samples] -> [FRAME // 2 + 1]."""
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[:: FRAME // 2] * np.hanning(FRAME)
    return np.asarray((np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0))


def _flatness(p: npt.NDArray[np.float64]) -> float:
    p = p[1:] + 1e-20
    return float(np.exp(np.log(p).mean()) / p.mean())


def _chroma(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Unit-norm energy per pitch class (80 Hz - 2 kHz) of a power spectrum."""
    f = np.fft.rfftfreq(FRAME, 1 / SR)
    sel = (f > 80) & (f < 2000)
    pc = np.round(12 * np.log2(f[sel] / 440.0)).astype(int) % 12
    c = np.bincount(pc, weights=p[sel], minlength=12)
    return np.asarray(c / np.linalg.norm(c))


def test_same_spec_is_bitwise_identical() -> None:
    spec = SongSpec(seed=11, seconds=3.0, sample_rate=44100, channels=2)
    assert render(spec).tobytes() == render(spec).tobytes()
    assert render(spec).tobytes() == render(SongSpec(11, 3.0, 44100, 2)).tobytes()


def test_identical_across_processes() -> None:
    spec = "SongSpec(seed=5, seconds=2.0, sample_rate=32000, channels=2)"
    code = (
        "import hashlib; from lumina_audit._internal.synth import SongSpec, render; "
        f"print(hashlib.sha256(render({spec}).tobytes()).hexdigest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = hashlib.sha256(render(SongSpec(seed=5, seconds=2.0, sample_rate=32000, channels=2)).tobytes())
    assert out.stdout.strip() == here.hexdigest()


@pytest.mark.parametrize(
    ("seconds", "sample_rate", "channels"),
    [(1.0, 32000, 1), (0.75, 44100, 2), (2.5, 48000, 3), (0.0001, 32000, 1), (1.00001, 32000, 2)],
)
def test_shape_dtype_range(seconds: float, sample_rate: int, channels: int) -> None:
    spec = SongSpec(seed=3, seconds=seconds, sample_rate=sample_rate, channels=channels)
    x = render(spec)
    assert x.dtype == np.float64
    assert x.shape == (channels, round(seconds * sample_rate)) == (channels, spec.samples)
    assert np.isfinite(x).all()
    assert np.abs(x).max() <= 0.99
    if seconds >= 0.5:
        assert np.abs(x).max() > 0.1


def test_stereo_channels_differ_but_share_the_song() -> None:
    x = render(SongSpec(seed=2, seconds=4.0, sample_rate=SR, channels=2))
    assert not np.array_equal(x[0], x[1])
    assert np.corrcoef(x[0], x[1])[0, 1] > 0.8


def test_longer_render_continues_the_same_song() -> None:
    short = render(SongSpec(seed=9, seconds=2.0, sample_rate=SR, channels=2))
    long = render(SongSpec(seed=9, seconds=5.0, sample_rate=SR, channels=2))
    keep = short.shape[1] - SR // 100  # the last 10 ms fade out
    assert np.array_equal(short[:, :keep], long[:, :keep])


def test_plan_depends_only_on_seed_and_overrides() -> None:
    base = plan(SongSpec(seed=4, seconds=1.0))
    assert plan(SongSpec(seed=4, seconds=30.0, sample_rate=44100, channels=2)) == base
    spec = SongSpec(seed=4, seconds=1.0, tempo_bpm=100.0, root_midi=60, scale="dorian", instrument="pluck")
    tuned = plan(spec)
    assert (tuned.tempo_bpm, tuned.root_midi, tuned.scale, tuned.instrument) == (100.0, 60, "dorian", "pluck")
    assert tuned.melody == base.melody and tuned.progression == base.progression


def test_different_seeds_give_different_songs() -> None:
    seeds = range(10)
    plans = [plan(SongSpec(seed=s, seconds=1.0)) for s in seeds]
    assert len({p.melody for p in plans}) == len(plans)
    assert len({p.tempo_bpm for p in plans}) >= 7
    assert len({p.timbres for p in plans}) == len(plans)
    assert {p.instrument for p in plans} == set(synth.INSTRUMENTS)
    powers = [_power(render(SongSpec(seed=s, seconds=6.0, sample_rate=SR))[0]) for s in seeds]
    chromas = [_chroma(p) for p in powers]
    cos = [float(chromas[i] @ chromas[j]) for i in range(len(chromas)) for j in range(i)]
    assert max(cos) < 0.97 and float(np.mean(cos)) < 0.8
    logs = [np.log10(p + 1e-12) for p in powers]
    corr = [np.corrcoef(logs[i], logs[j])[0, 1] for i in range(len(logs)) for j in range(i)]
    assert max(corr) < 0.9
    assert len({int(np.argmax(c)) for c in chromas}) >= 5  # dominant pitch class varies


def test_same_song_at_another_rate_has_the_same_pitch_content() -> None:
    a = _chroma(_power(render(SongSpec(seed=1, seconds=6.0, sample_rate=SR))[0]))
    x44 = render(SongSpec(seed=1, seconds=6.0, sample_rate=44100))[0]
    b = _chroma(_power(x44[(np.arange(6 * SR) * 44100) // SR]))
    assert float(a @ b) > 0.99


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5, 6, 7, 8])
def test_signal_is_tonal_not_noise(seed: int) -> None:
    song = _flatness(_power(render(SongSpec(seed=seed, seconds=6.0, sample_rate=SR))[0]))
    noise = _flatness(_power(np.random.default_rng(seed).random(6 * SR) * 1.98 - 0.99))
    assert noise > 0.8
    assert song < 0.25


def test_sine_polynomial_matches_numpy() -> None:
    u = np.linspace(-50.0, 50.0, 200001)
    assert np.abs(synth._sin(u) - np.sin(2 * np.pi * u)).max() < 1e-10


def test_splice_length_parts_and_continuity() -> None:
    a = render(SongSpec(seed=1, seconds=3.0, sample_rate=SR, channels=2))
    b = render(SongSpec(seed=2, seconds=4.0, sample_rate=SR, channels=2))
    a_stop, b_start, b_stop, fade = 2 * SR, SR, 3 * SR, 800
    q = splice(a, b, a_stop=a_stop, b_start=b_start, b_stop=b_stop, fade=fade)
    assert q.shape == (2, a_stop + (b_stop - b_start) - fade) and q.dtype == np.float64
    assert np.array_equal(q[:, : a_stop - fade], a[:, : a_stop - fade])
    assert np.array_equal(q[:, a_stop:], b[:, b_start + fade : b_stop])
    cross = q[:, a_stop - fade : a_stop]
    lo = np.minimum(a[:, a_stop - fade : a_stop], b[:, b_start : b_start + fade])
    hi = np.maximum(a[:, a_stop - fade : a_stop], b[:, b_start : b_start + fade])
    assert np.all(cross >= lo - 1e-12) and np.all(cross <= hi + 1e-12)
    step = np.abs(np.diff(q[:, a_stop - fade - 1 : a_stop + 1], axis=1)).max()
    assert step <= max(np.abs(np.diff(a, axis=1)).max(), np.abs(np.diff(b, axis=1)).max()) + 0.02
    assert np.abs(q).max() <= 0.99
    whole = splice(a, b, a_stop=a.shape[1], b_start=0, fade=0)
    assert np.array_equal(whole, np.concatenate([a, b], axis=1))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"a_stop": 10**9, "b_start": 0, "fade": 10},
        {"a_stop": 100, "b_start": -1, "fade": 10},
        {"a_stop": 100, "b_start": 50, "b_stop": 40, "fade": 0},
        {"a_stop": 5, "b_start": 0, "fade": 10},
        {"a_stop": 100, "b_start": 0, "fade": -1},
    ],
)
def test_splice_rejects_bad_bounds(kwargs: dict[str, int]) -> None:
    a = render(SongSpec(seed=1, seconds=0.1, sample_rate=SR))
    with pytest.raises(ConfigError):
        splice(a, a, **kwargs)
    with pytest.raises(ConfigError):
        splice(a, np.zeros((2, 4000)), a_stop=100, b_start=0, fade=10)


def test_to_pcm_scaling_rounding_and_clipping() -> None:
    x = np.array([[0.0, 1.0, -1.0, 2.0, -7.0, 0.5, 1e-9]])
    p16, p24, p32 = to_pcm(x, 16), to_pcm(x, 24), to_pcm(x, 32)
    assert p16.dtype == np.int16 and p24.dtype == np.int32 and p32.dtype == np.float32
    assert p16.tolist() == [[0, 32767, -32767, 32767, -32767, 16384, 0]]  # 16383.5 rounds half to even
    assert p24.tolist() == [[0, 8388607, -8388607, 8388607, -8388607, 4194304, 0]]
    assert p32.tolist() == [[0.0, 1.0, -1.0, 1.0, -1.0, 0.5, np.float32(1e-9)]]
    y = render(SongSpec(seed=6, seconds=0.5, sample_rate=SR, channels=2))
    assert np.array_equal(to_pcm(y, 24), to_pcm(y, 24)) and np.abs(to_pcm(y, 24)).max() < 2**23
    with pytest.raises(ConfigError):
        to_pcm(np.array([[np.nan]]), 16)


@pytest.mark.parametrize(("bits", "subtype", "dtype"), [(16, "PCM_16", "int16"), (24, "PCM_24", "int32"),
                                                        (32, "FLOAT", "float32")])
def test_write_wav_round_trip(tmp_path: Path, bits: int, subtype: str, dtype: str) -> None:
    x = render(SongSpec(seed=8, seconds=0.5, sample_rate=44100, channels=2))
    path = tmp_path / f"clip{bits}.wav"
    write_wav(path, x, 44100, bits)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 2, x.shape[1], subtype)
    data, rate = sf.read(str(path), dtype=dtype, always_2d=True)
    back = data.T >> 8 if bits == 24 else data.T
    assert rate == 44100
    assert np.array_equal(back, to_pcm(x, bits))
    write_wav(str(tmp_path / "again.wav"), x, 44100, bits)
    assert (tmp_path / "again.wav").read_bytes() == path.read_bytes()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seconds": 0.0}, {"seconds": -1.0}, {"seconds": float("nan")}, {"seconds": float("inf")},
        {"seconds": 1e-9}, {"channels": 0}, {"channels": -2}, {"sample_rate": 0}, {"sample_rate": -32000},
        {"sample_rate": 32000.0}, {"seed": -1}, {"seed": True}, {"tempo_bpm": 10.0}, {"root_midi": 200},
        {"scale": "lydian-ish"}, {"instrument": "theremin"},
    ],
)
def test_bad_spec_raises_config_error(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"seed": 1, "seconds": 1.0, **kwargs}
    with pytest.raises(ConfigError):
        SongSpec(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("bits", [0, 8, 20, 64, True, 16.0])
def test_bad_bits_raise_config_error(tmp_path: Path, bits: object) -> None:
    x = np.zeros((1, 10))
    with pytest.raises(ConfigError):
        to_pcm(x, bits)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        write_wav(tmp_path / "x.wav", x, SR, bits)  # type: ignore[arg-type]
    assert not (tmp_path / "x.wav").exists()
