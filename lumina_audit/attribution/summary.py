"""What a calibration file or an attribution report states, as lines and tables of plain text.

Pure functions from a document, as :func:`~.reports.read_calibration` and
:func:`~.reports.read_report` return it, to a list of :data:`Block` (a line of text or a
:class:`Table` of strings). ``lumina-audit calibration show`` and ``report show`` print them;
a review script or a notebook can print them the same way. Nothing here reads a file or
computes a figure: every number shown is the document's, only formatted.

- :func:`report_blocks`: a ``lumina-attribution-report`` version 3 (``lumina-attribution-v2``):
  the query, the propositions, and per channel the listed songs with their likelihood ratios,
  the bounds, the validation and the database-search figure.
- :func:`calibration_blocks`: a ``lumina-calibration`` of any version: version 3 (the
  likelihood-ratio model, its bounds, trial counts, and the validation figures overall and
  per transform), versions 1 and 2 (``lumina-attribution-v1``'s noise floor, and for
  version 2 its measured error rates).

A document that lacks a figure these need raises :class:`~.reports.ReportError` naming it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from .reports import ReportError

__all__ = [
    "CHANNEL_NAMES",
    "DETECTION_COLUMNS",
    "ENTRY_COLUMNS",
    "LR_NOT_PROBABILITY",
    "Justify",
    "Block",
    "Table",
    "amount_text",
    "calibration_blocks",
    "interval_text",
    "log10_lr_text",
    "lr_text",
    "rate_text",
    "report_blocks",
    "validation_table",
]

#: The channels, in the order they are shown, with their names.
CHANNEL_NAMES: dict[str, str] = {"P": "P (composition)", "M": "M (production)"}
#: Stated under every likelihood-ratio report (attribution-v2 section 7).
LR_NOT_PROBABILITY = "A likelihood ratio is not the probability that the proposition is true."
_PRIOR_ODDS = "That needs prior odds, which are the court's, not the expert's."

Justify: TypeAlias = Literal["left", "right"]
_LEFT: Justify = "left"
_RIGHT: Justify = "right"


@dataclass(frozen=True)
class Table:
    """A table of text: a title line, column headers, rows of cells and how each column is justified."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    justify: tuple[Justify, ...]


#: A line of text, or a table.
Block: TypeAlias = str | Table


# ---------------------------------------------------------------------------------------------------------------
# Numbers as text


def log10_lr_text(x: float) -> str:
    """A log10 LR with its sign and two decimals (the resolution of the bounds): ``+1.12``, ``-0.43``."""
    return f"{x:+.2f}"


def lr_text(lr: float) -> str:
    """An LR in plain numbers: ``13.2``, ``1,250``; below 1 as its inverse, ``1/2.69``."""
    if not math.isfinite(lr) or lr <= 0:
        return f"{lr:g}"
    if lr < 1:
        return "1/" + lr_text(1 / lr)
    return f"{lr:,.0f}" if lr >= 1000 else f"{lr:.3g}"


def amount_text(x: float) -> str:
    """A count or an expected count: three significant digits, whole numbers from 1,000, tiny ones in e-notation."""
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}" if abs(x) >= 0.001 else f"{x:.2e}"


def interval_text(interval: Sequence[float], fmt: Callable[[float], str] = amount_text) -> str:
    """``[lo, hi]``."""
    lo, hi = interval
    return f"[{fmt(lo)}, {fmt(hi)}]"


def _four(x: float) -> str:
    return f"{x:.4f}"


def rate_text(figure: Mapping[str, Any]) -> str:
    """A rate with its 95 % interval: ``0.1250 [0.0063, 0.8059]``."""
    return f"{figure['rate']:.4f} {interval_text(figure['interval'], _four)}"


def _bounds_text(bounds: Mapping[str, Any]) -> str:
    return f"[{log10_lr_text(bounds['lower'])}, {log10_lr_text(bounds['upper'])}]"


