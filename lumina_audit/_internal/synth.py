"""Deterministic synthetic music: seeded songs for test checkpoints, golden clips and demo catalogs.

A :class:`SongSpec` fixes a song. :func:`plan` turns its seed into tempo, key, scale, chord
progression, an 8-bar melody (random walk on scale degrees, form A A B A), drum pattern and three
timbres (additive harmonics, FM, Karplus-Strong pluck). :func:`render` plays the plan into a float64
array of shape ``[channels, samples]`` within ``[-0.99, 0.99]``.

Determinism: randomness comes only from ``np.random.default_rng`` (PCG64) through ``random``,
``integers`` and ``choice``; the signal uses only IEEE-exact numpy arithmetic (``+ - * /``, ``floor``,
``interp``, ``clip``). Sines are a Taylor polynomial, not ``np.sin``, so no libm or SIMD kernel
enters and a spec gives bitwise-identical samples in every process. The plan does not depend on
``seconds`` or ``sample_rate``: a longer render of the same seed plays the same song further.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import soundfile as sf

from ..errors import ConfigError

__all__ = ["INSTRUMENTS", "SCALES", "SongPlan", "SongSpec", "plan", "render", "splice", "to_pcm", "write_wav"]

FloatArray = npt.NDArray[np.float64]
PcmArray = npt.NDArray[np.int16] | npt.NDArray[np.int32] | npt.NDArray[np.float32]
_T = TypeVar("_T")

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10), "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "pentatonic": (0, 2, 4, 7, 9), "minor_pentatonic": (0, 3, 5, 7, 10),
}
INSTRUMENTS: tuple[str, ...] = ("additive", "fm", "pluck")
_SEMITONE = (1.0, 1.0594630943592953, 1.122462048309373, 1.189207115002721, 1.2599210498948732,
             1.3348398541700344, 1.4142135623730951, 1.4983070768766815, 1.5874010519681994,
             1.681792830507429, 1.7817974362806785, 1.8877486253633868)  # 2 ** (k / 12)
_TAYLOR = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(8))  # sin x, up to x**15
_PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 4), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 0, 4), (0, 2, 3, 4))
_RHYTHMS = ((2, 2, 2, 2), (1, 1, 2, 1, 1, 2), (3, 1, 2, 2), (2, 1, 1, 4), (1, 1, 1, 1, 2, 2),
            (4, 2, 2), (2, 2, 1, 1, 2), (3, 3, 2))  # eighth notes per bar, each sums to 8
_KICKS = ((0, 8), (0, 6, 8), (0, 8, 10), (0, 4, 8, 12), (0, 3, 8, 11), (0, 10))  # 16th-note steps
_HATS = ((0, 2, 4, 6, 8, 10, 12, 14), (2, 6, 10, 14), tuple(range(16)))
_STEPS, _STEP_P = (-2, -1, 0, 1, 2, 3, -3), (0.15, 0.3, 0.1, 0.25, 0.1, 0.05, 0.05)
_MAX_DEGREE = 11


@dataclass(frozen=True)
class SongSpec:
    """One synthetic song. ``None`` fields are drawn from ``seed``; giving one changes nothing else."""

    seed: int
    seconds: float
    sample_rate: int = 32000
    channels: int = 1
    tempo_bpm: float | None = None
    root_midi: int | None = None
    scale: str | None = None
    instrument: str | None = None

    def __post_init__(self) -> None:
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("sample_rate", self.sample_rate, 8000, 384000)
        _check_int("channels", self.channels, 1, 8)
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, int | float) \
                or not 0 < self.seconds <= 3600 or round(self.seconds * self.sample_rate) < 1:
            raise ConfigError(f"seconds must be in (0, 3600] and give a sample or more, got {self.seconds!r}")
        if self.tempo_bpm is not None and (isinstance(self.tempo_bpm, bool)
                                           or not isinstance(self.tempo_bpm, int | float)
                                           or not 40 <= self.tempo_bpm <= 240):
            raise ConfigError(f"tempo_bpm must be in [40, 240], got {self.tempo_bpm!r}")
        if self.root_midi is not None:
            _check_int("root_midi", self.root_midi, 48, 72)
        if self.scale is not None and self.scale not in SCALES:
            raise ConfigError(f"scale must be one of {sorted(SCALES)}, got {self.scale!r}")
        if self.instrument is not None and self.instrument not in INSTRUMENTS:
            raise ConfigError(f"instrument must be one of {list(INSTRUMENTS)}, got {self.instrument!r}")

    @property
    def samples(self) -> int:
        """Samples per channel: ``round(seconds * sample_rate)``."""
        return round(self.seconds * self.sample_rate)


@dataclass(frozen=True)
class _Timbre:
    kind: str
    harmonics: tuple[float, ...]  # additive: amplitude of harmonic k + 1, summing to 1
    ratio: float  # fm: modulator / carrier frequency
    index: float  # fm: peak modulation depth in cycles
    decay: float  # pluck: loss per period
    bright: float  # pluck: weight of y[n - N] against y[n - N - 1]
    adsr: tuple[float, float, float, float]  # attack s, decay s, release s, sustain level


@dataclass(frozen=True)
class SongPlan:
    """What a seed resolves to. ``melody[bar]`` holds ``(degree or -1 for a rest, eighths)`` pairs."""

    tempo_bpm: float
    root_midi: int
    scale: str
    instrument: str
    chord_style: str
    progression: tuple[int, ...]
    melody: tuple[tuple[tuple[int, int], ...], ...]
    kick_steps: tuple[int, ...]
    hat_steps: tuple[int, ...]
    timbres: tuple[_Timbre, _Timbre, _Timbre]  # melody, chords, bass


def plan(spec: SongSpec) -> SongPlan:
    """Resolve ``spec.seed`` (and the given overrides) into a song; draws a fixed sequence."""
    rng = np.random.default_rng(spec.seed)
    tempo, root = float(rng.integers(72, 151)), int(rng.integers(53, 65))
    scale, instrument = _pick(rng, tuple(SCALES)), _pick(rng, INSTRUMENTS)
    chord_style, progression = _pick(rng, ("pad", "arp")), _pick(rng, _PROGRESSIONS)
    kick, hat = _pick(rng, _KICKS), _pick(rng, _HATS)
    chord_kind = _pick(rng, ("additive", "fm")) if chord_style == "pad" else _pick(rng, INSTRUMENTS)
    bass_kind = _pick(rng, INSTRUMENTS)
    melody_u, chord_u, bass_u = rng.random(20), rng.random(20), rng.random(20)
    rhythms = (_pick(rng, _RHYTHMS), _pick(rng, _RHYTHMS))
    degree, melody = int(rng.integers(0, 5)), []
    for bar in range(8):
        notes = []
        for i, eighths in enumerate(rhythms[bar % 2 if bar < 4 else (bar + 1) % 2]):
            if i == 0 and rng.random() < 0.5:
                degree = min((progression[bar % 4] + o for o in (0, 7)), key=lambda d: abs(d - degree))
            else:
                degree += int(rng.choice(_STEPS, p=_STEP_P))
            degree = min(abs(degree), 2 * _MAX_DEGREE - degree)  # reflect into [0, _MAX_DEGREE]
            notes.append((-1 if i > 0 and rng.random() < 0.08 else degree, eighths))
        melody.append(tuple(notes))
    instrument = spec.instrument or instrument
    timbres = (_timbre(instrument, melody_u, (0.005, 0.04), 0.15),
               _timbre(chord_kind, chord_u, (0.03, 0.25), 0.4),
               _timbre(bass_kind, bass_u, (0.005, 0.02), 0.1))
    return SongPlan(float(spec.tempo_bpm or tempo), spec.root_midi or root, spec.scale or scale, instrument,
                    chord_style, progression, tuple(melody), kick, hat, timbres)


def render(spec: SongSpec) -> FloatArray:
    """Play ``spec``: float64 ``[channels, samples]``, values within ``[-0.99, 0.99]``."""
    song, sr, n = plan(spec), spec.sample_rate, spec.samples
    eighth = 30.0 * sr / song.tempo_bpm
    steps = SCALES[song.scale]

    def midi(degree: int, base: int) -> int:
        return base + 12 * (degree // len(steps)) + steps[degree % len(steps)]

    mel, chd, bas = (_Voice(t, sr, n, spec.seed, r, m * eighth) for r, (t, m) in
                     enumerate(zip(song.timbres, (4, 8 if song.chord_style == "pad" else 1, 2), strict=True)))
    drums = np.zeros(n)
    kick, snare, hat = _drums(spec.seed, sr)
    for bar in range(int(n // (8 * eighth)) + 1):
        start, chord = bar * 8 * eighth, song.progression[bar % 4]
        pos = start
        for degree, eighths in song.melody[4 * (bar // 4 % 4 == 2) + bar % 4]:  # form A A B A
            if degree >= 0:
                mel.play(round(pos), midi(degree, song.root_midi), round(eighths * eighth), 1.0)
            pos += eighths * eighth
        triad = [midi(chord + k, song.root_midi - 12) for k in (0, 2, 4)]
        if song.chord_style == "pad":
            for note in triad:
                chd.play(round(start), note, round(8 * eighth), 0.34)
        else:
            for i in range(8):
                chd.play(round(start + i * eighth), (triad + [triad[1]])[i % 4], round(eighth), 0.6)
        for i in range(4):
            bas.play(round(start + 2 * i * eighth), midi(chord, song.root_midi - 24) + 12 * (i == 3),
                     round(1.8 * eighth), 1.0)
        for step in range(16):
            for hit, steps_on, level in ((kick, song.kick_steps, 0.9), (snare, (4, 12), 0.5),
                                         (hat, song.hat_steps, 0.25 if step % 4 else 0.4)):
                if step in steps_on:
                    at = round(start + step * eighth / 2)
                    drums[at:at + hit.size] += level * hit[:max(0, n - at)]
    pans = ((mel.buf, 0.45, 0.35), (chd.buf, 0.3, 0.7), (bas.buf, 0.4, 0.5), (drums, 0.5, 0.55))
    out = np.zeros((spec.channels, n))
    for c in range(spec.channels):
        where = 0.5 if spec.channels == 1 else c / (spec.channels - 1)
        for buf, level, pan in pans:
            out[c] += (level * (1.0 - 0.6 * abs(where - pan))) * buf
    x = np.clip(out, -1.0, 1.0, out=out)
    x *= 0.99 * (1.5 - 0.5 * x * x)  # cubic soft clip: monotone, |y| <= 0.99
    tail = min(n, max(1, sr // 100))
    x[:, n - tail:] *= np.arange(tail, 0, -1) / tail
    return x


def splice(a: FloatArray, b: FloatArray, *, a_stop: int, b_start: int, b_stop: int | None = None,
           fade: int) -> FloatArray:
    """``a[:, :a_stop]`` then ``b[:, b_start:b_stop]``, overlapped by a ``fade``-sample smoothstep crossfade.

    ``a``: [channels, Na], ``b``: [channels, Nb]; returns [channels, a_stop + (b_stop - b_start) - fade].
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ConfigError(f"splice needs two [channels, samples] arrays, got {a.shape} and {b.shape}")
    b_stop = b.shape[1] if b_stop is None else b_stop
    if not (0 <= fade <= a_stop <= a.shape[1] and 0 <= b_start and b_start + fade <= b_stop <= b.shape[1]):
        raise ConfigError(f"bad splice bounds a_stop={a_stop} b_start={b_start} b_stop={b_stop} fade={fade}")
    w = (np.arange(fade) + 0.5) / max(fade, 1)
    w = w * w * (3.0 - 2.0 * w)
    cross = a[:, a_stop - fade:a_stop] * (1.0 - w) + b[:, b_start:b_start + fade] * w
    return np.concatenate([a[:, :a_stop - fade], cross, b[:, b_start + fade:b_stop]], axis=1)


