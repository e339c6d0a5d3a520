"""The steps of ``scripts.gpu_check`` that run on the device, in one child process under the pins.

Each step is a function of a :class:`~scripts.gpu_check_context.Context` returning a JSON-able dict
(what the steps share, and the sizes of the real and the dry run: :mod:`scripts.gpu_check_context`).
The memory pins (``sums``, ``gradients``) have no environment or global torch state, so one
process computes every variant by passing other ``Pins`` to ``signatures_of_audio``.

The fine-tuning steps (``large_finetune_*``) run the library's own
``lumina_audit.customization.tuning.finetune`` on the random MusicGen-Large-shaped LM and time
its steps through a global optimizer step hook; an out-of-memory error is their result, not a
failure.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from benchmarks.musicgen_large import HOOKED_LAYERS
from scripts.gpu_check_context import Context, status

__all__ = ["FINETUNE_STEPS", "OPTIONS", "STEPS"]

#: Memory options compared with the default (pins overrides).
OPTIONS: tuple[tuple[str, dict[str, str]], ...] = (
    ("sums=host", {"sums": "host"}), ("gradients=streamed", {"gradients": "streamed"}),
    ("sums=host, gradients=streamed", {"sums": "host", "gradients": "streamed"}))
#: Fine-tuning steps timed, after one warm-up step (which also makes the copy and AdamW's state).
FINETUNE_STEPS = 3


def _compare(a: Any, b: Any) -> dict[str, Any]:
    """How far signature ``b`` is from ``a``: bitwise, differing entries, relative differences, cosines."""
    import numpy as np

    out: dict[str, Any] = {"bitwise_equal": bool(a.bitwise_equal(b))}
    for field in ("raw_p", "raw_m"):
        x, y = getattr(a, field).astype(np.float64), getattr(b, field).astype(np.float64)
        out[f"{field}_differing"] = int(np.count_nonzero(x != y))
        out[f"{field}_rel_l2"] = float(np.linalg.norm(x - y)) / max(float(np.linalg.norm(x)), 1e-300)
    for field in ("p", "m"):
        x, y = getattr(a, field).astype(np.float64), getattr(b, field).astype(np.float64)
        out[f"cos_{field}"] = float(x @ y)
    return out


def step_environment(ctx: Context) -> dict[str, Any]:
    from lumina_audit.signature.environment import describe

    env = describe(ctx.pins)
    torch = ctx.torch
    env["torch_cuda"], env["cuda_available"] = torch.version.cuda, torch.cuda.is_available()
    if ctx.cuda:
        props = torch.cuda.get_device_properties(0)
        env["gpu"] = (env.get("gpu") or {}) | {"memory_bytes": int(props.total_memory),
                                               "sms": int(props.multi_processor_count)}
    return env


def step_golden(ctx: Context) -> dict[str, Any]:
    gf, session = ctx.session()
    clips = []
    for path, expected in ctx.clips():
        sid = next(iter(expected.values())).song_id
        first = session.all_signatures([path], [sid])[0][1]
        second = session.all_signatures([path], [sid])[0][1]
        ctx._cache[f"golden-{path.name}"] = first
        for method, exp in expected.items():
            clips.append({"clip": path.name, "method": method, "repeat_bitwise_equal": first[method].bitwise_equal(
                second[method]), "vs_cpu_golden": _compare(exp, first[method])})
    return {"device": str(session.model.device), "clips": clips,
            "all_repeats_bitwise_equal": all(c["repeat_bitwise_equal"] for c in clips),
            "all_equal_to_cpu_golden": all(c["vs_cpu_golden"]["bitwise_equal"] for c in clips)}


def step_golden_options(ctx: Context) -> dict[str, Any]:
    from lumina_audit.signature.audio import load_audio
    from lumina_audit.signature.extract import signatures_of_audio

    _, session = ctx.session()
    rows = []
    for path, expected in ctx.clips():
        sid = next(iter(expected.values())).song_id
        base = ctx._cache.get(f"golden-{path.name}") or session.all_signatures([path], [sid])[0][1]
        audio = load_audio(path, session.config)
        for label, overrides in OPTIONS:
            got = signatures_of_audio(audio, session.model, session.config, replace(session.pins, **overrides), sid,
                                      session.methods)
            rows += [{"clip": path.name, "option": label, "method": m, "bitwise_equal": got[m].bitwise_equal(base[m])}
                     for m in base]
    return {"rows": rows, "all_bitwise_equal": all(r["bitwise_equal"] for r in rows)}


def step_golden_batch(ctx: Context) -> dict[str, Any]:
    from lumina_audit.signature.extract import signatures_of_audio

    _, session = ctx.session()
    audio, _ = ctx.audio(ctx.sizes.batch_song_seconds, seed=14)  # full chunks, the first two share a batch
    plain = ctx.config()
    base = signatures_of_audio(audio, session.model, plain, session.pins, "batch", session.methods)
    config = replace(plain, chunk_batch=2)
    got = signatures_of_audio(audio, session.model, config, session.pins, "batch", session.methods)
    spaces = {m.name: (plain.space(session.model.digests, m).digest, config.space(
        session.model.digests, m).digest) for m in session.methods}
    return {"chunks": len(audio.chunks), "chunk_batch": 2,
            "methods": {m: _compare(base[m], got[m]) for m in base},
            "space_digests_differ": all(a != b for a, b in spaces.values())}


def step_large_build(ctx: Context) -> dict[str, Any]:
    model, seconds = ctx.large()
    lm_params = sum(p.numel() for p in model.lm.parameters())
    enc_params = sum(p.numel() for p in model.compression.parameters())
    hooked = sum(p.numel() for ch in ("P", "M") for p in model.hooked[ch])
    return {"width": ctx.sizes.width, "heads": ctx.sizes.heads, "ffn": 4 * ctx.sizes.width, "layers": model.num_layers,
            "lm_parameters": lm_params, "encodec_parameters": enc_params, "hooked_entries": hooked,
            "build_seconds": seconds, "device": str(model.device)}


def _codes(ctx: Context, model: Any) -> Any:
    from lumina_audit.signature.gradients import chunk_codes

    audio, _ = ctx.audio(ctx.sizes.chunk_seconds, seed=15)
    samples = ctx.torch.from_numpy(audio.samples).to(model.device)
    start, length = audio.chunks[0]
    return chunk_codes(model, samples[start:start + length])


def step_large_flops(ctx: Context) -> dict[str, Any]:
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks.musicgen_large import Shape, peak_fp32, spec_flops
    from lumina_audit.signature.gradients import codes_loss
    from lumina_audit.signature.pins import sdpa_context

    torch = ctx.torch
    model, _ = ctx.large()
    _, session = ctx.session()
    codes = _codes(ctx, model)
    seq = model.lm.pattern_provider.get_pattern(codes.shape[-1]).build_pattern_sequence(
        codes, model.lm.special_token_id, keep_only_valid_steps=True)[0].shape[-1]
    shape = Shape(width=ctx.sizes.width, heads=ctx.sizes.heads, ffn=4 * ctx.sizes.width)
    formula = spec_flops(shape, seq, (*session.config.layers_m, *session.config.layers_p))
    params = [*model.hooked["P"], *model.hooked["M"]]

    def once() -> float:
        ctx.sync()
        t0 = time.perf_counter()
        with sdpa_context(ctx.pins):
            grads = torch.autograd.grad(codes_loss(model, codes, session.config.codebook_boosts), params)
        ctx.sync()
        del grads
        return time.perf_counter() - t0

    with FlopCounterMode(display=False) as counter:
        once()
    counted = int(counter.get_total_flops())
    seconds = [once() for _ in range(ctx.sizes.repeats)]
    n = ctx.sizes.matmul
    a = torch.randn(n, n, device=model.device)
    b = torch.randn(n, n, device=model.device)
    (a @ b).sum().item()
    ctx.sync()
    t0 = time.perf_counter()
    for _ in range(ctx.sizes.repeats):
        c = a @ b
    ctx.sync()
    matmul_tflops = 2 * n**3 * ctx.sizes.repeats / (time.perf_counter() - t0) / 1e12
    del a, b, c
    chunk = float(statistics.median(seconds))
    achieved = formula["total"] / chunk / 1e12
    peak, source = _peak(ctx, peak_fp32) if ctx.cuda else (None, "cpu: no fp32 peak")
    return {"positions": seq, "frames": int(codes.shape[-1]), "formula_flops": formula, "counted_flops": counted,
            "counted_over_formula": counted / formula["total"], "lm_seconds_per_chunk": chunk,
            "lm_seconds_all": seconds, "achieved_tflops": achieved, "matmul_tflops": matmul_tflops,
            "matmul_size": n, "peak_fp32_tflops": peak, "peak_source": source,
            "fraction_of_peak": achieved / peak if peak else None, "fraction_of_matmul": achieved / matmul_tflops}


def _peak(ctx: Context, lookup: Callable[..., tuple[float | None, str]]) -> tuple[float | None, str]:
    """The device's fp32 peak: its data-sheet figure, else computed from its SMs and nvidia-smi's max SM clock."""
    import subprocess

    props = ctx.torch.cuda.get_device_properties(0)
    clock = 0.0
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20, check=True)
        clock = float(out.stdout.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        pass
    return lookup(props.name, int(props.multi_processor_count), (props.major, props.minor), clock)


def step_large_methods(ctx: Context) -> dict[str, Any]:
    from benchmarks.bench_signature import sketch_cache_bytes, summaries
    from lumina_audit.signature.methods import gradproj as gp

    torch = ctx.torch
    model, _ = ctx.large()
    _, session = ctx.session()
    gen = torch.Generator(device=model.device).manual_seed(7)
    sums = [torch.randn(p.shape, dtype=torch.float64, device=model.device, generator=gen)
            for ch in ("P", "M") for p in model.hooked[ch]]
    rss0 = status("VmRSS")
    t = summaries(model, session.config, sums, 18)
    del sums
    return {"seconds": t, "cache_bytes": gp._cache_bytes, "cache_bytes_expected": sketch_cache_bytes(model),
            "host_rss_growth_bytes": status("VmRSS") - rss0,
            "note": "the chunk averages go to the host tensor by tensor and are projected there in numpy (G4)"}


def _song(ctx: Context, overrides: dict[str, str], batch: int) -> dict[str, Any]:
    from lumina_audit.signature.extract import signatures_of_audio

    model, _ = ctx.large()
    _, session = ctx.session()
    audio, decode = ctx.audio(ctx.sizes.song_seconds, seed=16)
    pins = replace(session.pins, **overrides)
    config = replace(ctx.config(), chunk_batch=batch)
    rest, host_rest = ctx.peak_reset()
    marks: list[float] = []

    def on_chunk(done: int, total: int) -> None:
        ctx.sync()
        marks.append(time.perf_counter())

    t0 = time.perf_counter()
    signatures_of_audio(audio, model, config, pins, "song", session.methods, on_chunk)
    ctx.sync()
    total = time.perf_counter() - t0
    peak, host_peak = ctx.peak()
    steps = [b - a for a, b in zip([t0, *marks[:-1]], marks, strict=True) if b > a]
    per_chunk = (marks[-1] - t0) / len(audio.chunks)
    return {"pins": overrides or "default", "chunk_batch": batch, "chunks": len(audio.chunks),
            "song_seconds": ctx.sizes.song_seconds, "decode_seconds": decode, "seconds_per_song": total,
            "seconds_per_chunk": per_chunk, "median_group_seconds": statistics.median(steps) if steps else None,
            "averages_and_methods_seconds": total - (marks[-1] - t0), "rest_bytes": rest, "peak_bytes": peak,
            "peak_above_rest_bytes": peak - rest, "peak_source": ctx.peak_source,
            "host_peak_above_rest_bytes": host_peak - host_rest}


def _song_step(overrides: dict[str, str], batch: int = 1) -> Callable[[Context], dict[str, Any]]:
    return lambda ctx: _song(ctx, overrides, batch)


def _profiled(run: Callable[[], Any]) -> tuple[Any, int]:
    """``run()`` under torch's profiler; its result and the peak bytes of CPU tensors alive at once during it,
    above those alive at its start (the CPU has no ``max_memory_allocated``, and its RSS reuses freed memory)."""
    import os

    from torch.autograd.profiler import profile

    os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # else kineto logs an error line: no GPU
    with profile(use_cpu=True, profile_memory=True) as prof:  # its events are read raw: no parsing pass
        result = run()
    events = sorted((e for e in prof.kineto_results.events() if e.name() == "[memory]"), key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return result, peak


def _finetune(ctx: Context, layers: tuple[int, ...] | None) -> dict[str, Any]:
    """``finetune`` of the random large LM on random codes of one chunk: peak memory and seconds per step,
    each beside its paper figure (``benchmarks/musicgen_large.py``)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from benchmarks.musicgen_large import (
        HBM_TBS,
        SUSTAINED_TFLOPS,
        Shape,
        finetune_flops,
        finetune_memory,
        finetune_seconds,
        positions,
        trained_parameters,
    )
    from lumina_audit.customization.settings import FineTune
    from lumina_audit.customization.tuning import finetune
    from lumina_tools.markdown import gib

    torch = ctx.torch
    model, _ = ctx.large()
    frames = round(ctx.sizes.chunk_seconds * float(model.compression.frame_rate))
    shape = Shape(width=ctx.sizes.width, heads=ctx.sizes.heads, ffn=4 * ctx.sizes.width, layers=model.num_layers)
    gen = torch.Generator(device=model.device).manual_seed(17)
    codes = torch.randint(0, int(model.lm.card), (1, int(model.lm.num_codebooks), frames), generator=gen,
                          device=model.device)
    settings = FineTune(steps=1 + FINETUNE_STEPS, layers=layers or ())
    paper = finetune_memory(shape, layers, frames=frames, foreach=ctx.cuda)  # CPU: AdamW tensor by tensor
    paper_above = paper["peak"] - paper["base"]  # the base LM is part of the rest
    flops = finetune_flops(shape, positions(frames), layers)["total"]
    estimate = finetune_seconds(shape, positions(frames), layers)
    marks: list[float] = []

    def mark(*_: Any) -> None:
        ctx.sync()
        marks.append(time.perf_counter())

    def run() -> list[float]:
        lm, losses = finetune(model, codes, settings, ctx.pins)
        del lm
        return losses

    rest, _ = ctx.peak_reset()
    handle = register_optimizer_step_post_hook(mark)
    losses: list[float] = []
    error, above = None, 0
    t0 = time.perf_counter()
    try:
        if ctx.cuda:
            losses = run()
        else:
            losses, above = _profiled(run)
    except torch.cuda.OutOfMemoryError as exc:  # the answer for a card too small, not a failed check
        error = f"out of memory: {str(exc).splitlines()[0]}"[:500]
    finally:
        handle.remove()
    if ctx.cuda:
        above = int(torch.cuda.max_memory_allocated()) - rest
    gc.collect()
    if ctx.cuda:
        torch.cuda.empty_cache()
    timed = [b - a for a, b in zip(marks[:-1], marks[1:], strict=True)]
    seconds = statistics.median(timed) if error is None and timed else None
    return {"parameters": "all" if layers is None else {"layers": list(layers)},
            "trained_parameters": trained_parameters(shape, layers), "frames": frames, "steps": settings.steps,
            "fits": error is None, "error": error, "losses": losses,
            "first_step_seconds": marks[0] - t0 if marks else None, "step_seconds": timed,
            "seconds_per_step": seconds, "paper_seconds_per_step": estimate["total"], "paper_seconds": estimate,
            "paper_assumes": f"{SUSTAINED_TFLOPS:g} TFLOP/s sustained fp32, {HBM_TBS:g} TB/s (an estimate)",
            "flops_per_step": flops, "achieved_tflops": flops / seconds / 1e12 if seconds else None,
            "rest_bytes": rest, "peak_bytes": rest + above, "peak_above_rest_bytes": above,
            "paper": paper, "paper_above_rest_bytes": paper_above,
            "measured_over_paper": above / paper_above if error is None else None,
            "paper_gib": {k: gib(v) for k, v in paper.items()},
            "peak_source": "torch.cuda.max_memory_allocated" if ctx.cuda else "torch.profiler memory events (CPU)",
            "device_memory_bytes": int(torch.cuda.get_device_properties(0).total_memory) if ctx.cuda else None}


def _finetune_step(layers: tuple[int, ...] | None) -> Callable[[Context], dict[str, Any]]:
    return lambda ctx: _finetune(ctx, layers)


#: Every step, in order, with its rough seconds on an H100-class GPU (to skip what cannot finish in time).
STEPS: tuple[tuple[str, Callable[[Context], dict[str, Any]], float], ...] = (
    ("environment", step_environment, 5),
    ("golden", step_golden, 30),
    ("golden_options", step_golden_options, 30),
    ("golden_batch", step_golden_batch, 15),
    ("large_build", step_large_build, 30),
    ("large_flops", step_large_flops, 20),
    ("large_methods", step_large_methods, 40),
    ("large_song_default", _song_step({}), 25),
    *((f"large_song_{label.replace('=', '_').replace(', ', '_')}", _song_step(o), 30) for label, o in OPTIONS),
    ("large_song_batch_2", _song_step({}, 2), 25),
    ("large_song_batch_4", _song_step({}, 4), 25),
    ("large_finetune_all", _finetune_step(None), 25),
    ("large_finetune_layers", _finetune_step(HOOKED_LAYERS), 15),
)
