"""The screened scan behind every search: rows above a cut and the top_k highest, exactly, per query.

Per block of the catalog, a float32 matmul screens every row against every query; a row is
evaluated exactly (:mod:`.similarity`) only where its screen value lies within a proven error
bound of the cut (``tau``, or the running ``top_k``-th value), and merged into a pool per
query. The output holds exactly the rows and bits a dense scan would select. Memory is
O(block + Q * (top_k + rows above the cut)).

Rows are ranked by the similarity itself, or by a :class:`RowKey` per query: an increasing
function of the similarity that may differ per row (``lumina-attribution-v2`` ranks by the
calibrated log10 LR of the S-norm score); the key's screen estimate carries its own proven
error bound. A :class:`SievedRowKey` also bounds a block from its screen values alone, so
most rows are ruled out by one float32 comparison. With ``others`` the ``top_k`` rows are
the highest *at or below* the cut (``top_k`` more than those above it), else the highest of
all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, cast, runtime_checkable

import numpy as np
import numpy.typing as npt

from .similarity import exact_pairs, kth_largest

__all__ = ["KeyedHits", "RowKey", "SievedRowKey", "scan"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Error of the float32 screen against the exact value, per unit of ``|q|*|b|``:
#: twice gamma_217 in float32 (217 rounding steps at most), which also covers the
#: float64 error of the exact value (216 * 2**-53).
_SCREEN_REL = 2.0 * 217 * 2.0**-24
#: Absolute slack: float32 underflow (or flush-to-zero) in the screen, and norms
#: that underflow when squared in float32.
_SCREEN_ABS = 1e-30
#: Above this ``|q| * max|b|`` the screen could overflow float32: evaluate every row exactly.
_SCREEN_MAX = 1e30
#: A block's survivors are narrowed with its own top_k-th screen value when more than 4 * top_k + this many.
_NARROW_ABOVE = 256
#: Query-row pairs evaluated exactly at once (bounds the temporaries to a few MiB).
_PAIRS = 4096
#: A sieved key's first block is screened with the top_k-th estimate of about this many of its rows ...
_SAMPLE = 2048
#: ... when the block has at least this many times top_k rows.
_SAMPLE_ABOVE = 8
#: The largest finite float32.
_F32_MAX = float(np.finfo(np.float32).max)


class RowKey(Protocol):
    """What a search ranks one query's rows by: an increasing function of the similarity, per row.

    :meth:`screen` turns the float32 screen values of a block's rows (and the screen's proven
    error ``margin`` on the similarity) into key estimates and one bound on their error;
    :meth:`exact` gives the exact keys of rows from their exact similarities. The identity key
    (``keys=None``) ranks by the similarity itself.
    """

    def screen(self, start: int, s: F32, margin: float, bound: float) -> tuple[F64 | F32, float]:
        ...

    def exact(self, rows: I64, s: F64) -> F64:
        ...


@runtime_checkable
class SievedRowKey(RowKey, Protocol):
    """A :class:`RowKey` that can also rule out most rows of a block from their screen values alone.

    Its contract, on top of :class:`RowKey`'s: the estimates of :meth:`screen` are
    ``exact(rows, s.astype(float64))`` of the block's rows, and their error bound is
    :meth:`screen_error` (it does not depend on ``s``); every row of rows ``[start, start + n)``
    whose float32 screen value is below :meth:`floor` has an estimate below ``lo``. A search
    then evaluates estimates only for the rows at or above the floor, and selects the same rows.
    """

    def screen_error(self, start: int, n: int, margin: float, bound: float) -> float:
        ...

    def floor(self, start: int, n: int, bound: float, lo: float) -> float:
        ...


@dataclass(frozen=True, eq=False)
class KeyedHits:
    """What one query needs from a catalog when its rows are ranked by a :class:`RowKey`.

    ``rows`` holds every row whose key is above ``cut`` and the ``top_k`` rows of highest key,
    plus every row tied with the ``top_k``-th key; sorted by key descending, then row
    ascending. ``similarities`` are their exact similarities, ``keys`` their exact keys.
    """

    catalog_size: int
    cut: float
    top_k: int
    rows: I64
    similarities: F64
    keys: F64


def scan(blocks: Iterable[tuple[int, F32, float]], queries: F32, tau: float, top_k: int,
         keys: Sequence[RowKey] | None = None, *, others: bool = False) -> list[KeyedHits]:
    """Rows above ``tau`` and the ``top_k`` highest, by key (the similarity when ``keys`` is None).

    ``others``: the ``top_k`` highest of the rows at or below ``tau`` (besides every row above it),
    instead of the ``top_k`` highest of all.
    """
    q64 = queries.astype(np.float64)
    n_q = queries.shape[0]
    if n_q == 0:
        return []
    qnorms = [math.sqrt(math.fsum(float(x) * float(x) for x in row)) for row in q64]
    pool_rows: list[I64] = [np.empty(0, dtype=np.int64) for _ in range(n_q)]
    pool_sims: list[F64] = [np.empty(0, dtype=np.float64) for _ in range(n_q)]
    pool_keys: list[F64] = [np.empty(0, dtype=np.float64) for _ in range(n_q)]
    # The top_k-th largest exact key seen so far (+inf: no top rows are wanted).
    kth = [math.inf if top_k == 0 else -math.inf] * n_q
    limit = 4 * top_k + _NARROW_ABOVE
    # Keys that can rule out rows from their screen values alone (by their methods: a protocol isinstance is slow).
    sieves = [_sieved(k) for k in keys] if keys is not None else [None] * n_q
    n = 0
    for start, block, max_norm in blocks:
        n_b = block.shape[0]
        n = start + n_b
        if n_b == 0:
            continue
        screen = queries @ block.T  # float32 [Q, n_b]: only a filter, never reported
        picks: list[I64] = []
        for i in range(n_q):
            bound = qnorms[i] * max_norm
            if not bound <= _SCREEN_MAX:
                picks.append(np.arange(n_b, dtype=np.int64))
                continue
            margin = _SCREEN_REL * bound + _SCREEN_ABS
            sieve = sieves[i]
            if sieve is not None:
                picks.append(_pick_sieved(sieve, start, screen[i], margin, bound, tau, kth[i], top_k, limit, others))
                continue
            if keys is None:
                est, err = screen[i], margin
            else:
                est, err = keys[i].screen(start, screen[i], margin, bound)
            lo = min(tau, kth[i]) - err
            idx = np.flatnonzero(est >= np.float64(lo))
            if top_k and idx.shape[0] > limit and n_b >= top_k:
                # Some top_k rows of this block have a key >= kb - err, so the final top_k-th exact key is too.
                kb = _block_kth(est, top_k, tau, err, others)
                if kb is not None:
                    lo = min(tau, max(kth[i], kb - err)) - err
                    idx = idx[est[idx] >= np.float64(lo)]
            picks.append(idx.astype(np.int64, copy=False))
        counts = [p.shape[0] for p in picks]
        if sum(counts) == 0:
            continue
        which = np.repeat(np.arange(n_q), counts)
        rows = np.concatenate(picks)
        exact = np.empty(rows.shape[0], dtype=np.float64)
        for at in range(0, rows.shape[0], _PAIRS):
            part = slice(at, at + _PAIRS)
            exact[part] = exact_pairs(q64[which[part]], block[rows[part]])
        offset = 0
        for i, c in enumerate(counts):
            if c == 0:
                continue
            r_new = rows[offset : offset + c] + start
            s_new = exact[offset : offset + c]
            k_new = s_new if keys is None else keys[i].exact(r_new, s_new)
            r = np.concatenate([pool_rows[i], r_new])
            v = np.concatenate([pool_sims[i], s_new])
            k = np.concatenate([pool_keys[i], k_new])
            offset += c
            ranked = k[k <= tau] if others else k  # the rows whose top_k-th value is wanted
            if ranked.shape[0] >= top_k:
                if top_k:
                    kth[i] = kth_largest(ranked, top_k)
                keep = (k > tau) | (k >= kth[i])
                r, v, k = r[keep], v[keep], k[keep]
            pool_rows[i], pool_sims[i], pool_keys[i] = r, v, k
    hits = []
    for i in range(n_q):
        r, v, k = pool_rows[i], pool_sims[i], pool_keys[i]
        order = np.lexsort((r, -k))
        hits.append(KeyedHits(catalog_size=n, cut=float(tau), top_k=top_k, rows=r[order], similarities=v[order],
                              keys=k[order]))
    return hits


def _sieved(key: RowKey) -> SievedRowKey | None:
    """``key`` as a :class:`SievedRowKey` when it has that protocol's methods (what ``isinstance`` checks)."""
    if callable(getattr(key, "screen_error", None)) and callable(getattr(key, "floor", None)):
        return cast(SievedRowKey, key)
    return None


