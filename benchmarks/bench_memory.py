"""Peak memory of each memory option, measured on the CPU at 48 x WIDTH, and expected at 48 x 2048 on paper.

    python -m benchmarks.bench_memory [--width 512] [--seconds 30] [--paper-only]

(from the repository root, as every benchmark).

Each option runs in a fresh process under its own pins (``sums``, ``gradients``; and
``chunk_batch`` 2 beside them): the tiny checkpoint's EnCodec, a random LM of its family at
48 x WIDTH (``benchmarks.bench_signature.build_wide``), a warm-up song of one chunk (gradproj's tables,
first-use allocations), then one song of ``--seconds`` with both methods. The figure is the
peak RSS during that song (``VmHWM``, reset to the current RSS through
``/proc/self/clear_refs`` just before it) minus the RSS before it. ``MALLOC_MMAP_THRESHOLD_``
is fixed so that every freed tensor goes back to the system, and the high-water mark is the
peak of live memory.

On the CPU the device *is* the host, so ``sums=host`` measures more, not less: it adds the
staging buffers. The table therefore also gives the device-side part, the measured figure
minus the host-side buffers of that option (float64 sums and float32 staging, counted exactly).

It also measures what autograd keeps for the backward pass of one chunk, per layer (saved-
tensor hooks, unique storages, parameters excluded), at WIDTH and WIDTH / 2: activations grow
linearly with the width (heads are 64 wide, so the attention matrices grow with it too), and
the two points give the per-layer law that ``benchmarks.musicgen_large.paper_memory`` turns into the
expected peak at 48 x 2048 for each option.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lumina_tools.environment import proc_status, reset_rss_peak
from lumina_tools.invocation import reexec_pinned, run_module
from lumina_tools.markdown import gib, md_table

__all__ = ["OPTIONS", "child", "encodec_parameters", "main", "saved_activations"]

#: (label, pins overrides, chunk_batch)
OPTIONS: tuple[tuple[str, dict[str, str], int], ...] = (
    ("sums=device, gradients=together (default)", {}, 1),
    ("sums=host, gradients=together", {"sums": "host"}, 1),
    ("sums=device, gradients=streamed", {"gradients": "streamed"}, 1),
    ("sums=host, gradients=streamed", {"sums": "host", "gradients": "streamed"}, 1),
    ("default, chunk_batch=2", {}, 2),
)


def saved_activations(model: Any, codes: Any, boosts: Any, pins: Any) -> tuple[dict[int, int], int]:
    """Bytes autograd keeps for the backward of one chunk: per transformer layer, and above the last layer."""
    import torch

    from lumina_audit.signature.gradients import codes_loss
    from lumina_audit.signature.pins import sdpa_context

    params = {p.untyped_storage().data_ptr() for p in model.lm.parameters()}
    seen: dict[int, tuple[int | str, int]] = {}
    where: list[int | str] = ["input"]

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params and storage.data_ptr() not in seen:
            seen[storage.data_ptr()] = (where[0], storage.nbytes())
        return t

    def at(i: int | str) -> Any:
        def hook(*_: Any) -> None:
            where[0] = i
        return hook

    handles = [layer.register_forward_pre_hook(at(i)) for i, layer in enumerate(model.lm.transformer.layers)]
    handles.append(model.lm.transformer.register_forward_hook(at("head")))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), sdpa_context(pins):
            loss = codes_loss(model, codes, boosts)
        del loss
    finally:
        for h in handles:
            h.remove()
    per_layer: dict[int, int] = {}
    head = 0
    for place, nbytes in seen.values():
        if isinstance(place, int):
            per_layer[place] = per_layer.get(place, 0) + nbytes
        elif place == "head":
            head += nbytes
    return per_layer, head


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One option in this (fresh) process; returns its figures."""
    from dataclasses import replace

    from lumina_audit.signature.pins import Pins

    pins = Pins(**spec["pins"])
    reexec_pinned(pins, sys.argv[1:], __spec__)

    from benchmarks.bench_signature import build_wide
    from lumina_audit._internal.quiet import silence_libraries
    from lumina_audit._internal.synth import SongSpec, render, write_wav
    from lumina_audit.signature import golden
    from lumina_audit.signature.audio import load_audio
    from lumina_audit.signature.extract import signatures_of_audio
    from lumina_audit.signature.gradients import chunk_codes
    from lumina_audit.signature.session import Session

    silence_libraries()
    gf = golden.read(golden.default_root())
    session = Session.open(gf.model_dir, gf.digests, pins)
    config = replace(session.config, chunk_batch=spec["chunk_batch"])
    out: dict[str, Any] = {}
    if spec.get("activations"):
        for width in spec["activations"]:
            wide = build_wide(session.model, width, session.model.device, config)
            import torch

            clip = torch.from_numpy(render(SongSpec(seed=5, seconds=10.0, sample_rate=32000, channels=1))[0])
            codes = chunk_codes(wide, clip.float())
            per_layer, head = saved_activations(wide, codes, config.codebook_boosts, pins)
            out[str(width)] = {"per_layer": per_layer, "head": head}
            del wide
        return out
    wide = build_wide(session.model, spec["width"], session.model.device, config)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, seconds in (("warm", 10.0), ("song", spec["seconds"])):
            path = Path(tmp) / f"{name}.wav"
            write_wav(path, render(SongSpec(seed=11, seconds=seconds, sample_rate=32000, channels=1)), 32000, 16)
            paths.append(load_audio(path, config))
    warm, song = paths
    signatures_of_audio(warm, wide, config, pins, "warm", session.methods)
    rest = reset_rss_peak()
    signatures_of_audio(song, wide, config, pins, "song", session.methods)
    peak = proc_status("VmHWM")
    entries = sum(p.numel() for ch in ("P", "M") for p in wide.hooked[ch])
    host_buffers = 12 * entries if pins.sums == "host" else 0  # float64 sums + float32 staging
    return {"rest": rest, "peak": peak, "above_rest": peak - rest, "host_buffers": host_buffers,
            "hooked_entries": entries, "chunks": len(song.chunks)}


