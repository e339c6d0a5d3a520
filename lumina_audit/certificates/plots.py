"""Geometry of the validation plots of a likelihood-ratio certificate (Tippett and ECE), for inline SVG.

The certificate of a ``lumina-attribution-v2`` report draws, per channel, a Tippett plot (the
proportion of same-source (H1) and of different-source (H2) validation trials whose log10 LR is at
or above x, x from the calibration's grid, -6 to 6) with this case's listed songs marked, and an
empirical cross-entropy (ECE) plot (system, PAV and neutral curves over log10 prior odds -2.5 to
2.5). These functions turn the report's plot data into coordinates and SVG path strings; the
template (``_data/templates/certificate-lr.html.j2``) only draws them, and escapes every label, so the
PDF holds vector graphics, never a raster image.

Pure and deterministic: no clock, no randomness, no plotting library; every coordinate is rounded
to 0.01 of a user unit (1 unit = 1 CSS px = 1/96 in), so the same data give the same SVG text and
therefore the same PDF bytes. Malformed plot data raise :class:`.pdf.CertificateError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .pdf import CertificateError

__all__ = [
    "Band",
    "Curve",
    "LegendItem",
    "Mark",
    "Plot",
    "Tick",
    "ece_plot",
    "fit_label",
    "tippett_plot",
]

#: Size of each plot in SVG user units (CSS px): two fit side by side in the 178 mm content box of A4 and Letter.
WIDTH, HEIGHT = 322.0, 256.0
#: The plotting frame inside it (left, top, right, bottom).
_FRAME = (40.0, 30.0, 314.0, 186.0)
#: Font sizes (user units) of tick labels and of the other texts; the template uses the same.
TICK_FONT, TEXT_FONT, LEGEND_FONT = 7.5, 8.0, 7.5
#: A conservative width of one character, in ems (DejaVu Sans: at most about 0.7 for ids, wider capitals aside).
_EM = 0.7
_H1_COLOR, _H2_COLOR = "#1f5fa8", "#b5441b"
_PAV_COLOR, _NEUTRAL_COLOR, _MARK_COLOR, _BAND_COLOR = "#2e7d4f", "#666666", "#111111", "#e4e4e4"


@dataclass(frozen=True)
class Tick:
    """An axis tick at ``pos`` (user units along its axis) with its label."""

    pos: float
    label: str


@dataclass(frozen=True)
class Curve:
    """A polyline (SVG path data ``d``) with its stroke; ``dash`` is an SVG dash array, empty for solid."""

    d: str
    color: str
    dash: str
    width: float
    label: str


@dataclass(frozen=True)
class Mark:
    """A vertical line (``top`` to ``bottom``) at ``x``, and its label's position and anchor (start, middle, end)."""

    x: float
    top: float
    bottom: float
    label: str
    label_x: float
    label_y: float
    anchor: str
    strong: bool


@dataclass(frozen=True)
class Band:
    """A filled rectangle behind the curves (the Tippett plot's ELUB range)."""

    x: float
    y: float
    width: float
    height: float
    color: str


@dataclass(frozen=True)
class LegendItem:
    """One legend row: a sample (a line, or a filled box when ``box``) at (x, y) and its label to the right."""

    x: float
    y: float
    label: str
    color: str
    dash: str
    width: float
    box: bool


@dataclass(frozen=True)
class Plot:
    """Everything the template draws for one plot, in user units of a ``width`` x ``height`` viewBox."""

    title: str
    width: float
    height: float
    left: float
    top: float
    right: float
    bottom: float
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    x_label: str
    y_label: str
    curves: tuple[Curve, ...]
    marks: tuple[Mark, ...]
    bands: tuple[Band, ...]
    legend: tuple[LegendItem, ...]
    tick_font: float = TICK_FONT
    text_font: float = TEXT_FONT
    legend_font: float = LEGEND_FONT

    @property
    def x_label_pos(self) -> tuple[float, float]:
        """Where the x axis's label is centred (below the tick labels)."""
        return _r((self.left + self.right) / 2), _r(self.bottom + 22)

    @property
    def y_label_pos(self) -> tuple[float, float]:
        """Where the y axis's label is centred (it is drawn rotated by -90 degrees)."""
        return 10.0, _r((self.top + self.bottom) / 2)


