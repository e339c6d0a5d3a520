"""Part 1 of ``bench_groundtruth``: customize, then attribute the pieces with the base model (v1 and v2).

A thin client of the library, step by step:

1. ``lumina_audit.customization.customize``, one call for every catalog song: a copy of the LM
   fine-tuned on each song samples ``Sampling.count`` pieces, the unmodified LM as many
   (the negatives), each piece with its ``lumina-customization`` record. The output folder is
   named by a digest of everything that decides its bits, and reused when it exists (``--fresh``
   removes it first).
2. Every piece is read back as the runner reads it (``runner.base.load_input``, then
   ``customization.read_record`` against the file's SHA-256), and checked as
   ``runner.calibrate._pieces`` checks a Calibrate's pieces: kind, base model, one sampling for
   all, a positive fine-tuned on the very PCM of its catalog song.
3. Signatures of songs and pieces: ``runner.base.signatures`` (audio through
   ``signatures_of_audio``, a piece carried as codes through ``signatures_of_codes``, cut into
   chunks as audio would be), both methods in one pass.
4. Per signature method and channel, and per gradient-free baseline:
   attribution-v1 (``attribution.method.calibrate``'s floor, ``attribute``, ``detection.detect``:
   recall@1/@5 and ranks of each positive's song) and attribution-v2 with proposition
   ``influence``, composed as ``runner.calibrate._plan_lr`` composes it: ``cohort.cohort_stats`` of
   the control similarities, ``trials.build_trials`` with the controls, the positives (H1 against
   their song) and the negatives (H2 against every song), then ``likelihood_ratio.calibrate_channel``
   with the folds of ``LRCalibrationSettings``. A refusal (a degenerate cohort, a fold that cannot be
   fitted, a slope not above 0) is the result and is reported as such.

The only computation of the benchmark's own is the gradient-free baselines (``_groundtruth_codes``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from benchmarks._groundtruth_codes import CODE_BASELINES, code_features, codes_of
from benchmarks._groundtruth_common import (
    CHANNELS,
    F32,
    F64,
    METHOD_NAMES,
    baseline_similarities,
    floor,
    score_queries,
)
from lumina_audit.customization.settings import FineTune, Sampling
from lumina_audit.evidence.manifest.models import LRCalibrationSettings
from lumina_tools import ToolError
from lumina_tools.files import read_digests, remove_inside, shown

__all__ = [
    "ORIGIN",
    "Settings",
    "influence_calibration",
    "measure",
    "read_pieces",
    "score_keys",
]

#: Where the fine-tuning songs come from (``LRCalibrationSettings.validation_songs``).
ORIGIN = ("rendered scores of lumina_audit._internal.scores BENCHMARK_SEEDS (fluidsynth + FluidR3_GM); the base "
          "model trained only on TRAIN_SEEDS songs, so the fine-tuning is the only time a model saw them")

Sim = Callable[[str, str], F64]
#: ``customize``'s ``carry`` (``lumina_audit.customization.pipeline.Carry``, which imports torch).
CarryName = Literal["auto", "codes", "audio"]


def _v2_settings() -> LRCalibrationSettings:
    return LRCalibrationSettings(method="lumina-attribution-v2", proposition="influence", validation_songs=ORIGIN)


@dataclass(frozen=True)
class Settings:
    """Every setting of part 1 but the songs: fine-tuning, sampling, the v1 floor's k, the v2 calibration."""

    tuning: FineTune = field(default_factory=FineTune)
    sampling: Sampling = field(default_factory=lambda: Sampling(count=3))
    k: float = 3.0
    carry: CarryName = "auto"
    calibration: LRCalibrationSettings = field(default_factory=_v2_settings)

    def as_dict(self) -> dict[str, Any]:
        return {"finetune": self.tuning.as_dict(), "sampling": self.sampling.as_dict(), "k": self.k,
                "carry": self.carry, "calibration": self.calibration.model_dump(mode="json")}


