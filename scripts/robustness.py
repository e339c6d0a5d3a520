"""Robustness of attribution on the tiny checkpoint: measured, not asserted.

For each catalog song, perturbed copies are made (noise at 40 and 20 dB SNR, a gain
change, a resample round trip, an MP3-like low-pass) and ranked against the catalog by
signature similarity, per channel and per signature method (both from one pass);
unrelated queries are counted above the calibrated threshold (attribution-v1:
tau = mu + 3 sigma over controls x catalog).

    python -m scripts.robustness [--catalog 12] [--controls 10] [--seconds 6]

(from the repository root, as every script).

Prints a Markdown table. On a random tiny model the figures carry no musical meaning:
they show the mechanics and how far this model is from a useful one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lumina_tools.invocation import reexec_pinned
from lumina_tools.markdown import md_table

RATE = 32000


def _perturbations(x: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    import torch
    import torchaudio

    def noise(snr_db: float) -> np.ndarray:
        power = float(np.mean(x**2))
        return x + rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), x.shape)

    t = torch.from_numpy(x.astype(np.float32))
    up = torchaudio.functional.resample(t, RATE, 44100)
    spectrum = np.fft.rfft(x)
    spectrum[..., np.fft.rfftfreq(x.shape[-1], 1 / RATE) > 11000] = 0  # MP3-like: nothing above 11 kHz
    return {
        "noise 40 dB SNR": noise(40.0),
        "noise 20 dB SNR": noise(20.0),
        "gain -6 dB": x * 10 ** (-6 / 20),
        "resample 32k->44.1k->32k": torchaudio.functional.resample(up, 44100, RATE).numpy().astype(np.float64),
        "low-pass 11 kHz (MP3-like)": np.fft.irfft(spectrum, n=x.shape[-1]),
    }


def measure(session: Any, n_catalog: int, n_controls: int, seconds: float) -> list[tuple[str, str, str, str]]:
    """Rows ``(case, method, P, M)`` of the robustness table, for every method of the session (one pass each)."""
    from lumina_audit._internal.synth import SongSpec, render, write_wav

    rng = np.random.default_rng(422024)
    methods = [m.name for m in session.methods]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)

        def sig(name: str, x: np.ndarray) -> dict[str, Any]:
            path = d / f"{name}.wav"
            write_wav(path, np.clip(x, -0.99, 0.99), RATE, 16)
            result: dict[str, Any] = session.all_signatures([path], [name])[0][1]
            return result

        songs = [render(SongSpec(seed=31000 + i, seconds=seconds)) for i in range(n_catalog)]
        catalog = [sig(f"song{i}", x) for i, x in enumerate(songs)]
        controls = [sig(f"ctl{i}", render(SongSpec(seed=41000 + i, seconds=seconds))) for i in range(n_controls)]
        unrelated = [sig(f"unrel{i}", render(SongSpec(seed=51000 + i, seconds=seconds))) for i in range(n_controls)]
        queries = [{case: sig(f"q{i}", y) for case, y in _perturbations(x, rng).items()} for i, x in enumerate(songs)]
        rows = []
        for method in methods:
            cat = {ch: np.array([getattr(s[method], ch) for s in catalog], dtype=np.float64) for ch in ("p", "m")}
            tau = {}
            for ch in ("p", "m"):
                sims = np.array([getattr(s[method], ch) for s in controls], dtype=np.float64) @ cat[ch].T
                tau[ch] = sims.mean() + 3 * sims.std(ddof=1)
            ranks: dict[str, dict[str, list[int]]] = {}
            for i, by_case in enumerate(queries):
                for case, q in by_case.items():
                    for ch in ("p", "m"):
                        sims = cat[ch] @ getattr(q[method], ch).astype(np.float64)
                        ranks.setdefault(case, {}).setdefault(ch, []).append(1 + int(np.sum(sims > sims[i])))

            def cell(r: list[int]) -> str:
                return f"{np.median(r):g} of {n_catalog} ({np.mean(np.array(r) == 1):.0%})"

            rows.append(("threshold tau = mu + 3 sigma", method, f"{tau['p']:.3f}", f"{tau['m']:.3f}"))
            for case, by in ranks.items():
                rows.append((f"{case}: median rank of the original (top-1 rate)", method, cell(by["p"]),
                             cell(by["m"])))
            above = {ch: [int(np.sum(cat[ch] @ getattr(u[method], ch).astype(np.float64) > tau[ch]))
                          for u in unrelated] for ch in ("p", "m")}
            rows.append(("unrelated queries: catalog songs above tau (mean, max)", method,
                         f"{np.mean(above['p']):.2f}, {max(above['p'])}", f"{np.mean(above['m']):.2f}, "
                         f"{max(above['m'])}"))
        return rows


def table(rows: list[tuple[str, str, str, str]]) -> str:
    """The Markdown table of :func:`measure`'s rows."""
    return "\n".join(md_table(["case", "method", "P (composition)", "M (production)"], rows, "llll"))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.robustness", description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=int, default=12)
    parser.add_argument("--controls", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=6.0)
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(args_list)
    from lumina_audit.signature.pins import Pins

    reexec_pinned(Pins(), args_list, __spec__)
    from lumina_audit._internal.quiet import silence_libraries
    from lumina_audit.signature import golden
    from lumina_audit.signature.session import Session

    silence_libraries()
    gf = golden.read(golden.default_root())
    session = Session.open(gf.model_dir, gf.digests, Pins())  # both methods, gradproj first
    print(table(measure(session, args.catalog, args.controls, args.seconds)))


if __name__ == "__main__":
    main()
