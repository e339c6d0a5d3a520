"""Tests of the audio stage (lumina_audit.signature.audio; spec signature-v1 sections 1 and 2).

Expected values are computed here independently of the code under test: integer PCM by
dividing the written integers by the spec's full-scale values, the mono mix with numpy in
float32, the resampling by a direct call of the pinned torchaudio resampler.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from lumina_audit._internal.synth import SongSpec, render, to_pcm
from lumina_audit.errors import AudioError
from lumina_audit.signature.audio import Audio, chunk_bounds, load_audio, probe_audio
from lumina_audit.signature.space import SignatureConfig

CFG = SignatureConfig()
SR = 32000


def _write(path: Path, data: npt.NDArray[np.generic], rate: int, subtype: str, fmt: str = "WAV") -> Path:
    """Write ``data`` ``[frames, channels]`` (or ``[frames]``) with soundfile."""
    sf.write(str(path), data, rate, subtype=subtype, format=fmt)
    return path


def _int_values(rng: np.random.Generator, bits: int, n: int) -> npt.NDArray[np.int64]:
    """``n`` random integers of a ``bits``-bit signed range, the extremes and small values included."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    v = rng.integers(lo, hi + 1, size=n, dtype=np.int64)
    v[:7] = [lo, lo + 1, -1, 0, 1, hi - 1, hi]
    return v


def _noise_wav(path: Path, seconds: float, rate: int = SR, channels: int = 1) -> Path:
    """Cheap non-silent PCM_16 content of exactly ``round(seconds * rate)`` frames."""
    n = round(seconds * rate)
    rng = np.random.default_rng(n)
    data = rng.integers(-3000, 3000, size=(n, channels), dtype=np.int16)
    return _write(path, data, rate, "PCM_16")


def _refused(path: Path, config: SignatureConfig, pattern: str) -> str:
    """``load_audio`` raises AudioError with a one-line message that names the file."""
    before = sorted(p.name for p in path.parent.iterdir()) if path.parent.is_dir() else None
    with pytest.raises(AudioError) as info:
        load_audio(path, config)
    msg = str(info.value)
    assert "\n" not in msg and "\r" not in msg, msg
    assert str(path) in msg, msg
    assert re.search(pattern, msg, flags=re.IGNORECASE), msg
    if before is not None:  # nothing written next to the input
        assert sorted(p.name for p in path.parent.iterdir()) == before
    return msg


def _music(seconds: float, rate: int, channels: int, seed: int = 3) -> npt.NDArray[np.float64]:
    return render(SongSpec(seed=seed, seconds=seconds, sample_rate=rate, channels=channels))


# --- spec 1.1: integer PCM scaling --------------------------------------------------------------


def test_pcm16_scaled_by_32768_exactly(tmp_path: Path) -> None:
    values = _int_values(np.random.default_rng(1), 16, 40000)
    path = _write(tmp_path / "a.wav", values.astype(np.int16), SR, "PCM_16")
    audio = load_audio(path, CFG)
    expected = (values.astype(np.float64) / 32768.0).astype(np.float32)
    assert audio.samples.dtype == np.float32
    assert audio.samples.shape == (40000,)
    np.testing.assert_array_equal(audio.samples, expected)
    assert audio.samples.min() == -1.0 and audio.samples.max() == np.float32(32767 / 32768)
    assert (audio.source_rate, audio.source_channels, audio.source_frames) == (SR, 1, 40000)
    assert audio.source_subtype == "PCM_16"


def test_pcm24_scaled_by_8388608_exactly(tmp_path: Path) -> None:
    values = _int_values(np.random.default_rng(2), 24, 40000)
    # libsndfile writes the top 24 bits of an int32 array for PCM_24.
    path = _write(tmp_path / "a.wav", (values.astype(np.int32) << 8), SR, "PCM_24")
    back = sf.read(str(path), dtype="int32")[0] >> 8
    np.testing.assert_array_equal(back, values)  # the fixture holds the intended integers
    audio = load_audio(path, CFG)
    expected = (values.astype(np.float64) / 8388608.0).astype(np.float32)
    np.testing.assert_array_equal(audio.samples, expected)
    assert audio.samples.min() == -1.0
    assert audio.source_subtype == "PCM_24"


def test_pcm32_scaled_by_2147483648(tmp_path: Path) -> None:
    values = _int_values(np.random.default_rng(3), 32, 40000)
    path = _write(tmp_path / "a.wav", values.astype(np.int32), SR, "PCM_32")
    audio = load_audio(path, CFG)
    # One rounding: the quotient is exact in float64, then rounded to float32.
    expected = (values.astype(np.float64) / 2147483648.0).astype(np.float32)
    np.testing.assert_array_equal(audio.samples, expected)
    assert audio.samples[0] == -1.0
    assert audio.source_subtype == "PCM_32"


