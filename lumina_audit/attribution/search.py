"""Exact similarity search over a signature store (signature-v1 section 7, attribution-v1 section 2).

The similarity of a query ``q`` and a stored signature ``b`` (both float32 [216])
is defined here with one fixed evaluation, so that its bits never depend on
how the catalog is read or searched::

    s = 0.0
    for d in range(216):
        s += float(q[d]) * float(b[d])     # float64, left to right

Every product of two float32 values is exact in float64, so ``s`` is the
left-to-right float64 sum of the exact products: the same bits with or without
FMA, on any BLAS, at any thread count, for any block size and batch size
(BLAS matmul gives none of these guarantees). The three lines above are the
reference a third party can re-run.

:func:`similarities` evaluates this for every row (used by calibration: C x N).
:func:`top_and_threshold` never materialises the N similarities of a query:
per block it screens all rows with a float32 matmul, keeps only rows whose
screen value lies within a proven error bound of the cut (``tau`` or the
running ``top_k``-th value), evaluates those exactly, and merges them into a
pool per query. Its output holds exactly the rows and bits that a dense scan
would select. Memory is O(block + Q * (top_k + rows above tau)).

:func:`top_by_key` is the same scan with each query's rows ranked by a :class:`RowKey`, an
increasing function of the similarity that may differ per row (``lumina-attribution-v2``
ranks by the calibrated log10 LR of the S-norm score): the key's screen estimate carries its
own proven error bound, so the output is again exactly what a dense evaluation would select.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from ..signature.result import DIM
from .store import iter_blocks, open_info

__all__ = [
    "DEFAULT_BLOCK_ROWS",
    "Hits",
    "KeyedHits",
    "ResidentRows",
    "RowKey",
    "exact_similarities",
    "select",
    "similarities",
    "top_and_threshold",
    "top_and_threshold_rows",
    "top_by_key",
]

DEFAULT_BLOCK_ROWS = 65536
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
StrPath = str | os.PathLike[str]

#: Error of the float32 screen against the exact value, per unit of ``|q|*|b|``:
#: twice gamma_217 in float32 (217 rounding steps at most), which also covers the
#: float64 error of the exact value (216 * 2**-53).
_SCREEN_REL = 2.0 * 217 * 2.0**-24
#: Absolute slack: float32 underflow (or flush-to-zero) in the screen, and norms
#: that underflow when squared in float32.
_SCREEN_ABS = 1e-30
_NORM_ABS = 1e-15
#: Above this ``|q| * max|b|`` the screen could overflow float32: evaluate every row exactly.
_SCREEN_MAX = 1e30
#: A block's survivors are narrowed with its own top_k-th screen value when more than 4 * top_k + this many.
_NARROW_ABOVE = 256
#: Query-row pairs evaluated exactly at once (bounds the temporaries to a few MiB).
_PAIRS = 4096


@dataclass(frozen=True, eq=False)
class Hits:
    """What one query needs from a catalog, without its N similarities.

    ``rows`` holds every row with similarity above ``tau`` and the ``top_k``
    most similar rows, plus every row tied with the ``top_k``-th similarity (so
    that a caller can break ties by song id); sorted by similarity descending,
    then row ascending. ``excess_sum`` is ``math.fsum`` of ``s - tau`` over the
    rows above ``tau`` (exact, whatever the order).
    """

    catalog_size: int
    tau: float
    top_k: int
    rows: I64
    similarities: F64
    excess_sum: float

    @property
    def above(self) -> npt.NDArray[np.bool_]:
        """Mask of :attr:`rows` whose similarity is strictly above ``tau``."""
        return self.similarities > self.tau


def _check_queries(queries: object) -> F32:
    if not isinstance(queries, np.ndarray) or queries.dtype != np.float32:
        raise ValueError(f"queries must be a float32 numpy array, got {getattr(queries, 'dtype', type(queries))}")
    if queries.ndim != 2 or queries.shape[1] != DIM:
        raise ValueError(f"queries must have shape [Q, {DIM}], got {list(queries.shape)}")
    if not np.isfinite(queries).all():
        raise ValueError("queries hold a non-finite value")
    return np.ascontiguousarray(queries)


def _check_rows(rows: object) -> F32:
    if not isinstance(rows, np.ndarray) or rows.dtype != np.float32 or rows.ndim != 2 or rows.shape[1] != DIM:
        raise ValueError(f"rows must be a float32 array of shape [N, {DIM}]")
    if not np.isfinite(rows).all():
        raise ValueError("rows hold a non-finite value")
    return rows


def _check_search(tau: float, top_k: int, block_rows: int) -> None:
    if isinstance(tau, bool) or not isinstance(tau, int | float) or not math.isfinite(tau):
        raise ValueError(f"tau must be a finite number, got {tau!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k must be a non-negative integer, got {top_k!r}")
    if isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1:
        raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}")


def _check_space(store_path: StrPath, space_digest: str | None) -> int:
    """The store's row count, after checking it holds the queries' space (or, without a digest, only one)."""
    info = open_info(store_path)
    info.space_with(space_digest)
    return info.count


def _exact_into(q64: F64, rows: F32, out: F64) -> None:
    """``out[i, j]`` = the fixed-order similarity of query ``i`` and row ``j`` (see the module doc)."""
    n_q, n = q64.shape[0], rows.shape[0]
    tile = max(256, min(8192, 32768 // max(n_q, 1)))
    cols = np.empty((DIM, min(tile, n)), dtype=np.float64)
    tmp = np.empty((n_q, cols.shape[1]), dtype=np.float64)
    for start in range(0, n, tile):
        m = min(tile, n - start)
        c, t, acc = cols[:, :m], tmp[:, :m], out[:, start : start + m]
        np.copyto(c, rows[start : start + m].T)  # float32 -> float64 is exact
        acc.fill(0.0)
        for d in range(DIM):
            np.multiply(q64[:, d : d + 1], c[d], out=t)
            np.add(acc, t, out=acc)


def _exact_pairs(q64: F64, rows: F32) -> F64:
    """The fixed-order similarity of ``q64[i]`` and ``rows[i]`` for each ``i``."""
    qt = np.ascontiguousarray(q64.T)
    rt = np.array(rows.T, dtype=np.float64, order="C")
    acc = np.zeros(rows.shape[0], dtype=np.float64)
    tmp = np.empty_like(acc)
    for d in range(DIM):
        np.multiply(qt[d], rt[d], out=tmp)
        np.add(acc, tmp, out=acc)
    return acc


def exact_similarities(queries: F32, rows: F32) -> F64:
    """Similarities [Q, N] (float64) of in-memory float32 ``queries`` [Q, 216] and ``rows`` [N, 216]."""
    q = _check_queries(queries)
    r = _check_rows(rows)
    out = np.empty((q.shape[0], r.shape[0]), dtype=np.float64)
    _exact_into(q.astype(np.float64), r, out)
    return out


def similarities(
    store_path: StrPath, channel: Literal["P", "M"], queries: F32,
    block_rows: int = DEFAULT_BLOCK_ROWS, *, space_digest: str | None = None,
) -> F64:
    """Similarities [Q, N] (float64) of ``queries`` [Q, 216] with every row of a store's channel.

    The store is read ``block_rows`` rows at a time; the result does not depend
    on ``block_rows`` or on Q. ``space_digest``, when given, must be the store's.
    """
    q = _check_queries(queries)
    _check_search(0.0, 0, block_rows)
    n = _check_space(store_path, space_digest)
    out = np.empty((q.shape[0], n), dtype=np.float64)
    q64 = q.astype(np.float64)
    for start, block in iter_blocks(store_path, channel, block_rows, space_digest):
        _exact_into(q64, block, out[:, start : start + block.shape[0]])
    return out


def _kth_largest(values: F32 | F64, k: int) -> float:
    n = values.shape[0]
    return float(np.partition(values, n - k)[n - k])


def _max_norm(block: F32) -> float:
    """An upper bound of the L2 norms of the rows of ``block`` (inf when they overflow float32)."""
    if block.shape[0] == 0:
        return 0.0
    norm2 = float(np.einsum("ij,ij->i", block, block).max())
    return math.sqrt(norm2 * 1.001) + _NORM_ABS if math.isfinite(norm2) else math.inf


def _with_norms(blocks: Iterable[tuple[int, F32]]) -> Iterator[tuple[int, F32, float]]:
    for start, block in blocks:
        yield start, block, _max_norm(block)


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


def _scan(blocks: Iterable[tuple[int, F32, float]], queries: F32, tau: float, top_k: int,
          keys: Sequence[RowKey] | None = None) -> list[KeyedHits]:
    """Rows above ``tau`` and the ``top_k`` highest, by key (the similarity when ``keys`` is None)."""
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
            if keys is None:
                est, err = screen[i], margin
            else:
                est, err = keys[i].screen(start, screen[i], margin, bound)
            lo = min(tau, kth[i]) - err
            idx = np.flatnonzero(est >= np.float64(lo))
            if top_k and idx.shape[0] > limit and n_b >= top_k:
                # Some top_k rows of this block have a key >= kb - err, so the final top_k-th exact key is too.
                kb = _kth_largest(est, top_k)
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
            exact[part] = _exact_pairs(q64[which[part]], block[rows[part]])
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
            if k.shape[0] >= top_k:
                if top_k:
                    kth[i] = _kth_largest(k, top_k)
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


def _as_hits(found: list[KeyedHits]) -> list[Hits]:
    """The identity key's hits as :class:`Hits` (the keys are the similarities)."""
    out = []
    for h in found:
        v = h.similarities
        excess = math.fsum(float(x) - h.cut for x in v[v > h.cut])
        out.append(Hits(catalog_size=h.catalog_size, tau=h.cut, top_k=h.top_k, rows=h.rows, similarities=v,
                        excess_sum=excess))
    return out


