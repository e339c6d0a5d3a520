"""The reports of ``scripts.gpu_check``: ``gpu-check.json`` (everything) and ``gpu-check.md`` (for people)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lumina_tools.markdown import md_table

__all__ = ["markdown", "write_reports"]

_GIB = 2**30


def write_reports(out: Path, doc: dict[str, Any]) -> tuple[Path, Path]:
    """Write both files into ``out``; their paths."""
    json_path, md_path = out / "gpu-check.json", out / "gpu-check.md"
    json_path.write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown(doc), encoding="utf-8")
    return json_path, md_path


def _result(doc: dict[str, Any], step: str) -> dict[str, Any] | None:
    record = doc["steps"].get(step) or {}
    result: dict[str, Any] | None = record.get("result") if record.get("ok") else None
    return result


def _f(value: Any, spec: str = ".3g", scale: float = 1.0) -> str:
    return "-" if value is None else format(value / scale, spec)


def _yes(value: Any) -> str:
    return "yes" if value else "**no**"


def _environment(doc: dict[str, Any]) -> list[str]:
    env = _result(doc, "environment")
    if env is None:
        return ["(the environment step failed)"]
    gpu, versions = env.get("gpu") or {}, env.get("versions", {})
    rows = [("device", gpu.get("name", "cpu (dry run)" if doc["dry_run"] else "-")),
            ("GPU memory", _f(gpu.get("memory_bytes"), ".1f", _GIB) + " GiB" if gpu.get("memory_bytes") else "-"),
            ("compute capability, SMs", f"{gpu.get('capability', '-')}, {gpu.get('sms', '-')}"),
            ("driver", gpu.get("driver", "-")), ("CUDA (torch built with)", env.get("torch_cuda") or "-"),
            ("cuDNN", gpu.get("cudnn", "-")), ("CPU", env.get("cpu", {}).get("model", "-")),
            ("Python, torch, torchaudio, audiocraft, numpy", ", ".join(
                str(versions.get(k, "-")) for k in ("python", "torch", "torchaudio", "audiocraft", "numpy")))]
    lines = md_table(["", ""], [[k, v] for k, v in rows], "ll")
    lines += ["", f"Pins in force: `{json.dumps(env.get('pins', {}), sort_keys=True)}`"]
    return lines


def _golden(doc: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    g = _result(doc, "golden")
    if g is not None:
        lines += [f"Each clip twice on `{g['device']}`, both methods: bitwise repeatable "
                  f"{_yes(g['all_repeats_bitwise_equal'])}; equal to the CPU golden vectors: "
                  f"{'yes' if g['all_equal_to_cpu_golden'] else 'no (expected on CUDA)'}.", ""]
        body = [[c["clip"], c["method"], _yes(c["repeat_bitwise_equal"]), "yes" if v["bitwise_equal"] else "no",
                 str(v["raw_p_differing"]), _f(v["raw_p_rel_l2"]), _f(v["raw_m_rel_l2"]), f"{v['cos_p']:.6f}",
                 f"{v['cos_m']:.6f}"] for c in g["clips"] for v in [c["vs_cpu_golden"]]]
        lines += md_table(["clip", "method", "repeat bitwise", "= CPU golden", "raw P entries differing",
                           "raw P rel. L2", "raw M rel. L2", "cos P", "cos M"], body, "llllrrrrr")
    o = _result(doc, "golden_options")
    if o is not None:
        options = list(dict.fromkeys(r["option"] for r in o["rows"]))
        lines += ["", f"Memory options ({'; '.join(options)}) against the first run, every clip and method: bitwise "
                  f"equal {_yes(o['all_bitwise_equal'])} ({sum(r['bitwise_equal'] for r in o['rows'])}"
                  f"/{len(o['rows'])})."]
    b = _result(doc, "golden_batch")
    if b is not None:
        lines += ["", f"`chunk_batch` {b['chunk_batch']} on a {b['chunks']}-chunk song (tiny checkpoint): another "
                  f"signature space {_yes(b['space_digests_differ'])}; against unbatched:", ""]
        lines += md_table(["method", "bitwise", "raw P rel. L2", "raw M rel. L2", "cos P", "cos M"],
                          [[m, "yes" if v["bitwise_equal"] else "no", _f(v["raw_p_rel_l2"]), _f(v["raw_m_rel_l2"]),
                            f"{v['cos_p']:.9f}", f"{v['cos_m']:.9f}"] for m, v in b["methods"].items()], "llrrrr")
    return lines or ["(the golden steps failed)"]


def _large(doc: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    build = _result(doc, "large_build")
    if build is not None:
        lines.append(f"Random LM {build['layers']} x {build['width']} ({build['heads']} heads, FFN {build['ffn']}): "
                     f"{build['lm_parameters']:,} parameters ({_f(4 * build['lm_parameters'], '.2f', _GIB)} GiB fp32), "
                     f"{build['hooked_entries']:,} hooked entries; EnCodec {build['encodec_parameters']:,} parameters; "
                     f"built on `{build['device']}` in {build['build_seconds']:.1f} s.")
    fl = _result(doc, "large_flops")
    if fl is not None:
        f = {k: _f(v, ".3f", 1e12) for k, v in fl["formula_flops"].items()}
        lines += ["", f"FLOPs of one {fl['frames'] / 50:g} s chunk ({fl['frames']} frames, {fl['positions']} "
                  f"positions; counting: `benchmarks/musicgen_large.py`): forward {f['forward']} T, backward "
                  f"{f['backward']} T, total {f['total']} T; FlopCounterMode counted "
                  f"{_f(fl['counted_flops'], '.3f', 1e12)} T ({fl['counted_over_formula']:.4f} of the formula).", "",
                  *md_table(["LM forward+backward per chunk", "achieved", "fp32 peak", "of peak",
                             "measured fp32 matmul", "of matmul"],
                            [[f"{fl['lm_seconds_per_chunk']:.3f} s", f"{fl['achieved_tflops']:.3g} TFLOPS",
                              f"{_f(fl['peak_fp32_tflops'], '.1f')} TFLOPS ({fl['peak_source']})",
                              _f(fl["fraction_of_peak"], ".1%"),
                              f"{fl['matmul_tflops']:.3g} TFLOPS ({fl['matmul_size']}^2)",
                              f"{fl['fraction_of_matmul']:.1%}"]], "rrrrrr")]
    me = _result(doc, "large_methods")
    if me is not None:
        t = me["seconds"]
        lines += ["", "The signature methods on one song's chunk averages (copied to the host tensor by tensor, "
                  f"projected there): gradstats {t['gradstats']:.2f} s, gradproj {t['gradproj']:.2f} s "
                  f"(first song, building its cache: {t['gradproj, first song']:.2f} s), both {t['both']:.2f} s; "
                  f"gradproj's cache {_f(me['cache_bytes'], '.2f', _GIB)} GiB."]
    songs = [(n, _result(doc, n)) for n in doc["steps"] if n.startswith("large_song_")]
    if any(r for _, r in songs):
        body = []
        for name, r in songs:
            if r is None:
                body.append([name, "failed", *[""] * 6])
                continue
            label = r["pins"] if isinstance(r["pins"], str) else ", ".join(f"{k}={v}" for k, v in r["pins"].items())
            label += f", chunk_batch {r['chunk_batch']}" if r["chunk_batch"] != 1 else ""
            body.append([label, f"{r['seconds_per_chunk']:.3f}",
                         f"{r['seconds_per_song']:.1f} ({r['chunks']} chunks, {r['song_seconds']:g} s)",
                         f"{r['averages_and_methods_seconds']:.1f}", f"{_f(r['peak_bytes'], '.2f', _GIB)} GiB",
                         f"{_f(r['peak_above_rest_bytes'], '.3g', _GIB)} GiB",
                         f"{_f(r['host_peak_above_rest_bytes'], '.3g', _GIB)} GiB", r["peak_source"]])
        lines += ["", *md_table(["run", "seconds per chunk", "seconds per song", "averages + methods", "peak memory",
                                 "above the model", "host RSS above rest", "measured by"], body, "lrrrrrrl")]
    return lines or ["(the large-model steps failed)"]


def _ranges(values: list[int]) -> str:
    """``[12, 13, 14, 42]`` as ``12-14, 42``."""
    runs: list[list[int]] = []
    for v in sorted(values):
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)


def _finetune(doc: dict[str, Any]) -> list[str]:
    runs = [(n, _result(doc, n)) for n in doc["steps"] if n.startswith("large_finetune_")]
    first = next((r for _, r in runs if r), None)
    if first is None:
        return ["(the fine-tuning steps failed)"]
    lines = [f"`lumina_audit.customization.tuning.finetune` (AdamW, its defaults) on random codes of one chunk "
             f"({first['frames']} frames): one warm-up step, then {first['steps'] - 1} timed. On paper: "
             f"`benchmarks/musicgen_large.py` (memory above the model at rest; seconds at {first['paper_assumes']}).",
             ""]
    body = []
    for name, r in runs:
        if r is None:
            body.append([name, "failed", *[""] * 9])
            continue
        label = "all" if r["parameters"] == "all" else "layers " + _ranges(r["parameters"]["layers"])
        fits = "yes" if r["fits"] else f"**no** ({r['error']})".replace("|", "/")
        losses = ", ".join(f"{v:.3f}" for v in r["losses"]) or "-"
        body.append([label, f"{r['trained_parameters']:,}", fits, f"{_f(r['peak_above_rest_bytes'], '.2f', _GIB)} GiB",
                     f"{_f(r['paper_above_rest_bytes'], '.2f', _GIB)} GiB", _f(r["measured_over_paper"], ".3f"),
                     f"{_f(r['seconds_per_step'], '.3f')} s", f"{r['paper_seconds_per_step']:.3f} s",
                     _f(r["achieved_tflops"], ".3g"), losses, r["peak_source"]])
    return lines + md_table(["parameters", "trained", "fits", "peak above rest", "on paper", "measured / paper",
                             "seconds per step", "on paper", "achieved TFLOPS", "losses", "measured by"], body,
                            "lrlrrrrrrll")


def markdown(doc: dict[str, Any]) -> str:
    """The human report."""
    env = _result(doc, "environment") or {}
    name = (env.get("gpu") or {}).get("name") or ("CPU, dry run" if doc["dry_run"] else "unknown device")
    failed = [n for n, r in doc["steps"].items() if not r["ok"]]
    sections: list[tuple[str, Callable[[dict[str, Any]], list[str]]]] = [
        ("Environment", _environment), ("Golden clips on the device", _golden),
        ("MusicGen-Large shape (random weights)", _large), ("Fine-tuning the MusicGen-Large shape", _finetune)]
    lines = [f"# GPU check: {name}", "", f"Started {doc['started_utc']}, {doc['seconds']:.0f} s"
             + (" (**dry run**: the steps on the CPU, tiny sizes)" if doc["dry_run"] else "") + ". "
             + ("All steps passed." if not failed else f"**Failed: {', '.join(failed)}.**"), ""]
    for title, render in sections:
        lines += [f"## {title}", "", *render(doc), ""]
    steps = [[step, _yes(r["ok"]), f"{r['seconds']:.1f}",
              (r.get("error") or "").replace("|", "/").replace("\n", " ")[:300]] for step, r in doc["steps"].items()]
    lines += ["## Steps", "", *md_table(["step", "ok", "seconds", "error"], steps, "llrl")]
    pytest = (doc["steps"].get("pytest_gpu") or {}).get("result") or {}
    lines += ["", f"`{pytest.get('command', 'pytest')}`: {pytest.get('summary', '-')}", ""]
    return "\n".join(lines)
