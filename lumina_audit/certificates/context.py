"""What a certificate's template sees: the context of ``certificate.html.j2`` and of ``certificate-lr.html.j2``.

:func:`context` (reports of ``lumina-attribution-v1``: verdicts, shares, the noise floor and its error
rates) and :func:`lr_context` (``lumina-attribution-v2``: propositions, bounded LRs and their verbal
bands, the validation figures and the Tippett and ECE plot geometry of :mod:`.plots`), both from the
report alone. Numbers are formatted here, so the templates only place them; a field a template needs
that the report lacks raises :class:`~.pdf.CertificateError` naming it. :mod:`.render` turns the
context into HTML and then PDF.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .pdf import CertificateError

__all__ = ["SUMMARY_ROWS", "context", "lr_context"]

_BAR_WIDTH = 300.0
#: Added after _data/templates/certificate.css: the size and the margins (:data:`.pdf.MARGINS_MM`), and the free corner
#: of page 1 where the signer draws the visible signature (:data:`.pdf.STAMP_MM`).
#: Rows of each channel's table (and bars of its chart) on page 1.
SUMMARY_ROWS = 5


def _pdf_date(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _chart(entries: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """Bar geometry for an inline SVG (values and labels escaped by the template)."""
    values = [float(e.get(key, 0.0)) for e in entries]
    top = max([abs(v) for v in values] + [1e-12])
    bars = []
    for i, (e, v) in enumerate(zip(entries, values, strict=True)):
        bars.append({"y": 2 + 10 * i, "width": round(max(v, 0.0) / top * _BAR_WIDTH, 3),
                     "label": str(e.get("song_id", "")), "value": f"{v:.4f}"})
    return {"bars": bars, "height": 4 + 10 * len(bars), "bar_x": 170, "bar_max": _BAR_WIDTH, "bar_height": 8}


def _summary_shares(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bars of page 1: the songs of its table with a share, then one bar for all the others.

    Page 1 stays one page however many songs share the attribution; every song is in the
    appendix and in the attached report.
    """
    shown = [e for e in entries[:SUMMARY_ROWS] if float(e.get("share", 0.0)) > 0.0]
    rest = [float(e.get("share", 0.0)) for e in entries[SUMMARY_ROWS:] if float(e.get("share", 0.0)) > 0.0]
    if rest:
        shown.append({"song_id": f"{len(rest)} other song(s)", "share": math.fsum(rest)})
    return shown


def context(report_doc: dict[str, Any], report_bytes: bytes, proof: dict[str, Any],
             issued_at: datetime) -> dict[str, Any]:
    try:
        record = json.loads(proof["record"])
    except (KeyError, TypeError, ValueError):
        raise CertificateError("the inclusion proof holds no readable ledger record") from None
    channels = report_doc.get("channels", {})
    chans = []
    calibration = report_doc.get("calibration", {})
    for ch in ("P", "M"):
        res = channels.get(ch, {})
        entries = list(res.get("entries", []))
        figures = calibration.get("channels", {}).get(ch, {})
        chans.append({"name": ch, "result": res, "entries": entries,
                      "share_chart": _chart(_summary_shares(entries), "share"),
                      "similarity_chart": _chart(entries, "similarity"),
                      "rates": _rate_cells(figures), "detection": figures.get("detection")})
    return {
        "report": report_doc, "channels": chans, "issued_at": _pdf_date(issued_at),
        "report_sha256": hashlib.sha256(report_bytes).hexdigest(), "proof": proof, "record": record,
        "titles": report_doc.get("titles", {}), "summary_rows": SUMMARY_ROWS,
        "signature_method": _signature_method(report_doc, short_spec=True),
        "error_rates": _error_rates(calibration),
    }


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def _error_rates(calibration: dict[str, Any]) -> str:
    """Both error directions of the calibration, both channels, in plain words, for page 1."""
    figures = {ch: calibration.get("channels", {}).get(ch, {}) for ch in ("P", "M")}
    detections = {ch: f.get("detection") for ch, f in figures.items()}
    if all(detections.values()):
        o = {ch: d["overall"] for ch, d in detections.items() if d}
        missed = ("In the calibration, a derived copy of a catalog song was missed in "
                  f"{_percent(o['P']['missed_rate'])} (P) and {_percent(o['M']['missed_rate'])} (M) of "
                  f"{o['P']['cases']} cases")
    else:
        missed = "The calibration measured no derived copy of a catalog song: how often one is missed is not known"
    rates = {ch: f.get("unrelated_attributed_rate") for ch, f in figures.items()}
    if rates["P"] is None or rates["M"] is None:
        unrelated = ("how often an unrelated piece is attributed is not stated (a version 1 calibration; "
                     f"pair-wise false-positive rates {figures['P'].get('false_positive_rate')} (P), "
                     f"{figures['M'].get('false_positive_rate')} (M))")
    else:
        unrelated = (f"an unrelated piece was attributed to a catalog song in {_percent(rates['P'])} (P) and "
                     f"{_percent(rates['M'])} (M) of {calibration.get('C')}")
    return f"{missed}; {unrelated}."