def _block_kth(est: F64 | F32, top_k: int, tau: float, err: float, others: bool) -> float | None:
    """The ``top_k``-th largest estimate of a block, of its rows surely at or below ``tau`` with ``others``.

    Those rows' keys are at least their estimate less ``err`` (and, with ``others``, at most ``tau``),
    so the final ``top_k``-th key is at least the result less ``err``. None when too few rows qualify.
    """
    pool = est[est < np.float64(tau) - err] if others else est
    return kth_largest(pool, top_k) if pool.shape[0] >= top_k else None


def _pick_sieved(key: SievedRowKey, start: int, s: F32, margin: float, bound: float, tau: float, kth: float,
                 top_k: int, limit: int, others: bool = False) -> I64:
    """The rows of one block (offsets) that :func:`scan` keeps for exact evaluation, through ``key``'s floor.

    The same rows as the plain path (estimates >= ``lo``, then narrowed by the block's own top_k-th
    estimate), evaluating estimates only for rows at or above the floor of ``lo``. While no top_k-th
    key is known yet, ``lo`` is first raised with the top_k-th estimate of a sample of the block's
    rows: some top_k rows have an estimate at least that, so the final top_k-th exact key is at least
    that less ``err`` (the argument of the narrowing).
    """
    n_b = s.shape[0]
    err = key.screen_error(start, n_b, margin, bound)
    above = min(tau, kth)
    if top_k and kth == -math.inf and n_b >= _SAMPLE_ABOVE * top_k:
        sample = np.arange(0, n_b, max(1, n_b // _SAMPLE), dtype=np.int64)
        if sample.shape[0] >= top_k:
            est_s = key.exact(sample + start, s[sample].astype(np.float64))
            kb = _block_kth(est_s, top_k, tau, err, others)
            if kb is not None:
                above = min(tau, kb - err)
    lo = above - err
    f = key.floor(start, n_b, bound, lo)
    if f > _F32_MAX:
        return np.empty(0, dtype=np.int64)
    if f >= -_F32_MAX:
        f32 = np.float32(f)
        if float(f32) > f:
            f32 = np.nextafter(f32, np.float32(-np.inf))
        cand = np.flatnonzero(s >= f32)
        est = key.exact(cand + start, s[cand].astype(np.float64))
    else:  # no floor: every row's estimate (as the plain path)
        cand = np.arange(n_b, dtype=np.int64)
        est = key.screen(start, s, margin, bound)[0].astype(np.float64, copy=False)
    keep = est >= np.float64(lo)
    idx, est = cand[keep], est[keep]
    if top_k and idx.shape[0] > limit:
        # idx holds every estimate >= lo, so the block's top_k estimates: kb is the block's top_k-th.
        kb = _block_kth(est, top_k, tau, err, others)
        if kb is not None:
            lo = min(tau, max(kth, kb - err)) - err
            idx = idx[est >= np.float64(lo)]
    return idx.astype(np.int64, copy=False)