def _guarded(what: str, source: str, build: Callable[[], list[Block]]) -> list[Block]:
    try:
        return build()
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        missing = f"lacks {exc}" if isinstance(exc, KeyError) else f"has a malformed figure ({exc})"
        raise ReportError(f"{source}: this {what} {missing}") from None


def _propositions(prop: Mapping[str, Any]) -> list[Block]:
    return [f"Propositions ({prop['name']}), asked of each catalog song j:",
            f"  H1: {prop['h1']}",
            f"  H2: {prop['h2']}",
            "A likelihood ratio (LR) above 1 supports H1, below 1 supports H2; log10 LR +1 is an LR of 10."]


def _version(doc: Mapping[str, Any]) -> int:
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"version {version!r}")
    return version


# ---------------------------------------------------------------------------------------------------------------
# Reports (version 3)

#: The columns of the table of listed songs of a report's channel.
ENTRY_COLUMNS = ("song", "log10 LR", "LR", "verbal band", "S-norm score", "similarity", "bounds", "listed by")
_ENTRY_JUSTIFY: tuple[Justify, ...] = ("left", "right", "right", "left", "right", "right", "left", "left")


def _band(strength: str, supports: str | None) -> str:
    return f"{strength} support for {supports}" if supports else f"{strength} (neither proposition)"


def _entry_row(e: Mapping[str, Any], res: Mapping[str, Any]) -> tuple[str, ...]:
    bounded = e["bounded"]
    clipped = (f"clipped at {bounded} bound (calibrated {log10_lr_text(e['log10_lr_calibrated'])})"
               if bounded else "")
    listed = {"report_at": f"report_at (log10 LR >= {res['report_at']:g})",
              "top_k": f"top_k ({res['top_k']})"}.get(e["listed_by"], str(e["listed_by"]))
    return (str(e["song_id"]), log10_lr_text(e["log10_lr"]), lr_text(e["lr"]), _band(e["band"], e["supports"]),
            f"{e['score']:.3f}", f"{e['similarity']:.4f}", clipped, listed)


def _validation_line(v: Mapping[str, Any]) -> str:
    m = v["misleading"]
    h1, h2 = m["h1"], m["h2"]
    return (f"validation ({v['folds']} folds, cross-validated): Cllr {v['cllr']:.3f}, Cllr_min {v['cllr_min']:.3f}, "
            f"EER {v['eer']:.3f}; misleading evidence H1 {rate_text(h1)} ({h1['count']} of {h1['trials']}), "
            f"H2 {rate_text(h2)} ({h2['count']} of {h2['trials']}), 95 % intervals counted in units; "
            f"H1 {v['h1_trials']} trials of {v['h1_units']} units, H2 {v['h2_trials']} trials of {v['h2_units']} "
            f"units")


def _database_line(db: Mapping[str, Any]) -> str:
    return (f"database search: expected number of unrelated songs of a catalog of {db['catalog_size']:,} reaching "
            f"the highest LR (log10 LR {log10_lr_text(db['log10_lr'])}) by chance: {amount_text(db['expected'])} "
            f"{interval_text(db['expected_interval'])} (share of validation H2 trials at or above it "
            f"{amount_text(db['share'])} {interval_text(db['share_interval'])}, {db['h2_trials_at_or_above']} of "
            f"{db['h2_trials']} trials, {db['h2_units']} units)")


def _report_channel(ch: str, res: Mapping[str, Any], cal: Mapping[str, Any]) -> list[Block]:
    hi = res["highest"]
    bounds = res["bounds"]
    listed = len(res["entries"])
    return [
        "",
        f"{CHANNEL_NAMES[ch]}: highest {hi['song_id']}, log10 LR {log10_lr_text(hi['log10_lr'])} "
        f"(LR {lr_text(hi['lr'])}): {hi['words']}",
        Table(title=f"listed: {listed} of {res['catalog_size']:,} songs, every song with log10 LR >= "
                    f"{res['report_at']:g} ({res['at_or_above_report_at']}), then the top_k ({res['top_k']}) highest "
                    f"of the others",
              columns=ENTRY_COLUMNS, rows=tuple(_entry_row(e, res) for e in res["entries"]),
              justify=_ENTRY_JUSTIFY),
        f"bounds: every log10 LR is clipped to {_bounds_text(bounds)} (LR {lr_text(10 ** bounds['lower'])} to "
        f"{lr_text(10 ** bounds['upper'])}), the ELUB bounds of the validation",
        _validation_line(cal["validation"]),
        _database_line(res["database_search"]),
    ]