def score_keys() -> list[str]:
    """Every scored row, in table order: method and channel, then the baselines."""
    return [f"{m} {c}" for m in METHOD_NAMES for c in CHANNELS] + [b for b, _ in CODE_BASELINES]


def _say(text: str) -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- customization


def _customized(model_dir: Path, digests: dict[str, str], catalog: Sequence[Path], items: Sequence[Any],
                settings: Settings, pins: Any, config: Any, work: Path, fresh: bool,
                say: Callable[[str], None]) -> tuple[Path, list[dict[str, Any]], bool]:
    """The folder ``customize`` wrote for these songs and settings (made now, or reused); its timed events."""
    from lumina_audit.customization import customize

    key_doc = {"model": dict(sorted(digests.items())),
               "songs": [[p.stem, a.file_sha256, a.pcm_sha256] for p, a in zip(catalog, items, strict=True)],
               "finetune": settings.tuning.as_dict(), "sampling": settings.sampling.as_dict(),
               "carry": settings.carry, "pins": pins.as_json(), "config": config.as_json()}
    key = hashlib.sha256(json.dumps(key_doc, sort_keys=True).encode()).hexdigest()
    folder = work / f"customized-{key[:16]}"
    if fresh:
        remove_inside(folder, work)
    if folder.is_dir():
        say(f"  customize: reusing {folder} (same model, songs and settings)")
        return folder, [], True
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    marks: list[tuple[float, str]] = []

    def progress(text: str) -> None:
        marks.append((time.monotonic(), text))
        say(f"  customize [{time.monotonic() - t0:6.0f} s]: {text}")

    customize(model_dir, digests, [(p, p.stem, a.file_sha256) for p, a in zip(catalog, items, strict=True)], folder,
              tuning=settings.tuning, sampling=settings.sampling, pins=pins, config=config,
              carry=settings.carry, on_progress=progress)
    end = time.monotonic()
    events = [{"event": text, "seconds": round((marks[i + 1][0] if i + 1 < len(marks) else end) - t, 1)}
              for i, (t, text) in enumerate(marks)]
    return folder, events, False


def read_pieces(folder: Path, song_ids: Sequence[str], song_pcm: Sequence[str], digests: dict[str, str],
                count: int, config: Any) -> dict[str, list[tuple[Any, Any, dict[str, Any]]]]:
    """The pieces ``customize`` wrote: ``positives`` (catalog order, then piece order) and ``negatives``.

    Each as (``ResolvedInput``, loaded item, record), read and checked as a Calibrate of the
    ``influence`` proposition reads and checks them.
    """
    from lumina_audit.customization import RECORD_SUFFIX, read_record
    from lumina_audit.evidence.manifest.loading import ResolvedInput
    from lumina_audit.runner.base import load_input

    def files(sub: Path) -> list[Path]:
        found = sorted(f for f in sub.iterdir() if f.is_file() and not f.name.endswith(RECORD_SUFFIX)) \
            if sub.is_dir() else []
        if len(found) != count:
            raise ToolError(f"{sub}: {len(found)} piece(s), expected {count}")
        return found

    want_model = dict(sorted(digests.items()))
    out: dict[str, list[tuple[Any, Any, dict[str, Any]]]] = {"positives": [], "negatives": []}
    sampling: Any = None
    groups: list[tuple[str, str, str | None, str | None, Path]] = [
        ("positives", "fine-tuned", sid, pcm, folder / "positives" / sid) for sid, pcm in zip(song_ids, song_pcm,
                                                                                            strict=True)]
    groups.append(("negatives", "base", None, None, folder / "negatives"))
    for name, kind, sid, pcm, sub in groups:
        for path in files(sub):
            item = load_input(path, config, None)
            record = read_record(path, item.file_sha256)
            problems = []
            if record["kind"] != kind:
                problems.append(f"sampled by the {record['kind']} model, not the {kind} one")
            if record.get("base_model") != want_model:
                problems.append(f"base model {record.get('base_model')}, not {want_model}")
            if sampling is None:
                sampling = record.get("sampling")
            elif record.get("sampling") != sampling:
                problems.append("sampled with other settings than the first piece")
            if sid is not None and (record["song"].get("song_id") != sid or record["song"].get("pcm_sha256") != pcm):
                problems.append(f"fine-tuned on {record['song'].get('song_id')} PCM {record['song'].get('pcm_sha256')}"
                                f", not {sid} PCM {pcm}")
            if problems:
                raise ToolError(f"{path}: " + "; ".join(problems))
            inp = ResolvedInput(path, path.name.removesuffix(path.suffix), item.file_sha256,
                                sources=(sid,) if sid is not None else ())
            out[name].append((inp, item, record))
    return out


