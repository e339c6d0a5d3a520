"""Calibration and attribution, method ``lumina-attribution-v1`` (spec attribution-v1 sections 1-2).

Pure numpy and the standard library. Works per channel (``P`` and ``M``) on
similarities computed by :mod:`lumina_audit.attribution.search`.

Calibration (section 1): ``mu = fsum(x) / n`` and
``sigma = sqrt(fsum((x - mu) ** 2) / (n - 1))`` over the n = C * N control
similarities ``x``, both float64; ``math.fsum`` makes them independent of the
order and layout of ``x``. ``tau = mu + k * sigma``. Every "above" is strict.

Attribution (section 2): ``z = (s - mu) / sigma``, ``excess = s - tau`` when
``s > tau`` else 0, ``share = excess / fsum(excesses)``. A single song above
``tau`` has share exactly 1.0.

Order of the entries. The spec orders by share descending, ties by song id
ascending, and also lists the ``top_k`` most similar songs, but orders only by
share. Here: first every entry with a share above 0 (share descending, then
song id ascending), then the ``top_k`` songs that are not above ``tau`` (all of
share 0), by similarity descending, then song id ascending. The ``top_k`` most
similar songs are chosen by the same key (similarity descending, song id
ascending), so a tie at the ``top_k``-th place is broken by song id.

:func:`attribute` works on the N dense similarities of one query;
:func:`attribute_hits` on the output of :func:`lumina_audit.attribution.search.top_and_threshold`
(a catalog of 10**6 songs never materialises N similarities per query). Both
give identical results: both select from exact similarities with the same rule
and build the result with the same code.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import LuminaError
from .search import Hits, select

__all__ = [
    "ATTRIBUTED",
    "CHANNELS",
    "NO_ATTRIBUTION",
    "AttributionError",
    "ChannelCalibration",
    "ChannelResult",
    "Entry",
    "attribute",
    "attribute_hits",
    "calibrate",
]

CHANNELS = ("P", "M")
ATTRIBUTED = "attributed"
NO_ATTRIBUTION = "no attribution above the noise floor"
F64 = npt.NDArray[np.float64]
#: Values per chunk when the calibration sums C * N similarities with math.fsum.
_FSUM_CHUNK = 1 << 20


class AttributionError(LuminaError):
    """A calibration or an attribution was refused (spec attribution-v1)."""

    exit_code = 2


@dataclass(frozen=True)
class ChannelCalibration:
    """The noise floor of one channel and its measured error rates (section 1)."""

    channel: str
    controls: int
    catalog_size: int
    mu: float
    sigma: float
    k: float
    tau: float
    false_positive_rate: float
    #: For each control, in input order: the number of catalog songs above ``tau``.
    counts_above: tuple[int, ...]
    counts_above_mean: float
    counts_above_max: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel, "controls": self.controls, "catalog_size": self.catalog_size,
            "mu": self.mu, "sigma": self.sigma, "k": self.k, "tau": self.tau,
            "false_positive_rate": self.false_positive_rate, "counts_above": list(self.counts_above),
            "counts_above_mean": self.counts_above_mean, "counts_above_max": self.counts_above_max,
        }


@dataclass(frozen=True)
class Entry:
    """One listed catalog song of one channel's result."""

    song_id: str
    row: int
    similarity: float
    z: float
    excess: float
    share: float
    above_threshold: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "song_id": self.song_id, "row": self.row, "similarity": self.similarity, "z": self.z,
            "excess": self.excess, "share": self.share, "above_threshold": self.above_threshold,
        }


@dataclass(frozen=True)
class ChannelResult:
    """The attribution of one query on one channel (section 2)."""

    verdict: str
    mu: float
    sigma: float
    tau: float
    top_k: int
    catalog_size: int
    above_count: int
    excess_sum: float
    entries: tuple[Entry, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict, "mu": self.mu, "sigma": self.sigma, "tau": self.tau, "top_k": self.top_k,
            "catalog_size": self.catalog_size, "above_count": self.above_count, "excess_sum": self.excess_sum,
            "entries": [e.as_dict() for e in self.entries],
        }


# --------------------------------------------------------------------------- calibration


def _chunks(x: F64) -> Iterator[list[float]]:
    flat = x.reshape(-1)
    for start in range(0, flat.shape[0], _FSUM_CHUNK):
        yield flat[start : start + _FSUM_CHUNK].tolist()