def test_float_wav_samples_kept_as_written(tmp_path: Path) -> None:
    data = np.random.default_rng(4).uniform(-1.0, 1.0, 40000).astype(np.float32)
    data[:4] = [-1.0, 0.0, 1e-30, 0.999999]
    path = _write(tmp_path / "a.wav", data, SR, "FLOAT")
    audio = load_audio(path, CFG)
    np.testing.assert_array_equal(audio.samples, data)
    assert audio.source_subtype == "FLOAT"


# --- spec 1.2: mono -----------------------------------------------------------------------------


def test_stereo_is_the_float32_mean_of_two_channels(tmp_path: Path) -> None:
    values = np.stack([_int_values(np.random.default_rng(s), 16, 40000) for s in (5, 6)], axis=1)
    path = _write(tmp_path / "s.wav", values.astype(np.int16), SR, "PCM_16")
    audio = load_audio(path, CFG)
    ch = values.astype(np.float32) / np.float32(32768)
    expected = (ch[:, 0] + ch[:, 1]) / np.float32(2)
    assert expected.dtype == np.float32
    np.testing.assert_array_equal(audio.samples, expected)
    assert audio.source_channels == 2


def test_three_channels_mean_in_float32(tmp_path: Path) -> None:
    # Float samples: the sum is inexact in float32, and /3 differs from *(1/3), so this checks
    # the arithmetic mean ((a + b) + c) / 3 computed in float32.
    data = np.random.default_rng(7).uniform(-0.9, 0.9, (40000, 3)).astype(np.float32)
    path = _write(tmp_path / "c3.wav", data, SR, "FLOAT")
    audio = load_audio(path, CFG)
    acc = data[:, 0] + data[:, 1]
    acc = acc + data[:, 2]
    expected = acc / np.float32(3)
    assert expected.dtype == np.float32
    np.testing.assert_array_equal(audio.samples, expected)
    # a float64 mean rounded once differs somewhere: the test can tell the two apart
    assert not np.array_equal(expected, data.astype(np.float64).mean(axis=1).astype(np.float32))
    assert audio.source_channels == 3


def test_three_channel_int16_mean(tmp_path: Path) -> None:
    values = np.stack([_int_values(np.random.default_rng(s), 16, 33000) for s in (8, 9, 10)], axis=1)
    path = _write(tmp_path / "c3i.wav", values.astype(np.int16), SR, "PCM_16")
    audio = load_audio(path, CFG)
    ch = values.astype(np.float32) / np.float32(32768)
    expected = ((ch[:, 0] + ch[:, 1]) + ch[:, 2]) / np.float32(3)
    np.testing.assert_array_equal(audio.samples, expected)


# --- spec 1.3: resampling -----------------------------------------------------------------------


