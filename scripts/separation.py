"""How far a copy stands above the noise floor on random tiny models: measured, not asserted.

attribution-v1 sets tau = mu + k * sigma over similarities of unrelated songs. A copy of a
catalog song has similarity 1, so it can clear the floor only when (1 - mu) / sigma > k
(3 by default). This script builds random tiny MusicGen checkpoints like the embedded
one (``scripts/make_tiny_checkpoint.py``; 48 layers, seeded codebooks) at several widths
and weight scales, computes signatures of unrelated synthetic songs under the default
pins, and prints, per signature method (both from one pass) and channel, mu, sigma, tau,
(1 - mu) / sigma, the largest unrelated similarity and, for gradstats, the share of each
statistic in the signatures' squared norm.

    python -m scripts.separation [--widths 32 64 128] [--scales 1 3] [--songs 16]

(from the repository root, as every script).

Each variant takes about a minute per 16 songs of 10 s on one CPU thread.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lumina_tools.invocation import reexec_pinned
from lumina_tools.markdown import md_table

STATS = ("mean", "std", "l2", "max", "min", "skew")


def build(out: Path, width: int, scale: float) -> None:
    """A tiny checkpoint of ``width`` with every LM projection weight multiplied by ``scale``."""
    import torch

    import scripts.make_tiny_checkpoint as mtc

    base = mtc.lm_config

    def lm_config() -> dict[str, Any]:
        cfg = base()
        cfg["transformer_lm"]["dim"] = width
        return cfg

    mtc.lm_config = lm_config
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints the digests
            mtc.main(out)
    finally:
        mtc.lm_config = base
    if scale != 1.0:
        pkg = torch.load(out / "state_dict.bin", weights_only=True)
        for name, value in pkg["best_state"].items():
            if name.endswith("weight") and "norm" not in name and "emb" not in name:
                value.mul_(scale)
        torch.save(pkg, out / "state_dict.bin")


def measure(model_dir: Path, songs: int) -> list[list[str]]:
    """Cells ``method, channel, mu, sigma, tau, (1 - mu) / sigma, max unrelated, shares`` of both methods."""
    from lumina_audit._internal.synth import SongSpec, render, write_wav
    from lumina_audit.signature.model import sha256_model_files
    from lumina_audit.signature.pins import Pins
    from lumina_audit.signature.session import Session

    session = Session.open(model_dir, sha256_model_files(model_dir), Pins())  # both methods, one pass per song
    paths = []
    for i in range(songs):
        path = model_dir / f"song{i}.wav"
        write_wav(path, render(SongSpec(seed=61000 + i, seconds=10.0)), 32000, 16)
        paths.append(path)
    sigs = [by_method for _, by_method in session.all_signatures(paths, [f"song{i}" for i in range(songs)])]
    rows = []
    for method in (m.name for m in session.methods):
        for ch in ("p", "m"):
            x = np.array([getattr(s[method], ch) for s in sigs], dtype=np.float64)
            sims = (x @ x.T)[np.triu_indices(songs, 1)]
            mu, sigma = float(sims.mean()), float(sims.std(ddof=1))
            shares = "-"
            if method == "lumina-gradstats-v1":
                raw = np.array([getattr(s[method], f"raw_{ch}") for s in sigs]).reshape(songs, 6, 6, 6)
                energy = ((raw**2).sum(axis=(1, 2)) / (raw**2).sum(axis=(1, 2, 3))[:, None]).mean(axis=0)
                shares = ", ".join(f"{n} {e:.0%}" for n, e in zip(STATS, energy, strict=True) if e >= 0.005)
            rows.append([method, ch.upper(), f"{mu:.3f}", f"{sigma:.3f}", f"{mu + 3 * sigma:.3f}",
                         f"{(1 - mu) / sigma:.2f}", f"{sims.max():.3f}", shares])
    return rows


HEADER = ("model", "method", "channel", "mu", "sigma", "tau (k=3)", "(1 - mu) / sigma", "max unrelated",
          "squared-norm share (gradstats)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.separation", description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 3.0])
    parser.add_argument("--songs", type=int, default=16)
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(args_list)
    from lumina_audit.signature.pins import Pins

    reexec_pinned(Pins(), args_list, __spec__)
    from lumina_audit._internal.quiet import silence_libraries

    silence_libraries()
    align = "lllrrrrrl"
    print("\n".join(md_table(HEADER, [], align)))
    with tempfile.TemporaryDirectory() as tmp:
        for width in args.widths:
            for scale in args.scales:
                out = Path(tmp) / f"w{width}-x{scale:g}"
                build(out, width, scale)
                for cells in measure(out, args.songs):
                    print(md_table(HEADER, [[f"width {width}, weights x{scale:g}", *cells]], align)[-1], flush=True)


if __name__ == "__main__":
    main()