def _r(v: float) -> float:
    """A coordinate rounded to 0.01 (and never -0.0), so that its text is short and always the same."""
    out = round(v, 2)
    return 0.0 if out == 0 else out


def _num(v: float) -> str:
    text = f"{_r(v):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _path(points: Sequence[tuple[float, float]]) -> str:
    """SVG path data through ``points``, consecutive duplicates dropped."""
    parts: list[str] = []
    last: tuple[float, float] | None = None
    for x, y in points:
        p = (_r(x), _r(y))
        if p == last:
            continue
        parts.append(f"{'M' if last is None else 'L'}{_num(p[0])} {_num(p[1])}")
        last = p
    return " ".join(parts)


def _clipped_path(points: Sequence[tuple[float, float]], top: float, bottom: float) -> str:
    """SVG path data through ``points``, cut where they leave the band ``top <= y <= bottom`` (SVG y grows down).

    Where a segment crosses the band's edge the crossing point is computed, so the curve stops at the frame
    instead of running along it; outside parts are not drawn.
    """
    pieces: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []

    def inside(p: tuple[float, float]) -> bool:
        return top <= p[1] <= bottom

    def edge(p: tuple[float, float], q: tuple[float, float]) -> tuple[float, float]:
        y = top if (p[1] < top or q[1] < top) else bottom
        t = (y - p[1]) / (q[1] - p[1])
        return (p[0] + t * (q[0] - p[0]), y)

    prev: tuple[float, float] | None = None
    for p in points:
        if prev is None:
            if inside(p):
                current.append(p)
        elif inside(prev) and inside(p):
            current.append(p)
        elif inside(prev) and not inside(p):
            current.append(edge(prev, p))
            pieces.append(current)
            current = []
        elif not inside(prev) and inside(p):
            current = [edge(prev, p), p]
        prev = p
    if current:
        pieces.append(current)
    return " ".join(_path(piece) for piece in pieces if len(piece) > 1)


def fit_label(text: str, room: float, font: float = TEXT_FONT, em: float = _EM) -> str:
    """``text`` cut (with an ellipsis) to what ``room`` user units hold at ``font``.

    ``em`` is the width of a character in ems that is assumed: the default is conservative for song ids
    (which may be capitals or digits); the fixed, mostly lower-case texts of the legends use less.
    """
    most = max(1, int(room / (em * font)))
    return text if len(text) <= most else text[: max(0, most - 1)] + "\u2026"


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CertificateError(f"the report's plot data are malformed: {what} is {value!r}, not a finite number")
    return float(value)


def _grid(data: Mapping[str, Any], what: str) -> tuple[float, float, int]:
    """(start, step, points) of a plot grid, checked."""
    if not isinstance(data, Mapping):
        raise CertificateError(f"the report's plot data are malformed: {what} is not an object")
    start = _finite(data.get("start"), f"{what}.start")
    step = _finite(data.get("step"), f"{what}.step")
    points = data.get("points")
    if not isinstance(points, int) or isinstance(points, bool) or points < 2 or not step > 0:
        raise CertificateError(f"the report's plot data are malformed: {what} has {points!r} points of step {step!r}")
    return start, step, points


def _series(data: Mapping[str, Any], key: str, points: int, what: str) -> list[float]:
    values = data.get(key)
    if not isinstance(values, list) or len(values) != points:
        raise CertificateError(f"the report's plot data are malformed: {what}.{key} is not a list of {points} values")
    return [_finite(v, f"{what}.{key}") for v in values]


def _step(span: float, most: int, steps: Sequence[float]) -> float:
    """The smallest of ``steps`` that cuts ``span`` into at most ``most`` intervals."""
    for s in steps:
        if span / s <= most + 1e-9:
            return s
    return steps[-1]


def _ticks(lo: float, hi: float, step: float, to_px: Any) -> tuple[Tick, ...]:
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return tuple(Tick(_r(to_px(i * step)), _num(i * step)) for i in range(first, last + 1))


