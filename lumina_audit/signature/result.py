"""The result of extraction: one song's two LUMINA signatures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["DIM", "Signature"]

#: Values per channel: 6 layers x 6 tensors x 6 statistics (spec section 7).
DIM = 216


@dataclass(frozen=True, eq=False)
class Signature:
    """Signatures of one song on channels P (composition) and M (production).

    ``raw_p``/``raw_m`` are the float64 raw vectors ``[216]``; ``p``/``m`` the
    float32 unit-norm signatures ``[216]``. Hashes are lowercase hex SHA-256.
    """

    song_id: str
    file_sha256: str
    pcm_sha256: str
    chunks: int
    raw_p: npt.NDArray[np.float64]
    raw_m: npt.NDArray[np.float64]
    p: npt.NDArray[np.float32]
    m: npt.NDArray[np.float32]

    def bitwise_equal(self, other: Signature) -> bool:
        """True when every field, and every vector bit for bit, is equal."""
        same_meta = (self.song_id, self.file_sha256, self.pcm_sha256, self.chunks) == (
            other.song_id, other.file_sha256, other.pcm_sha256, other.chunks,
        )
        return same_meta and all(
            a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
            for a, b in (
                (self.raw_p, other.raw_p), (self.raw_m, other.raw_m),
                (self.p, other.p), (self.m, other.m),
            )
        )