def _rate_cells(figures: dict[str, Any]) -> dict[str, str]:
    detection = figures.get("detection")
    rate = figures.get("unrelated_attributed_rate")
    return {"unrelated": "not stated" if rate is None else _percent(rate),
            "missed": (f"{_percent(detection['overall']['missed_rate'])} of {detection['overall']['cases']}"
                       if detection else "not measured")}


def _signature_method(report_doc: dict[str, Any], *, short_spec: bool = False) -> dict[str, str]:
    """The report's signature method: its name, its normative spec and what it keeps of the gradient.

    ``short_spec``: the spec's file name alone, as certificates of version 1 and 2 reports have always
    printed it (their template must render issued certificates again byte for byte).
    """
    from ..attribution.reports import signature_method_of
    from ..signature.methods import METHODS

    name = signature_method_of(report_doc)
    method = METHODS.get(name)
    if method is None:
        return {"name": name, "spec": "(unknown to this version of lumina-audit)", "description": ""}
    spec = method.spec.rsplit("/", 1)[-1] if short_spec else method.spec
    return {"name": name, "spec": spec, "description": method.description}


#: What each channel's signature describes (signature-v1 section 1), for the headings of a v2-method certificate.
_CHANNEL_WORDS = {"P": "composition", "M": "production"}


def _need(doc: Any, *path: str) -> Any:
    """``doc[path[0]][path[1]]...`` (a digit indexes a list), or a :class:`CertificateError` naming what is missing."""
    cur = doc
    for key in path:
        if isinstance(cur, list) and key.isdigit() and int(key) < len(cur):
            cur = cur[int(key)]
        elif isinstance(cur, dict) and key in cur:
            cur = cur[key]
        else:
            raise CertificateError(f"the report is malformed: it has no {'.'.join(path)}")
    return cur


def _number(doc: Any, *path: str) -> float:
    """A finite number of the report (see :func:`_need`)."""
    value = _need(doc, *path)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CertificateError(f"the report is malformed: {'.'.join(path)} is {value!r}, not a finite number")
    return float(value)


def _count(doc: Any, *path: str) -> int:
    """A count (a non-negative integer) of the report."""
    value = _need(doc, *path)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise CertificateError(f"the report is malformed: {'.'.join(path)} is {value!r}, not a count")


def _fixed(value: float, places: int = 2) -> str:
    """``value`` with ``places`` decimals, never "-0.00"."""
    text = f"{value:.{places}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _significant(value: float) -> str:
    """Three significant digits, without an exponent (0.00123, 6.61, 13.2, 999)."""
    text = f"{value:.3g}"
    return f"{float(text):.0f}" if "e" in text else text


def _lr_text(log10_lr: float) -> Any:
    """An LR for the page: three significant digits between 1/1000 and 1000, else ``10^x`` (x to 2 decimals).

    Computed from the reported log10 LR, the figure the report states (its ``lr`` is 10 to that power).
    """
    from markupsafe import Markup

    if abs(log10_lr) < 3.0:
        return Markup("{}").format(_significant(10.0**log10_lr))
    return Markup("10<sup>{}</sup>").format(_fixed(log10_lr))


def _percent_of(rate: float, places: int = 1) -> str:
    return f"{100 * rate:.{places}f} %"