def report_blocks(doc: Mapping[str, Any], digest: str, source: str = "report") -> list[Block]:
    """What a version 3 report (``lumina-attribution-v2``) states, to print; ``digest`` is its SHA-256."""

    def build() -> list[Block]:
        if _version(doc) < 3:
            raise ReportError(f"{source}: a version {doc['version']} report states no likelihood ratios; "
                              "it shows as a noise-floor table")
        q, cal, led = doc["query"], doc["calibration"], doc["ledger"]
        out: list[Block] = [
            f"query {q['song_id']}  (file {q['file_sha256'][:16]}..., PCM {q['pcm_sha256'][:16]}...)",
            f"report {digest[:16]}...  ledger record {led['record']} of {led['origin']}",
            f"method {doc['method']}, signatures {doc['signature_method']}, calibration {cal['sha256'][:16]}..., "
            f"catalog of {doc['catalog']['songs']:,} songs ({doc['catalog']['sha256'][:16]}...)",
            *_propositions(cal["proposition"]),
        ]
        for ch in CHANNEL_NAMES:
            out += _report_channel(ch, doc["channels"][ch], cal["channels"][ch])
        return [*out, "", f"{LR_NOT_PROBABILITY} {_PRIOR_ODDS}"]

    return _guarded("report", source, build)


# ---------------------------------------------------------------------------------------------------------------
# Calibrations


def _share_columns(v: Mapping[str, Any]) -> list[tuple[Any, str]]:
    return [(row["log10_lr"], f"H2 >= {row['log10_lr']:g} (<= {row['valid_at_most']:g})")
            for row in v["h2_at_or_above"]]


def _share_cell(v: Mapping[str, Any], at: Any) -> str:
    row = next((r for r in v["h2_at_or_above"] if r["log10_lr"] == at), None)
    if row is None:
        return "-"
    over = f" > {row['valid_at_most']:g}" if row["share"] > row["valid_at_most"] else ""
    return f"{row['share']:.4f} ({row['count']}){over}"


def validation_table(v: Mapping[str, Any]) -> Table:
    """The validation figures of one channel of a version 3 calibration: overall, then per transform."""
    shares = _share_columns(v)
    columns = ("transform", "H1 trials", "H2 trials", "units H1/H2", "Cllr", "Cllr_min", "EER", "misleading H1 [95 %]",
               "misleading H2 [95 %]", *(name for _, name in shares), "bounds (log10)")
    rows = []
    for name, f in [("all", v), *sorted(v.get("by_transform", {}).items())]:
        m = f["misleading"]
        rows.append((name, str(f["h1_trials"]), str(f["h2_trials"]), f"{f['h1_units']}/{f['h2_units']}",
                     f"{f['cllr']:.3f}", f"{f['cllr_min']:.3f}", f"{f['eer']:.3f}", rate_text(m["h1"]),
                     rate_text(m["h2"]), *(_share_cell(f, at) for at, _ in shares), _bounds_text(f["bounds"])))
    justify = (_LEFT, *(_RIGHT,) * (len(columns) - 1))
    return Table(title=f"  validation ({v['folds']} folds, cross-validated; misleading-evidence intervals counted "
                       "in units; H2 >= x: the share (count) of H2 trials with log10 LR >= x, valid when at most "
                       "10^-x)", columns=columns, rows=tuple(rows), justify=justify)