def _exact_sum(x: F64) -> float:
    """Correctly rounded sum of every value of ``x`` (chunked, so memory stays small)."""
    return math.fsum(itertools.chain.from_iterable(_chunks(x)))


def _centred_square_sum(x: F64, mu: float) -> float:
    def squares() -> Iterator[list[float]]:
        flat = x.reshape(-1)
        for start in range(0, flat.shape[0], _FSUM_CHUNK):
            d = flat[start : start + _FSUM_CHUNK] - mu
            yield (d * d).tolist()

    return math.fsum(itertools.chain.from_iterable(squares()))


def _check_calibration_inputs(
    control_sims: Mapping[str, F64], k: float, control_ids: Sequence[str], control_pcm_sha256: Sequence[str],
    catalog_pcm_sha256: Collection[str], control_space: str, catalog_space: str, min_controls: int,
) -> tuple[int, int]:
    if control_space != catalog_space:
        raise AttributionError(
            f"controls and catalog are in different signature spaces: controls {control_space},"
            f" catalog {catalog_space}"
        )
    if isinstance(k, bool) or not isinstance(k, int | float) or not math.isfinite(k) or k <= 0:
        raise AttributionError(f"k must be a finite number above 0, got {k!r}")
    if isinstance(min_controls, bool) or not isinstance(min_controls, int) or min_controls < 2:
        raise AttributionError(f"min_controls must be an integer of at least 2, got {min_controls!r}")
    c = len(control_ids)
    if len(control_pcm_sha256) != c:
        raise AttributionError(f"{c} control ids but {len(control_pcm_sha256)} control PCM hashes")
    if c < min_controls:
        raise AttributionError(f"{c} controls given; calibration needs at least {min_controls}")
    first: dict[str, str] = {}
    for cid, pcm in zip(control_ids, control_pcm_sha256, strict=True):
        if pcm in first:
            raise AttributionError(f"controls {first[pcm]!r} and {cid!r} have the same PCM hash {pcm}")
        first[pcm] = cid
    catalog = catalog_pcm_sha256 if isinstance(catalog_pcm_sha256, set | frozenset) else set(catalog_pcm_sha256)
    for cid, pcm in zip(control_ids, control_pcm_sha256, strict=True):
        if pcm in catalog:
            raise AttributionError(f"control {cid!r} is in the catalog (PCM hash {pcm}); controls must not be")
    if not control_sims or any(ch not in CHANNELS for ch in control_sims):
        raise AttributionError(f"control similarities must be given for channels among {list(CHANNELS)}")
    n = len(catalog_pcm_sha256)
    for ch, x in control_sims.items():
        if not isinstance(x, np.ndarray) or x.dtype != np.float64 or x.ndim != 2:
            raise AttributionError(f"channel {ch}: control similarities must be a float64 [C, N] array")
        if x.shape != (c, n):
            raise AttributionError(
                f"channel {ch}: control similarities have shape {list(x.shape)}; expected [{c}, {n}]"
                " (controls x catalog songs)"
            )
    if n == 0:
        raise AttributionError("the catalog is empty (N = 0); there is nothing to calibrate against")
    for ch, x in control_sims.items():
        if not np.isfinite(x).all():
            raise AttributionError(f"channel {ch}: control similarities hold a non-finite value")
    return c, n


def calibrate(
    control_sims: Mapping[str, F64],
    k: float = 3.0,
    *,
    control_ids: Sequence[str],
    control_pcm_sha256: Sequence[str],
    catalog_pcm_sha256: Collection[str],
    control_space: str,
    catalog_space: str,
    min_controls: int = 10,
) -> dict[str, ChannelCalibration]:
    """The noise floor of each channel from the C x N control similarities (section 1).

    ``control_sims[channel]`` is float64 [C, N]: row i holds control i against
    every catalog song. ``control_ids`` name the controls (in refusals),
    ``control_pcm_sha256`` and ``catalog_pcm_sha256`` are the PCM hashes of the
    controls and of the N catalog songs, ``control_space`` and
    ``catalog_space`` the two signature-space digests.
    """
    c, n = _check_calibration_inputs(
        control_sims, k, control_ids, control_pcm_sha256, catalog_pcm_sha256, control_space, catalog_space,
        min_controls,
    )
    k = float(k)
    result: dict[str, ChannelCalibration] = {}
    for ch in CHANNELS:
        if ch not in control_sims:
            continue
        x = control_sims[ch]
        total = c * n
        try:
            mu = _exact_sum(x) / total
            with np.errstate(over="ignore"):
                sigma = math.sqrt(_centred_square_sum(x, mu) / (total - 1))
        except OverflowError:
            mu, sigma = math.nan, math.inf
        if not math.isfinite(sigma) or sigma == 0.0:
            raise AttributionError(f"channel {ch}: the control similarities have sigma {sigma!r}; need sigma > 0")
        tau = mu + k * sigma
        counts = tuple(int(v) for v in np.count_nonzero(x > tau, axis=1))
        result[ch] = ChannelCalibration(
            channel=ch, controls=c, catalog_size=n, mu=mu, sigma=sigma, k=k, tau=tau,
            false_positive_rate=sum(counts) / total, counts_above=counts,
            counts_above_mean=sum(counts) / c, counts_above_max=max(counts),
        )
    return result