def encodec_parameters() -> int:
    """Parameters of an EnCodec of MusicGen's shape (built on the meta device: shapes only)."""
    import torch
    from audiocraft.models import builders
    from omegaconf import OmegaConf

    from benchmarks.musicgen_large import encodec_config

    with torch.device("meta"):
        model = builders.get_compression_model(OmegaConf.create(encodec_config() | {"device": "meta"}))
    return sum(p.numel() for p in model.parameters())


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """One option (or the activations) in a fresh process, ``python -m benchmarks.bench_memory --child SPEC``."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    proc = run_module(__spec__, ["--child", json.dumps(spec)], env, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"error: the child for {spec} failed: {proc.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure and print the tables; the figures: ``measured`` per option, ``activations``, ``paper`` per shape."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--paper-only", action="store_true", help="only the activations and the figures on paper")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return {}
    from benchmarks.musicgen_large import LARGE, Shape, paper_memory, summary

    mib = 2**20
    figures: dict[str, Any] = {"measured": {}}
    if not args.paper_only:
        print(f"Measured on the CPU, random 48 x {args.width}, a song of {args.seconds:g} s, both methods "
              "(MiB above the RSS at rest):\n")
        header = ["option", "peak above rest", "host-side buffers", "device-side part"]
        print("\n".join(md_table(header, [])))
        for label, overrides, batch in OPTIONS:
            r = run_child({"pins": overrides, "chunk_batch": batch, "width": args.width, "seconds": args.seconds})
            figures["measured"][label] = r
            cells = [label, f"{r['above_rest'] / mib:,.0f}", f"{r['host_buffers'] / mib:,.0f}",
                     f"{(r['above_rest'] - r['host_buffers']) / mib:,.0f}"]
            print(md_table(header, [cells])[-1], flush=True)
    small, width = int(args.width) // 2, int(args.width)
    acts = figures["activations"] = run_child({"pins": {}, "chunk_batch": 1, "activations": [small, width]})
    per_layer = {w: {int(i): float(b) for i, b in acts[str(w)]["per_layer"].items()} for w in (small, width)}
    head = {w: float(acts[str(w)]["head"]) for w in (small, width)}

    def at(w: int, a: float, b: float) -> float:  # linear in the width through the two measured points
        return b + (b - a) / (width - small) * (w - width)

    large_layers = {i: at(LARGE.width, per_layer[small][i], per_layer[width][i]) for i in per_layer[width]}
    large_head = at(LARGE.width, head[small], head[width])
    mean = {w: sum(v.values()) / len(v) for w, v in per_layer.items()}
    print("\nKept for the backward of one chunk, per layer from layer 12 up (mean; hooked layers keep more): "
          + ", ".join(f"{mean[w] / mib:.1f} MiB at width {w}" for w in (small, width))
          + "; above the last layer: " + ", ".join(f"{head[w] / mib:.1f} MiB" for w in (small, width))
          + f".\nLinear in the width: {sum(large_layers.values()) / len(large_layers) / mib:.0f} MiB per layer and "
          f"{large_head / mib:.0f} MiB above at 2048 ({gib(sum(large_layers.values()) + large_head)} GiB in all).")
    encodec = 4 * encodec_parameters()
    print(f"EnCodec of MusicGen's shape: {encodec / 4:,.0f} parameters, {gib(encodec)} GiB.")
    cases = ((Shape(width=width, heads=max(1, width // 64), ffn=4 * width), per_layer[width], head[width], 0),
             (LARGE, large_layers, large_head, encodec))
    figures["paper"] = {}
    for shape, layers, above, enc in cases:
        rows = figures["paper"][shape.width] = paper_memory(shape, layers, above, enc)
        print(f"\nOn paper, 48 x {shape.width} (GiB; model = fp32 weights of the LM"
              + (" and EnCodec" if enc else "") + "):\n")
        body = [[*cells, f"{(r['work'] + r['sums']) / mib:,.0f}"]
                for cells, r in zip(summary(rows), rows.values(), strict=True)]
        print("\n".join(md_table(["option", "model", "activations + gradients", "float64 sums", "peak on the device",
                                  "host", "above the model (MiB)"], body)))
    return figures


if __name__ == "__main__":
    main()
