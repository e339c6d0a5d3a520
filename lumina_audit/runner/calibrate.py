"""``kind: Calibrate``: a catalog store + control tracks -> a calibration (attribution-v1 section 1).

A ``lumina-audit/v2`` Calibrate may also list *positives*, derived copies of catalog songs
labelled with their sources (:mod:`lumina_audit.attribution.derive`); its calibration
(``lumina-calibration`` version 2) then states both error directions: how often a source
is missed, per transform and overall, and how often an unrelated piece is attributed
(:mod:`lumina_audit.attribution.detection`). Everything a positive needs is checked before
the model loads: its file's digest, its labels, its sources in the catalog, and that it is
not itself a catalog song (same PCM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ..evidence.manifest import (
    API_V1,
    CalibrateManifest,
    LoadedManifest,
    LRCalibrationSettings,
    resolve_inputs,
)
from .base import (
    Context,
    Plan,
    RunError,
    audio_entries,
    content_sha256,
    is_codes,
    primary,
    queries,
    read_store,
    same_pins,
    samples_of,
    signatures,
    store_has_space,
)

__all__ = ["plan", "read"]


@dataclass(frozen=True)
class _Read:
    store: Path
    index: Any
    entry: dict[str, Any]
    positives: list[Any]  #: ResolvedInput, labelled
    audios: list[Any]  #: their decoded Audio (or, for a generated piece, its codes)
    negatives: list[Any] = field(default_factory=list)  #: ResolvedInput (influence only)
    negative_items: list[Any] = field(default_factory=list)


def read(loaded: LoadedManifest) -> _Read:
    m = cast(CalibrateManifest, loaded.manifest)
    store, index, entry = read_store(loaded, m.catalog, "catalog store")
    store_has_space(f"catalog store {store}", index.info, loaded.spaces()[0])  # before the model loads
    same_pins(loaded, ("catalog store", store, entry["sha256"]))
    settings = m.calibration
    negatives: list[Any]
    negative_items: list[Any]
    if isinstance(settings, LRCalibrationSettings) and settings.proposition == "influence":
        positives, audios, negatives, negative_items = _pieces(loaded, index)
    else:
        (positives, audios), negatives, negative_items = _positives(loaded, index), [], []
    if isinstance(settings, LRCalibrationSettings):
        _check_trials(settings, positives)
    return _Read(store, index, entry, positives, audios, negatives, negative_items)


def _pieces(loaded: LoadedManifest, index: Any) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """The influence proposition's positives and negatives: pieces of ``lumina-audit model customize``, each checked
    against its record: sampled by the manifest's own model, positives fine-tuned on a catalog song (the very
    same PCM), negatives by the unmodified model, all with the same sampling settings."""
    from dataclasses import replace

    from ..customization import CustomizationError, read_record
    from .base import load_input

    config, model = loaded.config(), loaded.manifest.model.digests()
    catalog = dict(zip(index.song_ids, index.pcm_sha256, strict=True))
    out: dict[str, tuple[list[Any], list[Any]]] = {}
    sampling: tuple[Path, Any] | None = None
    for name, kind in (("positives", "fine-tuned"), ("negatives", "base")):
        labelled, items = [], []
        for p in resolve_inputs(loaded, name):
            item = load_input(p.path, config, p.expected_sha256)
            try:
                record = read_record(p.path, item.file_sha256)
            except CustomizationError as exc:
                raise RunError(f"{name[:-1]} {exc.message}", hint=exc.hint) from None
            if record["kind"] != kind:
                raise RunError(f"{name[:-1]} {p.path}: its record says it was sampled by the {record['kind']} "
                               f"model; {name} of the influence proposition are pieces of the {kind} model")
            if record.get("base_model") != dict(sorted(model.items())):
                raise RunError(f"{name[:-1]} {p.path} was sampled from a model with digests "
                               f"{record.get('base_model')}, not this manifest's {dict(sorted(model.items()))}")
            if sampling is None:
                sampling = (p.path, record.get("sampling"))
            elif record.get("sampling") != sampling[1]:
                raise RunError(f"{name[:-1]} {p.path} was sampled with other settings than {sampling[0]}: "
                               "positives and negatives must share every sampling setting")
            sources: tuple[str, ...] = ()
            if kind == "fine-tuned":
                song = record["song"]
                sid = str(song.get("song_id"))
                if sid not in catalog:
                    raise RunError(f"positive {p.path}: its song {sid!r} is not a song of the catalog store")
                if song.get("pcm_sha256") != catalog[sid]:
                    raise RunError(f"positive {p.path} was fine-tuned on PCM {song.get('pcm_sha256')}, but catalog "
                                   f"song {sid!r} has PCM {catalog[sid]}")
                sources = (sid,)
            labelled.append(replace(p, sources=sources, transform=None))
            items.append(item)
        out[name] = (labelled, items)
    return out["positives"][0], out["positives"][1], out["negatives"][0], out["negatives"][1]


def _check_trials(settings: LRCalibrationSettings, positives: list[Any]) -> None:
    """The minimums of attribution-v2 section 1 that the labels decide, before the model loads."""
    first = {p.sources[0] for p in positives}
    if len(first) < settings.min_sources:
        raise RunError(f"the positives derive from {len(first)} distinct first source song(s); "
                       f"calibration.min_sources asks for at least {settings.min_sources}",
                       hint="derive copies of more catalog songs (lumina-audit audio derive) and list them as "
                       "positives")
    h1 = sum(len(p.sources) for p in positives)
    if h1 < settings.min_trials:
        raise RunError(f"the positives give {h1} same-source trial(s); calibration.min_trials asks for at least "
                       f"{settings.min_trials}",
                       hint="derive more copies (lumina-audit audio derive) and list them as positives")


def _positives(loaded: LoadedManifest, index: Any) -> tuple[list[Any], list[Any]]:
    """The labelled, decoded positives (none for a version 1 manifest)."""
    from dataclasses import replace

    from ..attribution.derive import TRANSFORMS, DeriveError, read_sidecar
    from ..signature.audio import load_audio

    if loaded.api_version == API_V1 or not cast(Any, loaded.manifest).positives:
        return [], []
    catalog_ids, catalog_pcm = set(index.song_ids), dict(zip(index.pcm_sha256, index.song_ids, strict=True))
    labelled = []
    for p in resolve_inputs(loaded, "positives"):
        try:
            record = read_sidecar(p.path)
        except DeriveError as exc:
            raise RunError(f"positive {p.path}: {exc.message}") from None
        sources = p.sources or tuple(record["source_ids"] if record else ())
        transform = p.transform or (record["transform"] if record else None)
        if record is not None and (tuple(record["source_ids"]) != sources or record["transform"] != transform):
            raise RunError(f"positive {p.path}: the manifest labels it {transform} of {', '.join(sources)}, its "
                           f"derivation record {record['transform']} of {', '.join(record['source_ids'])}")
        if not sources or transform is None:
            raise RunError(f"positive {p.path}: name its sources and transform in the manifest, or derive it with "
                           "`lumina-audit audio derive` (which records them beside it)")
        if transform not in TRANSFORMS:
            raise RunError(f"positive {p.path}: unknown transform {transform!r} (one of {', '.join(TRANSFORMS)})")
        if len(sources) != TRANSFORMS[transform][0]:
            raise RunError(f"positive {p.path}: transform {transform} has {TRANSFORMS[transform][0]} source(s), "
                           f"the positive names {len(sources)}")
        for source in sources:
            if source not in catalog_ids:
                raise RunError(f"positive {p.path}: source {source!r} is not a song of the catalog store")
        labelled.append(replace(p, sources=tuple(sources), transform=transform))
    config = loaded.config()
    audios = [load_audio(p.path, config, p.expected_sha256) for p in labelled]
    for p, a in zip(labelled, audios, strict=True):
        if a.pcm_sha256 in catalog_pcm:
            raise RunError(f"positive {p.path} has the PCM of catalog song {catalog_pcm[a.pcm_sha256]!r} "
                           f"({a.pcm_sha256}): a positive must be a changed copy, not the song itself")
    return labelled, audios


def plan(ctx: Context) -> Plan:
    settings = cast(CalibrateManifest, ctx.loaded.manifest).calibration
    if isinstance(settings, LRCalibrationSettings):
        return _plan_lr(ctx, settings)
    return _plan_floor(ctx)


def _plan_floor(ctx: Context) -> Plan:
    """``lumina-attribution-v1``: the noise floor, and the positives' detection (version 2)."""
    from ..attribution.detection import Positive, detect, unrelated_attributed_rate
    from ..attribution.method import calibrate
    from ..attribution.reports import CALIBRATION_FORMAT, write_canonical
    from ..attribution.search import similarities

    loaded, session, inputs, audios, on_progress = ctx.loaded, ctx.session, ctx.inputs, ctx.audios, ctx.on_progress
    pre = cast(_Read, ctx.pre)
    store, index, store_entry = pre.store, pre.index, pre.entry
    store_has_space(f"catalog store {store}", index.info, session.space)
    settings = cast(CalibrateManifest, loaded.manifest).calibration
    if len(inputs) < settings.min_controls:  # refuse before the expensive part
        raise RunError(f"{len(inputs)} control(s); calibration needs at least {settings.min_controls}")
    sigs = primary(signatures(session, inputs, audios, on_progress), session)
    q = queries(sigs)
    sims = {ch: similarities(store, ch, q[ch], space_digest=session.space.digest) for ch in ("P", "M")}
    cal = calibrate(sims, settings.k, control_ids=[s.song_id for s in sigs],
                    control_pcm_sha256=[s.pcm_sha256 for s in sigs], catalog_pcm_sha256=set(index.pcm_sha256),
                    control_space=session.space.digest,
                    catalog_space=index.info.space_with(session.space.digest).digest,
                    min_controls=settings.min_controls)
    channels: dict[str, Any] = {ch: c.as_dict() for ch, c in cal.items()}
    doc: dict[str, Any] = {
        "format": CALIBRATION_FORMAT, "version": 1, "method": settings.method,
        "signature_space_sha256": session.space.digest, "signature_space": session.space.as_dict(),
        "catalog": {"sha256": store_entry["sha256"], "songs": index.info.count},
        "controls": [{"song_id": s.song_id, "file_sha256": s.file_sha256, "pcm_sha256": s.pcm_sha256}
                     for s in sigs],
        "C": len(sigs), "N": index.info.count, "k": settings.k,
        "channels": channels,
        "manifest_digest": loaded.digest,
    }
    entries = [*audio_entries(inputs, audios), store_entry]
    result: dict[str, Any] = {
        "signature_space_sha256": session.space.digest, "controls": len(sigs), "catalog_songs": index.info.count,
        **{f"{ch}_tau": c.tau for ch, c in cal.items()},
        **{f"{ch}_false_positive_rate": c.false_positive_rate for ch, c in cal.items()}}
    if loaded.api_version != API_V1:  # version 2: both error directions
        pos_sigs = primary(signatures(session, pre.positives, pre.audios, on_progress), session) \
            if pre.positives else []
        labels = [Positive(s.song_id, str(p.transform), tuple(p.sources)) for p, s in zip(pre.positives, pos_sigs,
                                                                                         strict=True)]
        found = {}
        pos_q = queries(pos_sigs) if labels else {}
        for ch in ("P", "M"):
            c = cal[ch]
            channels[ch]["unrelated_attributed_rate"] = unrelated_attributed_rate(c.counts_above)
            if labels:
                pos_sims = similarities(store, ch, pos_q[ch], space_digest=session.space.digest)
                found[ch] = detect(pos_sims, index.song_ids, labels, c.tau)
            channels[ch]["detection"] = found[ch].as_dict() if labels else None
        doc |= {"version": 2, "P": len(labels), "positives": [
            {"song_id": s.song_id, "file_sha256": s.file_sha256, "pcm_sha256": s.pcm_sha256,
             "transform": lab.transform, "sources": list(lab.sources),
             "channels": {ch: [o.as_dict() for o in d.outcomes if o.positive == s.song_id] for ch, d in found.items()}}
            for s, lab in zip(pos_sigs, labels, strict=True)]}
        entries += [e | {"kind": "positive", "transform": p.transform, "sources": list(p.sources)}
                    for e, p in zip(audio_entries(pre.positives, pre.audios), pre.positives, strict=True)]
        result |= {"positives": len(labels),
                   **{f"{ch}_missed_rate": d.overall.missed_rate for ch, d in found.items()}}
    out = loaded.outputs["calibration"]

    def write(_seq: int) -> list[tuple[Path, str]]:
        write_canonical(out, doc)
        return [(out, "calibration")]

    return Plan(entries, result, write)


