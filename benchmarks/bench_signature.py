"""Benchmark: seconds per minute of audio, split by stage.

    python benchmarks/bench_signature.py [--seconds 60] [--width 512] [--device cpu|cuda] [--threads 1]

Stages: decode (read, hash, mix, resample), EnCodec (codes), forward+backward
(teacher-forcing loss and the hooked gradients), statistics (float64
accumulation and the six statistics). Two models:

- the committed tiny checkpoint (48 x 32), and
- a compute-bound random model of the same family (48 layers, --width wide,
  built here with audiocraft's builders, never saved), where the LM dominates.

It also times a training-style backward (every LM parameter requires grad) on
the wide model, to show what computing only the spec's tensors saves.
Runs under the numerical pins like every lumina-audit command.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def build_wide(model: Any, width: int, device: Any, config: Any) -> Any:
    """A random LM of the tiny checkpoint's config with ``width`` channels, hooked like the real one."""
    from unittest import mock

    from audiocraft.models import builders
    from omegaconf import OmegaConf

    from lumina_audit.signature.model import NullTextConditioner, hook_tensors

    sys.path.insert(0, str(ROOT / "scripts"))
    from make_tiny_checkpoint import lm_config

    cfg = lm_config()
    cfg["device"] = str(device)
    cfg["transformer_lm"].update(dim=width, num_heads=max(1, width // 64))
    with mock.patch.object(builders, "T5Conditioner", NullTextConditioner):
        lm = builders.get_lm_model(OmegaConf.create(cfg)).float().eval().to(device)
    hooked, names = hook_tensors(lm, config)
    conditioners: dict[str, Any] = dict(lm.condition_provider.conditioners)
    null = {n: c.null_condition(1, device) for n, c in conditioners.items()}
    return replace(model, lm=lm, hooked=hooked, hooked_names=names, null_condition=null)


def run(session: Any, model: Any, wav: Path, full_backward: bool = False) -> dict[str, float]:
    import torch
    from lumina_audit.signature.methods.gradstats import raw_vector

    from lumina_audit.signature.audio import load_audio
    from lumina_audit.signature.gradients import chunk_codes, codes_loss
    from lumina_audit.signature.pins import sdpa_context

    def sync() -> None:
        if model.device.type == "cuda":
            torch.cuda.synchronize()

    t: dict[str, float] = dict.fromkeys(("decode", "encodec", "forward+backward", "statistics"), 0.0)
    t0 = time.perf_counter()
    audio = load_audio(wav, session.config)
    t["decode"] = time.perf_counter() - t0
    params = [*model.hooked["P"], *model.hooked["M"]]
    if full_backward:  # hooked first, then every other LM parameter
        hooked_ids = {id(p) for p in params}
        params += [p for p in model.lm.parameters() if id(p) not in hooked_ids]
        for p in params:
            p.requires_grad_(True)
    sums = [torch.zeros(p.shape, dtype=torch.float64, device=model.device) for p in params[:72]]
    samples = torch.from_numpy(audio.samples).to(model.device)
    for start, length in audio.chunks:
        sync()
        t0 = time.perf_counter()
        codes = chunk_codes(model, samples[start:start + length])
        sync()
        t1 = time.perf_counter()
        with sdpa_context(session.pins):
            loss = codes_loss(model, codes, session.config.codebook_boosts)
            grads = torch.autograd.grad(loss, params, allow_unused=full_backward)
        sync()
        t2 = time.perf_counter()
        for acc, g in zip(sums, grads[:72], strict=True):
            if g is not None:
                acc.add_(g.to(torch.float64))
        sync()
        t["encodec"] += t1 - t0
        t["forward+backward"] += t2 - t1
        t["statistics"] += time.perf_counter() - t2
    t0 = time.perf_counter()
    n = len(audio.chunks)
    raw_vector([(s / n).cpu() for s in sums[:36]]), raw_vector([(s / n).cpu() for s in sums[36:]])
    t["statistics"] += time.perf_counter() - t0
    if full_backward:
        for p in params:
            p.requires_grad_(False)
        for p in [*model.hooked["P"], *model.hooked["M"]]:
            p.requires_grad_(True)
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-full", action="store_true", help="skip the training-style backward")
    args = parser.parse_args()

    from lumina_audit.signature.pins import Pins, reexec_if_needed

    pins = Pins(device=args.device, threads=args.threads)
    reexec_if_needed(pins, sys.argv[1:], entry=(sys.executable, str(Path(__file__).resolve())))

    from lumina_audit._internal.quiet import silence_libraries
    from lumina_audit._internal.synth import SongSpec, render, write_wav
    from lumina_audit.signature import golden
    from lumina_audit.signature.session import Session

    silence_libraries()
    gf = golden.read(golden.default_root())
    session = Session.open(gf.model_dir, gf.digests, pins)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "bench.wav"
        write_wav(wav, render(SongSpec(seed=7, seconds=args.seconds, sample_rate=44100, channels=2)), 44100, 16)
        rows = [("tiny checkpoint (48 x 32)", run(session, session.model, wav))]
        wide = build_wide(session.model, args.width, session.model.device, session.config)
        rows.append((f"random 48 x {args.width}", run(session, wide, wav)))
        if not args.skip_full:
            rows.append((f"random 48 x {args.width}, training-style backward", run(session, wide, wav, True)))
    per_min = 60.0 / args.seconds
    print(f"{args.seconds:g} s of 44.1 kHz stereo audio, device {args.device}, {args.threads} thread(s); "
          "seconds per minute of audio:")
    print(f"{'model':<46} {'decode':>8} {'encodec':>8} {'fwd+bwd':>8} {'stats':>8} {'total':>8}")
    for name, t in rows:
        total = sum(t.values())
        print(f"{name:<46} " + " ".join(f"{v * per_min:8.2f}" for v in t.values()) + f" {total * per_min:8.2f}")


if __name__ == "__main__":
    main()
