"""The project's own music, as code: seeded General MIDI scores, a Standard MIDI File writer and a renderer.

:func:`score` turns a seed into a :class:`Score`: tempo, key and mode, a chord progression, a bass line,
chords, a melody (form A A B A), an optional pad and drums on MIDI channel 10, played by 2-4 General MIDI
programs drawn from the seed (pianos, organs, guitars, strings, brass, reeds, synths). :func:`midi_bytes`
writes it as a format-1 Standard MIDI File, byte by byte, with no dependency. :func:`render` plays MIDI
bytes with the ``fluidsynth`` binary and Debian's FluidR3_GM SoundFont (MIT licence, package
``fluid-soundfont-gm``) and returns mono float32 samples.

Determinism: the only randomness is ``random.Random(seed).random()``, whose sequence Python guarantees
to stay the same across versions; every choice is derived from it here. A seed gives the same MIDI bytes
in every process. The notes do not depend on ``seconds``: a longer score of a seed plays the same song
further.

Seed ranges (disjoint; data trained on never overlaps data measured on):

* :data:`TRAIN_SEEDS` ``[0, 100000)``: training songs of checkpoints (``scripts/train_tiny.py``);
* :data:`VALIDATION_SEEDS` ``[100000, 110000)``: held-out songs, for validation losses only;
* :data:`BENCHMARK_SEEDS` ``[1000000, 2000000)``: reserved for benchmarks; never trained or tuned on.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import soundfile as sf

from ..errors import ConfigError

__all__ = [
    "BENCHMARK_SEEDS", "DEFAULT_SOUNDFONT", "DRUM_CHANNEL", "PPQ", "PROGRAMS", "TRAIN_SEEDS",
    "VALIDATION_SEEDS", "Note", "Part", "Score", "midi_bytes", "render", "score",
]

TRAIN_SEEDS = range(0, 100_000)
VALIDATION_SEEDS = range(100_000, 110_000)
BENCHMARK_SEEDS = range(1_000_000, 2_000_000)

#: FluidR3_GM, from Debian's ``fluid-soundfont-gm`` (MIT licence).
DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
#: Ticks per quarter note.
PPQ = 480
#: 0-based MIDI channel 9, "channel 10" of General MIDI: percussion.
DRUM_CHANNEL = 9

#: General MIDI programs (0-based) by family, for the pitched roles.
PROGRAMS: dict[str, tuple[int, ...]] = {
    "piano": (0, 1, 2, 4, 5), "chromatic": (8, 11, 12), "organ": (16, 17, 19),
    "guitar": (24, 25, 26, 27, 29), "strings": (48, 49, 50), "brass": (56, 57, 61, 62),
    "reed": (64, 65, 66, 68, 71, 73), "synth": (80, 81, 88, 89),
}
_T = TypeVar("_T")
_BASS = (32, 33, 34, 35, 36, 38, 43)
_MELODY = ("piano", "chromatic", "organ", "guitar", "strings", "brass", "reed", "synth")
_HARMONY = ("piano", "organ", "guitar", "strings", "synth")
_MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10), "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}
_PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 4), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 0, 4), (1, 4, 0, 0),
                 (0, 6, 5, 4), (0, 0, 3, 4))
_RHYTHMS = ((2, 2, 2, 2), (1, 1, 2, 1, 1, 2), (3, 1, 2, 2), (2, 1, 1, 4), (1, 1, 1, 1, 2, 2),
            (4, 2, 2), (2, 2, 1, 1, 2), (3, 3, 2), (6, 2), (1, 1, 1, 1, 1, 1, 2))  # eighths, sum 8
_COMPS = ("block", "halves", "quarters", "arpeggio", "offbeat")
_BASSLINES = ("roots", "halves", "root_fifth", "eighths", "walking")
#: 16th steps of (kick, snare, closed hat) per pattern.
_GROOVES = (((0, 8), (4, 12), tuple(range(0, 16, 2))), ((0, 6, 8), (4, 12), tuple(range(0, 16, 2))),
            ((0, 10), (4, 12), tuple(range(16))), ((0, 4, 8, 12), (4, 12), (2, 6, 10, 14)),
            ((0, 3, 8, 11), (4, 12), tuple(range(0, 16, 2))), ((0, 8), (8,), tuple(range(0, 16, 4))))
_KICK, _SNARE, _HAT, _OPEN_HAT, _CRASH, _RIDE = 36, 38, 42, 46, 49, 51


@dataclass(frozen=True)
class Note:
    """One note: ``start`` and ``length`` in ticks (:data:`PPQ` a quarter), MIDI ``pitch`` and ``velocity``."""

    start: int
    length: int
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Part:
    """One instrument on one 0-based MIDI channel; ``program`` is ``None`` on the drum channel."""

    role: str
    channel: int
    program: int | None
    volume: int
    pan: int
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class Score:
    """A seeded song of ``seconds``, in 4/4 at ``tempo_bpm``; ``key`` is the tonic's pitch class."""

    seed: int
    seconds: float
    tempo_bpm: int
    key: int
    mode: str
    progression: tuple[int, ...]
    parts: tuple[Part, ...]

    @property
    def ticks(self) -> int:
        """Length of the score in ticks."""
        return round(self.seconds * self.tempo_bpm / 60.0 * PPQ)


