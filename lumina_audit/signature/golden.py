"""Golden vectors: committed clips and their expected signatures, compared bit for bit.

``golden/golden.json`` (format ``lumina-golden``, version 1) names the tiny
checkpoint and its digests, the pins, the environment it was computed in, and
per clip the file and PCM hashes, the chunk count and the four vectors. Floats
are written by ``json`` as the shortest repr that reads back to the same
float64; float32 values are stored widened to float64, which is exact.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError
from .pins import Pins
from .result import DIM, Signature

__all__ = ["FORMAT", "VERSION", "ClipResult", "GoldenFile", "GoldenReport", "check", "default_root", "read",
           "write"]

FORMAT = "lumina-golden"
VERSION = 1
_VECTORS = (("p_raw", "raw_p"), ("m_raw", "raw_m"), ("p", "p"), ("m", "m"))


def default_root() -> Path:
    """``golden/`` of the source tree this package runs from."""
    return Path(__file__).resolve().parents[2] / "golden"


@dataclass(frozen=True)
class GoldenFile:
    root: Path
    model_dir: Path
    digests: dict[str, str]
    space_sha256: str
    pins: Pins
    environment: dict[str, Any]
    expected: tuple[tuple[Path, Signature], ...]


def _vector(doc: dict[str, Any], key: str) -> npt.NDArray[np.float64]:
    values = np.asarray(doc[key], dtype=np.float64)
    if values.shape != (DIM,):
        raise ConfigError(f"golden vector {key} of {doc.get('song_id')} has shape {values.shape}")
    return values


def _sig_from_json(doc: dict[str, Any]) -> Signature:
    return Signature(song_id=doc["song_id"], file_sha256=doc["file_sha256"], pcm_sha256=doc["pcm_sha256"],
                     chunks=int(doc["chunks"]), raw_p=_vector(doc, "p_raw"), raw_m=_vector(doc, "m_raw"),
                     p=_vector(doc, "p").astype(np.float32), m=_vector(doc, "m").astype(np.float32))


def read(root: Path) -> GoldenFile:
    path = root / "golden.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read golden file ({exc})") from None
    if doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise ConfigError(f"{path}: not a {FORMAT} version {VERSION} file "
                          f"(format {doc.get('format')!r}, version {doc.get('version')!r})")
    try:
        expected = tuple((root / c["file"], _sig_from_json(c)) for c in doc["clips"])
        return GoldenFile(root=root, model_dir=root / doc["model"]["directory"],
                          digests=dict(doc["model"]["digests"]), space_sha256=doc["space_sha256"],
                          pins=Pins(**doc["pins"]), environment=doc["environment"], expected=expected)
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: malformed golden file (missing {exc})") from None


def write(root: Path, model_dir: str, digests: dict[str, str], space_sha256: str, pins: Pins,
          environment: dict[str, Any], results: list[tuple[str, Signature]]) -> None:
    clips = [{
        "file": file, "song_id": s.song_id, "file_sha256": s.file_sha256, "pcm_sha256": s.pcm_sha256,
        "chunks": s.chunks, **{key: [float(v) for v in getattr(s, field)] for key, field in _VECTORS},
    } for file, s in results]
    doc = {"format": FORMAT, "version": VERSION, "model": {"directory": model_dir, "digests": digests},
           "space_sha256": space_sha256, "pins": pins.as_json(), "environment": environment, "clips": clips}
    (root / "golden.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class ClipResult:
    file: str
    song_id: str
    chunks: int
    equal: bool
    #: Names of the fields that differ; empty when equal.
    differing: tuple[str, ...]
    max_abs_diff: float


@dataclass(frozen=True)
class GoldenReport:
    clips: tuple[ClipResult, ...]
    space_sha256: str
    environment_differences: tuple[str, ...]

    @property
    def bottom_line(self) -> bool:
        """True when every clip is bitwise equal to its golden vector."""
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


def check(golden: GoldenFile, compute: Callable[[Path, str], Signature], space_sha256: str,
          environment: dict[str, Any]) -> GoldenReport:
    """Recompute every golden clip with ``compute(path, song_id)`` and compare bit for bit."""
    from .environment import differences

    results = []
    for path, exp in golden.expected:
        got = compute(path, exp.song_id)
        differing, worst = compare(exp, got)
        results.append(ClipResult(file=path.name, song_id=exp.song_id, chunks=got.chunks,
                                  equal=not differing, differing=differing, max_abs_diff=worst))
    if space_sha256 != golden.space_sha256:
        results.append(ClipResult(file="(signature space)", song_id="", chunks=0, equal=False,
                                  differing=("space_sha256",), max_abs_diff=0.0))
    return GoldenReport(clips=tuple(results), space_sha256=space_sha256,
                        environment_differences=tuple(differences(golden.environment, environment)))
