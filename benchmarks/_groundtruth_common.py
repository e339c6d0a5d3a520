"""Shared parts of ``bench_groundtruth`` (and of ``bench_lr_battery``): baselines, scoring, the table's order.

Nothing here imports torch at module level: the benchmark re-executes itself under the numerical
pins before torch starts, and only then calls into this module. The scoring is the library's
(``attribution.method.calibrate``, ``attribute``, ``detection.detect``); the gradient-free
baselines are the benchmark's own (they have no library counterpart). What the benchmarks share
with the scripts (Markdown, the git state, versions, Debian packages, digests, rendered scores,
work folders) is in ``lumina_tools``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "BASELINES",
    "BATTERY_CONTROL_OFFSET",
    "CATALOG_OFFSET",
    "CHANNELS",
    "CONTROL_OFFSET",
    "F32",
    "F64",
    "HELDOUT_OFFSET",
    "MEL",
    "METHOD_NAMES",
    "Floor",
    "Scores",
    "baseline_features",
    "baseline_similarities",
    "cosine",
    "encodec_mean",
    "floor",
    "logmel_stats",
    "score_queries",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: Offsets into ``scores.BENCHMARK_SEEDS`` (1,000,000 + offset): catalog, controls, battery controls.
CATALOG_OFFSET, CONTROL_OFFSET, BATTERY_CONTROL_OFFSET = 0, 1000, 2000
#: The held-out song of the pilot's forgetting check: ``scores.VALIDATION_SEEDS`` start + this (losses only).
HELDOUT_OFFSET = 100
#: Signature methods and channels, in table order.
METHOD_NAMES = ("lumina-gradproj-v1", "lumina-gradstats-v1")
CHANNELS = ("P", "M")
#: Gradient-free baselines, in table order: (name, what it is).
BASELINES: tuple[tuple[str, str], ...] = (
    ("encodec-mean", "cosine of the time-mean of EnCodec encoder embeddings"),
    ("encodec-mean-std", "the same, each dimension standardised by the controls' mean and std"),
    ("logmel-stats", "cosine of per-band mean and std of a log-mel spectrogram"),
    ("logmel-stats-std", "the same, each dimension standardised by the controls' mean and std"),
)
#: Log-mel settings of the baseline (torchaudio.transforms.MelSpectrogram at 32 kHz).
MEL = {"sample_rate": 32000, "n_fft": 2048, "hop_length": 640, "n_mels": 64, "power": 2.0, "floor_db": -100.0}


# --------------------------------------------------------------------------- gradient-free baselines


def encodec_mean(compression: Any, samples: F32) -> F64:
    """Time-mean of ``compression.encoder`` over the whole mono 32 kHz signal (float64)."""
    import torch

    with torch.no_grad():
        emb = compression.encoder(torch.from_numpy(samples).view(1, 1, -1))  # [1, D, frames]
    out: F64 = emb[0].to(torch.float64).mean(dim=1).numpy()
    return out


_MEL_CACHE: dict[str, Any] = {}


def logmel_stats(samples: F32) -> F64:
    """Per-band mean and std (over frames) of a log-mel spectrogram in dB, floored at ``MEL["floor_db"]``."""
    import torch
    import torchaudio

    if "mel" not in _MEL_CACHE:
        _MEL_CACHE["mel"] = torchaudio.transforms.MelSpectrogram(
            sample_rate=int(MEL["sample_rate"]), n_fft=int(MEL["n_fft"]), hop_length=int(MEL["hop_length"]),
            n_mels=int(MEL["n_mels"]), power=float(MEL["power"]))
    with torch.no_grad():
        spec = _MEL_CACHE["mel"](torch.from_numpy(samples)).to(torch.float64)  # [mels, frames]
        db = 10.0 * torch.log10(spec.clamp_min(10 ** (MEL["floor_db"] / 10)))
        out: F64 = torch.cat([db.mean(dim=1), db.std(dim=1, correction=0)]).numpy()
    return out


def baseline_features(compression: Any, samples: Sequence[F32]) -> dict[str, F64]:
    """Raw baseline features ``[n, d]`` per family (``encodec-mean``, ``logmel-stats``)."""
    return {"encodec-mean": np.stack([encodec_mean(compression, s) for s in samples]),
            "logmel-stats": np.stack([logmel_stats(s) for s in samples])}


def cosine(a: F64, b: F64) -> F64:
    """Cosine similarities ``[len(a), len(b)]`` of float64 feature rows (a zero row has similarity 0)."""
    def unit(x: F64) -> F64:
        n = np.linalg.norm(x, axis=1, keepdims=True)
        u: F64 = np.divide(x, n, out=np.zeros_like(x), where=n > 0)
        return u

    out: F64 = unit(a) @ unit(b).T
    return out


def baseline_similarities(feats: Mapping[str, F64], rows: Mapping[str, slice], query: str,
                          catalog: str = "catalog", controls: str = "controls") -> dict[str, F64]:
    """Similarities ``[queries, catalog]`` of every baseline; ``rows`` names row ranges of ``feats``.

    The ``-std`` variants centre and scale each dimension by the controls' mean and std (population),
    the same reference set the noise floor is calibrated on, so nothing of the catalog or the queries
    enters the scaling.
    """
    out: dict[str, F64] = {}
    for family, x in feats.items():
        ref = x[rows[controls]]
        mean, std = ref.mean(axis=0), ref.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        z = (x - mean) / std
        out[family] = cosine(x[rows[query]], x[rows[catalog]])
        out[f"{family}-std"] = cosine(z[rows[query]], z[rows[catalog]])
    return out


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Floor:
    """A calibrated noise floor (attribution-v1 section 1) of one method and channel."""

    mu: float
    sigma: float
    tau: float
    false_positive_rate: float
    counts_above_mean: float

    def as_dict(self) -> dict[str, float]:
        return {"mu": self.mu, "sigma": self.sigma, "tau": self.tau, "false_positive_rate": self.false_positive_rate,
                "counts_above_mean": self.counts_above_mean}


def floor(control_sims: F64, control_pcm: Sequence[str], catalog_pcm: Sequence[str], k: float,
          space: str) -> Floor:
    """The library's calibration (``lumina_audit.attribution.method.calibrate``) of ``[C, N]`` float64 similarities."""
    from lumina_audit.attribution.method import calibrate

    cal = calibrate({"P": np.ascontiguousarray(control_sims, dtype=np.float64)}, k,
                    control_ids=[f"control{i}" for i in range(len(control_pcm))], control_pcm_sha256=control_pcm,
                    catalog_pcm_sha256=list(catalog_pcm), control_space=space, catalog_space=space)["P"]
    return Floor(cal.mu, cal.sigma, cal.tau, cal.false_positive_rate, cal.counts_above_mean)