def _identity(doc: Mapping[str, Any], digest: str) -> list[Block]:
    space = doc.get("signature_space", {})
    method = doc.get("signature_method", space.get("method", "(not named)"))
    catalog = doc["catalog"]
    return [f"calibration {digest} (SHA-256 of the file)",
            f"{doc['format']} version {doc['version']}, method {doc.get('method', 'lumina-attribution-v1')}",
            f"signature method {method}, signature space {doc['signature_space_sha256']}",
            f"catalog of {catalog['songs']:,} songs {catalog['sha256']}, manifest {doc.get('manifest_digest')}"]


def _counts_line(doc: Mapping[str, Any]) -> str:
    positives = f", P {doc['P']:,} positives" if "P" in doc else ""
    return f"C {doc['C']:,} controls, N {doc['N']:,} catalog songs{positives}"


def _lr_calibration(doc: Mapping[str, Any], digest: str) -> list[Block]:
    settings = ", ".join(f"{k} {v}" for k, v in sorted(doc["settings"].items()))
    arrays = ", ".join(f"{name} {a['dtype']} {'x'.join(map(str, a['shape']))}" for name, a in doc["arrays"].items())
    out: list[Block] = [*_identity(doc, digest), _counts_line(doc), f"settings: {settings}",
                        f"arrays (in the archive, not shown): {arrays}", *_propositions(doc["proposition"])]
    for ch in CHANNEL_NAMES:
        c = doc["channels"][ch]
        model, t = c["model"], c["trials"]
        out += ["", CHANNEL_NAMES[ch],
                f"  model: natural log LR = a x t + b (t the S-norm score), a {model['a']:.6g}, b {model['b']:.6g}",
                f"  bounds: log10 LR clipped to {_bounds_text(c['bounds'])} (ELUB)",
                f"  trials: H1 {t['h1']:,}, H2 {t['h2']:,} (controls {t['h2_controls']:,}, positives "
                f"{t['h2_positives']:,}, negatives {t['h2_negatives']:,}); units {t['units']:,} (source songs "
                f"{t['source_units']:,}, controls {t['controls']:,}, negatives {t['negatives']:,})",
                validation_table(c["validation"])]
    return out


#: The columns of the detection table of a version 2 calibration's channel.
DETECTION_COLUMNS = ("positives", "cases", "detected", "detection rate", "missed rate", "median rank")


def _detection(det: Mapping[str, Any] | None) -> Block:
    if det is None:
        return "  detection of derived copies: not measured (no positives)"
    rows = []
    for name, f in [("all", det["overall"]), *sorted(det["by_transform"].items())]:
        rows.append((name, str(f["cases"]), str(f["detected"]), f"{f['detection_rate']:.4f}",
                     f"{f['missed_rate']:.4f}", f"{f['median_rank']:g}"))
    return Table(title="  detection of derived copies (a source above tau; median rank of the sources)",
                 columns=DETECTION_COLUMNS, rows=tuple(rows), justify=(_LEFT, *(_RIGHT,) * 5))


def _noise_floor(doc: Mapping[str, Any], digest: str) -> list[Block]:
    out: list[Block] = [*_identity(doc, digest), _counts_line(doc)]
    for ch in CHANNEL_NAMES:
        c = doc["channels"][ch]
        fpr = c.get("false_positive_rate")
        out += ["", CHANNEL_NAMES[ch],
                f"  tau {c['tau']:.4f} = mu {c['mu']:.4f} + {c['k']:g} x sigma {c['sigma']:.4f}; false-positive rate "
                + (f"{fpr:.4f}" if fpr is not None else "not stated")
                + " (pairs of a control and a catalog song above tau)"]
        if doc["version"] >= 2:
            out += [f"  unrelated attributed rate {c['unrelated_attributed_rate']:.4f} (controls with at least one "
                    "catalog song above tau)", _detection(c["detection"])]
    return out


def calibration_blocks(doc: Mapping[str, Any], digest: str, source: str = "calibration") -> list[Block]:
    """What a calibration states, to print: version 3 (likelihood ratios) or versions 1 and 2 (noise floor)."""

    def build() -> list[Block]:
        return _lr_calibration(doc, digest) if _version(doc) >= 3 else _noise_floor(doc, digest)

    return _guarded("calibration", source, build)
