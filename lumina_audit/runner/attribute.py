"""``kind: Attribute``: query audio + a store + its calibration -> reports, and certificates when asked (step 9)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from ..errors import LuminaError
from ..evidence.manifest import (
    API_V1,
    AttributeManifest,
    CertificateSettings,
    LoadedManifest,
    LRAttributionSettings,
)
from .base import (
    Context,
    Plan,
    RunError,
    audio_entries,
    checked_file,
    is_codes,
    primary,
    queries,
    read_store,
    same_pins,
    same_space,
    samples_of,
    signatures,
    store_has_space,
)

__all__ = ["plan", "read"]


def read(loaded: LoadedManifest) -> Any:
    from ..attribution.reports import ATTRIBUTION_V1, read_calibration

    m = cast(AttributeManifest, loaded.manifest)
    store = read_store(loaded, m.catalog, "catalog store")
    ours = loaded.spaces()[0]
    store_has_space(f"catalog store {store[0]}", store[1].info, ours)  # before the model loads
    cal_path = loaded.anywhere(m.calibration.path)
    cal_entry = checked_file(cal_path, m.calibration.sha256, "calibration")
    cal, cal_digest = read_calibration(cal_path)
    same_space(f"calibration {cal_path}", str(cal.get("signature_space_sha256")), ours.digest)
    same_pins(loaded, ("catalog store", store[0], store[2]["sha256"]), ("calibration", cal_path, cal_entry["sha256"]))
    if cal["catalog"]["sha256"] != store[2]["sha256"]:
        raise RunError(f"calibration {cal_path} was made on catalog store {cal['catalog']['sha256']}, not on "
                       f"{store[0]} ({store[2]['sha256']})")
    cal_method = str(cal.get("method", ATTRIBUTION_V1))  # versions 1 and 2 are of attribution-v1
    if cal_method != m.attribution.method:
        raise RunError(f"calibration {cal_path} is of method {cal_method}, the manifest's attribution.method is "
                       f"{m.attribution.method}; a result never mixes the two",
                       hint=f"set attribution.method: {cal_method}, or calibrate with {m.attribution.method}")
    arrays = None
    if isinstance(m.attribution, LRAttributionSettings):  # every array checked against its digest now
        from ..attribution.calibration_file import read_arrays

        arrays = read_arrays(cal_path, cal)
    signer = _certificate_signer(loaded, m.certificates) if m.certificates is not None else None
    return store, (cal_path, cal, cal_digest, cal_entry | {"kind": "calibration"}, arrays), signer


def _certificate_signer(loaded: LoadedManifest, settings: CertificateSettings) -> Any:
    """The manifest's X.509 signer, loaded and checked (key matches certificate, valid now, pinned digest)."""
    from ..certificates.signer import load_signer

    spec = settings.signer
    passphrase = None
    if spec.passphrase_env is not None:
        value = os.environ.get(spec.passphrase_env)
        if value is None:
            raise RunError(f"environment variable {spec.passphrase_env} (certificates.signer.passphrase_env) "
                           "is not set",
                           hint="export the signer key's passphrase in it before running")
        passphrase = value.encode()
    creds = load_signer(key=loaded.anywhere(spec.key) if spec.key else None,
                        cert=loaded.anywhere(spec.cert) if spec.cert else None,
                        chain=[loaded.anywhere(c) for c in spec.chain],
                        pkcs12=loaded.anywhere(spec.pkcs12) if spec.pkcs12 else None, passphrase=passphrase)
    if spec.cert_sha256 is not None:
        if creds.fingerprint != spec.cert_sha256:
            raise RunError(f"signer certificate SHA-256 {creds.fingerprint} differs from the pinned "
                           f"certificates.signer.cert_sha256 {spec.cert_sha256}")
    return creds


def plan(ctx: Context) -> Plan:
    if isinstance(cast(AttributeManifest, ctx.loaded.manifest).attribution, LRAttributionSettings):
        return _plan_lr(ctx)
    return _plan_floor(ctx)