def _below(rng: random.Random, n: int) -> int:
    return min(int(rng.random() * n), n - 1)


def _pick(rng: random.Random, options: Sequence[_T]) -> _T:
    return options[_below(rng, len(options))]


def _vel(rng: random.Random, base: int) -> int:
    """``base`` +- 8, humanised."""
    return max(1, min(127, base + _below(rng, 17) - 8))


def _pitch(scale: tuple[int, ...], key: int, degree: int, base: int) -> int:
    """MIDI pitch of scale ``degree`` (any integer) above the octave starting at ``base`` (a C)."""
    octave, step = divmod(degree, len(scale))
    return base + 12 * octave + key + scale[step]


def _chord(scale: tuple[int, ...], key: int, root: int, base: int, seventh: bool) -> list[int]:
    return [_pitch(scale, key, root + d, base) for d in ((0, 2, 4, 6) if seventh else (0, 2, 4))]


def score(seed: int, seconds: float) -> Score:
    """The song of ``seed`` (``0 <= seed < 2**63``), cut at ``seconds`` (in ``(0, 3600]``)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= 3600:
        raise ConfigError(f"seconds must be in (0, 3600], got {seconds!r}")
    rng = random.Random(seed)
    tempo = 70 + _below(rng, 81)
    key = _below(rng, 12)
    mode = _pick(rng, tuple(_MODES))
    scale = _MODES[mode]
    progression = (_pick(rng, _PROGRESSIONS), _pick(rng, _PROGRESSIONS))  # A and B sections
    n_programs = 2 + _below(rng, 3)
    melody_program = _pick(rng, PROGRAMS[_pick(rng, _MELODY)])
    chord_program = _pick(rng, PROGRAMS[_pick(rng, _HARMONY)]) if n_programs >= 3 else melody_program
    pad_program = _pick(rng, PROGRAMS["strings"] + PROGRAMS["organ"] + (88, 89, 52))
    bass_program = _pick(rng, _BASS)
    comp, bassline = _pick(rng, _COMPS), _pick(rng, _BASSLINES)
    groove = _GROOVES[_below(rng, len(_GROOVES))]
    seventh = rng.random() < 0.4
    motifs = [[(_pick(rng, _RHYTHMS), [_below(rng, 7) - 3 for _ in range(8)]) for _ in range(2)]
              for _ in range(2)]  # two 2-bar motifs per section
    bar, beat = 4 * PPQ, PPQ
    n_bars = -(-round(seconds * tempo / 60.0 * PPQ) // bar)
    bass: list[Note] = []
    chords: list[Note] = []
    melody: list[Note] = []
    pad: list[Note] = []
    drums: list[Note] = []
    degree = 4
    for b in range(n_bars):
        section = 1 if (b // 8) % 4 == 2 else 0  # A A B A, 8 bars each
        root = progression[section][b % 4]
        t0 = b * bar
        r = _pitch(scale, key, root, 36)
        if bassline == "roots":
            bass.append(Note(t0, bar - 20, r, _vel(rng, 92)))
        elif bassline == "halves":
            bass += [Note(t0 + i * 2 * beat, 2 * beat - 20, r, _vel(rng, 92)) for i in range(2)]
        elif bassline == "root_fifth":
            bass += [Note(t0 + i * beat, beat - 20, r + (7 if i % 2 else 0), _vel(rng, 90)) for i in range(4)]
        elif bassline == "eighths":
            bass += [Note(t0 + i * beat // 2, beat // 2 - 20, r + (12 if i == 6 else 0), _vel(rng, 86))
                     for i in range(8)]
        else:
            walk = (0, 2, 4, 5) if rng.random() < 0.5 else (0, 4, 2, 1)
            bass += [Note(t0 + i * beat, beat - 20, _pitch(scale, key, root + walk[i], 36), _vel(rng, 90))
                     for i in range(4)]
        voicing = _chord(scale, key, root, 48 if root > 3 else 60, seventh)
        if comp == "arpeggio":
            seq = voicing + voicing[-2:0:-1]
            chords += [Note(t0 + i * beat // 2, beat // 2, seq[i % len(seq)], _vel(rng, 70)) for i in range(8)]
        else:
            hits = {"block": ((0, bar),), "halves": ((0, 2 * beat), (2 * beat, 2 * beat)),
                    "quarters": tuple((i * beat, beat - 40) for i in range(4)),
                    "offbeat": tuple((i * beat + beat // 2, beat // 2) for i in range(4))}[comp]
            chords += [Note(t0 + s, n - 10, p, _vel(rng, 68)) for s, n in hits for p in voicing]
        if n_programs == 4:
            pad += [Note(t0, bar, p + 12, _vel(rng, 52)) for p in voicing[:3]]
        rhythm, steps = motifs[section][(b // 2) % 2]
        t = t0
        for i, eighths in enumerate(rhythm):
            degree = root + 7 if i == 0 and b % 2 == 0 else max(-2, min(11, degree + steps[i % len(steps)]))
            if b % 8 != 7 or i < len(rhythm) - 1 or rng.random() < 0.5:
                melody.append(Note(t, eighths * beat // 2 - 30, _pitch(scale, key, degree, 48), _vel(rng, 96)))
            t += eighths * beat // 2
        kick, snare, hat = groove
        sixteenth = beat // 4
        drums += [Note(t0 + s * sixteenth, sixteenth, _KICK, _vel(rng, 100)) for s in kick]
        drums += [Note(t0 + s * sixteenth, sixteenth, _SNARE, _vel(rng, 94)) for s in snare]
        drums += [Note(t0 + s * sixteenth, sixteenth, _OPEN_HAT if s == 14 and b % 4 == 3 else _HAT, _vel(rng, 70))
                  for s in hat]
        if b % 8 == 0:
            drums.append(Note(t0, beat, _CRASH, _vel(rng, 90)))
    parts = [Part("bass", 0, bass_program, 100, 64, tuple(bass)),
             Part("chords", 1, chord_program, 80, 44, tuple(chords)),
             Part("melody", 2, melody_program, 100, 84, tuple(melody))]
    if n_programs == 4:
        parts.append(Part("pad", 3, pad_program, 60, 64, tuple(pad)))
    parts.append(Part("drums", DRUM_CHANNEL, None, 90, 64, tuple(drums)))
    end = round(seconds * tempo / 60.0 * PPQ)
    cut = tuple(Part(p.role, p.channel, p.program, p.volume, p.pan,
                     tuple(Note(n.start, min(n.length, end - n.start), n.pitch, n.velocity)
                           for n in p.notes if n.start < end)) for p in parts)
    return Score(seed, float(seconds), tempo, key, mode, progression[0] + progression[1], cut)


def _vlq(value: int) -> bytes:
    """MIDI variable-length quantity (7 bits a byte, most significant first)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _track(events: list[tuple[int, int, bytes]]) -> bytes:
    """An ``MTrk`` chunk of ``(tick, order, message)`` events, sorted, ending with End of Track."""
    body = bytearray()
    now = 0
    for tick, _order, message in sorted(events):
        body += _vlq(tick - now) + message
        now = tick
    body += b"\x00\xff\x2f\x00"
    return b"MTrk" + len(body).to_bytes(4, "big") + bytes(body)