def top_and_threshold(
    store_path: StrPath, channel: Literal["P", "M"], queries: F32, tau: float, top_k: int,
    block_rows: int = DEFAULT_BLOCK_ROWS, *, space_digest: str | None = None,
) -> list[Hits]:
    """Per query, the rows above ``tau`` and the ``top_k`` most similar rows of a store's channel.

    Streams the store ``block_rows`` rows at a time; the result (rows and bits)
    is what :func:`select` gives on the dense :func:`similarities`, whatever
    ``block_rows``. ``space_digest``, when given, must be the store's.
    """
    q = _check_queries(queries)
    _check_search(tau, top_k, block_rows)
    if space_digest is not None:
        _check_space(store_path, space_digest)
    return _as_hits(_scan(_with_norms(iter_blocks(store_path, channel, block_rows, space_digest)), q, float(tau),
                          top_k))


def top_by_key(
    store_path: StrPath, channel: Literal["P", "M"], queries: F32, keys: Sequence[RowKey], cut: float, top_k: int,
    block_rows: int = DEFAULT_BLOCK_ROWS, *, space_digest: str | None = None,
) -> list[KeyedHits]:
    """Per query, the rows whose key (``keys[i]``) is above ``cut`` and the ``top_k`` of highest key.

    As :func:`top_and_threshold`, with each query's rows ranked by its own :class:`RowKey`
    instead of the similarity: exact, streamed, whatever ``block_rows``.
    """
    q = _check_queries(queries)
    _check_keys(keys, q, cut, top_k, block_rows)
    if space_digest is not None:
        _check_space(store_path, space_digest)
    return _scan(_with_norms(iter_blocks(store_path, channel, block_rows, space_digest)), q, float(cut), top_k, keys)