def _plan_floor(ctx: Context) -> Plan:
    """``lumina-attribution-v1``: shares of the excess above the noise floor."""
    from ..attribution.method import attribute_hits
    from ..attribution.reports import REPORT_FORMAT, write_canonical
    from ..attribution.search import top_and_threshold

    loaded, session, inputs, audios, on_progress, pre = (ctx.loaded, ctx.session, ctx.inputs, ctx.audios,
                                                         ctx.on_progress, ctx.pre)
    (store, index, store_entry), (cal_path, cal, cal_digest, cal_entry, _), signer = pre
    store_has_space(f"catalog store {store}", index.info, session.space)
    m = cast(AttributeManifest, loaded.manifest)
    top_k = m.attribution.top_k
    sigs = primary(signatures(session, inputs, audios, on_progress), session)
    q = queries(sigs)
    results: dict[str, list[Any]] = {}
    for ch in ("P", "M"):
        c = cal["channels"][ch]
        hits = top_and_threshold(store, ch, q[ch], float(c["tau"]), top_k, space_digest=session.space.digest)
        results[ch] = [attribute_hits(h, index.song_ids, float(c["mu"]), float(c["sigma"]), float(c["tau"]), top_k)
                       for h in hits]
    folder = loaded.outputs["reports"]
    keys = ("mu", "sigma", "k", "tau", "false_positive_rate", "counts_above_mean", "counts_above_max")
    calibration = {"sha256": cal_digest, "C": cal["C"], "N": cal["N"], "k": cal["k"],
                   "channels": {ch: {key: cal["channels"][ch][key] for key in keys} for ch in ("P", "M")}}
    if loaded.api_version != API_V1 and cal["version"] >= 2:  # the calibration's error rates, both ways
        calibration["P"] = cal["P"]
        for ch in ("P", "M"):
            calibration["channels"][ch] |= {key: cal["channels"][ch][key]
                                            for key in ("unrelated_attributed_rate", "detection")}
    def write(seq: int) -> list[tuple[Path, str]]:
        folder.mkdir(parents=True, exist_ok=False)
        outs = []
        for i, (inp, sig) in enumerate(zip(inputs, sigs, strict=True)):
            doc: dict[str, Any] = {
                "format": REPORT_FORMAT, "version": 1, "method": m.attribution.method,
                "query": {"song_id": sig.song_id, "file": inp.path.name, "file_sha256": sig.file_sha256,
                          "pcm_sha256": sig.pcm_sha256, "chunks": sig.chunks},
                "signature_space_sha256": session.space.digest,
                "catalog": {"sha256": store_entry["sha256"], "songs": index.info.count},
                "calibration": calibration,
                "channels": {ch: results[ch][i].as_dict() for ch in ("P", "M")},
                "manifest_digest": loaded.digest, "manifest_signers": ctx.signers,
                "ledger": {"origin": ctx.origin, "record": seq},
            }
            if loaded.api_version != API_V1:  # version 2 names the signature method; version 1 implies gradstats
                doc |= {"version": 2, "signature_method": session.methods[0].name}
            path = folder / f"{sig.song_id}.json"
            write_canonical(path, doc)
            outs.append((path, "attribution-report"))
        return outs

    verdicts = {f"{sig.song_id}:{ch}": results[ch][i].verdict for ch in ("P", "M") for i, sig in enumerate(sigs)}
    result = {"signature_space_sha256": session.space.digest, "queries": len(sigs), "verdicts": verdicts}
    after = None if signer is None or m.certificates is None else _certificates_after(ctx, signer, m.certificates)
    return Plan([*audio_entries(inputs, audios), store_entry, cal_entry], result, write, after)


