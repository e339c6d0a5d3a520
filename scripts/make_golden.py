"""Make the golden clips and (with --vectors) their expected signatures.

    python -m scripts.make_golden            # write golden/clips/*
    python -m scripts.make_golden --vectors  # compute and write golden/golden.json (the random tiny checkpoint)
    python -m scripts.make_golden --vectors --model tiny-musicgen-trained
                                             # golden/golden-tiny-musicgen-trained.json for another checkpoint

from the repository root, where golden/ is the package data folder lumina_audit/_data/golden/ (shipped in the wheel).

Run once, review, commit. From then on ``lumina-audit golden check`` and the
tests compare against golden.json bit for bit; never regenerate it to make a
test pass.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import soundfile

from lumina_tools.files import GOLDEN, MODELS, write_digests
from lumina_tools.invocation import reexec_pinned

SEED = 422024

#: file name -> (seed offset, seconds, rate, channels, bits or "float"); what each exercises.
CLIPS: dict[str, tuple[int, float, int, int, int | str]] = {
    "a_stereo44k_pcm16.wav": (101, 10.0, 44100, 2, 16),   # stereo, 44.1 kHz resampled, exactly 1 chunk
    "b_mono48k_pcm24.wav": (102, 13.5, 48000, 1, 24),     # 24-bit, partial last chunk of 3.5 s
    "c_stereo32k_pcm16.wav": (103, 20.6, 32000, 2, 16),   # native rate, 0.6 s tail dropped
    "d_mono32k_float.wav": (104, 4.0, 32000, 1, "float"),  # float WAV, a single short chunk
}
#: Same PCM as clip a in another container: same PCM hash, same signature.
FLAC_COPY = ("a_copy.flac", "a_stereo44k_pcm16.wav")


def write_clips() -> None:
    from lumina_audit._internal.synth import SongSpec, render, write_wav

    out = GOLDEN / "clips"
    out.mkdir(parents=True, exist_ok=True)
    for name, (offset, seconds, rate, channels, bits) in CLIPS.items():
        x = render(SongSpec(seed=SEED + offset, seconds=seconds, sample_rate=rate, channels=channels))
        if bits == "float":
            soundfile.write(out / name, x.T.astype(np.float32), rate, subtype="FLOAT")
        else:
            write_wav(out / name, x, rate, int(bits))
    data, rate = soundfile.read(out / FLAC_COPY[1], dtype="int16", always_2d=True)
    soundfile.write(out / FLAC_COPY[0], data, rate, subtype="PCM_16", format="FLAC")


def write_vectors(model_name: str = "tiny-musicgen") -> None:
    from lumina_audit._internal.quiet import silence_libraries
    from lumina_audit.signature import golden
    from lumina_audit.signature.model import sha256_model_files
    from lumina_audit.signature.pins import Pins
    from lumina_audit.signature.session import Session

    silence_libraries()
    model = MODELS / model_name
    digests = sha256_model_files(model)
    session = Session.open(model, digests, Pins())  # every method, gradproj first
    files = sorted((GOLDEN / "clips").iterdir())
    results = [(f"clips/{p.name}", by_method) for p, by_method in session.all_signatures(files)]
    spaces = {name: space.digest for name, space in session.spaces.items()}
    name = "golden.json" if model_name == "tiny-musicgen" else f"golden-{model_name}.json"
    golden.write(GOLDEN, f"models/{model_name}", digests, spaces, session.pins, session.environment(), results, name)
    write_digests(model, digests)
    print(json.dumps({file: next(iter(by_method.values())).chunks for file, by_method in results}))


if __name__ == "__main__":
    if "--vectors" in sys.argv[1:]:
        from lumina_audit.signature.pins import Pins

        reexec_pinned(Pins(), sys.argv[1:], __spec__)
        args = sys.argv[1:]
        write_vectors(args[args.index("--model") + 1] if "--model" in args else "tiny-musicgen")
    else:
        write_clips()