@pytest.mark.parametrize("rate", [44100, 48000])
def test_resampled_bit_for_bit_with_pinned_torchaudio_call(tmp_path: Path, rate: int) -> None:
    import torch
    import torchaudio

    x = _music(2.0, rate, 2, seed=rate)
    pcm = to_pcm(x, 16)  # int16 [2, n]
    path = _write(tmp_path / f"m{rate}.wav", pcm.T, rate, "PCM_16")
    audio = load_audio(path, CFG)

    ch = pcm.astype(np.float32) / np.float32(32768)
    mono = (ch[0] + ch[1]) / np.float32(2)
    expected = torchaudio.functional.resample(
        torch.from_numpy(mono), rate, 32000,
        lowpass_filter_width=6, rolloff=0.99, resampling_method="sinc_interp_hann",
    ).numpy()
    assert expected.dtype == np.float32
    assert audio.samples.dtype == np.float32
    assert audio.samples.shape == (-(-pcm.shape[1] * 32000 // rate),) == expected.shape
    assert audio.samples.tobytes() == expected.tobytes()
    assert audio.source_rate == rate and audio.source_frames == pcm.shape[1]
    # the check is sensitive: another rolloff or filter width changes the bits
    for kw in ({"rolloff": 0.95}, {"lowpass_filter_width": 16}):
        other = torchaudio.functional.resample(torch.from_numpy(mono), rate, 32000, **kw).numpy()
        assert other.tobytes() != audio.samples.tobytes()


def test_no_resampling_at_32k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchaudio

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("resample called for 32 kHz input")

    monkeypatch.setattr(torchaudio.functional, "resample", boom)
    pcm = to_pcm(_music(1.5, SR, 1), 16)
    path = _write(tmp_path / "m.wav", pcm.T, SR, "PCM_16")
    audio = load_audio(path, CFG)
    np.testing.assert_array_equal(audio.samples, pcm[0].astype(np.float32) / np.float32(32768))


# --- spec 1.4: hashes ---------------------------------------------------------------------------


def test_file_and_pcm_hashes(tmp_path: Path) -> None:
    pcm = to_pcm(_music(1.5, SR, 2, seed=12), 16)
    path = _write(tmp_path / "h.wav", pcm.T, SR, "PCM_16")
    audio = load_audio(path, CFG)
    data = path.read_bytes()
    assert audio.file_sha256 == hashlib.sha256(data).hexdigest()
    assert audio.file_size == len(data)
    ch = pcm.astype(np.float32) / np.float32(32768)
    mono = (ch[0] + ch[1]) / np.float32(2)
    assert audio.pcm_sha256 == hashlib.sha256(mono.astype("<f4").tobytes()).hexdigest()
    assert audio.pcm_sha256 != audio.file_sha256
    assert isinstance(audio, Audio) and audio.path == path


@pytest.mark.parametrize("rate", [32000, 44100])
def test_same_music_wav_and_flac_equal_pcm_hash(tmp_path: Path, rate: int) -> None:
    pcm = to_pcm(_music(1.5, rate, 2, seed=21), 16).T
    wav = load_audio(_write(tmp_path / "x.wav", pcm, rate, "PCM_16", "WAV"), CFG)
    flac = load_audio(_write(tmp_path / "x.flac", pcm, rate, "PCM_16", "FLAC"), CFG)
    assert wav.file_sha256 != flac.file_sha256
    assert wav.pcm_sha256 == flac.pcm_sha256
    assert wav.samples.tobytes() == flac.samples.tobytes()
    # and different music gives a different PCM hash
    other = to_pcm(_music(1.5, rate, 2, seed=22), 16).T
    assert load_audio(_write(tmp_path / "y.wav", other, rate, "PCM_16"), CFG).pcm_sha256 != wav.pcm_sha256


# --- spec 2: chunks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "chunks"),
    [
        (10.0, ((0, 320000),)),
        (13.5, ((0, 320000), (320000, 112000))),
        (20.6, ((0, 320000), (320000, 320000))),  # 0.6 s tail dropped
        (1.0, ((0, 32000),)),
        (11.0, ((0, 320000), (320000, 32000))),  # a tail of exactly min_chunk_seconds is kept
    ],
)
def test_chunks_of_files(tmp_path: Path, seconds: float, chunks: tuple[tuple[int, int], ...]) -> None:
    path = _noise_wav(tmp_path / "n.wav", seconds)
    audio = load_audio(path, CFG)
    assert audio.chunks == chunks
    assert audio.samples.shape == (round(seconds * SR),)  # never padded, tail kept in the PCM


def test_too_short_refused(tmp_path: Path) -> None:
    _refused(_noise_wav(tmp_path / "short.wav", 0.5), CFG, "too short")
    _refused(_noise_wav(tmp_path / "short2.wav", 31999 / SR), CFG, "too short")


def test_chunk_bounds_edges() -> None:
    assert chunk_bounds(0, CFG) == ()
    assert chunk_bounds(31999, CFG) == ()
    assert chunk_bounds(32000, CFG) == ((0, 32000),)
    assert chunk_bounds(320000, CFG) == ((0, 320000),)
    assert chunk_bounds(320000 + 31999, CFG) == ((0, 320000),)
    assert chunk_bounds(320000 + 32000, CFG) == ((0, 320000), (320000, 32000))
    cfg = SignatureConfig(chunk_seconds=2.0, min_chunk_seconds=2.0)
    assert chunk_bounds(64000 * 3 - 1, cfg) == ((0, 64000), (64000, 64000))


_CONFIGS = [
    CFG,
    SignatureConfig(chunk_seconds=2.5, min_chunk_seconds=0.25),
    SignatureConfig(chunk_seconds=1.0, min_chunk_seconds=1.0),
    SignatureConfig(chunk_seconds=30.0, min_chunk_seconds=7.5),
]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(min_value=0, max_value=10**7), config=st.sampled_from(_CONFIGS))
def test_chunk_bounds_properties(n: int, config: SignatureConfig) -> None:
    size, keep = config.chunk_samples, config.min_chunk_samples
    assert size == round(config.chunk_seconds * 32000)
    bounds = chunk_bounds(n, config)
    starts = [s for s, _ in bounds]
    lengths = [m for _, m in bounds]
    assert starts == [k * size for k in range(len(bounds))]
    assert all(keep <= m <= size for m in lengths)
    assert all(m == size for m in lengths[:-1])  # only the last may be shorter
    assert len(bounds) == n // size + (1 if n % size >= keep else 0)
    tail = n - sum(lengths)
    assert tail >= 0
    if bounds:
        assert tail == n - (starts[-1] + lengths[-1])  # no gap, no overlap: dropped part is the end
    assert tail < keep  # what was dropped was shorter than a kept chunk may be


# --- spec 1.5: refusals -------------------------------------------------------------------------