def _plan_lr(ctx: Context) -> Plan:
    """``lumina-attribution-v2``: every song's S-norm score and bounded log10 LR; the listed songs (section 6)."""
    from ..attribution.calibrators import LogitFit
    from ..attribution.cohort import Cohort, query_stats
    from ..attribution.likelihood_ratio import LlrKey, attribute_channel, report_cut
    from ..attribution.reports import REPORT_FORMAT, write_canonical
    from ..attribution.search import DEFAULT_BLOCK_ROWS, exact_similarities, top_by_key

    loaded, session, inputs, audios, on_progress, pre = (ctx.loaded, ctx.session, ctx.inputs, ctx.audios,
                                                         ctx.on_progress, ctx.pre)
    (store, index, store_entry), (cal_path, cal, cal_digest, cal_entry, arrays), signer = pre
    store_has_space(f"catalog store {store}", index.info, session.space)
    m = cast(AttributeManifest, loaded.manifest)
    settings = cast(LRAttributionSettings, m.attribution)
    shortest = int(cal["shortest_positive_samples"])
    for inp, a in zip(inputs, audios, strict=True):  # outside the validated conditions (section 6)
        if samples_of(a) < shortest:
            rate = float(cal["sample_rate"])
            raise RunError(f"query {inp.path} lasts {samples_of(a) / rate:.2f} s, shorter than the shortest positive "
                           f"of calibration {cal_path} ({shortest / rate:.2f} s): outside the validated conditions")
    sigs = primary(signatures(session, inputs, audios, on_progress), session)
    q = queries(sigs)
    results: dict[str, list[Any]] = {}
    for ch in ("P", "M"):
        c = cal["channels"][ch]
        cohort_arr = arrays[f"cohort-{ch}.npy"]
        cohort = Cohort(cohort_arr[:, 0].copy(), cohort_arr[:, 1].copy())
        model = LogitFit(float(c["model"]["a"]), float(c["model"]["b"]), int(c["model"]["iterations"]))
        lower, upper = float(c["bounds"]["lower"]), float(c["bounds"]["upper"])
        to_controls = exact_similarities(q[ch], arrays[f"controls-{ch}.npy"])
        keys = []
        for i, sig in enumerate(sigs):
            mu_q, sd_q = query_stats(to_controls[i].tolist(), what=f"channel {ch}: query {sig.song_id!r}")
            keys.append(LlrKey(cohort, mu_q, sd_q, model, DEFAULT_BLOCK_ROWS))
        hits = top_by_key(store, ch, q[ch], keys, report_cut(settings.report_at, upper), settings.top_k,
                          DEFAULT_BLOCK_ROWS, space_digest=session.space.digest)
        v = c["validation"]
        results[ch] = [attribute_channel(h, k, index.song_ids, proposition=cal["proposition"]["name"], lower=lower,
                                         upper=upper, report_at=settings.report_at, top_k=settings.top_k,
                                         tippett_h2=v["tippett"]["h2_at_or_above"], h2_trials=v["h2_trials"],
                                         h2_units=v["h2_units"])
                       for h, k in zip(hits, keys, strict=True)]
    folder = loaded.outputs["reports"]
    calibration = {"sha256": cal_digest, "method": cal["method"], "proposition": cal["proposition"],
                   "settings": cal["settings"], "C": cal["C"], "N": cal["N"], "P": cal["P"], "G": cal["G"],
                   "scored_from_codes": cal["scored_from_codes"],
                   "shortest_positive_samples": shortest, "sample_rate": cal["sample_rate"],
                   "channels": {ch: cal["channels"][ch] for ch in ("P", "M")}}

    def write(seq: int) -> list[tuple[Path, str]]:
        folder.mkdir(parents=True, exist_ok=False)
        outs = []
        for i, (inp, sig) in enumerate(zip(inputs, sigs, strict=True)):
            doc: dict[str, Any] = {
                "format": REPORT_FORMAT, "version": 3, "method": settings.method,
                "signature_method": session.methods[0].name,
                "query": _query(inp, sig, audios[i]),
                "signature_space_sha256": session.space.digest,
                "catalog": {"sha256": store_entry["sha256"], "songs": index.info.count},
                "calibration": calibration,
                "channels": {ch: results[ch][i].as_dict() for ch in ("P", "M")},
                "manifest_digest": loaded.digest, "manifest_signers": ctx.signers,
                "ledger": {"origin": ctx.origin, "record": seq},
            }
            path = folder / f"{sig.song_id}.json"
            write_canonical(path, doc)
            outs.append((path, "attribution-report"))
        return outs

    highest = {f"{sig.song_id}:{ch}": {"song_id": results[ch][i].entries[0].song_id,
                                       "log10_lr": results[ch][i].entries[0].log10_lr}
               for ch in ("P", "M") for i, sig in enumerate(sigs)}
    result = {"signature_space_sha256": session.space.digest, "queries": len(sigs), "method": settings.method,
              "highest": highest}
    after = None if signer is None or m.certificates is None else _certificates_after(ctx, signer, m.certificates)
    return Plan([*audio_entries(inputs, audios), store_entry, cal_entry], result, write, after)


def _query(inp: Any, sig: Any, item: Any) -> dict[str, Any]:
    """A version 3 report's query: its identity and length; a piece carried as codes says so."""
    if is_codes(item):
        return {"song_id": sig.song_id, "file": inp.path.name, "file_sha256": sig.file_sha256,
                "codes_sha256": item.codes_sha256, "carried_as": "codes", "chunks": sig.chunks,
                "samples": samples_of(item)}
    return {"song_id": sig.song_id, "file": inp.path.name, "file_sha256": sig.file_sha256,
            "pcm_sha256": sig.pcm_sha256, "chunks": sig.chunks, "samples": samples_of(item)}


def _certificates_after(ctx: Context, signer: Any,
                        settings: CertificateSettings) -> Callable[[int, list[Path]], tuple[Any, ...]]:
    """Step 9: one certificate per report, each its own ledger record."""
    from ..certificates.issue import issue_certificate

    loaded = ctx.loaded
    folder = loaded.outputs["certificates"]

    def after(seq: int, reports: list[Path]) -> tuple[Any, ...]:
        issued: list[Any] = []
        folder.mkdir(parents=True, exist_ok=False)
        for i, report in enumerate(reports):
            try:
                issued.append(issue_certificate(
                    report, loaded.ledger_dir, folder / f"{report.stem}.pdf", operator_key=ctx.operator_key,
                    principal=ctx.principal, signer=signer, timestamp_url=settings.timestamp_url,
                    page_size=settings.page_size))
            except LuminaError as exc:
                left = ", ".join(r.name for r in reports[i:])
                raise RunError(f"the run is ledger record {seq}, but no certificate was issued for {left}: "
                               f"{exc.message}",
                               hint="issue them with `lumina-audit certificate issue REPORT`") from None
        return tuple(issued)

    return after
