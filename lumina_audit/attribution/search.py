"""Exact similarity search over a signature store (attribution-v1 section 2, attribution-v2 section 6).

:func:`top_and_threshold` gives, per query, the rows above ``tau`` and the ``top_k`` most
similar rows; :func:`top_by_key` ranks each query's rows by its own :class:`~.scan.RowKey`
instead (``lumina-attribution-v2``: the calibrated log10 LR). Both stream the store a block
at a time through :func:`.scan.scan` and never materialise the N similarities of a query;
their output holds exactly the rows and bits a dense evaluation (:mod:`.similarity`, the
fixed-order definition of a similarity) would select. :class:`ResidentRows` holds one
channel of a catalog in memory and gives the same results.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from .scan import KeyedHits, RowKey, SievedRowKey, scan
from .similarity import (
    DEFAULT_BLOCK_ROWS,
    StrPath,
    check_queries,
    check_rows,
    check_search,
    check_space,
    exact_similarities,
    kth_largest,
    max_norm,
    similarities,
    with_norms,
)
from .store import iter_blocks

__all__ = [
    "DEFAULT_BLOCK_ROWS",
    "Hits",
    "KeyedHits",
    "ResidentRows",
    "RowKey",
    "SievedRowKey",
    "exact_similarities",
    "select",
    "similarities",
    "top_and_threshold",
    "top_and_threshold_rows",
    "top_by_key",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


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
    q = check_queries(queries)
    check_search(tau, top_k, block_rows)
    if space_digest is not None:
        check_space(store_path, space_digest)
    return _as_hits(scan(with_norms(iter_blocks(store_path, channel, block_rows, space_digest)), q, float(tau),
                          top_k))


def top_by_key(
    store_path: StrPath, channel: Literal["P", "M"], queries: F32, keys: Sequence[RowKey], cut: float, top_k: int,
    block_rows: int = DEFAULT_BLOCK_ROWS, *, space_digest: str | None = None,
) -> list[KeyedHits]:
    """Per query, every row whose key (``keys[i]``) is above ``cut``, and the ``top_k`` of highest key among the others.

    As :func:`top_and_threshold`, with each query's rows ranked by its own :class:`RowKey`
    instead of the similarity, and ``top_k`` rows *besides* those above the cut (attribution-v2
    section 6: every song at or above ``report_at``, then the ``top_k`` others): exact, streamed,
    whatever ``block_rows``. Rows tied with the ``top_k``-th key are all kept.
    """
    q = check_queries(queries)
    _check_keys(keys, q, cut, top_k, block_rows)
    if space_digest is not None:
        check_space(store_path, space_digest)
    return scan(with_norms(iter_blocks(store_path, channel, block_rows, space_digest)), q, float(cut), top_k, keys,
                others=True)


def _check_keys(keys: Sequence[RowKey], q: F32, cut: float, top_k: int, block_rows: int) -> None:
    if isinstance(cut, bool) or not isinstance(cut, int | float) or math.isnan(cut):
        raise ValueError(f"cut must be a number, got {cut!r}")
    check_search(0.0, top_k, block_rows)
    if len(keys) != q.shape[0]:
        raise ValueError(f"{q.shape[0]} queries but {len(keys)} keys")


class ResidentRows:
    """One channel of a catalog held in memory (float32 [N, 216]): checked once, searched many times.

    Gives the same results, bit for bit, as :func:`top_and_threshold` and
    :func:`similarities` on a store holding these rows.
    """

    def __init__(self, rows: F32, block_rows: int = DEFAULT_BLOCK_ROWS) -> None:
        check_search(0.0, 0, block_rows)
        self.rows: F32 = check_rows(rows)
        self.block_rows = block_rows
        self._norms = [max_norm(rows[s : s + block_rows]) for s in range(0, rows.shape[0], block_rows)]

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def _blocks(self) -> Iterator[tuple[int, F32, float]]:
        for i, norm in enumerate(self._norms):
            start = i * self.block_rows
            yield start, self.rows[start : start + self.block_rows], norm

    def top_and_threshold(self, queries: F32, tau: float, top_k: int) -> list[Hits]:
        """As :func:`top_and_threshold`, over these rows."""
        q = check_queries(queries)
        check_search(tau, top_k, 1)
        return _as_hits(scan(self._blocks(), q, float(tau), top_k))

    def top_by_key(self, queries: F32, keys: Sequence[RowKey], cut: float, top_k: int) -> list[KeyedHits]:
        """As :func:`top_by_key`, over these rows."""
        q = check_queries(queries)
        _check_keys(keys, q, cut, top_k, 1)
        return scan(self._blocks(), q, float(cut), top_k, keys, others=True)

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
    check_search(tau, top_k, 1)
    n = sims.shape[0]
    keep = sims > tau
    if top_k and n:
        keep |= sims >= kth_largest(sims, min(top_k, n))
    rows = np.flatnonzero(keep).astype(np.int64)
    v = sims[rows]
    order = np.lexsort((rows, -v))
    rows, v = rows[order], v[order]
    excess = math.fsum(float(x) - tau for x in v[v > tau])
    return Hits(catalog_size=n, tau=float(tau), top_k=top_k, rows=rows, similarities=v, excess_sum=excess)