def _interval(doc: Any, *path: str) -> tuple[float, float]:
    return _number(doc, *path, "0"), _number(doc, *path, "1")


def _expected(value: float) -> str:
    """An expected number of songs: two decimals below 100, else a whole number with thousands separators."""
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def _words(band: Any, supports: Any) -> str:
    """The verbal band of an entry in words, from the report's ``band`` and ``supports`` (ENFSI 2015)."""
    if supports not in ("H1", "H2") or band == "none":
        return "no support for either proposition"
    return f"{band} support for the {'first' if supports == 'H1' else 'second'} proposition"


def _misleading(figures: dict[str, Any], which: str) -> dict[str, Any]:
    """One direction of misleading evidence: rate, count, trials, units and the 95 % interval, as text."""
    rate = _number(figures, "misleading", which, "rate")
    lo, hi = _interval(figures, "misleading", which, "interval")
    return {"rate": _percent_of(rate), "count": _count(figures, "misleading", which, "count"),
            "trials": _count(figures, "misleading", which, "trials"),
            "units": _count(figures, "misleading", which, "units"),
            "interval": f"{_percent_of(lo)} to {_percent_of(hi)}"}


def _figure_row(name: str, figures: dict[str, Any]) -> dict[str, Any]:
    """A row of the per-transform table: trials, Cllr, Cllr_min, EER, both rates of misleading evidence."""
    h1, h2 = _misleading(figures, "h1"), _misleading(figures, "h2")
    return {"name": name, "h1_trials": _count(figures, "h1_trials"), "h2_trials": _count(figures, "h2_trials"),
            "cllr": _fixed(_number(figures, "cllr"), 3), "cllr_min": _fixed(_number(figures, "cllr_min"), 3),
            "eer": _percent_of(_number(figures, "eer")),
            "misleading_h1": f"{h1['rate']} ({h1['count']}/{h1['trials']})",
            "misleading_h2": f"{h2['rate']} ({h2['count']}/{h2['trials']})"}