def midi_bytes(song: Score) -> bytes:
    """``song`` as a format-1 Standard MIDI File: a tempo track, then one track per part."""
    tempo = round(60_000_000 / song.tempo_bpm)
    tracks = [_track([(0, 0, b"\xff\x51\x03" + tempo.to_bytes(3, "big")),  # microseconds per quarter
                      (0, 1, b"\xff\x58\x04\x04\x02\x18\x08"),  # 4/4
                      (song.ticks, 2, b"\xff\x01\x00")])]  # an empty text event marks the end
    for part in song.parts:
        ch = part.channel
        events: list[tuple[int, int, bytes]] = [(0, 0, bytes((0xB0 | ch, 7, part.volume))),
                                                (0, 1, bytes((0xB0 | ch, 10, part.pan)))]
        if part.program is not None:
            events.append((0, 2, bytes((0xC0 | ch, part.program))))
        for n in part.notes:
            events.append((n.start + n.length, 3, bytes((0x80 | ch, n.pitch, 0))))  # offs before ons
            events.append((n.start, 4, bytes((0x90 | ch, n.pitch, n.velocity))))
        tracks.append(_track(events))
    header = b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big") + len(tracks).to_bytes(2, "big") \
        + PPQ.to_bytes(2, "big")
    return header + b"".join(tracks)


