"""The project's seeded scores (``lumina_audit._internal.scores``) as audio: fluidsynth with FluidR3_GM.

:data:`lumina_tools.environment.SOUNDFONT_PACKAGES` names the Debian packages that render them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["render_song", "score_audio"]


def score_audio(seed: int, seconds: float) -> npt.NDArray[np.float32]:
    """The score of ``seed`` cut to ``seconds``, rendered at 32 kHz: mono float32 samples in ``[-1, 1]``."""
    from lumina_audit._internal.scores import midi_bytes, render, score

    with tempfile.TemporaryDirectory() as tmp:
        return render(midi_bytes(score(seed, seconds)), Path(tmp) / "render.wav", seconds=seconds)


def render_song(seed: int, seconds: float, out: Path) -> Path:
    """:func:`score_audio` written to ``out`` as a 32 kHz mono 16-bit WAV; ``out``.

    16-bit PCM, not float: libsndfile stamps float WAVs with a PEAK chunk holding the time of
    writing, so their bytes (and file SHA-256) would change from run to run.
    """
    import soundfile as sf

    mono = score_audio(seed, seconds)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), np.clip(mono, -1.0, 1.0), 32000, subtype="PCM_16", format="WAV")
    return out