# --------------------------------------------------------------------------- attribution


def _check_floor(mu: float, sigma: float, tau: float, top_k: int) -> None:
    for name, v in (("mu", mu), ("sigma", sigma), ("tau", tau)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise AttributionError(f"{name} must be a finite number, got {v!r}")
    if sigma <= 0:
        raise AttributionError(f"sigma must be above 0, got {sigma!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise AttributionError(f"top_k must be a non-negative integer, got {top_k!r}")


def _build(hits: Hits, song_ids: Sequence[str], mu: float, sigma: float, tau: float, top_k: int) -> ChannelResult:
    cands = [(int(r), float(s)) for r, s in zip(hits.rows.tolist(), hits.similarities.tolist(), strict=True)]
    above = [(r, s) for r, s in cands if s > tau]
    total = math.fsum(s - tau for _, s in above)
    by_similarity = sorted(cands, key=lambda rs: (-rs[1], song_ids[rs[0]]))
    extras = [(r, s) for r, s in by_similarity[:top_k] if not s > tau]
    entries = []
    for r, s in above:
        excess = s - tau
        entries.append(Entry(song_ids[r], r, s, (s - mu) / sigma, excess, excess / total, True))
    entries.sort(key=lambda e: (-e.share, e.song_id))
    for r, s in extras:
        entries.append(Entry(song_ids[r], r, s, (s - mu) / sigma, 0.0, 0.0, False))
    return ChannelResult(
        verdict=ATTRIBUTED if total > 0 else NO_ATTRIBUTION, mu=float(mu), sigma=float(sigma), tau=float(tau),
        top_k=top_k, catalog_size=hits.catalog_size, above_count=len(above), excess_sum=total,
        entries=tuple(entries),
    )


def attribute(
    sims: F64, song_ids: Sequence[str], mu: float, sigma: float, tau: float, top_k: int = 10
) -> ChannelResult:
    """Attribute one query on one channel from its N similarities (float64 [N]) to the catalog."""
    _check_floor(mu, sigma, tau, top_k)
    if not isinstance(sims, np.ndarray) or sims.dtype != np.float64 or sims.ndim != 1:
        raise AttributionError("similarities must be a one-dimensional float64 array")
    if sims.shape[0] != len(song_ids):
        raise AttributionError(f"{sims.shape[0]} similarities but {len(song_ids)} song ids")
    if not np.isfinite(sims).all():
        raise AttributionError("similarities hold a non-finite value")
    return _build(select(sims, float(tau), top_k), song_ids, mu, sigma, tau, top_k)


def attribute_hits(
    hits: Hits, song_ids: Sequence[str], mu: float, sigma: float, tau: float, top_k: int = 10
) -> ChannelResult:
    """:func:`attribute` from the output of :func:`lumina_audit.attribution.search.top_and_threshold`.

    ``hits`` must come from a search with this ``tau`` and a ``top_k`` at least
    this one; ``song_ids`` are the N song ids of the catalog, in row order.
    """
    _check_floor(mu, sigma, tau, top_k)
    if hits.tau != tau:
        raise AttributionError(f"the search used tau {hits.tau!r}, not {tau!r}")
    if hits.top_k < top_k:
        raise AttributionError(f"the search kept the top {hits.top_k} rows; top_k {top_k} needs at least as many")
    if hits.catalog_size != len(song_ids):
        raise AttributionError(f"the search covered {hits.catalog_size} rows but {len(song_ids)} song ids are given")
    return _build(hits, song_ids, mu, sigma, tau, top_k)