# --------------------------------------------------------------------------- attribution-v2


def influence_calibration(sim: Sim, song_ids: Sequence[str], control_ids: Sequence[str], positives: Sequence[Any],
                          negative_ids: Sequence[str], folds: int, channel: str) -> dict[str, Any]:
    """``lumina-attribution-v2``, proposition ``influence``, of one score: the composition of ``_plan_lr``.

    ``sim(a, b)`` gives the float64 similarities of row set ``a`` (``controls``, ``positives``,
    ``negatives``) with row set ``b`` (``catalog``, ``controls``); ``positives`` are
    ``trials.Labelled``. Returns ``status`` ``ok`` with the casework model, bounds, trial counts and
    the cross-validated figures (no plot data), or ``refused`` with the library's reason.
    """
    from lumina_audit.attribution.cohort import CohortError, cohort_stats
    from lumina_audit.attribution.likelihood_ratio import LRError, calibrate_channel
    from lumina_audit.attribution.trials import build_trials

    control_sims = sim("controls", "catalog")
    negatives = bool(negative_ids)
    try:
        cohort = cohort_stats(control_sims, song_ids, channel=channel)
        trials = build_trials(
            cohort=cohort, control_sims=control_sims, control_control=sim("controls", "controls"),
            positive_sims=sim("positives", "catalog"), positive_controls=sim("positives", "controls"),
            positives=positives, song_ids=song_ids, control_ids=control_ids, channel=channel,
            negative_sims=sim("negatives", "catalog") if negatives else None,
            negative_controls=sim("negatives", "controls") if negatives else None,
            negative_ids=negative_ids)
        cal = calibrate_channel(trials, folds, channel)
    except (CohortError, LRError) as exc:
        return {"status": "refused", "reason": exc.message}
    return {"status": "ok", "model": cal.model.as_dict(), "bounds": {"lower": cal.lower, "upper": cal.upper},
            "trials": cal.counts, "folds": cal.validation.folds, "figures": cal.validation.overall.as_dict()}


# --------------------------------------------------------------------------- the measurement