def to_pcm(x: FloatArray, bits: int) -> PcmArray:
    """Quantise [channels, samples] floats, clipped to [-1, 1], for a ``bits``-bit file.

    16 -> int16 ``rint(x * 32767)``; 24 -> int32 ``rint(x * 8388607)`` (24-bit range); 32 -> float32.
    ``rint`` rounds half to even.
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or bits not in (16, 24, 32):
        raise ConfigError(f"bits must be 16, 24 or 32, got {bits!r}")
    y = np.asarray(x, dtype=np.float64)
    if not np.isfinite(y).all():
        raise ConfigError("audio samples must be finite")
    y = np.clip(y, -1.0, 1.0)
    if bits == 32:
        return y.astype(np.float32)
    scaled = np.rint(y * float(2 ** (bits - 1) - 1))
    return scaled.astype(np.int16) if bits == 16 else scaled.astype(np.int32)


def write_wav(path: str | os.PathLike[str], x: FloatArray, sample_rate: int, bits: int) -> None:
    """Write [channels, samples] ``x`` as WAV: PCM_16, PCM_24 or FLOAT (``bits`` 16, 24, 32)."""
    _check_int("sample_rate", sample_rate, 1, 2**31 - 1)
    pcm = to_pcm(x, bits)
    if pcm.ndim != 2:
        raise ConfigError(f"audio must be [channels, samples], got shape {pcm.shape}")
    data = pcm.astype(np.int32) << 8 if bits == 24 else pcm  # libsndfile keeps the top 24 of 32 bits
    subtype = {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}[bits]
    sf.write(os.fspath(path), data.T, sample_rate, subtype=subtype, format="WAV")


class _Voice:
    """One monophonic-or-not instrument track of ``n`` samples with per-pitch tone caching."""

    def __init__(self, timbre: _Timbre, sr: int, n: int, seed: int, role: int, max_hold: float) -> None:
        self.timbre, self.sr, self.seed, self.role = timbre, sr, seed, role
        self.buf = np.zeros(n)
        self.length = round(max_hold) + round(timbre.adsr[2] * sr) + 1
        self.tones: dict[int, FloatArray] = {}
        self.envs: dict[tuple[int, int], FloatArray] = {}

    def play(self, start: int, note: int, hold: int, velocity: float) -> None:
        """Add ``note`` held ``hold`` samples (then released) at sample ``start``."""
        attack, decay, release = (v * self.sr for v in self.timbre.adsr[:3])
        sustain = self.timbre.adsr[3]
        count = min(hold + round(release), self.length, self.buf.size - start)
        if count <= 0:
            return
        attack = min(attack, hold / 2)
        decay = min(decay, hold - attack)
        if (hold, count) not in self.envs:
            knots = [0.0, attack, attack + decay, hold, hold + release]
            self.envs[hold, count] = np.interp(np.arange(count, dtype=np.float64), knots,
                                               [0.0, 1.0, sustain, sustain, 0.0])
        env = self.envs[hold, count]
        if note not in self.tones:
            self.tones[note] = self._tone(note)
        self.buf[start:start + count] += velocity * env * self.tones[note][:count]

    def _tone(self, note: int) -> FloatArray:
        octave, semi = divmod(note - 69, 12)
        hz, t, tb = math.ldexp(440.0 * _SEMITONE[semi], octave), np.arange(self.length) / self.sr, self.timbre
        if tb.kind == "additive":
            sin1, cos1 = _sin(hz * t), _sin(hz * t + 0.25)
            prev, cur, out = np.zeros_like(t), sin1, tb.harmonics[0] * sin1
            for amp in tb.harmonics[1:int(0.45 * self.sr / hz)]:
                prev, cur = cur, 2.0 * cos1 * cur - prev  # sin((k + 1) x) by Chebyshev recurrence
                out += amp * cur
            return out
        if tb.kind == "fm":
            depth = 1.0 - np.minimum(t / 0.4, 1.0)
            return 0.6 * _sin(hz * t + tb.index * (0.25 + 0.75 * depth * depth) * _sin(tb.ratio * hz * t))
        period = max(2, round(self.sr / hz))
        y = np.zeros(1 + self.length)
        burst = np.random.default_rng([self.seed, self.role, note]).random(period) * 2.0 - 1.0
        y[1:1 + min(period, self.length)] = (burst - burst.mean())[:self.length]
        for pos in range(1 + period, y.size, period):  # Karplus-Strong, one period per numpy slice
            m = min(period, y.size - pos)
            y[pos:pos + m] = tb.decay * (tb.bright * y[pos - period:pos - period + m]
                                         + (1.0 - tb.bright) * y[pos - period - 1:pos - period - 1 + m])
        return y[1:]


def _timbre(kind: str, u: FloatArray, attack: tuple[float, float], release: float) -> _Timbre:
    amps = np.cumprod(np.full(12, 0.35 + 0.5 * u[0])) * (0.6 + 0.8 * u[1:13])
    if u[13] < 0.35:
        amps[1::2] *= 0.1  # hollow, clarinet-like: weak even harmonics
    adsr = (attack[0] + (attack[1] - attack[0]) * u[18], 0.05 + 0.2 * u[19], release, 0.5 + 0.4 * u[17])
    ratio = (1.0, 2.0, 3.0, 0.5, 1.5)[int(u[14] * 5)]
    return _Timbre(kind, tuple(float(v) for v in amps / amps.sum()), ratio, 0.15 + 0.5 * float(u[15]),
                   0.990 + 0.009 * float(u[16]), 0.5 + 0.45 * float(u[17]), adsr)


def _drums(seed: int, sr: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Kick (decaying 150 -> 45 Hz sine sweep), snare, hat (high-passed noise burst)."""
    rng = np.random.default_rng([seed, 1000])
    t = np.arange(round(0.3 * sr)) / sr
    sweep, fall = np.clip(1.0 - t / 0.12, 0.0, 1.0), 1.0 - t / 0.3
    kick = _sin(45.0 * t + 105.0 * 0.04 * (1.0 - sweep * sweep * sweep)) * fall * fall * fall
    noise = rng.random(t.size) * 2.0 - 1.0
    fall = np.clip(1.0 - t / 0.18, 0.0, 1.0)
    snare = (0.5 * _sin(185.0 * t) + 0.5 * (noise - 0.5 * np.roll(noise, 1))) * (fall * fall) * (fall * fall)
    short = np.clip(1.0 - t[:round(0.05 * sr)] / 0.05, 0.0, 1.0)
    short = short * short * short
    hat = 0.5 * (noise[1:short.size + 1] - noise[:short.size]) * (short * short)
    return kick, snare, hat


def _sin(cycles: FloatArray) -> FloatArray:
    """``sin(2 pi cycles)`` from ``+ - *`` and ``floor`` only (error below 1e-11), same bits everywhere."""
    r = np.floor(cycles + 0.5)
    np.subtract(cycles, r, out=r)  # [-0.5, 0.5)
    np.minimum(r, 0.5 - r, out=r)
    np.maximum(r, -0.5 - r, out=r)  # folded onto [-0.25, 0.25]
    r *= 2.0 * math.pi
    r2 = r * r
    acc = np.full_like(r, _TAYLOR[-1])
    for coef in _TAYLOR[-2::-1]:
        acc *= r2
        acc += coef
    acc *= r
    return acc


def _pick(rng: np.random.Generator, options: tuple[_T, ...]) -> _T:
    return options[int(rng.integers(len(options)))]


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