def _check_keys(keys: Sequence[RowKey], q: F32, cut: float, top_k: int, block_rows: int) -> None:
    if isinstance(cut, bool) or not isinstance(cut, int | float) or math.isnan(cut):
        raise ValueError(f"cut must be a number, got {cut!r}")
    _check_search(0.0, top_k, block_rows)
    if len(keys) != q.shape[0]:
        raise ValueError(f"{q.shape[0]} queries but {len(keys)} keys")


class ResidentRows:
    """One channel of a catalog held in memory (float32 [N, 216]): checked once, searched many times.

    Gives the same results, bit for bit, as :func:`top_and_threshold` and
    :func:`similarities` on a store holding these rows.
    """

    def __init__(self, rows: F32, block_rows: int = DEFAULT_BLOCK_ROWS) -> None:
        _check_search(0.0, 0, block_rows)
        self.rows: F32 = _check_rows(rows)
        self.block_rows = block_rows
        self._norms = [_max_norm(rows[s : s + block_rows]) for s in range(0, rows.shape[0], block_rows)]

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def _blocks(self) -> Iterator[tuple[int, F32, float]]:
        for i, norm in enumerate(self._norms):
            start = i * self.block_rows
            yield start, self.rows[start : start + self.block_rows], norm

    def top_and_threshold(self, queries: F32, tau: float, top_k: int) -> list[Hits]:
        """As :func:`top_and_threshold`, over these rows."""
        q = _check_queries(queries)
        _check_search(tau, top_k, 1)
        return _as_hits(_scan(self._blocks(), q, float(tau), top_k))

    def top_by_key(self, queries: F32, keys: Sequence[RowKey], cut: float, top_k: int) -> list[KeyedHits]:
        """As :func:`top_by_key`, over these rows."""
        q = _check_queries(queries)
        _check_keys(keys, q, cut, top_k, 1)
        return _scan(self._blocks(), q, float(cut), top_k, keys)

    def similarities(self, queries: F32) -> F64:
        """As :func:`similarities`, over these rows."""
        return exact_similarities(queries, self.rows)


def top_and_threshold_rows(
    rows: F32, queries: F32, tau: float, top_k: int, block_rows: int = DEFAULT_BLOCK_ROWS
) -> list[Hits]:
    """:func:`top_and_threshold` over an in-memory float32 catalog [N, 216] (see :class:`ResidentRows`)."""
    return ResidentRows(rows, block_rows).top_and_threshold(queries, tau, top_k)


def select(sims: F64, tau: float, top_k: int) -> Hits:
    """The :class:`Hits` of one query from its dense similarities [N] (float64)."""
    if not isinstance(sims, np.ndarray) or sims.dtype != np.float64 or sims.ndim != 1:
        raise ValueError("similarities must be a one-dimensional float64 array")
    if not np.isfinite(sims).all():
        raise ValueError("similarities hold a non-finite value")
    _check_search(tau, top_k, 1)
    n = sims.shape[0]
    keep = sims > tau
    if top_k and n:
        keep |= sims >= _kth_largest(sims, min(top_k, n))
    rows = np.flatnonzero(keep).astype(np.int64)
    v = sims[rows]
    order = np.lexsort((rows, -v))
    rows, v = rows[order], v[order]
    excess = math.fsum(float(x) - tau for x in v[v > tau])
    return Hits(catalog_size=n, tau=float(tau), top_k=top_k, rows=rows, similarities=v, excess_sum=excess)