def _legend(items: Sequence[tuple[str, str, str, float, bool]], top: float) -> tuple[LegendItem, ...]:
    """Legend rows in two columns below the x axis's label: (label, color, dash, width, box) each."""
    left = 8.0
    column = (WIDTH - 2 * left) / 2
    out = []
    for i, (label, color, dash, width, box) in enumerate(items):
        x = left + (i % 2) * column
        y = top + 11 * (i // 2)
        out.append(LegendItem(_r(x), _r(y), fit_label(label, column - 26, LEGEND_FONT, 0.6), color, dash, width, box))
    return tuple(out)


def _mark_labels(marks: Sequence[tuple[int, float]], row_y: Sequence[float]) -> list[tuple[str, float, float]]:
    """Labels of the other listed songs' ticks: ranks of songs closer than 12 units share a label ("2-4", "2, 5").

    Consecutive labels alternate between the rows ``row_y``; each is kept inside the plot's width.
    """
    clusters: list[list[tuple[int, float]]] = []
    for rank, x in sorted(marks, key=lambda m: (m[1], m[0])):
        if clusters and x - clusters[-1][-1][1] < 12.0:
            clusters[-1].append((rank, x))
        else:
            clusters.append([(rank, x)])
    out = []
    for i, cluster in enumerate(clusters):
        ranks = sorted(r for r, _ in cluster)
        if len(ranks) > 2 and ranks == list(range(ranks[0], ranks[-1] + 1)):
            text = f"{ranks[0]}\u2013{ranks[-1]}"
        else:
            text = ", ".join(str(r) for r in ranks)
        text = fit_label(text, 70.0, TICK_FONT)
        half = len(text) * _EM * TICK_FONT / 2
        x = sum(x for _, x in cluster) / len(cluster)
        x = min(max(x, half + 2), WIDTH - half - 2)
        out.append((text, _r(x), row_y[i % len(row_y)]))
    return out


def tippett_plot(validation: Mapping[str, Any], listed: Sequence[tuple[int, str, float]], *,
                 bounds: tuple[float, float], title: str) -> Plot:
    """A Tippett plot of one channel's validation, with this case's listed songs marked.

    ``validation`` is the report's ``calibration.channels[ch].validation`` (its ``tippett`` counts and
    ``h1_trials``/``h2_trials``). ``listed`` holds (rank, song id, reported log10 LR) of the case's listed
    songs, rank 1 the highest: it gets a full-height line labelled with its id and value; the others get
    ticks at the top of the frame, labelled with their ranks. ``bounds`` (the ELUB range) is shaded.
    """
    tippett = validation.get("tippett") if isinstance(validation, Mapping) else None
    if not isinstance(tippett, Mapping):
        raise CertificateError("the report's plot data are malformed: the validation has no tippett object")
    start, step, points = _grid(tippett, "tippett")
    totals = []
    for key in ("h1_trials", "h2_trials"):
        n = validation.get(key)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise CertificateError(f"the report's plot data are malformed: validation.{key} is {n!r}")
        totals.append(n)
    left, top, right, bottom = _FRAME
    lo, hi = start, start + step * (points - 1)

    def px(x: float) -> float:
        return left + (x - lo) / (hi - lo) * (right - left)

    def py(p: float) -> float:
        return bottom - p * (bottom - top)

    curves = []
    for key, n, color, dash, label in (
            ("h1_at_or_above", totals[0], _H1_COLOR, "", "H1: same-source trials"),
            ("h2_at_or_above", totals[1], _H2_COLOR, "5 3", "H2: different-source trials")):
        counts = _series(tippett, key, points, "tippett")
        if any(not 0 <= c <= n for c in counts):
            raise CertificateError(f"the report's plot data are malformed: tippett.{key} holds a count outside 0..{n}")
        pts = [(px(start + i * step), py(c / n)) for i, c in enumerate(counts)]
        keep = [p for i, p in enumerate(pts)
                if i in (0, len(pts) - 1) or counts[i] != counts[i - 1] or counts[i] != counts[i + 1]]
        curves.append(Curve(_path(keep), color, dash, 1.4, label))
    low, up = (min(max(b, lo), hi) for b in bounds)
    bands = (Band(_r(px(low)), top, _r(px(up) - px(low)), _r(bottom - top), _BAND_COLOR),) if up > low else ()
    marks: list[Mark] = []
    others: list[tuple[int, float]] = []
    for rank, song_id, value in sorted(listed, key=lambda m: m[0]):
        x = _r(px(min(max(_finite(value, "a listed log10 LR"), lo), hi)))
        if rank == 1:
            text = f"1: {song_id} ({value:.2f})"
            if x >= (left + right) / 2:
                marks.append(Mark(x, top, bottom, fit_label(text, x - 5), _r(x - 3), 9.0, "end", True))
            else:
                marks.append(Mark(x, top, bottom, fit_label(text, WIDTH - x - 5), _r(x + 3), 9.0, "start", True))
        else:
            others.append((rank, x))
    marks.extend(Mark(x, top, _r(top + 7), "", x, 0.0, "middle", False) for _, x in sorted(others))
    marks.extend(Mark(x, top, top, text, x, y, "middle", False) for text, x, y in _mark_labels(others, (19.0, 27.0)))
    legend = _legend([(curves[0].label, _H1_COLOR, "", 1.4, False), (curves[1].label, _H2_COLOR, "5 3", 1.4, False),
                      ("highest LR of this case (1)", _MARK_COLOR, "", 1.0, False),
                      ("reported range (ELUB)", _BAND_COLOR, "", 0.0, True)], bottom + 36)
    return Plot(title, WIDTH, HEIGHT, left, top, right, bottom,
                _ticks(lo, hi, _step(hi - lo, 12, (1.0, 2.0, 5.0, 10.0)), px), _ticks(0.0, 1.0, 0.25, py),
                "log10 LR (x)", "proportion of trials with log10 LR \u2265 x", tuple(curves), tuple(marks), bands,
                legend)


def ece_plot(ece: Mapping[str, Any], *, title: str) -> Plot:
    """An empirical cross-entropy plot of one channel's validation: system, PAV and neutral curves.

    ``ece`` is the report's ``calibration.channels[ch].validation.ece``. The y range is 0 to a round
    value above the neutral and PAV curves (and the system's, up to 1.5 times the neutral's maximum;
    a system curve above that is cut at the frame).
    """
    if not isinstance(ece, Mapping):
        raise CertificateError("the report's plot data are malformed: the validation has no ece object")
    start, step, points = _grid(ece, "ece")
    series = {key: _series(ece, key, points, "ece") for key in ("system", "pav", "neutral")}
    left, top, right, bottom = _FRAME
    lo, hi = start, start + step * (points - 1)
    ceiling = max(series["neutral"] + series["pav"])
    highest = max([ceiling, min(max(series["system"]), 1.5 * ceiling), 1e-6])
    y_step = _step(highest, 6, (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0))
    y_max = math.ceil(highest / y_step - 1e-9) * y_step

    def px(x: float) -> float:
        return left + (x - lo) / (hi - lo) * (right - left)

    def py(v: float) -> float:
        return bottom - v / y_max * (bottom - top)

    styles = {"system": (_H1_COLOR, "", 1.5, "system (these LRs)"),
              "pav": (_PAV_COLOR, "5 3", 1.3, "PAV (best calibration)"),
              "neutral": (_NEUTRAL_COLOR, "1.5 2.5", 1.3, "neutral (LR = 1)")}
    curves = []
    for key in ("neutral", "pav", "system"):
        color, dash, width, label = styles[key]
        pts = [(px(start + i * step), py(v)) for i, v in enumerate(series[key])]
        curves.append(Curve(_clipped_path(pts, top - 1e-6, bottom + 1e-6), color, dash, width, label))
    legend = _legend([(styles[k][3], styles[k][0], styles[k][1], styles[k][2], False)
                      for k in ("system", "pav", "neutral")], bottom + 36)
    return Plot(title, WIDTH, HEIGHT, left, top, right, bottom, _ticks(lo, hi, 0.5, px),
                _ticks(0.0, y_max, y_step, py), "log10 prior odds", "empirical cross-entropy (bits)",
                tuple(curves), (), (), legend)