def _lr_channel(report: dict[str, Any], ch: str) -> dict[str, Any]:
    """Everything the likelihood-ratio template shows of one channel, numbers formatted."""
    from . import plots

    res = _need(report, "channels", ch)
    cal = _need(report, "calibration", "channels", ch)
    val = _need(cal, "validation")
    lower, upper = _number(res, "bounds", "lower"), _number(res, "bounds", "upper")
    raw = _need(res, "entries")
    if not isinstance(raw, list) or not raw:
        raise CertificateError(f"the report is malformed: channel {ch} lists no song")
    entries, marks = [], []
    for rank, e in enumerate(raw, start=1):
        log10_lr = _number(e, "log10_lr")
        song_id = str(_need(e, "song_id"))
        marks.append((rank, song_id, log10_lr))
        by = e.get("listed_by")
        entries.append({
            "rank": rank, "song_id": song_id, "log10": _fixed(log10_lr),
            "log10_calibrated": _fixed(_number(e, "log10_lr_calibrated"), 4), "lr": _lr_text(log10_lr),
            "similarity": _fixed(_number(e, "similarity"), 6), "score": _fixed(_number(e, "score"), 4),
            "words": _words(e.get("band"), e.get("supports")), "bounded": e.get("bounded"),
            "band": str(e.get("band")), "supports": "first" if e.get("supports") == "H1" else
            "second" if e.get("supports") == "H2" else "neither",
            "listed_by": (f"log10 LR \u2265 {_fixed(_number(res, 'report_at'))}" if by == "report_at" else
                          f"top {_count(res, 'top_k')}" if by == "top_k" else str(by))})
    highest = _need(res, "highest")
    db = _need(res, "database_search")
    db_lo, db_hi = _interval(db, "expected_interval")
    h1, h2 = _misleading(val, "h1"), _misleading(val, "h2")
    by_transform = _need(val, "by_transform")
    if not isinstance(by_transform, dict):
        raise CertificateError(f"the report is malformed: channel {ch} has no per-transform validation")
    rows = [_figure_row(name, by_transform[name]) for name in sorted(by_transform)]
    rows.append(_figure_row("all", val))
    at_or_above = [{"x": _fixed(_number(a, "log10_lr"), 0), "count": _count(a, "count"),
                    "proportion": _percent_of(_number(a, "share"), 2),
                    "most": _percent_of(_number(a, "valid_at_most"), 2)} for a in _need(val, "h2_at_or_above")]
    title = f"channel {ch} ({_CHANNEL_WORDS.get(ch, ch)})"
    return {
        "name": ch, "words": _CHANNEL_WORDS.get(ch, ch), "result": res, "entries": entries,
        "highest": {"song_id": str(_need(highest, "song_id")), "log10": _fixed(_number(highest, "log10_lr")),
                    "lr": _lr_text(_number(highest, "log10_lr")), "words": str(_need(highest, "words"))},
        "lower": _fixed(lower), "upper": _fixed(upper), "lower_lr": _lr_text(lower), "upper_lr": _lr_text(upper),
        "clipped": sorted({str(e["bounded"]) for e in entries[:SUMMARY_ROWS] if e["bounded"] in ("upper", "lower")}),
        "report_at": _fixed(_number(res, "report_at")), "top_k": _count(res, "top_k"),
        "reported": _count(res, "at_or_above_report_at"), "catalog_size": _count(res, "catalog_size"),
        "validation": {"folds": _count(val, "folds"), "cllr": _fixed(_number(val, "cllr"), 3),
                       "cllr_min": _fixed(_number(val, "cllr_min"), 3), "eer": _percent_of(_number(val, "eer")),
                       "h1": h1, "h2": h2, "h1_units": _count(val, "h1_units"), "h2_units": _count(val, "h2_units"),
                       "h1_trials": _count(val, "h1_trials"), "h2_trials": _count(val, "h2_trials")},
        "database": {"catalog_size": _count(db, "catalog_size"), "expected": _expected(_number(db, "expected")),
                     "lo": _expected(db_lo), "hi": _expected(db_hi), "log10": _fixed(_number(db, "log10_lr")),
                     "count": _count(db, "h2_trials_at_or_above"), "trials": _count(db, "h2_trials")},
        "model": {"a": _fixed(_number(cal, "model", "a"), 6), "b": _fixed(_number(cal, "model", "b"), 6)},
        "trials": _need(cal, "trials"), "by_transform": rows, "at_or_above": at_or_above,
        "tippett": plots.tippett_plot(val, marks, bounds=(lower, upper), title=f"Tippett plot, {title}"),
        "ece": plots.ece_plot(_need(val, "ece"), title=f"ECE plot, {title}"),
    }


def lr_context(report_doc: dict[str, Any], report_bytes: bytes, proof: dict[str, Any],
                issued_at: datetime) -> dict[str, Any]:
    """The context of ``certificate-lr.html.j2``: a ``lumina-attribution-v2`` report, its proof and figures."""
    try:
        record = json.loads(proof["record"])
    except (KeyError, TypeError, ValueError):
        raise CertificateError("the inclusion proof holds no readable ledger record") from None
    calibration = _need(report_doc, "calibration")
    proposition = _need(calibration, "proposition")
    settings = calibration.get("settings", {})
    rate = calibration.get("sample_rate")
    shortest = calibration.get("shortest_positive_samples")
    channels = []
    for ch in ("P", "M"):
        try:
            channels.append(_lr_channel(report_doc, ch))
        except CertificateError as exc:
            raise CertificateError(f"channel {ch}: {exc.message}") from None
    return {
        "report": report_doc, "issued_at": _pdf_date(issued_at), "proof": proof, "record": record,
        "report_sha256": hashlib.sha256(report_bytes).hexdigest(), "summary_rows": SUMMARY_ROWS,
        "signature_method": _signature_method(report_doc),
        "proposition": {"name": str(_need(proposition, "name")), "h1": str(_need(proposition, "h1")),
                        "h2": str(_need(proposition, "h2")),
                        "validation_songs": str(proposition.get("validation_songs") or "")},
        "codes": {"query": report_doc.get("query", {}).get("carried_as") == "codes",
                  "calibration": bool(calibration.get("scored_from_codes"))},
        "channels": channels,
        "settings": settings if isinstance(settings, dict) else {},
        "shortest_positive": (f"{shortest / rate:.2f} s" if isinstance(shortest, int) and isinstance(rate, int)
                              and rate > 0 else None),
    }

