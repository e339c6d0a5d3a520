"""The similarity of two signatures, defined by one fixed evaluation (signature-v1 section 7).

The similarity of a query ``q`` and a stored signature ``b`` (both float32 [216]) is::

    s = 0.0
    for d in range(216):
        s += float(q[d]) * float(b[d])     # float64, left to right

Every product of two float32 values is exact in float64, so ``s`` is the left-to-right
float64 sum of the exact products: the same bits with or without FMA, on any BLAS, at any
thread count, for any block size and batch size (BLAS matmul gives none of these
guarantees). The three lines above are the reference a third party can re-run.
:func:`exact_similarities` and :func:`similarities` (every row of a store, read in blocks)
evaluate it vectorised, bit for bit that loop; :mod:`.scan` evaluates it only where its
float32 screen cannot rule a row out.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np
import numpy.typing as npt

from ..signature.result import DIM
from .store import iter_blocks, open_info

__all__ = ["DEFAULT_BLOCK_ROWS", "StrPath", "check_queries", "check_rows", "check_search", "check_space", "exact_pairs",
           "exact_similarities", "kth_largest", "max_norm", "similarities", "with_norms"]

DEFAULT_BLOCK_ROWS = 65536
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
StrPath = str | os.PathLike[str]
#: Slack for norms that underflow when squared in float32.
_NORM_ABS = 1e-15


def check_queries(queries: object) -> F32:
    if not isinstance(queries, np.ndarray) or queries.dtype != np.float32:
        raise ValueError(f"queries must be a float32 numpy array, got {getattr(queries, 'dtype', type(queries))}")
    if queries.ndim != 2 or queries.shape[1] != DIM:
        raise ValueError(f"queries must have shape [Q, {DIM}], got {list(queries.shape)}")
    if not np.isfinite(queries).all():
        raise ValueError("queries hold a non-finite value")
    return np.ascontiguousarray(queries)


def check_rows(rows: object) -> F32:
    if not isinstance(rows, np.ndarray) or rows.dtype != np.float32 or rows.ndim != 2 or rows.shape[1] != DIM:
        raise ValueError(f"rows must be a float32 array of shape [N, {DIM}]")
    if not np.isfinite(rows).all():
        raise ValueError("rows hold a non-finite value")
    return rows


def check_search(tau: float, top_k: int, block_rows: int) -> None:
    if isinstance(tau, bool) or not isinstance(tau, int | float) or not math.isfinite(tau):
        raise ValueError(f"tau must be a finite number, got {tau!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k must be a non-negative integer, got {top_k!r}")
    if isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1:
        raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}")


def check_space(store_path: StrPath, space_digest: str | None) -> int:
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


def exact_pairs(q64: F64, rows: F32) -> F64:
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
    q = check_queries(queries)
    r = check_rows(rows)
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
    q = check_queries(queries)
    check_search(0.0, 0, block_rows)
    n = check_space(store_path, space_digest)
    out = np.empty((q.shape[0], n), dtype=np.float64)
    q64 = q.astype(np.float64)
    for start, block in iter_blocks(store_path, channel, block_rows, space_digest):
        _exact_into(q64, block, out[:, start : start + block.shape[0]])
    return out


def kth_largest(values: F32 | F64, k: int) -> float:
    n = values.shape[0]
    return float(np.partition(values, n - k)[n - k])


def max_norm(block: F32) -> float:
    """An upper bound of the L2 norms of the rows of ``block`` (inf when they overflow float32)."""
    if block.shape[0] == 0:
        return 0.0
    norm2 = float(np.einsum("ij,ij->i", block, block).max())
    return math.sqrt(norm2 * 1.001) + _NORM_ABS if math.isfinite(norm2) else math.inf


def with_norms(blocks: Iterable[tuple[int, F32]]) -> Iterator[tuple[int, F32, float]]:
    for start, block in blocks:
        yield start, block, max_norm(block)


