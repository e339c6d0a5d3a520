"""Markdown and JSON of part 1 (ground truth) of ``bench_groundtruth``; the header every part shares."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from benchmarks._groundtruth_codes import CODE_BASELINES as BASELINES
from benchmarks._groundtruth_common import CHANNELS, METHOD_NAMES
from lumina_tools.markdown import md_table, num, pct, run_header

__all__ = ["V2_HEADER", "common_header", "label", "refusal", "v2_cells", "write_groundtruth"]

ANCHORS = ("For scale only (a different task and metric, not comparable number for number): dattri's MAESTRO "
           "music benchmark reports a linear datamodeling score of about 0.32 for TRAK and about 0.07 for plain "
           "gradient cosine on a small music transformer.")
#: Columns of the v2 table (after the score's name).
V2_HEADER = ["Cllr", "Cllr_min", "EER", "misleading H1 (95 % CI)", "misleading H2 (95 % CI)", "H1 trials (units)",
             "H2 trials (units)", "ELUB log10 bounds", "recall@1 (v1)"]


def common_header(doc: dict[str, Any], title: str) -> list[str]:
    """Title, command line, date, run time, commit and versions (:func:`lumina_tools.markdown.run_header`)."""
    return [f"# {title}", "", *run_header(doc),
            *([f"- Installed with apt by this run: {', '.join(doc['apt_installed'])}"] if doc["apt_installed"] else []),
            ""]


def label(key: str) -> str:
    """``lumina-gradproj-v1 P`` -> ``gradproj P``; a baseline keeps its name."""
    return key.removeprefix("lumina-").replace("-v1 ", " ")


def _rate(r: dict[str, Any]) -> str:
    lo, hi = r["interval"]
    return f"{100 * r['rate']:.1f} % ({100 * lo:.1f}-{100 * hi:.1f})"


def refusal(reason: str) -> str:
    """A calibration's refusal in a few words (the JSON and the note under the table hold the library's reason)."""
    if "slope" in reason:
        return "refused: slope not above 0"
    if "standard deviation" in reason:
        return "refused: degenerate cohort"
    if "fold" in reason:
        return "refused: a fold cannot be fitted"
    return "refused"


def v2_cells(r: dict[str, Any]) -> list[str]:
    """The v2 columns (:data:`V2_HEADER`) of one scored row of ``results``."""
    v2 = r["v2"]
    recall = pct(r["v1"].get("recall_at_1"))
    if v2["status"] != "ok":
        return [refusal(v2["reason"]), *["-"] * (len(V2_HEADER) - 2), recall]
    f = v2["figures"]
    return [num(f["cllr"]), num(f["cllr_min"]), pct(f["eer"]), _rate(f["misleading"]["h1"]),
            _rate(f["misleading"]["h2"]), f"{f['h1_trials']} ({f['h1_units']})",
            f"{f['h2_trials']} ({f['h2_units']})",
            f"[{num(v2['bounds']['lower'], 2)}, {num(v2['bounds']['upper'], 2)}]", recall]


def _minutes(events: list[dict[str, Any]], finetuning: bool) -> str:
    """Minutes ``customize`` spent fine-tuning (or sampling), from its timed progress events."""
    return f"{sum(e['seconds'] for e in events if ('fine-tuning' in e['event']) == finetuning) / 60:.1f}"


def _keys() -> tuple[list[str], list[str]]:
    return [f"{m} {c}" for m in METHOD_NAMES for c in CHANNELS], [b for b, _ in BASELINES]


def _model_section(m: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    cu = m["customization"]
    grad, base = _keys()
    res = m["results"]
    n = len(m["catalog_ids"])
    pos, neg = m["pieces"]["positives"], m["pieces"]["negatives"]
    dec = cu.get("decoder") or {}
    lines = [f"## Checkpoint `{m['model']}` (LM width {m['width']}, {m['parameters']:,} parameters)", "",
             "SHA-256 (`" + m["digests_file"] + "`): "
             + ", ".join(f"{k} `{v}`" for k, v in sorted(m["digests"].items()))
             + (f"; base LM weights `{cu['base_lm_sha256'][:16]}...` (the negatives' records)."
                if cu.get("base_lm_sha256") else "."), "",
             f"`customize` wrote {len(pos)} positive and {len(neg)} negative piece(s), carried as "
             f"{' and '.join(cu['carried_as'])}"
             + (f" (the checkpoint's decoder round trip correlates at {num(dec.get('round_trip_correlation'), 3)}, "
                f"below {dec.get('decodes_at')}: it cannot carry a piece as audio)"
                if dec.get("round_trip_correlation") is not None and "codes" in cu["carried_as"] else "")
             + (f"; reused from `{cu['folder']}`, written earlier with the same model, songs and settings."
                if cu["reused"] else f", in {cu['seconds'] / 60:.1f} min (into `{cu['folder']}`: "
                f"{_minutes(cu['events'], True)} min fine-tuning, {_minutes(cu['events'], False)} min sampling).")
             + f" Signatures of every song and piece: {m['seconds']['signatures'] / 60:.1f} min.", ""]
    per = m["per_song"]

    def stats(key: str) -> list[str]:
        v = [r[key] for r in per if r[key] is not None]
        return [num(statistics.fmean(v)), num(min(v)), num(max(v))] if v else ["-"] * 3

    steps = settings["finetune"]["steps"]
    lines += ["### Did the customization take? (training loss of the song, nats per code; uniform guessing 7.625)", "",
              f"From the `lumina-customization` records: the loss of each of the {steps} steps, on the song "
              "fine-tuned on. The first is the base model's; the last is before the last update.", "",
              *md_table(["loss", "mean", "min", "max"], [
                  ["step 1 (the base model)", *stats("loss_first_step")],
                  [f"step {steps}", *stats("loss_last_step")]]), ""]
    cal = settings["calibration"]
    mins = m["minimums"]
    short = [f"{k.replace('_', ' ')} {v['have']} < {v['need']}" for k, v in mins.items() if not v["met"]]
    first_ok = next((res[k]["v2"] for k in grad if res[k]["v2"]["status"] == "ok"), None)
    t = first_ok["trials"] if first_ok else None
    lines += [f"### attribution-v2, proposition `influence`: cross-validated ({cal['folds']} folds, unit mod "
              f"{cal['folds']})", "",
              "H1: each positive piece against the song its copy was fine-tuned on. H2: each positive against every "
              "other catalog song, each control against every catalog song (left out of its own cohort), each "
              "negative (the unmodified model's pieces) against every catalog song. Scores: S-norm of the "
              "similarity with the controls as cohort; LLRs: the logistic calibration of each fold fitted on the "
              "other folds. Misleading H1: H1 trials with LR < 1; misleading H2: H2 trials with LR > 1; intervals "
              "Clopper-Pearson counted in units (a source song, a control, a negative piece). Bounds: ELUB of the "
              "cross-validated LLRs. recall@1 is attribution-v1's (the table below), on the same pieces.", ""]
    if t:
        lines += [f"Trials per score: {t['h1']} H1 ({t['source_units']} source songs); H2 {t['h2']} = "
                  f"{t['h2_positives']} positive x other song + {t['h2_controls']} control x song + "
                  f"{t['h2_negatives']} negative x song; {t['units']} units ({t['source_units']} songs, "
                  f"{t['controls']} controls, {t['negatives']} negatives).", ""]
    lines += [("The spec's minimums (`LRCalibrationSettings` defaults: " + ", ".join(
        f"{k.replace('_', ' ')} {v['need']}" for k, v in mins.items()) + ") are "
        + ("met." if not short else f"NOT met ({', '.join(short)}): a Calibrate would refuse these trials; the "
           "figures are shown for the benchmark only.")), ""]
    body = [[label(k), *v2_cells(res[k])] for k in grad]
    body += [[f"{k} (no gradients)", *v2_cells(res[k])] for k in base]
    lines += md_table(["score", *V2_HEADER], body) + [""]
    refused = [f"{label(k)}: {res[k]['v2']['reason']}" for k in [*grad, *base] if res[k]["v2"]["status"] != "ok"]
    if refused:
        lines += ["Refused by `calibrate_channel` (the result, not an error of the benchmark): "
                  + "; ".join(refused), ""]
    header = ["score", "recall@1", "recall@5", "median rank", "exemplar share (mean)", "exemplar above tau",
              "other songs above tau (mean)", "negatives: songs above tau (mean)", "mu", "sigma", "tau"]
    body = []
    for k in [*grad, *base]:
        q, fl = res[k]["v1"], res[k]["floor"]
        body.append([label(k), pct(q.get("recall_at_1")), pct(q.get("recall_at_5")), num(q.get("median_rank"), 1),
                     num(q.get("exemplar_mean_share")), pct(q.get("exemplar_above_tau")),
                     num(q.get("others_above_tau_mean"), 2), num(res[k]["negatives_songs_above_tau_mean"], 2),
                     num(fl["mu"], 4), f"{fl['sigma']:.3g}", num(fl["tau"], 4)])
    lines += [f"### attribution-v1: the {len(pos)} positive pieces against the {n} catalog songs (base model)", "",
              f"The exemplar is the song the piece's copy was fine-tuned on. Chance: recall@1 {pct(1 / n)}, recall@5 "
              f"{pct(min(1.0, 5 / n))}, median rank {(n + 1) / 2:.1f}. Noise floor tau = mu + {settings['k']:g} sigma "
              "of the control x catalog similarities.", "", *md_table(header, body), ""]
    ranks: dict[str, dict[str, list[str]]] = {}
    for i, p in enumerate(pos):
        for k in [*grad, *base]:
            ranks.setdefault(p["song"], {}).setdefault(k, []).append(str(res[k]["ranks"][i]))
    seeds = sorted({p["seed"] for p in pos})
    lines += [f"### Rank of the exemplar among the catalog songs, per piece (seeds {', '.join(map(str, seeds))}; "
              "1 = most similar)", "",
              *md_table(["exemplar", *(label(k) for k in [*grad, *base])],
                        [[song, *("/".join(r[k]) for k in [*grad, *base])] for song, r in ranks.items()]), ""]
    return lines


def _findings(doc: dict[str, Any]) -> list[str]:
    lines = ["## What the figures show, and what they do not", ""]
    grad, base = _keys()
    for m in doc["models"]:
        res = m["results"]
        n = len(m["catalog_ids"])

        def r1(k: str, res: dict[str, Any] = res) -> tuple[float, float]:
            q = res[k]["v1"]
            return q["recall_at_1"], q["recall_at_5"]

        best_g, best_b = max(grad, key=r1), max(base, key=r1)
        g, b = r1(best_g), r1(best_b)
        verdict = "beats" if g > b else "does not beat" if g < b else "ties"
        lines.append(f"- `{m['model']}`, attribution-v1: the best gradient row ({label(best_g)}: recall@1 "
                     f"{pct(g[0])}, recall@5 {pct(g[1])}) {verdict} the best gradient-free baseline ({best_b}: "
                     f"{pct(b[0])}, {pct(b[1])}); chance is {pct(1 / n)} and {pct(min(1.0, 5 / n))}. The exemplar "
                     "was above tau in " + ", ".join(f"{label(k)} {pct(res[k]['v1']['exemplar_above_tau'])}"
                                                     for k in grad) + ".")
        songs = m["catalog_ids"]
        of = [p["song"] for p in m["pieces"]["positives"]]
        if len(of) > len(songs):
            hits = [sum(1 for i, s in enumerate(of) if s == song and res[best_g]["ranks"][i] == 1) for song in songs]
            per = len(of) // len(songs)
            lines.append(f"- Per song, {label(best_g)} ranks the exemplar first for all {per} pieces in "
                         f"{sum(h == per for h in hits)} of {len(songs)} songs and for none in "
                         f"{sum(h == 0 for h in hits)}: whether the exemplar is found is largely a property of the "
                         "song (its fine-tuned copy) rather than of the sampling seed, so the pieces of one song "
                         "are not independent trials.")
        ok = {k: res[k]["v2"] for k in [*grad, *base] if res[k]["v2"]["status"] == "ok"}
        refused = [k for k in [*grad, *base] if k not in ok]
        if ok:
            best = min(ok, key=lambda k: ok[k]["figures"]["cllr"])
            f = ok[best]["figures"]
            informative = [label(k) for k in grad if k in ok and ok[k]["figures"]["cllr"] < 1.0]
            lines.append(
                f"- `{m['model']}`, attribution-v2 (influence): the lowest Cllr is {label(best)}'s, {num(f['cllr'])} "
                f"(Cllr_min {num(f['cllr_min'])}, EER {pct(f['eer'])}). A Cllr of 1 is what an LR of 1 for every "
                "trial scores (no information); below 1 the calibrated LRs are informative on these trials; Cllr - "
                "Cllr_min is what the calibration loses against the best monotone one. Gradient scores with Cllr "
                "below 1: " + (", ".join(informative) if informative else "none") + "."
                + (f" Refused: {', '.join(label(k) for k in refused)}." if refused else ""))
            g_ok, b_ok = [k for k in grad if k in ok], [k for k in base if k in ok]
            if g_ok:
                bg = min(g_ok, key=lambda k: ok[k]["figures"]["cllr"])
                fg, bd = ok[bg]["figures"], ok[bg]["bounds"]
                h1, h2 = fg["misleading"]["h1"], fg["misleading"]["h2"]
                text = (f"- The best gradient score on v2, {label(bg)} (Cllr {num(fg['cllr'])}), "
                        f"may report at most LR {10 ** bd['upper']:.3g} for and {10 ** -bd['lower']:.3g} against "
                        f"(ELUB bounds, log10 [{num(bd['lower'], 2)}, {num(bd['upper'], 2)}]); its misleading "
                        f"evidence: {_rate(h1)} of same-source trials point to H2, {_rate(h2)} of different-source "
                        "trials to H1 (intervals counted in units).")
                if b_ok:
                    bb = min(b_ok, key=lambda k: ok[k]["figures"]["cllr"])
                    cg, cb = fg["cllr"], ok[bb]["figures"]["cllr"]
                    text += (f" It {'beats' if cg < cb else 'does not beat' if cg > cb else 'ties'} the best "
                             f"gradient-free score on the same trials, {bb} (Cllr {num(cb)}, EER "
                             f"{pct(ok[bb]['figures']['eer'])}).")
                lines.append(text)
        elif refused:
            lines.append(f"- `{m['model']}`, attribution-v2: every calibration was refused (see the table).")
        short = [k for k, v in m["minimums"].items() if not v["met"]]
        if short:
            lines.append(f"- The spec's minimums are not met ({', '.join(short)}): these figures would not make a "
                         "calibration file.")
    n_songs = len(doc["models"][0]["catalog_ids"]) if doc["models"] else 0
    n_pieces = len(doc["models"][0]["pieces"]["positives"]) if doc["models"] else 0
    n_neg = len(doc["models"][0]["pieces"]["negatives"]) if doc["models"] else 0
    lines += [
        f"- Sample size: {n_songs} exemplars, {n_pieces} positive pieces (the pieces of one song share its "
        f"fine-tuned copy, so they are not independent: the intervals count units, not trials), {n_neg} negative "
        f"pieces. One exemplar moves recall by about {pct(1 / max(n_songs, 1))}.",
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
        "- Nothing was tuned on these figures: every setting was fixed and printed before the first piece was "
        "scored, and is recorded in the JSON.",
        f"- {ANCHORS}", ""]
    return lines


def write_groundtruth(doc: dict[str, Any], out: Path) -> str:
    """Write ``groundtruth.md`` and ``groundtruth.json`` into ``out``; return the Markdown."""
    d, s = doc["data"], doc["settings"]
    f, sa, cal = s["finetune"], s["sampling"], s["calibration"]
    lines = common_header(doc, "Ground truth: attribution by customization")
    lines += ["## Set-up (fixed before anything was measured)", "",
              f"- Catalog: {len(d['catalog_ids'])} songs of {d['song_seconds']:g} s ({d['catalog']}); controls: "
              f"{len(d['control_ids'])} songs ({d['controls']}); {d['source']}.",
              f"- Why these songs: {d['why']}",
              f"- Customization (`lumina_audit.customization.customize`, one call for every catalog song): per song, "
              f"a copy of the base LM fine-tuned with {f['optimizer']} for {f['steps']} full-batch steps (every whole "
              f"10 s chunk of the song each step), lr {f['lr']:g} {f['schedule']}, betas {tuple(f['betas'])}, eps "
              f"{f['eps']:g}, weight decay {f['weight_decay']:g}, grad-norm clip {f['grad_clip']:g}, parameters: "
              f"{f['parameters']}, `torch.manual_seed({f['seed']})`; loss: {f['loss']}. Each copy samples "
              f"{sa['count']} piece(s) of {sa['seconds']:g} s (audiocraft `lm.generate`, {sa['condition']}, no "
              f"prompt, top-k {sa['top_k']}, temperature {sa['temperature']:g}, cfg_coef {sa['cfg_coef']:g}); piece "
              f"i under seed {sa['seeds'][0]} + i, the same for every song. The unmodified LM samples "
              f"{sa['count']} negative piece(s) with the same settings and seeds. Carry: `{s['carry']}`.",
              "- Signatures of songs and pieces: `runner.base.load_input` and `runner.base.signatures` (a piece "
              "carried as codes through `signature.extract.signatures_of_codes`, cut into chunks as audio would be), "
              "on the base model, both methods in one pass; float64 similarities of the float32 signatures "
              "(`attribution.search.exact_similarities`).",
              f"- attribution-v1: noise floor tau = mu + {s['k']:g} sigma of the control x catalog similarities "
              "(`attribution.method.calibrate`), shares by `attribute`, ranks by `detection.detect` (similarity "
              "descending, ties by song id).",
              f"- attribution-v2, proposition `influence` (`LRCalibrationSettings`: folds {cal['folds']}, minimums "
              f"{cal['min_controls']} controls, {cal['min_sources']} source songs, {cal['min_trials']} H1 trials): "
              "`cohort.cohort_stats`, `trials.build_trials` (positives, controls, negatives) and "
              "`likelihood_ratio.calibrate_channel`, composed as `runner.calibrate._plan_lr` composes them, once "
              "per signature method and channel, and once per baseline on the same trials.",
              "- Gradient-free baselines, on codes (a piece carried as codes has no usable audio): "
              + "; ".join(f"`{b}`: {w}" for b, w in BASELINES) + ". A song's codes are those of its whole 10 s "
              "chunks.", ""]
    for m in doc["models"]:
        lines += _model_section(m, s)
    lines += _findings(doc)
    text = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "groundtruth.md").write_text(text, encoding="utf-8")
    (out / "groundtruth.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return text
