"""Benchmark: seconds per minute of audio, split by stage, and what each signature method costs.

    python -m benchmarks.bench_signature [--seconds 60] [--width 512] [--device cpu|cuda] [--threads 1]

(from the repository root, as every benchmark; ``make bench``).

Stages: decode (read, hash, mix, resample), EnCodec (codes), forward+backward
(teacher-forcing loss and the hooked gradients), accumulate (float64 sums over
chunks), then the methods, once per song, from the chunk averages: gradstats (six
statistics per tensor), gradproj (the count sketch; its first song also computes the
buckets and signs it then keeps) and both together, as an extraction computes them.
Two models:

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
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lumina_tools.invocation import reexec_pinned


def build_wide(model: Any, width: int, device: Any, config: Any, heads: int | None = None) -> Any:
    """A random LM of the tiny checkpoint's config with ``width`` channels, hooked like the real one.

    ``heads`` defaults to ``width // 64`` (MusicGen's head width); the FFN is 4 x ``width``. The
    weights are created and initialised on ``device`` itself (48 x 2048 is 3.3 billion values).
    """
    from unittest import mock

    import torch
    from audiocraft.models import builders
    from omegaconf import OmegaConf

    from lumina_audit.signature.model import NullTextConditioner, hook_tensors
    from scripts.make_tiny_checkpoint import lm_config

    cfg = lm_config()
    cfg["device"] = str(device)
    cfg["transformer_lm"].update(dim=width, num_heads=heads or max(1, width // 64))
    with mock.patch.object(builders, "T5Conditioner", NullTextConditioner), torch.device(device):
        lm = builders.get_lm_model(OmegaConf.create(cfg)).float().eval().to(device)
    hooked, names = hook_tensors(lm, config)
    conditioners: dict[str, Any] = dict(lm.condition_provider.conditioners)
    null = {n: c.null_condition(1, device) for n, c in conditioners.items()}
    return replace(model, lm=lm, hooked=hooked, hooked_names=names, null_condition=null)


def run(session: Any, model: Any, wav: Path, full_backward: bool = False) -> dict[str, float]:
    import torch

    from lumina_audit.signature.audio import load_audio
    from lumina_audit.signature.gradients import chunk_codes, codes_loss
    from lumina_audit.signature.pins import sdpa_context

    def sync() -> None:
        if model.device.type == "cuda":
            torch.cuda.synchronize()

    t: dict[str, float] = dict.fromkeys(("decode", "encodec", "forward+backward", "accumulate"), 0.0)
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
        t["accumulate"] += time.perf_counter() - t2
    t["chunks"] = float(len(audio.chunks))
    if full_backward:
        for p in params:
            p.requires_grad_(False)
        for p in [*model.hooked["P"], *model.hooked["M"]]:
            p.requires_grad_(True)
        return t
    t |= summaries(model, session.config, sums, len(audio.chunks))
    return t


def summaries(model: Any, config: Any, sums: list[Any], n: int) -> dict[str, float]:
    """Seconds of each method's part of one song: the chunk averages, then the method's summaries."""
    from lumina_audit.signature.methods import GRADPROJ, GRADSTATS

    layers = (config.layers_p, config.layers_m)

    def once(methods: tuple[Any, ...]) -> float:
        t0 = time.perf_counter()
        for channel in range(2):
            kept = [m.summary() for m in methods]
            for k in range(36):
                mean = (sums[channel * 36 + k] / n).cpu()
                for summary in kept:
                    summary.add(layers[channel][k // 6], k % 6, mean)
            for summary in kept:
                summary.raw()
        return time.perf_counter() - t0

    out = {"gradstats": once((GRADSTATS,)), "gradproj, first song": once((GRADPROJ,))}
    out["gradproj"] = once((GRADPROJ,))
    out["both"] = once((GRADPROJ, GRADSTATS))
    return out


def measure_sketch_cache(width: int) -> tuple[float, float, int]:
    """Build gradproj's buckets and signs for every non-zero hooked tensor of a 48 x ``width`` MusicGen.

    No model is needed: the tables depend only on (layer, tensor, size). Returns the seconds it took,
    the growth of this process's peak RSS (MiB) and the bytes the cache holds.
    """
    import resource

    from lumina_audit.signature.methods import gradproj as gp

    shapes = {0: 3 * width * width, 1: width * width, 4: 4 * width * width, 5: 4 * width * width}
    limit, gp.CACHE_BYTES = gp.CACHE_BYTES, 1 << 40  # keep every table for the measurement
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    held = 0
    try:
        for layer in (*range(42, 48), *range(12, 18)):
            for position, n in shapes.items():
                tables = gp._tables(layer, position, n)
                held += 0 if tables is None else tables[0].nbytes + tables[1].nbytes
    finally:
        gp.CACHE_BYTES = limit
    seconds = time.perf_counter() - t0
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return seconds, grown, held


def sketch_cache_bytes(model: Any) -> int:
    """What the buckets-and-signs cache holds for this model: 2 bytes per entry of every non-zero hooked tensor."""
    from lumina_audit.signature.space import TENSORS

    zero = {TENSORS.index("cross_attention.in_proj_weight"), TENSORS.index("cross_attention.out_proj.weight")}
    return sum(2 * p.numel() for ch in ("P", "M") for k, p in enumerate(model.hooked[ch]) if k % 6 not in zero)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure, print the tables; the figures: ``rows`` (model, seconds by stage and method), ``cache``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_signature",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-full", action="store_true", help="skip the training-style backward")
    parser.add_argument("--cache-width", type=int, default=2048,
                        help="also build gradproj's cache for a 48 x WIDTH model and measure it (0: skip)")
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(args_list)

    from lumina_audit.signature.pins import Pins

    pins = Pins(device=args.device, threads=args.threads)
    reexec_pinned(pins, args_list, __spec__)

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
        models = [("tiny checkpoint (48 x 32)", session.model), (f"random 48 x {args.width}", wide)]
        if not args.skip_full:
            rows.append((f"random 48 x {args.width}, training-style backward", run(session, wide, wav, True)))
    per_min = 60.0 / args.seconds
    print(f"{args.seconds:g} s of 44.1 kHz stereo audio, device {args.device}, {args.threads} thread(s); "
          "seconds per minute of audio:")
    stages = ("decode", "encodec", "forward+backward", "accumulate")
    print(f"{'model':<46} {'decode':>8} {'encodec':>8} {'fwd+bwd':>8} {'accum.':>8} {'both':>8} {'total':>8}")
    for name, t in rows:
        both = t.get("both", 0.0)
        total = sum(t[k] for k in stages) + both
        print(f"{name:<46} " + " ".join(f"{t[k] * per_min:8.2f}" for k in stages) + f" {both * per_min:8.2f}"
              f" {total * per_min:8.2f}")
    print("\nThe methods, once per song (seconds), against one 10 s chunk's forward+backward:")
    print(f"{'model':<30} {'fwd+bwd/chunk':>13} {'gradstats':>10} {'gradproj':>10} {'(1st song)':>10} "
          f"{'both':>8} {'gradproj/chunk':>15} {'both/gradstats':>15}")
    for name, t in rows:
        if "both" not in t:
            continue
        chunk = t["forward+backward"] / t["chunks"]
        print(f"{name:<30} {chunk:13.3f} {t['gradstats']:10.3f} {t['gradproj']:10.3f} "
              f"{t['gradproj, first song']:10.3f} {t['both']:8.3f} {t['gradproj'] / chunk:15.1%} "
              f"{t['both'] / t['gradstats']:15.2f}")
    cache: dict[str, Any] = {"expected": {name: sketch_cache_bytes(model) for name, model in models}}
    for name, nbytes in cache["expected"].items():
        print(f"gradproj's cache of buckets and signs, {name}: {nbytes / 2**20:.1f} MiB")
    if args.cache_width:
        seconds, grown, held = measure_sketch_cache(args.cache_width)
        cache["measured"] = {"width": args.cache_width, "seconds": seconds, "rss_growth_mib": grown, "held": held}
        print(f"gradproj's cache at 48 x {args.cache_width}, measured: {held / 2**30:.2f} GiB held "
              f"({held / 2:,.0f} entries), peak RSS +{grown:,.0f} MiB, built in {seconds:.1f} s (once per process)")
    return {"rows": dict(rows), "cache": cache}


if __name__ == "__main__":
    main()
