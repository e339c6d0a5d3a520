"""Method lumina-gradproj-v1 against the spec's test vectors and an independent, literal implementation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.signature import gradients
from lumina_audit.signature.audio import load_audio
from lumina_audit.signature.extract import extract, signatures_of_audio
from lumina_audit.signature.methods import GRADPROJ, GRADSTATS, METHODS
from lumina_audit.signature.methods import gradproj as gp
from lumina_audit.signature.space import SignatureConfig, SignatureSpace

from ..conftest import ROOT
from ._reference import reference_means

# gradproj-v1 section 11, as printed there.
SPLITMIX_CHECK = (1234567, [6457827717110365317, 3203168211198807973, 9817491932198370423])
TABLE = [  # L, t, i, c, h, b, s
    (12, 0, 0, 412316860416, 11099265861663169924, 146, +1),
    (12, 0, 1, 412316860417, 11019971668343293929, 172, -1),
    (12, 4, 77, 429496729677, 12113940962280355399, 99, -1),
    (42, 0, 0, 1443109011456, 4092907427501237375, 191, -1),
    (47, 5, 16777215, 1636399316991, 1547955507290498449, 192, -1),
]
MASK = (1 << 64) - 1


def py_splitmix64(seed: int, c: int) -> int:
    """SplitMix64 output number ``c``, in Python integers (the spec's formula, read independently)."""
    z = (seed + (c + 1) * 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_splitmix64_published_check() -> None:
    seed, outputs = SPLITMIX_CHECK
    assert [int(v) for v in gp.splitmix64(seed, np.arange(3, dtype=np.uint64))] == outputs
    assert [py_splitmix64(seed, c) for c in range(3)] == outputs


@pytest.mark.parametrize(("layer", "t", "i", "c", "h", "b", "s"), TABLE)
def test_spec_table(layer: int, t: int, i: int, c: int, h: int, b: int, s: int) -> None:
    assert gp.counter(layer, t, i) == c
    assert int(gp.splitmix64(gp.SEED, np.array([c], dtype=np.uint64))[0]) == h == py_splitmix64(422024, c)
    buckets, signs = gp.buckets_and_signs(layer, t, i, i + 1)
    assert (int(buckets[0]), int(signs[0])) == (b, s)


@settings(max_examples=25)
@given(st.integers(0, 47), st.integers(0, 5), st.integers(0, (1 << 32) - 300), st.integers(1, 300))
def test_buckets_and_signs_match_python_integers(layer: int, t: int, start: int, count: int) -> None:
    buckets, signs = gp.buckets_and_signs(layer, t, start, start + count)
    for k in range(count):
        h = py_splitmix64(422024, gp.counter(layer, t, start + k))
        assert (int(buckets[k]), int(signs[k])) == ((h >> 1) % 216, 1 if h % 2 == 0 else -1)


def literal_sketch(layer: int, t: int, g: np.ndarray) -> np.ndarray:
    """Steps 2-6 of gradproj-v1 section 6, entry by entry in Python."""
    y = np.zeros(216)
    norm = float(torch.linalg.vector_norm(torch.from_numpy(g)))
    for i, value in enumerate(g.tolist()):
        h = py_splitmix64(422024, gp.counter(layer, t, i))
        y[(h >> 1) % 216] += (1.0 if h % 2 == 0 else -1.0) * (value / norm)
    return y


@pytest.mark.parametrize("n", [1, 5, gp.BLOCK - 1, gp.BLOCK + 3])
def test_sketch_is_the_literal_loop_bit_for_bit(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    g = np.random.default_rng(n).standard_normal(n)
    norm = float(torch.linalg.vector_norm(torch.from_numpy(g)))
    expected = literal_sketch(17, 4, g)
    assert gp.sketch(17, 4, g, norm).tobytes() == expected.tobytes()
    monkeypatch.setattr(gp, "CACHE_BYTES", 0)  # computed block by block instead of cached
    assert gp.sketch(17, 4, g, norm).tobytes() == expected.tobytes()


def test_summary_skips_zero_tensors_and_sums_in_spec_order() -> None:
    rng = np.random.default_rng(5)
    grads = {(42, t): torch.from_numpy(rng.standard_normal((6, 4))) for t in range(6)}
    grads[(42, 2)] = torch.zeros(6, 4, dtype=torch.float64)
    summary = GRADPROJ.summary()
    for (layer, t), g in grads.items():
        summary.add(layer, t, g)
    expected = np.zeros(216)
    for (layer, t), g in grads.items():
        if t != 2:
            expected = expected + literal_sketch(layer, t, g.numpy().reshape(-1))
    assert summary.raw().tobytes() == expected.tobytes()


def test_signature_space_of_gradproj() -> None:
    digests = {"state_dict.bin": "a" * 64, "compression_state_dict.bin": "b" * 64}
    config = SignatureConfig()
    proj, stats = config.space(digests, GRADPROJ), config.space(digests, GRADSTATS)
    doc = proj.as_dict()
    assert doc["method"] == "lumina-gradproj-v1" and "stats" not in doc
    assert doc["projection"] == {"kind": "count-sketch", "hash": "splitmix64", "seed": 422024, "dim": 216,
                                 "tensor_normalisation": "l2"}
    assert {k: v for k, v in doc.items() if k not in ("method", "projection")} == {
        k: v for k, v in stats.as_dict().items() if k not in ("method", "stats")}
    assert proj.digest != stats.digest
    assert SignatureSpace.from_canonical_json(proj.canonical_json) == proj and proj.method is GRADPROJ
    assert list(METHODS) == ["lumina-gradproj-v1", "lumina-gradstats-v1"]


def _independent_gradproj(session: Any, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Spec sections 3-5 of signature-v1 with loss.backward(), then gradproj-v1 section 6 in Python integers."""
    means = reference_means(session, path)
    config = session.config
    raws = []
    for channel, layers in ((0, config.layers_p), (1, config.layers_m)):
        y = np.zeros(216)
        for k in range(36):
            g = means[channel * 36 + k].reshape(-1)
            if not g.any():
                continue
            u = g / np.sqrt(np.sum(g * g))
            h = np.array([py_splitmix64(422024, gp.counter(layers[k // 6], k % 6, i)) for i in range(g.size)],
                         dtype=object)
            b = np.array([(x >> 1) % 216 for x in h], dtype=np.int64)
            s = np.array([1.0 if x % 2 == 0 else -1.0 for x in h])
            y += np.bincount(b, weights=s * u, minlength=216)
        raws.append(y)
    return raws[0], raws[1]


def test_gradproj_matches_an_independent_implementation(session: Any, tmp_path: Path) -> None:
    path = tmp_path / "unseen.wav"  # audio that is not in the repo
    write_wav(path, render(SongSpec(seed=777001, seconds=12.5, sample_rate=44100, channels=2)), 44100, 16)
    sig = extract(path, session.model, session.config, session.pins, method=GRADPROJ)
    raw_p, raw_m = _independent_gradproj(session, path)
    assert sig.chunks == 2
    np.testing.assert_allclose(sig.raw_p, raw_p, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(sig.raw_m, raw_m, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(sig.p, raw_p / np.linalg.norm(raw_p), rtol=1e-5, atol=1e-6)
    # 24 non-zero tensors of unit norm per channel: |y|^2 is about 24 (count-sketch norm preservation).
    assert 5.0 < float(np.sum(sig.raw_p**2)) < 100.0


def test_one_backward_pass_per_chunk_whatever_the_methods(session: Any, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "two-chunks.wav"
    write_wav(path, render(SongSpec(seed=777002, seconds=13.0, sample_rate=32000, channels=1)), 32000, 16)
    audio = load_audio(path, session.config)
    model, config, pins = session.model, session.config, session.pins
    alone = {m.name: signatures_of_audio(audio, model, config, pins, "x", (m,))[m.name] for m in (GRADPROJ, GRADSTATS)}
    calls: list[int] = []
    real = torch.autograd.grad

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(gradients.torch.autograd, "grad", counting)
    both = signatures_of_audio(audio, model, config, pins, "x", (GRADPROJ, GRADSTATS))
    assert len(audio.chunks) == 2 and len(calls) == 2
    for name, sig in both.items():  # computing both at once changes no bit of either
        assert sig.bitwise_equal(alone[name])


def test_projection_holds_no_full_copy_of_a_tensor() -> None:
    """Peak memory of projecting a 2**24-entry float64 tensor (128 MiB): well under one more copy of it."""
    code = """
import json, resource
import numpy as np
from lumina_audit.signature.methods import gradproj as gp
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
g = np.random.default_rng(0).standard_normal(1 << 24)
gp.sketch(3, 1, g[:1000], 1.0)  # warm up numpy's code paths
before = peak()
gp.CACHE_BYTES = 0
gp.sketch(12, 0, g, float(np.sqrt(np.dot(g, g))))
uncached = peak() - before
gp.CACHE_BYTES = 1 << 30
gp.sketch(12, 1, g, 1.0)
cached = peak() - before
print(json.dumps({"uncached": uncached, "cached": cached}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=300)
    grew = json.loads(out.stdout)
    copy = 8 << 24
    assert grew["uncached"] < copy / 8, grew  # blocks of 2**16 entries only
    assert grew["cached"] < copy / 2, grew  # plus the cache: one uint8 bucket and one int8 sign per entry