def test_missing_file_refused(tmp_path: Path) -> None:
    _refused(tmp_path / "nope.wav", CFG, "no such file")


def test_directory_refused(tmp_path: Path) -> None:
    d = tmp_path / "dir.wav"
    d.mkdir()
    _refused(d, CFG, "director|not a regular file")


def test_empty_file_refused(tmp_path: Path) -> None:
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    _refused(p, CFG, "empty")


def test_random_bytes_refused(tmp_path: Path) -> None:
    p = tmp_path / "noise.wav"
    p.write_bytes(np.random.default_rng(99).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _refused(p, CFG, "decode")


def test_truncated_wav_header_refused(tmp_path: Path) -> None:
    good = _noise_wav(tmp_path / "good.wav", 1.5)
    p = tmp_path / "trunc.wav"
    p.write_bytes(good.read_bytes()[:20])
    assert p.read_bytes()[:4] == b"RIFF"
    _refused(p, CFG, "decode")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_refused(tmp_path: Path, bad: float) -> None:
    data = np.random.default_rng(5).uniform(-0.5, 0.5, 48000).astype(np.float32)
    data[12345] = bad
    p = _write(tmp_path / "nf.wav", data, SR, "FLOAT")
    assert not np.isfinite(sf.read(str(p), dtype="float32")[0]).all()  # the file holds it
    _refused(p, CFG, "non-finite")


def test_too_long_refused(tmp_path: Path) -> None:
    assert SignatureConfig().max_seconds == 900.0
    cfg = SignatureConfig(max_seconds=20.0)
    _refused(_noise_wav(tmp_path / "long.wav", 21.0, rate=8000), cfg, "longer than")
    ok = load_audio(_noise_wav(tmp_path / "ok.wav", 20.0, rate=8000), cfg)  # not longer: accepted
    assert ok.chunks == ((0, 320000), (320000, 320000))


def test_zero_frames_refused(tmp_path: Path) -> None:
    p = _write(tmp_path / "zero.wav", np.zeros((0, 1), dtype=np.int16), SR, "PCM_16")
    assert p.stat().st_size > 0  # a header is there
    assert sf.info(str(p)).frames == 0
    _refused(p, CFG, "no audio|no samples")


# --- probe_audio: the checks that need no decoding (an Extract's check before any model work) --------


def _probe_cases(tmp_path: Path) -> list[tuple[Path, SignatureConfig, str | None]]:
    empty, noise, trunc = tmp_path / "empty.wav", tmp_path / "noise.wav", tmp_path / "trunc.wav"
    empty.write_bytes(b"")
    noise.write_bytes(np.random.default_rng(99).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    trunc.write_bytes(_noise_wav(tmp_path / "good.wav", 1.5).read_bytes()[:20])
    (tmp_path / "dir.wav").mkdir()
    long = _noise_wav(tmp_path / "long.wav", 21.0, rate=8000)
    ok = _noise_wav(tmp_path / "ok.wav", 2.0)
    return [(tmp_path / "nope.wav", CFG, None), (tmp_path / "dir.wav", CFG, None), (empty, CFG, None),
            (noise, CFG, None), (trunc, CFG, None), (long, SignatureConfig(max_seconds=20.0), None),
            (ok, CFG, "ab" * 32)]


def test_probe_refuses_what_load_audio_refuses_with_its_message(tmp_path: Path) -> None:
    for path, config, pinned in _probe_cases(tmp_path):
        with pytest.raises(AudioError) as decoded:
            load_audio(path, config, pinned)
        with pytest.raises(AudioError) as probed:
            probe_audio(path, config, pinned)
        def what(e: AudioError) -> str:  # libsndfile's own reason names the path or the buffer it opened
            return re.sub(r"\(Error opening .*\)$", "(...)", e.message)

        assert what(probed.value) == what(decoded.value), path
        assert probed.value.hint == decoded.value.hint


def test_probe_reads_the_header_and_hashes_only_when_asked(tmp_path: Path) -> None:
    path = _noise_wav(tmp_path / "s.wav", 1.25, rate=44100, channels=2)
    audio = load_audio(path, CFG)
    cheap = probe_audio(path, CFG)
    assert (cheap.file_size, cheap.file_sha256) == (audio.file_size, None)
    assert (cheap.rate, cheap.channels, cheap.frames) == (44100, 2, audio.source_frames)
    assert probe_audio(path, CFG, hash_file=True).file_sha256 == audio.file_sha256
    assert probe_audio(path, CFG, audio.file_sha256).file_sha256 == audio.file_sha256
    flac = _write(tmp_path / "s.flac", sf.read(str(path), dtype="int16")[0], 44100, "PCM_16", "FLAC")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    assert probe_audio(cut, CFG).frames == audio.source_frames  # the header is whole: a cheap look passes it
    _refused(cut, CFG, "cannot decode audio")  # its body is found out when it is decoded