def measure(model_dir: Path, digests_file: Path | None, catalog: Sequence[Path], controls: Sequence[Path],
            settings: Settings, work: Path, *, fresh: bool = False,
            say: Callable[[str], None] = _say) -> dict[str, Any]:
    """Customize on every catalog song, then score every piece on ``model_dir``; the checkpoint's section."""
    from lumina_audit.attribution.search import exact_similarities
    from lumina_audit.attribution.trials import Labelled
    from lumina_audit.evidence.manifest.loading import ResolvedInput
    from lumina_audit.runner.base import Progress, content_sha256, load_input, signatures
    from lumina_audit.signature.methods import GRADPROJ, GRADSTATS
    from lumina_audit.signature.pins import Pins
    from lumina_audit.signature.session import Session

    digests_path, digests = read_digests(model_dir, digests_file)
    pins = Pins()
    t_open = time.monotonic()
    session = Session.open(model_dir, digests, pins, methods=(GRADPROJ, GRADSTATS))
    config, model = session.config, session.model
    if tuple(m.name for m in session.methods) != METHOD_NAMES:
        raise ToolError(f"the session computes {[m.name for m in session.methods]}, not {list(METHOD_NAMES)}")
    songs = [ResolvedInput(p, p.stem, None) for p in [*catalog, *controls]]
    song_items = [load_input(s.path, config, None) for s in songs]
    n, c = len(catalog), len(controls)
    cat_ids, ctl_ids = [p.stem for p in catalog], [p.stem for p in controls]
    cat_pcm = [content_sha256(a) for a in song_items[:n]]
    ctl_pcm = [content_sha256(a) for a in song_items[n:]]
    if len(set(cat_ids + ctl_ids)) != n + c or len(set(cat_pcm + ctl_pcm)) != n + c:
        raise ToolError("catalog and control songs must have distinct ids and distinct PCM")

    t_custom = time.monotonic()
    folder, events, reused = _customized(model_dir, digests, catalog, song_items[:n], settings, pins, config,
                                         work, fresh, say)
    custom_s = time.monotonic() - t_custom
    pieces = read_pieces(folder, cat_ids, cat_pcm, digests, settings.sampling.count, config)
    pos, neg = pieces["positives"], pieces["negatives"]
    contents = [content_sha256(item) for _, item, _ in [*pos, *neg]]
    if len(set(contents)) != len(contents) or set(contents) & set(cat_pcm + ctl_pcm):
        raise ToolError("two pieces have the same content, or a piece has a song's content")

    t_sig = time.monotonic()
    inputs = [*songs, *(i for i, _, _ in pos), *(i for i, _, _ in neg)]
    items = [*song_items, *(x for _, x, _ in pos), *(x for _, x, _ in neg)]
    last = [0.0]

    def tick(p: Progress) -> None:
        if time.monotonic() - last[0] > 30 or p.done == p.total:
            last[0] = time.monotonic()
            say(f"  signatures: {p.done}/{p.total} chunks ({p.name})")

    sigs = signatures(session, inputs, items, tick)
    sig_s = time.monotonic() - t_sig
    g = len(neg)
    bounds = np.cumsum([0, n, c, len(pos), g])
    rows = {name: slice(int(bounds[i]), int(bounds[i + 1]))
            for i, name in enumerate(("catalog", "controls", "positives", "negatives"))}
    pos_ids = [i.song_id for i, _, _ in pos]
    pos_sources = [i.sources[0] for i, _, _ in pos]
    neg_ids = [i.song_id for i, _, _ in neg]
    row_of = {sid: j for j, sid in enumerate(cat_ids)}
    labels = [Labelled(i.song_id, (row_of[i.sources[0]],), None) for i, _, _ in pos]
    folds = settings.calibration.folds

    per_row = [code_features(model.compression, codes_of(x, model, config), int(model.compression.cardinality))
               for x in items]
    feats = {family: np.stack([f[family] for f in per_row]) for family in per_row[0]}
    sims: dict[str, Sim] = {}
    spaces: dict[str, str] = {}
    for method in METHOD_NAMES:
        for ch in CHANNELS:
            vec: F32 = np.stack([getattr(s[method], ch.lower()) for s in sigs])

            def grad_sim(a: str, b: str, v: F32 = vec) -> F64:
                return exact_similarities(v[rows[a]], v[rows[b]])

            sims[f"{method} {ch}"] = grad_sim
            spaces[f"{method} {ch}"] = session.spaces[method].digest
    for family, _what in CODE_BASELINES:
        def base_sim(a: str, b: str, fam: str = family) -> F64:
            return baseline_similarities(feats, rows, a, catalog=b)[fam]

        sims[family] = base_sim
        spaces[family] = family

    results: dict[str, Any] = {}
    for key in score_keys():
        sim = sims[key]
        fl = floor(sim("controls", "catalog"), ctl_pcm, cat_pcm, settings.k, spaces[key])
        sc = score_queries(sim("positives", "catalog"), cat_ids, pos_ids, pos_sources, fl)
        neg_above = np.count_nonzero(sim("negatives", "catalog") > fl.tau, axis=1) if g else np.zeros(0)
        channel = key.split()[1] if " " in key else ""
        results[key] = {
            "floor": fl.as_dict(), "v1": sc.summary(n), "ranks": sc.ranks, "above_tau": sc.above, "top1": sc.top1,
            "negatives_songs_above_tau_mean": float(np.mean(neg_above)) if g else None,
            "v2": influence_calibration(sim, cat_ids, ctl_ids, labels, neg_ids, folds, channel)}
        v2 = results[key]["v2"]
        what = (f"Cllr {v2['figures']['cllr']:.3f}" if v2["status"] == "ok" else v2["reason"])
        say(f"  {key}: recall@1 {sc.summary(n)['recall_at_1']:.2f}, v2 {what}")

    first = {sid: next(r for i, _, r in pos if i.sources[0] == sid) for sid in cat_ids}
    for sid in cat_ids:
        if {r["lm_sha256"] for i, _, r in pos if i.sources[0] == sid} != {first[sid]["lm_sha256"]}:
            raise ToolError(f"the pieces of {sid} name different fine-tuned weights")
    durations = {e["event"]: e["seconds"] for e in events}
    per_song = []
    for sid in cat_ids:
        r = first[sid]
        losses = [float(x) for x in r["losses"]]
        per_song.append({
            "song": sid, "chunks": r["song"]["chunks"], "loss_first_step": losses[0] if losses else None,
            "loss_last_step": losses[-1] if losses else None, "losses": losses, "lm_sha256": r["lm_sha256"],
            "finetune_s": next((v for k, v in durations.items() if k.startswith(f"{sid}: fine-tuning")), None),
            "sampling_s": next((v for k, v in durations.items()
                                if k.startswith(f"{sid}: ") and "fine-tuning" not in k), None)})
    r0 = neg[0][2] if neg else pos[0][2]
    minimums = {
        "controls": {"have": c, "need": settings.calibration.min_controls},
        "sources": {"have": len(set(pos_sources)), "need": settings.calibration.min_sources},
        "h1_trials": {"have": len(labels), "need": settings.calibration.min_trials}}
    for m in minimums.values():
        m["met"] = m["have"] >= m["need"]
    return {
        "model": shown(model_dir), "width": int(model.lm.dim),
        "parameters": sum(int(p.numel()) for p in model.lm.parameters()),
        "digests_file": shown(digests_path), "digests": dict(digests), "signature_spaces": {
            m: session.spaces[m].digest for m in METHOD_NAMES},
        "customization": {
            "folder": shown(folder), "reused": reused, "events": events, "seconds": round(custom_s, 1),
            "carried_as": sorted({r["piece"]["carried_as"] for _, _, r in [*pos, *neg]}),
            "decoder": r0.get("decoder"), "base_lm_sha256": neg[0][2]["lm_sha256"] if neg else None,
            "pins": r0.get("pins"), "versions": r0.get("versions")},
        "catalog_ids": cat_ids, "control_ids": ctl_ids,
        "pieces": {"positives": [{"piece": i.song_id, "song": i.sources[0], "seed": r["seed"], "index": r["index"],
                                  "sha256": i.expected_sha256, "codes_sha256": r["piece"]["codes_sha256"],
                                  "frames": r["piece"]["frames"]} for i, _, r in pos],
                   "negatives": [{"piece": i.song_id, "seed": r["seed"], "index": r["index"],
                                  "sha256": i.expected_sha256, "codes_sha256": r["piece"]["codes_sha256"],
                                  "frames": r["piece"]["frames"]} for i, _, r in neg]},
        "per_song": per_song, "results": results, "minimums": minimums,
        "seconds": {"model_load": round(t_custom - t_open, 1), "customize": round(custom_s, 1),
                    "signatures": round(sig_s, 1)}}