def _check_inputs(ctx: Context, settings: LRCalibrationSettings, pre: _Read) -> None:
    """attribution-v2 section 1: enough controls; no control or positive is a catalog song; none is both."""
    c = len(ctx.inputs)
    if c < settings.min_controls:
        raise RunError(f"{c} control(s); calibration.min_controls asks for at least {settings.min_controls}",
                       hint="add control tracks known not to be in the model's training")
    catalog = dict(zip(pre.index.pcm_sha256, pre.index.song_ids, strict=True))
    controls: dict[str, Any] = {}
    for inp, audio in zip(ctx.inputs, ctx.audios, strict=True):
        pcm = content_sha256(audio)
        if pcm in catalog:
            raise RunError(f"control {inp.path} has the PCM of catalog song {catalog[pcm]!r} "
                           f"({pcm}): a control must not be in the catalog")
        if pcm in controls:
            raise RunError(f"controls {controls[pcm]} and {inp.path} have the same PCM ({pcm})")
        controls[pcm] = inp.path
    seen: dict[str, Any] = {}
    for what, items, loaded_items in (("positive", pre.positives, pre.audios),
                                      ("negative", pre.negatives, pre.negative_items)):
        for p, audio in zip(items, loaded_items, strict=True):
            pcm = content_sha256(audio)
            if pcm in controls:
                raise RunError(f"{what} {p.path} has the PCM of control {controls[pcm]} "
                               f"({pcm}): a track is a positive or a control, not both")
            if pcm in catalog:
                raise RunError(f"{what} {p.path} has the content of catalog song {catalog[pcm]!r} ({pcm})")
            if pcm in seen:
                raise RunError(f"{what} {p.path} and {seen[pcm]} have the same content ({pcm})")
            seen[pcm] = p.path


