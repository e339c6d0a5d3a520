"""Gradient stage against an independent, literal reading of the spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.errors import SignatureError
from lumina_audit.signature.extract import extract
from lumina_audit.signature.gradients import chunk_loss
from lumina_audit.signature.methods import GRADSTATS
from lumina_audit.signature.methods.base import normalise
from lumina_audit.signature.methods.gradstats import STATS, raw_vector, tensor_stats
from lumina_audit.signature.pins import sdpa_context

from ._reference import codes_and_out, reference_means


def _np_stats(g: np.ndarray) -> list[float]:
    d = g - g.mean()
    m2, m3 = np.mean(d**2), np.mean(d**3)
    skew = m3 / m2**1.5 if m2 != 0 else 0.0
    return [g.mean(), g.std(ddof=1), np.linalg.norm(g), g.max(), g.min(), skew]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=2, max_size=300))
def test_stats_match_numpy(values: list[float]) -> None:
    g = np.asarray(values, dtype=np.float64)
    assume(np.ptp(g) == 0 or np.ptp(g) > 1e-50)  # m2**1.5 underflows below that
    ours = tensor_stats(torch.from_numpy(g))
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, _np_stats(g), rtol=1e-9, atol=1e-9)


def test_stats_order_and_zero_skew() -> None:
    assert STATS == ("mean", "std", "l2", "max", "min", "skew")
    assert tensor_stats(torch.zeros(5, 3, dtype=torch.float64)) == [0.0] * 6
    assert tensor_stats(torch.full((4,), 2.0, dtype=torch.float64))[5] == 0.0
    s = tensor_stats(torch.tensor([1.0, 2.0, 3.0, 10.0], dtype=torch.float64))
    assert s[:5] == [4.0, pytest.approx(np.std([1, 2, 3, 10], ddof=1)), pytest.approx(np.sqrt(114)), 10.0, 1.0]
    assert s[5] > 0


def test_vector_layout() -> None:
    """Index (layer*6 + tensor)*6 + stat: tensor i of the 36 is filled with value i+1."""
    grads = [torch.full((3, 2), float(i + 1), dtype=torch.float64) for i in range(36)]
    raw = raw_vector(grads)
    assert raw.shape == (216,) and raw.dtype == np.float64
    for layer in range(6):
        for tensor in range(6):
            i = layer * 6 + tensor
            base = i * 6
            assert raw[base + 0] == i + 1  # mean
            assert raw[base + 1] == 0.0  # std
            assert raw[base + 3] == i + 1 and raw[base + 4] == i + 1  # max, min


def test_normalise() -> None:
    raw = np.array([3.0, 4.0] + [0.0] * 214)
    sig = normalise(raw)
    assert sig.dtype == np.float32 and sig[0] == np.float32(0.6) and sig[1] == np.float32(0.8)
    with pytest.raises(SignatureError, match="norm 0"):
        normalise(np.zeros(216))


def test_loss_masks_invalid_positions_and_applies_boosts(session: Any) -> None:
    chunk = torch.from_numpy(render(SongSpec(seed=11, seconds=4.0))[0].astype(np.float32))
    codes, out = codes_and_out(session, chunk)
    assert torch.isnan(out.logits).any(), "the delay pattern must leave NaN logits to mask"
    valid = out.mask.bool()
    # Literal reading of spec 3.4 with a per-position log-softmax.
    logp = torch.log_softmax(out.logits[0].double(), dim=-1)
    ce = -logp.gather(-1, codes[0].unsqueeze(-1)).squeeze(-1)  # [K, T]
    w = [0.4, 1.2, 1.3, 1.4]
    expected = sum(w[k] * ce[k][valid[0, k]].sum() for k in range(4)) / valid.sum()
    with sdpa_context(session.pins):
        ours = chunk_loss(session.model, chunk, w)
        plain = chunk_loss(session.model, chunk, [1.0] * 4)
    assert torch.isfinite(ours)
    assert float(ours) == pytest.approx(float(expected), rel=1e-5)
    # With all boosts 1.0 it is the plain mean cross-entropy over valid positions.
    mean_ce = F.cross_entropy(out.logits[valid], codes[valid])
    assert float(plain) == pytest.approx(float(mean_ce), rel=1e-5)


def _independent_signature(session: Any, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Spec sections 3-7 written out again: loss.backward(), numpy statistics."""
    means = reference_means(session, path)
    raw = [np.array([v for g in means[c * 36:(c + 1) * 36] for v in _np_stats(g.ravel())]) for c in (0, 1)]
    return raw[0], raw[1]


def test_extraction_matches_independent_implementation(session: Any, tmp_path: Path) -> None:
    path = tmp_path / "unseen.wav"
    write_wav(path, render(SongSpec(seed=90210, seconds=12.5, sample_rate=44100, channels=2)), 44100, 16)
    sig = extract(path, session.model, session.config, session.pins, method=GRADSTATS)
    raw_p, raw_m = _independent_signature(session, path)
    assert sig.chunks == 2
    np.testing.assert_allclose(sig.raw_p, raw_p, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(sig.raw_m, raw_m, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(sig.p, raw_p / np.linalg.norm(raw_p), rtol=1e-6, atol=1e-7)
    # Under null conditioning the cross-attention gradients are exactly zero (spec 10).
    for raw in (sig.raw_p, sig.raw_m):
        block = raw.reshape(6, 6, 6)
        assert not block[:, 2:4, :].any() and block[:, [0, 1, 4, 5], 2].min() > 0
    # Gradients reached nothing but the hooked tensors.
    assert all(p.grad is None for p in session.model.lm.parameters())
