"""Signatures and gradient-free features of EnCodec codes, for the ground-truth part of ``bench_groundtruth.py``.

Why codes and not audio: the embedded checkpoints share a tiny EnCodec whose decoder was never
trained (``scripts/make_tiny_checkpoint.py``): whatever the codes, it decodes to nearly the same
waveform (measured: two pieces decoded from unrelated codes correlate at 0.99999, and a song
encoded and decoded again correlates with itself at about 0). A generated piece decoded to audio
and encoded again therefore loses everything the LM generated. So each generated piece is
attributed from its codes directly, as if decoded by a perfect decoder and encoded again: the
same loss (``lumina_audit.signature.gradients.codes_loss``: boosted masked cross-entropy, null
conditioning), the same hooked gradients, float64 sums and methods as
``signatures_of_audio``, on the one 10 s chunk the piece is. Catalog and control songs are real
audio and take the library's own path (``Session.all_signatures``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from _groundtruth_common import F64

__all__ = ["CODE_BASELINES", "code_features", "codes_path_check", "decoded_alike", "signatures_of_codes"]

#: Gradient-free baselines that need only codes (a generated piece has no usable audio).
CODE_BASELINES: tuple[tuple[str, str], ...] = (
    ("latent-mean", "cosine of the time-mean of the EnCodec latent the codes decode to (quantizer.decode)"),
    ("latent-mean-std", "the same, each dimension standardised by the controls' mean and std"),
    ("code-histogram", "cosine of the per-codebook histograms of the codes (4 x 2048 counts, each codebook "
                       "normalised to frequencies)"),
    ("code-histogram-std", "the same, each dimension standardised by the controls' mean and std"),
)


def signatures_of_codes(session: Any, codes: Any, song_id: str) -> dict[str, Any]:
    """Every method's signature of one chunk of codes ``[1, K, T]`` int64, by method name.

    The steps of ``lumina_audit.signature.extract.signatures_of_audio`` for one chunk, with the
    codes given instead of encoded from audio: its loss, gradients and sums, then its own
    ``summarise``. ``file_sha256`` and ``pcm_sha256`` are the SHA-256
    of the codes' little-endian int64 bytes (there is no file).
    """
    import hashlib

    import torch

    from lumina_audit.errors import SignatureError
    from lumina_audit.signature.accumulate import make_sums
    from lumina_audit.signature.extract import summarise
    from lumina_audit.signature.gradients import codes_loss
    from lumina_audit.signature.methods import normalise
    from lumina_audit.signature.pins import sdpa_context
    from lumina_audit.signature.result import Signature

    model, config, pins = session.model, session.config, session.pins
    if codes.dim() != 3 or codes.shape[0] != 1:
        raise ValueError(f"codes must be [1, K, T], got {tuple(codes.shape)}")
    params = [*model.hooked["P"], *model.hooked["M"]]
    sums = make_sums(params, model.device, pins)
    try:
        with sdpa_context(pins):
            loss = codes_loss(model, codes.to(model.device), config.codebook_boosts)
            if not torch.isfinite(loss):
                raise SignatureError(f"the loss of the codes is not finite ({float(loss)})")
            grads = torch.autograd.grad(loss, params)
        for k, g in enumerate(grads):
            sums.add(k, g)
        del grads
        raws = summarise(sums, 1, model, config, session.methods)
    finally:
        sums.close()
    digest = hashlib.sha256(codes.to(torch.int64).cpu().numpy().astype("<i8").tobytes()).hexdigest()
    return {name: Signature(song_id=song_id, file_sha256=digest, pcm_sha256=digest, chunks=1, raw_p=raw["P"],
                            raw_m=raw["M"], p=normalise(raw["P"]), m=normalise(raw["M"]))
            for name, raw in raws.items()}


def code_features(compression: Any, codes: Any, card: int = 2048) -> dict[str, F64]:
    """Raw code-level baseline features of one song's codes ``[chunks, K, T]``: ``latent-mean``, ``code-histogram``."""
    import torch

    with torch.no_grad():
        latent = compression.decode_latent(codes)  # [chunks, D, T]
    lat: F64 = latent.to(torch.float64).permute(1, 0, 2).reshape(latent.shape[1], -1).mean(dim=1).numpy()
    flat = codes.permute(1, 0, 2).reshape(codes.shape[1], -1).cpu().numpy()  # [K, chunks * T]
    hist = np.stack([np.bincount(row, minlength=card)[:card] / row.size for row in flat]).astype(np.float64)
    return {"latent-mean": lat, "code-histogram": hist.reshape(-1)}


def codes_path_check(session: Any, audio: Any) -> dict[str, Any]:
    """The codes path against the library's audio path on the first 10 s chunk of ``audio``: bit for bit or not.

    ``signatures_of_audio`` on that one chunk, and :func:`signatures_of_codes` on the codes the
    library's own ``chunk_codes`` makes of it; returns whether every method's raw vectors are equal.
    """
    import dataclasses

    import torch

    from lumina_audit.signature.extract import signatures_of_audio
    from lumina_audit.signature.gradients import chunk_codes as library_chunk_codes

    model, config = session.model, session.config
    n = config.chunk_samples
    one = dataclasses.replace(audio, samples=audio.samples[:n].copy(), chunks=((0, n),))
    by_audio = signatures_of_audio(one, model, config, session.pins, "check", session.methods)
    codes = library_chunk_codes(model, torch.from_numpy(one.samples).to(model.device))
    by_codes = signatures_of_codes(session, codes, "check")
    equal = {name: bool(np.array_equal(by_audio[name].raw_p, by_codes[name].raw_p)
                        and np.array_equal(by_audio[name].raw_m, by_codes[name].raw_m)) for name in by_audio}
    return {"song": audio.path.stem, "chunk_seconds": n / 32000, "bitwise_equal": equal}


def decoded_alike(queries: dict[str, list[Any]]) -> dict[str, Any]:
    """How alike the decoded WAVs of the generated pieces are: RMS range and the correlation of each with the first."""
    import soundfile as sf

    wavs = [sf.read(str(p), dtype="float64")[0] for paths in queries.values() for p in paths]
    first = wavs[0]
    corr = [float(np.corrcoef(first, w)[0, 1]) for w in wavs[1:] if w.shape == first.shape]
    rms = [float(np.sqrt(np.mean(w ** 2))) for w in wavs]
    return {"pieces": len(wavs), "rms_min": min(rms), "rms_max": max(rms),
            "correlation_with_first_min": min(corr) if corr else None,
            "correlation_with_first_max": max(corr) if corr else None}
