"""Gradient-free baselines of ``bench_groundtruth`` computed on EnCodec codes.

Why codes: the embedded checkpoints share a tiny EnCodec whose decoder was never trained
(``scripts/make_tiny_checkpoint.py``): whatever the codes, it decodes to nearly the same
waveform, so ``lumina_audit.customization.customize`` carries their pieces as codes
(``lumina-codes`` files) and a piece has no usable audio. The baselines therefore compare codes:
the time-mean of the EnCodec latent they decode to, and per-codebook histograms. A catalog or
control song's codes are those of its whole chunks, encoded one chunk at a time by the library's
``signature.gradients.chunk_codes`` (as ``customize`` encodes the song it fine-tunes on); a
piece's codes are the ones its file carries (``runner.base.load_input``), or, for a piece carried
as audio, those of its whole chunks likewise.

The gradient signatures of the pieces are not computed here: they come from the library
(``runner.base.signatures``, which sends a codes piece through ``signatures_of_codes``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks._groundtruth_common import F64

__all__ = ["CODE_BASELINES", "code_features", "codes_of"]

#: Gradient-free baselines that need only codes (a generated piece has no usable audio).
CODE_BASELINES: tuple[tuple[str, str], ...] = (
    ("latent-mean", "cosine of the time-mean of the EnCodec latent the codes decode to (quantizer.decode)"),
    ("latent-mean-std", "the same, each dimension standardised by the controls' mean and std"),
    ("code-histogram", "cosine of the per-codebook histograms of the codes (4 x 2048 counts, each codebook "
                       "normalised to frequencies)"),
    ("code-histogram-std", "the same, each dimension standardised by the controls' mean and std"),
)


def codes_of(item: Any, model: Any, config: Any) -> Any:
    """Codes ``[chunks, K, T]`` int64 of a loaded input (``runner.base.load_input``).

    A ``CodesPiece``: its codes as one chunk ``[1, K, T]``. Audio: every whole chunk of
    ``config.chunk_samples`` encoded by ``signature.gradients.chunk_codes`` (a song shorter than one
    chunk gives its one short chunk).
    """
    import torch

    from lumina_audit.runner.base import is_codes
    from lumina_audit.signature.gradients import chunk_codes

    if is_codes(item):
        return torch.from_numpy(np.ascontiguousarray(item.codes, dtype=np.int64)).unsqueeze(0)
    samples = torch.from_numpy(item.samples).to(model.device)
    full = config.chunk_samples
    whole = max(1, int(samples.shape[0]) // full)
    return torch.cat([chunk_codes(model, samples[k * full:(k + 1) * full]) for k in range(whole)], dim=0).long().cpu()


def code_features(compression: Any, codes: Any, card: int = 2048) -> dict[str, F64]:
    """Raw code-level baseline features of codes ``[chunks, K, T]``: ``latent-mean``, ``code-histogram``."""
    import torch

    with torch.no_grad():
        latent = compression.decode_latent(codes)  # [chunks, D, T]
    lat: F64 = latent.to(torch.float64).permute(1, 0, 2).reshape(latent.shape[1], -1).mean(dim=1).numpy()
    flat = codes.permute(1, 0, 2).reshape(codes.shape[1], -1).cpu().numpy()  # [K, chunks * T]
    hist = np.stack([np.bincount(row, minlength=card)[:card] / row.size for row in flat]).astype(np.float64)
    return {"latent-mean": lat, "code-histogram": hist.reshape(-1)}
