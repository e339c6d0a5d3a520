"""The memory pins change no bit; chunk batching changes bits within float rounding, in another signature space."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.errors import ConfigError, SignatureError
from lumina_audit.signature import golden
from lumina_audit.signature.accumulate import DeviceSums, HostSums
from lumina_audit.signature.audio import Audio, load_audio
from lumina_audit.signature.extract import chunk_groups, signatures_of_audio
from lumina_audit.signature.gradients import chunk_codes, chunk_gradients, group_loss, stream_gradients
from lumina_audit.signature.methods import get_method
from lumina_audit.signature.pins import Pins
from lumina_audit.signature.space import SignatureConfig

from ..conftest import GOLDEN

MEMORY_OPTIONS = [{"sums": "host"}, {"gradients": "streamed"}, {"sums": "host", "gradients": "streamed"}]
#: Chunks of 2 s keep these tests fast; neither option depends on the chunk length.
SHORT = SignatureConfig(chunk_seconds=2.0)


def _audio(tmp_path: Path, seconds: float, seed: int, config: SignatureConfig = SHORT) -> Audio:
    path = tmp_path / f"song-{seed}.wav"
    write_wav(path, render(SongSpec(seed=seed, seconds=seconds, sample_rate=32000, channels=1)), 32000, 16)
    return load_audio(path, config)


@pytest.mark.parametrize("overrides", MEMORY_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_memory_options_give_the_default_bits(session: Any, tmp_path: Path, overrides: dict[str, str]) -> None:
    audio = _audio(tmp_path, 5.0, seed=140001)  # two full chunks and a short one
    assert [length for _, length in audio.chunks] == [64000, 64000, 32000]
    base = signatures_of_audio(audio, session.model, SHORT, session.pins, "x", session.methods)
    got = signatures_of_audio(audio, session.model, SHORT, Pins(**overrides), "x", session.methods)
    for name, sig in base.items():
        assert got[name].bitwise_equal(sig), (overrides, name)
    assert all(p.grad is None for ch in ("P", "M") for p in session.model.hooked[ch])


def test_host_and_device_sums_are_the_float64_sums_in_chunk_order() -> None:
    rng = np.random.default_rng(14)
    shapes = [(300, 7), (1000,), (3, 5, 11)]
    chunks = [[(rng.standard_normal(s) * 10.0 ** rng.integers(-8, 8)).astype(np.float32) for s in shapes]
              for _ in range(6)]
    params = [torch.empty(s) for s in shapes]
    device, host = DeviceSums(params, torch.device("cpu")), HostSums(params, torch.device("cpu"), workers=3)
    try:
        for grads in chunks:
            for k in reversed(range(len(shapes))):  # tensors may arrive in any order within a chunk
                device.add(k, torch.from_numpy(grads[k]))
                host.add(k, torch.from_numpy(grads[k]))
        for k in range(len(shapes)):
            reference = np.zeros(shapes[k], dtype=np.float64)
            for grads in chunks:  # numpy's elementwise float64 adds, chunk by chunk
                reference = reference + grads[k].astype(np.float64)
            reference = reference / 6.0
            a, b = device.mean(k, 6.0).numpy(), host.mean(k, 6.0).numpy()
            assert a.tobytes() == reference.tobytes() and b.tobytes() == reference.tobytes()
        with pytest.raises(SignatureError, match="dropped"):
            host.mean(0, 6.0)
        with pytest.raises(SignatureError, match="float32"):
            host.add(1, torch.zeros(shapes[1], dtype=torch.float64))
    finally:
        device.close()
        host.close()
    with pytest.raises(SignatureError, match="closed"):
        host.add(0, torch.zeros(shapes[0]))


def test_streamed_gradients_are_those_returned_together(session: Any, tmp_path: Path) -> None:
    audio = _audio(tmp_path, 2.0, seed=140002)
    model, params = session.model, [*session.model.hooked["P"], *session.model.hooked["M"]]
    chunk = chunk_codes(model, torch.from_numpy(audio.samples))
    together = chunk_gradients(model, chunk, session.config, session.pins, params)
    streamed: dict[int, torch.Tensor] = {}
    stream_gradients(model, [chunk], session.config, session.pins, params, lambda k, g: streamed.setdefault(k, g))
    assert sorted(streamed) == list(range(len(params)))
    for k, g in enumerate(together):
        assert torch.equal(streamed[k], g) and streamed[k].dtype == torch.float32
    assert all(p.grad is None for p in params)
    params[3].grad = torch.zeros_like(params[3])
    try:
        with pytest.raises(SignatureError, match="already holds a .grad"):
            stream_gradients(model, [chunk], session.config, session.pins, params, lambda k, g: None)
    finally:
        params[3].grad = None


def test_chunk_batching_is_within_float_rounding(session: Any, tmp_path: Path) -> None:
    audio = _audio(tmp_path, 4.0, seed=140003)  # two full chunks: one batch of 2
    assert [length for _, length in audio.chunks] == [64000, 64000]
    base = signatures_of_audio(audio, session.model, SHORT, session.pins, "x", session.methods)
    config = SignatureConfig(chunk_seconds=2.0, chunk_batch=2)
    batched = signatures_of_audio(audio, session.model, config, session.pins, "x", session.methods)
    for name, sig in base.items():
        other = batched[name]
        assert other.chunks == sig.chunks == 2
        # float32 sums inside the matmuls instead of float64 across chunks: different bits ...
        assert not other.bitwise_equal(sig)
        # ... a few float32 roundings apart (float32's epsilon is 1.2e-7)
        for a, b in ((sig.raw_p, other.raw_p), (sig.raw_m, other.raw_m)):
            assert np.linalg.norm(a - b) / np.linalg.norm(a) < 1e-5
        assert float(np.max(np.abs(sig.p - other.p))) < 1e-5 and float(np.max(np.abs(sig.m - other.m))) < 1e-5
    with pytest.raises(SignatureError, match="equal length"):
        codes = [chunk_codes(session.model, torch.zeros(n)) for n in (32000, 64000)]
        group_loss(session.model, codes, config.codebook_boosts)


def test_chunk_groups_batch_equal_lengths_in_order() -> None:
    chunks = [(0, 10), (10, 10), (20, 10), (30, 4)]
    assert chunk_groups(chunks, 1) == [[c] for c in chunks]
    assert chunk_groups(chunks, 2) == [[(0, 10), (10, 10)], [(20, 10)], [(30, 4)]]
    assert chunk_groups(chunks, 4) == [[(0, 10), (10, 10), (20, 10)], [(30, 4)]]
    assert chunk_groups([(0, 7)], 3) == [[(0, 7)]]


def test_default_spaces_and_pins_keep_their_digests() -> None:
    gf = golden.read(GOLDEN)
    doc = json.loads((GOLDEN / "golden.json").read_text())
    for name, digest in gf.spaces.items():
        method = get_method(name)
        assert SignatureConfig().space(gf.digests, method).digest == digest
        assert SignatureConfig(chunk_batch=1).space(gf.digests, method).digest == digest
        batched = SignatureConfig(chunk_batch=2).space(gf.digests, method)
        assert batched.digest != digest and batched.as_dict()["chunk_batch"] == 2
    assert Pins().as_json() == doc["pins"] and gf.pins == Pins()
    assert Pins().digest == hashlib.sha256(json.dumps(doc["pins"], sort_keys=True).encode()).hexdigest()
    host = Pins(sums="host", gradients="streamed")
    assert host.as_json() == doc["pins"] | {"sums": "host", "gradients": "streamed"} and host.digest != Pins().digest
    assert Pins(**host.as_json()) == host


@pytest.mark.parametrize("kwargs", [{"sums": "gpu"}, {"gradients": "lazy"}])
def test_bad_memory_pins_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        Pins(**kwargs)


@pytest.mark.parametrize("batch", [0, 65, True, 2.0])
def test_bad_chunk_batch_refused(batch: Any) -> None:
    with pytest.raises(ConfigError, match="chunk_batch must be a whole number in 1..64"):
        SignatureConfig(chunk_batch=batch)
