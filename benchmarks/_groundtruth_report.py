"""Markdown and JSON of part 1 (ground truth) of ``bench_groundtruth.py``."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from _groundtruth_codes import CODE_BASELINES as BASELINES
from _groundtruth_common import CHANNELS, METHOD_NAMES, md_table, num, pct

__all__ = ["common_header", "write_groundtruth"]

ANCHORS = ("For scale only (a different task and metric, not comparable number for number): dattri's MAESTRO "
           "music benchmark reports a linear datamodeling score of about 0.32 for TRAK and about 0.07 for plain "
           "gradient cosine on a small music transformer.")


def common_header(doc: dict[str, Any], title: str) -> list[str]:
    """Title, command line, date, run time, commit and versions."""
    git = doc["git"]
    commit = f"`{git['commit'][:12]}`" if git["commit"] else "unknown"
    versions = ", ".join(f"{k} {v}" for k, v in doc["versions"].items())
    return [f"# {title}", "",
            f"- Command: `{doc['command']}` (niceness {doc['niceness']}; re-executed under the numerical pins, "
            "1 thread)",
            f"- Date: {doc['date']}; run time {doc['run_seconds'] / 60:.1f} min on this project's 2-core machine "
            "(shared with other jobs, so times are indicative)",
            f"- Working tree: commit {commit} with {git['changed_files']} changed or new file(s); {versions}",
            *([f"- Installed with apt by this run: {', '.join(doc['apt_installed'])}"] if doc["apt_installed"] else []),
            ""]


def _rows(results: dict[str, Any], query: str) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    out = []
    for method in METHOD_NAMES:
        for ch in CHANNELS:
            r = results[f"{method} {ch}"]
            out.append((method, ch, r["queries"].get(query, {}), r["floor"]))
    for name, _what in BASELINES:
        r = results[name]
        out.append((name, "-", r["queries"].get(query, {}), r["floor"]))
    return out


def _model_section(m: dict[str, Any]) -> list[str]:
    lines = [f"## Checkpoint `{m['model']}` (LM width {m['width']}, {m['parameters']:,} parameters)", "",
             "SHA-256 (`" + m["digests_file"] + "`): "
             + ", ".join(f"{k} `{v}`" for k, v in sorted(m["digests"].items()))
             + f"; base LM tensors unchanged through the run (`{m['base_lm_sha256'][:16]}...`). Signatures of every "
             f"file: {m['seconds']['signatures'] / 60:.1f} min.", ""]
    if m["generations_reused"]:
        lines += [f"{m['generations_reused']} of {len(m['per_exemplar'])} exemplars' fine-tuning and sampling were "
                  "reused from an earlier run with identical inputs and settings (cached in the work folder).", ""]
    fe = m["per_exemplar"]
    dec, chk = m.get("decoded_pieces"), m.get("codes_path_check")
    if dec:
        lo, hi = num(dec["correlation_with_first_min"], 6), num(dec["correlation_with_first_max"], 6)
        lines += [f"Decoded pieces: {dec['pieces']} WAVs (kept in the work folder), RMS {num(dec['rms_min'], 4)} "
                  f"to {num(dec['rms_max'], 4)}, correlation of each with the first {lo} to {hi}: the decoder "
                  "ignores the codes, so attribution uses the codes.", ""]
    if chk:
        lines += [f"Codes path against the audio path on the first 10 s of {chk['song']}: "
                  + ", ".join(f"{k} {'bit for bit equal' if v else 'DIFFERENT'}"
                              for k, v in chk["bitwise_equal"].items())
                  + ".", ""]

    def stats(key: str) -> list[str]:
        v = [r[key] for r in fe]
        return [num(statistics.fmean(v)), num(min(v)), num(max(v))]

    lines += ["### Did the customization take? (training loss, nats per code; uniform guessing 7.625)", "",
              *md_table(["loss", "mean", "min", "max"], [
                  ["exemplar, base model", *stats("exemplar_loss_before")],
                  ["exemplar, after fine-tuning on it", *stats("exemplar_loss_after")],
                  ["held-out song, base model", *stats("heldout_loss_before")],
                  ["held-out song, after fine-tuning on the exemplar", *stats("heldout_loss_after")]]), ""]
    peaks = [r[k] for r in fe for k in ("peak", "peak_base") if k in r]
    if peaks:
        lines += [f"Peak |sample| of the decoded pieces: {num(min(peaks))} to {num(max(peaks))}; "
                  f"{sum(p > 1.0 for p in peaks)} of {len(peaks)} clipped to [-1, 1] when written as 16-bit WAV.", ""]
    has_base = any("base" in r["queries"] for r in m["results"].values())
    header = ["method", "channel", "recall@1", "recall@5", "median rank", "exemplar share (mean)",
              "exemplar above tau", "other songs above tau (mean)", "mu", "sigma", "tau"]
    if has_base:
        header += ["recall@1 / @5, base-model pieces (chance)"]
    body = []
    for (method, ch, q, fl), (_m2, _c2, qb, _f2) in zip(_rows(m["results"], "finetuned"),
                                                          _rows(m["results"], "base"), strict=True):
        row = [method, ch, pct(q.get("recall_at_1")), pct(q.get("recall_at_5")), num(q.get("median_rank"), 1),
               num(q.get("exemplar_mean_share")), pct(q.get("exemplar_above_tau")),
               num(q.get("others_above_tau_mean"), 2), num(fl["mu"], 4), f"{fl['sigma']:.3g}", num(fl["tau"], 4)]
        if has_base:
            row.append(f"{pct(qb.get('recall_at_1'))} / {pct(qb.get('recall_at_5'))}")
        body.append(row)
    n = len(m["catalog_ids"])
    lines += [f"### Attribution of the {len(fe)} generated pieces against the {n} catalog songs (base model)", "",
              f"Chance: recall@1 {pct(1 / n)}, recall@5 {pct(min(1.0, 5 / n))}, median rank {(n + 1) / 2:.1f}.", "",
              *md_table(header, body), ""]
    labels = [f"{meth.removeprefix('lumina-').removesuffix('-v1')} {ch}" for meth in METHOD_NAMES for ch in CHANNELS]
    keys = [f"{meth} {ch}" for meth in METHOD_NAMES for ch in CHANNELS] + [b for b, _ in BASELINES]
    per = m["per_song"]
    song_rows = [[song, *(str(per[song]["finetuned"][k]["rank"]) for k in keys)] for song in m["catalog_ids"]]
    lines += ["### Rank of the exemplar among the catalog songs, per generated piece (1 = most similar)", "",
              *md_table(["exemplar", *labels, *(b for b, _ in BASELINES)], song_rows), ""]
    return lines


def _findings(doc: dict[str, Any]) -> list[str]:
    lines = ["## What the figures show, and what they do not", ""]
    for m in doc["models"]:
        res = m["results"]
        grad = {k: res[k]["queries"]["finetuned"] for k in (f"{a} {c}" for a in METHOD_NAMES for c in CHANNELS)}
        base = {b: res[b]["queries"]["finetuned"] for b, _ in BASELINES}
        best_g = max(grad, key=lambda k: (grad[k]["recall_at_1"], grad[k]["recall_at_5"]))
        best_b = max(base, key=lambda k: (base[k]["recall_at_1"], base[k]["recall_at_5"]))
        n = len(m["catalog_ids"])
        g, b = grad[best_g], base[best_b]
        verdict = ("beats" if (g["recall_at_1"], g["recall_at_5"]) > (b["recall_at_1"], b["recall_at_5"])
                   else "does not beat" if (g["recall_at_1"], g["recall_at_5"]) < (b["recall_at_1"], b["recall_at_5"])
                   else "ties")
        lines.append(f"- `{m['model']}`: the best gradient row ({best_g}: recall@1 {pct(g['recall_at_1'])}, "
                     f"recall@5 {pct(g['recall_at_5'])}) {verdict} the best gradient-free baseline ({best_b}: "
                     f"{pct(b['recall_at_1'])}, {pct(b['recall_at_5'])}); chance is {pct(1 / n)} and "
                     f"{pct(min(1.0, 5 / n))}. The exemplar was above tau (attributed) in "
                     + ", ".join(f"{k} {pct(v['exemplar_above_tau'])}" for k, v in grad.items()) + ".")
    n_songs = len(doc["models"][0]["catalog_ids"]) if doc["models"] else 0
    lines += [
        f"- Sample size: {n_songs} exemplars, one generated piece each; one exemplar moves recall by "
        f"{pct(1 / max(n_songs, 1))}. Differences of one or two pieces are noise.",
        "- The ground truth is by construction: the fine-tuned copy saw the exemplar and the base model never did, "
        "so the exemplar is the one catalog song known to have shaped the piece. It does not say how much of the "
        "piece comes from the exemplar, nor whether the base model's own training songs (not in this catalog) "
        "shaped it more.",
        "- The models are tiny (48 layers of width " + " and ".join(sorted({str(m["width"]) for m in doc["models"]}))
        + "): `tiny-musicgen-trained` learnt from 4 hours of synthetic General MIDI renders (240 songs), "
        "`tiny-musicgen` is random; both share a tiny EnCodec made from the project's synthetic music. Catalog, "
        "controls and training songs come from one generator. None of these figures says how MusicGen-Large "
        "attributes real music.",
        "- The gradient methods score the generated piece (its codes) with the base model only; the fine-tuned "
        "copies are never used for attribution, as in a real audit where only the deployed model exists.",
        "- Nothing was tuned on these figures: catalog, controls, fine-tuning and sampling settings are fixed "
        "options, chosen before the first attribution figure and recorded in the JSON.",
        f"- {ANCHORS}", ""]
    return lines


def write_groundtruth(doc: dict[str, Any], out: Path) -> str:
    """Write ``groundtruth.md`` and ``groundtruth.json`` into ``out``; return the Markdown."""
    d = doc["data"]
    lines = common_header(doc, "Ground truth: attribution by customization")
    m0 = doc["models"][0] if doc["models"] else None
    lines += ["## Set-up", "",
              f"- Catalog: {len(d['catalog_seeds'])} songs of {d['song_seconds']:.0f} s, seeds "
              f"{d['catalog_seeds'][0]}..{d['catalog_seeds'][-1]} of `scores.BENCHMARK_SEEDS`; controls: "
              f"{len(d['control_seeds'])} songs, seeds {d['control_seeds'][0]}..{d['control_seeds'][-1]}; "
              f"{d['source']}.",
              "- Why the benchmark range: those seeds were never trained on, so the fine-tuning is the only time any "
              "model saw the exemplar, and no other catalog song is also a right answer. Songs of `TRAIN_SEEDS` are "
              "all in the base model's training set: each would be \"in\" the model before any customization.",
              f"- Held-out song for the forgetting check: `scores.VALIDATION_SEEDS` seed {d['heldout_seed']} "
              "(validation losses only).",
              ]
    if m0:
        f, s = m0["finetune"], m0["sampling"]
        lines += [f"- Fine-tuning (per exemplar, on a deep copy of the base LM): {f['steps']} full-batch steps of "
                  f"{f['optimizer']}, lr {f['lr']:g} constant, betas {tuple(f['betas'])}, weight decay "
                  f"{f['weight_decay']:g}, grad-norm clip {f['grad_clip']:g}, `torch.manual_seed({f['seed']})`; "
                  f"every LM parameter, EnCodec frozen; loss: {f['loss']}; on every whole 10 s chunk of the exemplar.",
                  f"- Sampling: {s['seconds']:g} s, `{s['call']}`, temp {s['temp']:g}, top_k {s['top_k']}, "
                  f"cfg_coef {s['cfg_coef']:g}; seed of exemplar i: GEN_SEED + i (see the JSON).",
                  f"- Attribution: base model, both methods, channels P and M, exact float64 similarities of the "
                  f"float32 signatures; noise floor tau = mu + {doc['k']:g} sigma over the C x N control similarities "
                  "(`attribution.method.calibrate`), shares by `attribute`, ranks by `detection.detect` (similarity "
                  "descending, ties by song id).",
                  "- Baselines (no gradients; the same calibration and scoring), on codes: "
                  + "; ".join(f"`{b}`: {w}" for b, w in BASELINES) + ". A catalog or control song's codes are "
                  "those of its whole 10 s chunks.",
                  "- **The generated pieces are attributed from their codes, not from decoded audio.** The "
                  "embedded EnCodec's decoder was never trained: it decodes any codes to nearly the same "
                  "waveform (see each checkpoint's `Decoded pieces` line), so decoding a piece and encoding it "
                  "again would lose everything the LM generated. Each piece's signature is computed from its "
                  "codes by the steps of `signatures_of_audio` for one chunk (`benchmarks/_groundtruth_codes.py`"
                  "), as if a perfect decoder and encoder had passed them through; checked bit for bit against "
                  "the library's audio path on a catalog song's first chunk at every run. Log-mel baselines "
                  "need audio and are left out here (the battery has them). With MusicGen-Large's trained "
                  "EnCodec the piece would be attributed from its decoded audio, as the issue asks; that "
                  "round trip is not measured here.", ""]
    for m in doc["models"]:
        lines += _model_section(m)
    lines += _findings(doc)
    text = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "groundtruth.md").write_text(text, encoding="utf-8")
    (out / "groundtruth.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return text