@dataclass
class Scores:
    """Per-query outcomes of one method and channel against the catalog."""

    ranks: list[int] = field(default_factory=list)
    above: list[bool] = field(default_factory=list)
    shares: list[float] = field(default_factory=list)
    similarities: list[float] = field(default_factory=list)
    z: list[float] = field(default_factory=list)
    top1: list[str] = field(default_factory=list)
    others_above: list[int] = field(default_factory=list)

    def summary(self, n_catalog: int) -> dict[str, Any]:
        n = len(self.ranks)
        if n == 0:
            return {"queries": 0}
        return {
            "queries": n, "catalog": n_catalog,
            "recall_at_1": sum(r <= 1 for r in self.ranks) / n, "recall_at_5": sum(r <= 5 for r in self.ranks) / n,
            "median_rank": float(statistics.median(self.ranks)), "mean_rank": sum(self.ranks) / n,
            "exemplar_mean_share": math.fsum(self.shares) / n, "exemplar_above_tau": sum(self.above) / n,
            "exemplar_mean_z": math.fsum(self.z) / n,
            "others_above_tau_mean": sum(self.others_above) / n,
        }


def score_queries(sims: F64, catalog_ids: Sequence[str], query_ids: Sequence[str], sources: Sequence[str],
                  fl: Floor) -> Scores:
    """Rank (detection's rule), above-tau, share (attribution's rule) of each query's source song."""
    from lumina_audit.attribution.detection import Positive, detect
    from lumina_audit.attribution.method import attribute

    positives = [Positive(q, "generated", (s,)) for q, s in zip(query_ids, sources, strict=True)]
    found = detect(np.ascontiguousarray(sims, dtype=np.float64), catalog_ids, positives, fl.tau)
    out = Scores()
    for i, outcome in enumerate(found.outcomes):
        result = attribute(np.ascontiguousarray(sims[i], dtype=np.float64), catalog_ids, fl.mu, fl.sigma, fl.tau,
                           top_k=len(catalog_ids))
        share = next((e.share for e in result.entries if e.song_id == outcome.source), 0.0)
        out.ranks.append(outcome.rank)
        out.above.append(outcome.detected)
        out.shares.append(share)
        out.similarities.append(outcome.similarity)
        out.z.append((outcome.similarity - fl.mu) / fl.sigma)
        out.top1.append(result.entries[0].song_id if result.entries else "")
        out.others_above.append(result.above_count - int(outcome.detected))
    return out