def render(midi: bytes, out_wav: Path, sample_rate: int = 32000, soundfont: Path = DEFAULT_SOUNDFONT,
           gain: float = 0.8, seconds: float | None = None) -> npt.NDArray[np.float32]:
    """Play ``midi`` with ``fluidsynth`` into ``out_wav``; mono float32 ``[samples]`` in ``[-1, 1]``.

    The stereo render is averaged to mono. With ``seconds``, the result is cut or zero-padded to
    ``round(seconds * sample_rate)`` samples (fluidsynth renders a release tail after the last event).
    Raises :class:`ConfigError` when fluidsynth or the SoundFont is missing, or the render fails.
    The samples are repeatable for one fluidsynth build (Debian 12: 2.3.1), not promised across builds.
    """
    install = "install the Debian packages: apt-get install fluidsynth fluid-soundfont-gm"
    binary = shutil.which("fluidsynth")
    if binary is None:
        raise ConfigError("the fluidsynth binary is not on PATH", hint=install)
    if not Path(soundfont).is_file():
        raise ConfigError(f"SoundFont {soundfont} not found", hint=install)
    out_wav = Path(out_wav)
    with tempfile.TemporaryDirectory() as tmp:
        mid = Path(tmp) / "score.mid"
        mid.write_bytes(midi)
        cmd = [binary, "-ni", "-q", "-F", str(out_wav), "-T", "wav", "-O", "float", "-r", str(sample_rate),
               "-g", str(gain), str(soundfont), str(mid)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out_wav.is_file():
        raise ConfigError(f"fluidsynth failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    data, rate = sf.read(str(out_wav), dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise ConfigError(f"fluidsynth wrote {rate} Hz, not {sample_rate} Hz")
    mono = np.clip(data.mean(axis=1), -1.0, 1.0).astype(np.float32)
    if seconds is not None:
        n = round(seconds * sample_rate)
        mono = np.pad(mono[:n], (0, max(0, n - mono.shape[0])))
    result: npt.NDArray[np.float32] = mono
    return result
