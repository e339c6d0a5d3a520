"""``kind: Calibrate``: a catalog store + control tracks -> a calibration (attribution-v1 section 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from ..evidence.manifest import (
    CalibrateManifest,
    LoadedManifest,
)
from .base import (
    Context,
    Plan,
    RunError,
    audio_entries,
    primary,
    queries,
    read_store,
    signatures,
    store_has_space,
)

__all__ = ["plan", "read"]


def read(loaded: LoadedManifest) -> Any:
    store = read_store(loaded, cast(CalibrateManifest, loaded.manifest).catalog, "catalog store")
    store_has_space(f"catalog store {store[0]}", store[1].info, loaded.spaces()[0])  # before the model loads
    return store


def plan(ctx: Context) -> Plan:
    from ..attribution.method import calibrate
    from ..attribution.reports import CALIBRATION_FORMAT, write_canonical
    from ..attribution.search import similarities

    loaded, session, inputs, audios, on_progress, pre = (ctx.loaded, ctx.session, ctx.inputs, ctx.audios,
                                                         ctx.on_progress, ctx.pre)
    store, index, store_entry = pre
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
    doc = {
        "format": CALIBRATION_FORMAT, "version": 1, "method": settings.method,
        "signature_space_sha256": session.space.digest, "signature_space": session.space.as_dict(),
        "catalog": {"sha256": store_entry["sha256"], "songs": index.info.count},
        "controls": [{"song_id": s.song_id, "file_sha256": s.file_sha256, "pcm_sha256": s.pcm_sha256}
                     for s in sigs],
        "C": len(sigs), "N": index.info.count, "k": settings.k,
        "channels": {ch: c.as_dict() for ch, c in cal.items()},
        "manifest_digest": loaded.digest,
    }
    out = loaded.outputs["calibration"]

    def write(_seq: int) -> list[tuple[Path, str]]:
        write_canonical(out, doc)
        return [(out, "calibration")]

    result = {"signature_space_sha256": session.space.digest, "controls": len(sigs), "catalog_songs": index.info.count,
              **{f"{ch}_tau": c.tau for ch, c in cal.items()},
              **{f"{ch}_false_positive_rate": c.false_positive_rate for ch, c in cal.items()}}
    return Plan([*audio_entries(inputs, audios), store_entry], result, write)
