"""Performance metrics of a likelihood-ratio system (``lumina-attribution-v2`` section 5).

Each takes validation log10 LRs ``llrs`` (float64 [T]) and labels ``h1`` (bool [T]: True for
a same-source trial, False for a different-source one), and gives the same bits on every
machine: counts are integers, sums are in one fixed order (:func:`.numeric.lane_sum`) and the
transcendental functions are :mod:`.numeric`'s. The definitions are those of ``lir`` 1.3.1
(Netherlands Forensic Institute), against which the tests check them on fixed arrays:

- :func:`cllr`: log-likelihood-ratio cost, log base 2, class-balanced (Brümmer and du Preez 2006);
- :func:`pav`: pool-adjacent-violators on the LLRs (equal LLRs first pooled; blocks compared by
  integer cross-multiplication, so merging is exact); :func:`cllr_min` is :func:`cllr` of the
  LLRs it gives, and :func:`eer` the equal error rate of its ROC convex hull (BOSARIS
  ``rocch2eer``);
- :func:`elub`: empirical lower and upper bounds (Vergeer et al. 2016), ``lir``'s
  ``elub(add_misleading=1, step_size=0.01)`` on the threshold grid ``k / 100``;
- :func:`clopper_pearson`: the exact binomial 95 % interval of ``x`` successes in ``n``, ``x``
  possibly fractional (an effective count: a rate times a number of units);
- :func:`tippett` and :func:`ece`: the data behind a Tippett plot (counts at or above each
  log10 LR of a grid) and an empirical cross-entropy plot.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import numeric as nm

__all__ = [
    "ECE_GRID",
    "TIPPETT_GRID",
    "Grid",
    "Pav",
    "cllr",
    "cllr_min",
    "clopper_pearson",
    "ece",
    "eer",
    "elub",
    "pav",
    "tippett",
]

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Grid:
    """log10 values ``(first + i) / 100`` for i = 0 .. points - 1 (each one correctly rounded division)."""

    first: int
    points: int

    @property
    def values(self) -> F64:
        return (np.arange(self.points, dtype=np.float64) + self.first) / 100.0

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.first / 100.0, "step": 0.01, "points": self.points}


#: Tippett plots: log10 LR from -6 to 6 in steps of 0.01 (spec section 5).
TIPPETT_GRID = Grid(-600, 1201)
#: ECE plots: log10 prior odds from -2.5 to 2.5 in steps of 0.01.
ECE_GRID = Grid(-250, 501)
_LN2 = nm.LN2


def _split(llrs: F64, h1: B) -> tuple[F64, F64]:
    if not isinstance(llrs, np.ndarray) or llrs.dtype != np.float64 or llrs.ndim != 1:
        raise ValueError("llrs must be a one-dimensional float64 array")
    if not isinstance(h1, np.ndarray) or h1.dtype != np.bool_ or h1.shape != llrs.shape:
        raise ValueError("labels must be a bool array of the shape of llrs")
    if np.isnan(llrs).any():
        raise ValueError("llrs hold a NaN")
    one, two = llrs[h1], llrs[~h1]
    if one.size == 0 or two.size == 0:
        raise ValueError("both propositions need trials")
    return one, two


def _mean_log2_1p_lr(llrs: F64, sign: float) -> float:
    """mean(log2(1 + 10**(sign * llr))), exactly summed."""
    return nm.lane_sum(nm.softplus(sign * llrs * nm.LN10)) / _LN2 / llrs.size


def cllr(llrs: F64, h1: B) -> float:
    """C_llr = (mean over H1 of log2(1 + 1/LR) + mean over H2 of log2(1 + LR)) / 2; 0 perfect, 1 uninformative."""
    one, two = _split(llrs, h1)
    return (_mean_log2_1p_lr(one, -1.0) + _mean_log2_1p_lr(two, 1.0)) / 2.0


@dataclass(frozen=True)
class Pav:
    """Pool-adjacent-violators of labelled LLRs: blocks in increasing order of LLR.

    ``ones[b]`` and ``twos[b]`` count the H1 and H2 trials of block ``b``; ``upper[b]`` is the
    largest LLR in it; ``block_of`` maps each trial to its block.
    """

    ones: I64
    twos: I64
    upper: F64
    block_of: I64

    def llrs(self) -> F64:
        """log10 LR of each block: log10((ones / N1) / (twos / N2)); +-inf where a block holds one class only."""
        n1, n2 = float(self.ones.sum()), float(self.twos.sum())
        num = self.ones.astype(np.float64) * n2  # exact below 2**53
        den = self.twos.astype(np.float64) * n1
        with np.errstate(divide="ignore"):
            out = (nm.log(num) - nm.log(den)) / nm.LN10
        out = np.where(self.twos == 0, np.inf, out)
        return np.where(self.ones == 0, -np.inf, out)


def pav(llrs: F64, h1: B) -> Pav:
    """The PAV blocks of ``llrs``: equal values pooled first, then adjacent blocks merged while the
    left one's H1 proportion is at least the right one's (``ones_l * twos_r >= ones_r * twos_l``)."""
    _split(llrs, h1)
    order = np.argsort(llrs, kind="stable")
    values = llrs[order]
    starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
    group_of_sorted = np.cumsum(np.concatenate([[True], values[1:] != values[:-1]])) - 1
    labels = h1[order]
    g_ones = np.bincount(group_of_sorted, weights=labels, minlength=starts.size).astype(np.int64)
    g_all = np.diff(np.concatenate([starts, [values.size]])).astype(np.int64)
    g_twos = g_all - g_ones
    ones: list[int] = []
    twos: list[int] = []
    groups: list[int] = []  # groups per block
    for o, t in zip(g_ones.tolist(), g_twos.tolist(), strict=True):
        ones.append(o)
        twos.append(t)
        groups.append(1)
        while len(ones) > 1 and ones[-2] * twos[-1] >= ones[-1] * twos[-2]:
            o2, t2, g2 = ones.pop(), twos.pop(), groups.pop()
            ones[-1] += o2
            twos[-1] += t2
            groups[-1] += g2
    group_block = np.repeat(np.arange(len(groups), dtype=np.int64), groups)
    block_of = np.empty(llrs.size, dtype=np.int64)
    block_of[order] = group_block[group_of_sorted]
    last_group = np.cumsum(groups) - 1
    upper = values[np.concatenate([starts[1:], [values.size]])[last_group] - 1]
    return Pav(np.asarray(ones, dtype=np.int64), np.asarray(twos, dtype=np.int64), upper, block_of)


def cllr_min(llrs: F64, h1: B) -> float:
    """C_llr of the PAV-calibrated LLRs: what the system's discrimination alone allows."""
    p = pav(llrs, h1)
    block = p.llrs()
    n1, n2 = int(p.ones.sum()), int(p.twos.sum())
    # Per block: count * log2(1 + LR**-+1); a block of one class contributes 0 for it (+-inf LLR).
    c1 = nm.softplus(-block[p.ones > 0] * nm.LN10) * p.ones[p.ones > 0]
    c2 = nm.softplus(block[p.twos > 0] * nm.LN10) * p.twos[p.twos > 0]
    return (nm.lane_sum(c1) / _LN2 / n1 + nm.lane_sum(c2) / _LN2 / n2) / 2.0