def _plan_lr(ctx: Context, settings: LRCalibrationSettings) -> Plan:
    """``lumina-attribution-v2``: S-norm trials, cross-validated calibration, per-song cohorts (an archive)."""
    import numpy as np

    from ..attribution import calibration_file
    from ..attribution.cohort import cohort_stats
    from ..attribution.likelihood_ratio import PROPOSITIONS, calibrate_channel
    from ..attribution.reports import ATTRIBUTION_V2
    from ..attribution.search import exact_similarities, similarities
    from ..attribution.trials import Labelled, build_trials

    loaded, session, on_progress = ctx.loaded, ctx.session, ctx.on_progress
    pre = cast(_Read, ctx.pre)
    store, index = pre.store, pre.index
    store_has_space(f"catalog store {store}", index.info, session.space)
    _check_inputs(ctx, settings, pre)
    controls = primary(signatures(session, ctx.inputs, ctx.audios, on_progress), session)
    positives = primary(signatures(session, pre.positives, pre.audios, on_progress), session)
    negatives = primary(signatures(session, pre.negatives, pre.negative_items, on_progress), session) \
        if pre.negatives else []
    row = {sid: j for j, sid in enumerate(index.song_ids)}
    labels = [Labelled(s.song_id, tuple(row[x] for x in p.sources), p.transform)
              for p, s in zip(pre.positives, positives, strict=True)]
    qc, qp = queries(controls), queries(positives)
    qn = queries(negatives) if negatives else None
    channels: dict[str, Any] = {}
    arrays: dict[str, Any] = {}
    for ch in ("P", "M"):
        control_sims = similarities(store, ch, qc[ch], space_digest=session.space.digest)
        cohort = cohort_stats(control_sims, index.song_ids, channel=ch)
        trials = build_trials(
            cohort=cohort, control_sims=control_sims, control_control=exact_similarities(qc[ch], qc[ch]),
            positive_sims=similarities(store, ch, qp[ch], space_digest=session.space.digest),
            positive_controls=exact_similarities(qp[ch], qc[ch]), positives=labels, song_ids=index.song_ids,
            control_ids=[s.song_id for s in controls], channel=ch,
            negative_sims=similarities(store, ch, qn[ch], space_digest=session.space.digest) if qn else None,
            negative_controls=exact_similarities(qn[ch], qc[ch]) if qn else None,
            negative_ids=[s.song_id for s in negatives])
        channels[ch] = calibrate_channel(trials, settings.folds, ch)
        arrays[f"cohort-{ch}.npy"] = np.stack([cohort.mu, cohort.sd], axis=1)
        arrays[f"controls-{ch}.npy"] = qc[ch]
    h1, h2 = PROPOSITIONS[settings.proposition]
    samples = [samples_of(a) for a in pre.audios]
    proposition = {"name": settings.proposition, "h1": h1, "h2": h2}
    if settings.validation_songs is not None:
        proposition["validation_songs"] = settings.validation_songs

    def described(s: Any, a: Any) -> dict[str, Any]:
        """A track of the calibration: its identity, decoded length, and how a generated piece was carried."""
        if is_codes(a):
            return {"song_id": s.song_id, "file_sha256": s.file_sha256, "codes_sha256": a.codes_sha256,
                    "carried_as": "codes", "samples": samples_of(a)}
        return {"song_id": s.song_id, "file_sha256": s.file_sha256, "pcm_sha256": s.pcm_sha256,
                "samples": samples_of(a)}

    doc: dict[str, Any] = {
        "method": ATTRIBUTION_V2,
        "proposition": proposition,
        "settings": settings.model_dump(mode="json", exclude={"method", "proposition", "validation_songs"}),
        "signature_method": session.methods[0].name,
        "signature_space_sha256": session.space.digest, "signature_space": session.space.as_dict(),
        "catalog": {"sha256": pre.entry["sha256"], "songs": index.info.count},
        "controls": [described(s, a) for s, a in zip(controls, ctx.audios, strict=True)],
        "positives": [described(s, a) | {"transform": p.transform, "sources": list(p.sources)}
                      for s, p, a in zip(positives, pre.positives, pre.audios, strict=True)],
        "negatives": [described(s, a) for s, a in zip(negatives, pre.negative_items, strict=True)],
        "scored_from_codes": any(is_codes(a) for a in [*ctx.audios, *pre.audios, *pre.negative_items]),
        "C": len(controls), "N": index.info.count, "P": len(positives), "G": len(negatives),
        "sample_rate": session.config.sample_rate, "shortest_positive_samples": min(samples),
        "channels": {ch: c.as_dict() for ch, c in channels.items()},
        "manifest_digest": loaded.digest,
    }
    entries = [*audio_entries(ctx.inputs, ctx.audios), pre.entry]
    entries += [e | {"kind": "positive", "transform": p.transform, "sources": list(p.sources)}
                for e, p in zip(audio_entries(pre.positives, pre.audios), pre.positives, strict=True)]
    entries += [e | {"kind": "negative"} for e in audio_entries(pre.negatives, pre.negative_items)]
    result: dict[str, Any] = {
        "signature_space_sha256": session.space.digest, "method": ATTRIBUTION_V2, "proposition": settings.proposition,
        "controls": len(controls), "catalog_songs": index.info.count, "positives": len(positives),
        "negatives": len(negatives),
        **{f"{ch}_cllr": c.validation.overall.cllr for ch, c in channels.items()},
        **{f"{ch}_bounds": [c.lower, c.upper] for ch, c in channels.items()}}
    out = loaded.outputs["calibration"]

    def write(_seq: int) -> list[tuple[Path, str]]:
        calibration_file.write(out, doc, arrays)
        return [(out, "calibration")]

    return Plan(entries, result, write)
