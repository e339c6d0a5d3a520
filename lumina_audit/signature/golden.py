"""Golden vectors: committed clips and their expected signatures, every method, compared bit for bit.

``lumina_audit/_data/golden/golden.json`` (format ``lumina-golden``, version 2) names the tiny checkpoint and
its digests, the pins, the environment it was computed in, each signature method with the
digest of its signature space, and per clip the file and PCM hashes, the chunk count and,
per method, the four vectors. Floats are written by ``json`` as the shortest repr that
reads back to the same float64; float32 values are stored widened to float64, which is
exact. Version 1 (one method, the vectors beside the clip's hashes) is no longer read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._internal.fileio import write_file
from ..errors import ConfigError
from .pins import Pins
from .result import Signature

__all__ = ["FORMAT", "VERSION", "ClipResult", "GoldenFile", "GoldenReport", "check", "default_root", "files", "read",
           "write"]

FORMAT = "lumina-golden"
VERSION = 2
_VECTORS = (("p_raw", "raw_p"), ("m_raw", "raw_m"), ("p", "p"), ("m", "m"))


def default_root() -> Path:
    """``_data/golden/`` of this package (package data: the clips, the two tiny checkpoints, the vectors)."""
    return Path(__file__).resolve().parents[1] / "_data" / "golden"


def files(root: Path) -> list[str]:
    """The golden files of ``root``: ``golden.json`` (the embedded random checkpoint), then ``golden-*.json``."""
    found = sorted(p.name for p in root.glob("golden-*.json"))
    return (["golden.json"] if (root / "golden.json").is_file() else []) + found


@dataclass(frozen=True)
class GoldenFile:
    """A golden file: ``spaces`` maps each method to its signature-space digest (the order is the file's)."""

    root: Path
    model_dir: Path
    digests: dict[str, str]
    spaces: dict[str, str]
    pins: Pins
    environment: dict[str, Any]
    expected: tuple[tuple[Path, Mapping[str, Signature]], ...]

    def expected_for(self, method: str) -> tuple[tuple[Path, Signature], ...]:
        """Each clip with the expected signature of ``method``."""
        return tuple((path, by_method[method]) for path, by_method in self.expected)


def _vector(doc: dict[str, Any], key: str, where: str) -> npt.NDArray[np.float64]:
    values = np.asarray(doc[key], dtype=np.float64)
    if values.ndim != 1 or values.shape[0] < 1:
        raise ConfigError(f"golden vector {key} of {where} has shape {values.shape}")
    return values


def _sig_from_json(clip: dict[str, Any], doc: dict[str, Any], where: str) -> Signature:
    return Signature(song_id=clip["song_id"], file_sha256=clip["file_sha256"], pcm_sha256=clip["pcm_sha256"],
                     chunks=int(clip["chunks"]), raw_p=_vector(doc, "p_raw", where), raw_m=_vector(doc, "m_raw", where),
                     p=_vector(doc, "p", where).astype(np.float32), m=_vector(doc, "m", where).astype(np.float32))


def read(root: Path, name: str = "golden.json") -> GoldenFile:
    path = root / name
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read golden file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        got = (doc.get("format"), doc.get("version")) if isinstance(doc, dict) else (type(doc).__name__, None)
        raise ConfigError(f"{path}: not a {FORMAT} version {VERSION} file (format {got[0]!r}, version {got[1]!r})")
    try:
        spaces = {str(m): str(v["space_sha256"]) for m, v in doc["methods"].items()}
        expected = tuple(
            (root / c["file"], {m: _sig_from_json(c, c["vectors"][m], f"{c.get('song_id')} ({m})") for m in spaces})
            for c in doc["clips"])
        return GoldenFile(root=root, model_dir=root / doc["model"]["directory"], digests=dict(doc["model"]["digests"]),
                          spaces=spaces, pins=Pins(**doc["pins"]), environment=doc["environment"], expected=expected)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: malformed golden file (missing {exc})") from None


def write(root: Path, model_dir: str, digests: dict[str, str], spaces: Mapping[str, str], pins: Pins,
          environment: dict[str, Any], results: Sequence[tuple[str, Mapping[str, Signature]]],
          name: str = "golden.json") -> None:
    """``results``: per clip, its file (relative to ``root``) and each method's signature, by method name."""
    clips = []
    for file, by_method in results:
        first = next(iter(by_method.values()))
        clips.append({
            "file": file, "song_id": first.song_id, "file_sha256": first.file_sha256,
            "pcm_sha256": first.pcm_sha256, "chunks": first.chunks,
            "vectors": {m: {key: [float(v) for v in getattr(s, field)] for key, field in _VECTORS}
                        for m, s in by_method.items()},
        })
    doc = {"format": FORMAT, "version": VERSION, "model": {"directory": model_dir, "digests": digests},
           "methods": {m: {"space_sha256": d} for m, d in spaces.items()}, "pins": pins.as_json(),
           "environment": environment, "clips": clips}
    write_file(root / name, (json.dumps(doc, indent=1) + "\n").encode("utf-8"), replace=True)


@dataclass(frozen=True)
class ClipResult:
    file: str
    song_id: str
    method: str
    chunks: int
    equal: bool
    #: Names of the fields that differ; empty when equal.
    differing: tuple[str, ...]
    max_abs_diff: float


@dataclass(frozen=True)
class GoldenReport:
    clips: tuple[ClipResult, ...]
    spaces: dict[str, str]
    environment_differences: tuple[str, ...]

    @property
    def bottom_line(self) -> bool:
        """True when every clip is bitwise equal to its golden vectors, for every method."""
        return bool(self.clips) and all(c.equal for c in self.clips)


def compare(expected: Signature, actual: Signature) -> tuple[tuple[str, ...], float]:
    differing = [name for name in ("song_id", "file_sha256", "pcm_sha256", "chunks")
                 if getattr(expected, name) != getattr(actual, name)]
    worst = 0.0
    for _key, field in _VECTORS:
        a, b = getattr(expected, field), getattr(actual, field)
        if a.dtype != b.dtype or a.tobytes() != b.tobytes():
            differing.append(field)
            if a.shape == b.shape:
                worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))))
    return tuple(differing), worst


def check(golden: GoldenFile, compute: Callable[[Path, str], Mapping[str, Signature]], spaces: Mapping[str, str],
          environment: dict[str, Any]) -> GoldenReport:
    """Recompute every golden clip with ``compute(path, song_id)`` (every method at once) and compare bit for bit.

    ``spaces``: the signature-space digest of each method in this installation.
    """
    from .environment import differences

    results = []
    for path, by_method in golden.expected:
        song_id = next(iter(by_method.values())).song_id
        got = compute(path, song_id)
        for method, exp in by_method.items():
            if method not in got:
                results.append(ClipResult(file=path.name, song_id=song_id, method=method, chunks=0, equal=False,
                                          differing=("not computed",), max_abs_diff=0.0))
                continue
            differing, worst = compare(exp, got[method])
            results.append(ClipResult(file=path.name, song_id=song_id, method=method, chunks=got[method].chunks,
                                      equal=not differing, differing=differing, max_abs_diff=worst))
    for method, digest in golden.spaces.items():
        if spaces.get(method) != digest:
            results.append(ClipResult(file="(signature space)", song_id="", method=method, chunks=0, equal=False,
                                      differing=("space_sha256",), max_abs_diff=0.0))
    return GoldenReport(clips=tuple(results), spaces=dict(spaces),
                        environment_differences=tuple(differences(golden.environment, environment)))