def eer(llrs: F64, h1: B) -> float:
    """Equal error rate of the ROC convex hull (the PAV blocks), as BOSARIS ``rocch2eer`` computes it."""
    p = pav(llrs, h1)
    n1, n2 = float(p.ones.sum()), float(p.twos.sum())
    # Threshold moving up across the blocks: misses grow, false alarms shrink.
    miss = np.concatenate([[0], np.cumsum(p.ones)]).astype(np.float64) / n1
    fa = (n2 - np.concatenate([[0], np.cumsum(p.twos)]).astype(np.float64)) / n2
    best = 0.0
    for i in range(miss.size - 1):
        x0, y0, x1, y1 = float(fa[i]), float(miss[i]), float(fa[i + 1]), float(miss[i + 1])
        if x0 - x1 == 0.0 or y0 - y1 == 0.0:
            continue
        det = x0 * y1 - x1 * y0
        seg = det / ((y1 - y0) + (x0 - x1))
        best = max(best, seg)
    return best


def elub(llrs: F64, h1: B, add_misleading: int = 1) -> tuple[float, float]:
    """Empirical lower and upper bounds of log10 LRs (Vergeer et al. 2016), as ``lir`` 1.3.1 ``elub``.

    Thresholds are ``k / 100``; a threshold is unacceptable where the expected utility of the
    neutral system is below that of the system with ``add_misleading`` misleading LRs added on
    each side; the bounds are the acceptable thresholds next to the unacceptable ones closest to
    0, never on the wrong side of 0.
    """
    one, two = _split(llrs, h1)
    n1, n2 = one.size, two.size
    clipped_min = max(float(llrs.min()), -9.0)
    clipped_max = min(float(llrs.max()), 9.0)
    llr_min = max(clipped_min, -float(nm.log(float(n1 + 1))) / nm.LN10)
    llr_max = min(clipped_max, float(nm.log(float(n2 + 1))) / nm.LN10)
    k_min = min(0, int(llr_min // 0.01))
    k_max = max(0, int(llr_max // 0.01) + 1)
    ks = np.arange(k_min, k_max + 1, dtype=np.int64)
    x = ks.astype(np.float64) / 100.0
    s1 = np.sort(np.clip(one, -9.0, 9.0))
    s2 = np.sort(np.clip(two, -9.0, 9.0))
    above1 = (n1 - np.searchsorted(s1, x, side="right")).astype(np.float64)  # H1 with llr > x
    above2 = (n2 - np.searchsorted(s2, x, side="right")).astype(np.float64)
    lr = nm.pow10(x)
    neutral = np.where(x < 0, lr, 1.0)
    system = (1.0 - above1 / (n1 + add_misleading)) + lr * ((above2 + add_misleading) / (n2 + add_misleading))
    bad = neutral < system
    left = ks[(ks <= 0) & bad]
    right = ks[(ks >= 0) & bad]
    lower_k = int(left.max()) + 1 if left.size else k_min
    upper_k = int(right.min()) - 1 if right.size else k_max
    return min(lower_k, 0) / 100.0, max(upper_k, 0) / 100.0


def clopper_pearson(x: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """The Clopper-Pearson interval of a proportion ``x / n`` (``x`` may be fractional, 0 <= x <= n).

    Remembered per process (a pure function of its arguments): an attribution asks it for the
    same few counts of a calibration again and again.
    """
    if not (n > 0) or not (0.0 <= x <= n):
        raise ValueError(f"clopper_pearson needs 0 <= x <= n and n > 0, got x={x!r}, n={n!r}")
    return _clopper_pearson(float(x), float(n), float(level))


@functools.lru_cache(maxsize=8192)
def _clopper_pearson(x: float, n: float, level: float) -> tuple[float, float]:
    alpha = 1.0 - level
    lower = 0.0 if x == 0 else nm.beta_quantile(alpha / 2.0, x, n - x + 1.0)
    upper = 1.0 if x == n else nm.beta_quantile(1.0 - alpha / 2.0, x + 1.0, n - x)
    return lower, upper


def tippett(llrs: F64, h1: B, grid: Grid = TIPPETT_GRID) -> tuple[list[int], list[int]]:
    """Counts of H1 and of H2 trials whose log10 LR is at or above each grid value."""
    one, two = _split(llrs, h1)
    x = grid.values
    at1 = one.size - np.searchsorted(np.sort(one), x, side="left")
    at2 = two.size - np.searchsorted(np.sort(two), x, side="left")
    return [int(v) for v in at1], [int(v) for v in at2]


def _ece_curve(llr_one: F64, w_one: F64, llr_two: F64, w_two: F64, grid: Grid) -> list[float]:
    """ECE at each log10 prior odds ``o``: P(H1) E_H1[log2(1 + 1/(O LR))] + P(H2) E_H2[log2(1 + O LR)]."""
    n1, n2 = nm.lane_sum(w_one), nm.lane_sum(w_two)
    out = []
    for o in grid.values.tolist():
        p1 = float(nm.sigmoid(o * nm.LN10))
        p2 = float(nm.sigmoid(-o * nm.LN10))
        e1 = nm.lane_sum(nm.softplus(-(o + llr_one) * nm.LN10) * w_one) / _LN2 / n1
        e2 = nm.lane_sum(nm.softplus((o + llr_two) * nm.LN10) * w_two) / _LN2 / n2
        out.append(p1 * e1 + p2 * e2)
    return out


def ece(llrs: F64, h1: B, grid: Grid = ECE_GRID) -> dict[str, list[float]]:
    """Empirical cross-entropy of the system, of its PAV transform and of the neutral system (LR = 1)."""
    one, two = _split(llrs, h1)
    p = pav(llrs, h1)
    block = p.llrs()
    has1, has2 = p.ones > 0, p.twos > 0
    ones1 = np.ones(one.size)
    ones2 = np.ones(two.size)
    return {
        "system": _ece_curve(one, ones1, two, ones2, grid),
        "pav": _ece_curve(block[has1], p.ones[has1].astype(np.float64), block[has2],
                          p.twos[has2].astype(np.float64), grid),
        "neutral": _ece_curve(np.zeros(1), np.ones(1), np.zeros(1), np.ones(1), grid),
    }

