"""Model stage: digests before unpickling, weights-only loading, strict state, refusals."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lumina_audit._internal.synth import SongSpec, render
from lumina_audit.errors import ModelError
from lumina_audit.signature.model import EXCLUDED_KEYS, NullTextConditioner, load_model, sha256_model_files
from lumina_audit.signature.space import TENSORS

from ..conftest import TINY, tiny_digests

CPU = torch.device("cpu")


def _copy_tiny(tmp_path: Path) -> Path:
    out = tmp_path / "ckpt"
    shutil.copytree(TINY, out)
    return out


def _rewrite(path: Path, change: Any) -> None:
    pkg = torch.load(path, map_location="cpu", weights_only=True)
    change(pkg)
    torch.save(pkg, path)


def test_digests_file_matches_the_committed_checkpoint() -> None:
    assert sha256_model_files(TINY) == tiny_digests()


def test_tiny_model_loads_strictly_and_hooks_only_spec_tensors(session: Any) -> None:
    model = session.model
    assert model.num_layers == 48 and EXCLUDED_KEYS == frozenset()
    grad = {n for n, p in model.lm.named_parameters() if p.requires_grad}
    expected = {f"transformer.layers.{i}.{t}" for i in (*range(12, 18), *range(42, 48)) for t in TENSORS}
    assert grad == expected
    assert not any(p.requires_grad for p in model.compression.parameters())
    assert model.hooked_names["P"][0] == "transformer.layers.42.self_attn.in_proj_weight"
    assert model.hooked_names["M"][-1] == "transformer.layers.17.linear2.weight"
    assert not model.lm.training and not model.compression.training
    assert all(p.dtype == torch.float32 for p in model.lm.parameters())
    cond = model.lm.condition_provider.conditioners["description"]
    assert isinstance(cond, NullTextConditioner) and not hasattr(cond, "t5")
    emb, mask = model.null_condition["description"]
    assert emb.shape == (1, 1, cond.output_dim) and not emb.any() and mask.shape == (1, 1) and not mask.any()


def test_same_structure_as_musicgen_large(session: Any) -> None:
    lm, comp = session.model.lm, session.model.compression
    assert lm.num_codebooks == 4 and lm.card == 2048
    assert type(lm.pattern_provider).__name__ == "DelayedPatternProvider"
    assert comp.sample_rate == 32000 and comp.frame_rate == 50 and comp.cardinality == 2048
    assert all(layer.cross_attention is not None for layer in lm.transformer.layers)
    assert not any("bias" in n for n, _ in lm.transformer.layers.named_parameters() if "norm" not in n)


def test_t5_is_never_instantiated(monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    def boom(*a: Any, **k: Any) -> None:
        raise AssertionError("T5 was loaded")

    monkeypatch.setattr(transformers.T5EncoderModel, "from_pretrained", boom)
    monkeypatch.setattr(transformers.T5Tokenizer, "from_pretrained", boom)
    load_model(TINY, tiny_digests(), CPU)


def test_wrong_digest_refused_before_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(1))
    digests = dict(tiny_digests(), **{"state_dict.bin": "0" * 64})
    with pytest.raises(ModelError, match="state_dict.bin: SHA-256 .* differs from the expected 0{64}"):
        load_model(TINY, digests, CPU)
    assert calls == []


def test_one_flipped_byte_is_refused(tmp_path: Path) -> None:
    ckpt = _copy_tiny(tmp_path)
    data = bytearray((ckpt / "compression_state_dict.bin").read_bytes())
    data[len(data) // 2] ^= 0x01
    (ckpt / "compression_state_dict.bin").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="compression_state_dict.bin: SHA-256"):
        load_model(ckpt, tiny_digests(), CPU)


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("arbitrary code ran",))


def test_pickle_with_code_is_refused_even_with_matching_digest(tmp_path: Path) -> None:
    ckpt = _copy_tiny(tmp_path)
    _rewrite(ckpt / "state_dict.bin", lambda pkg: pkg.__setitem__("payload", Evil()))
    with pytest.raises(ModelError, match="not a loadable weights-only checkpoint"):
        load_model(ckpt, sha256_model_files(ckpt), CPU)


def test_missing_hooked_tensor_is_refused_by_name(tmp_path: Path) -> None:
    ckpt = _copy_tiny(tmp_path)
    _rewrite(ckpt / "state_dict.bin", lambda pkg: pkg["best_state"].pop("transformer.layers.45.linear2.weight"))
    with pytest.raises(ModelError, match=r"lacks tensor\(s\) transformer.layers.45.linear2.weight"):
        load_model(ckpt, sha256_model_files(ckpt), CPU)


def test_unexpected_tensor_is_refused(tmp_path: Path) -> None:
    ckpt = _copy_tiny(tmp_path)
    _rewrite(ckpt / "state_dict.bin", lambda pkg: pkg["best_state"].__setitem__("extra.weight", torch.zeros(2)))
    with pytest.raises(ModelError, match="unexpected tensor.*extra.weight"):
        load_model(ckpt, sha256_model_files(ckpt), CPU)


def test_47_layer_checkpoint_is_refused(tmp_path: Path) -> None:
    ckpt = _copy_tiny(tmp_path)

    def drop_last_layer(pkg: dict[str, Any]) -> None:
        pkg["xp.cfg"] = pkg["xp.cfg"].replace("num_layers: 48", "num_layers: 47")
        for key in [k for k in pkg["best_state"] if k.startswith("transformer.layers.47.")]:
            del pkg["best_state"][key]

    _rewrite(ckpt / "state_dict.bin", drop_last_layer)
    with pytest.raises(ModelError, match="has 47 layers; lumina-gradstats-v1 needs 48"):
        load_model(ckpt, sha256_model_files(ckpt), CPU)


def test_hub_reference_and_missing_files_are_refused(tmp_path: Path) -> None:
    ckpt = _copy_tiny(tmp_path)
    torch.save({"pretrained": "facebook/encodec_32khz", "exported": True}, ckpt / "compression_state_dict.bin")
    with pytest.raises(ModelError, match="refers to the hub model"):
        load_model(ckpt, sha256_model_files(ckpt), CPU)
    (ckpt / "state_dict.bin").unlink()
    with pytest.raises(ModelError, match="no such checkpoint file"):
        load_model(ckpt, tiny_digests(), CPU)
    with pytest.raises(ModelError, match="model directory not found"):
        load_model(tmp_path / "nowhere", tiny_digests(), CPU)


def test_codebooks_are_not_degenerate(session: Any) -> None:
    """Different clips give many distinct codes, and different code sequences."""
    comp = session.model.compression
    seqs = []
    for seed in (7, 8, 9):
        x = torch.from_numpy(render(SongSpec(seed=seed, seconds=10.0)).astype(np.float32))
        with torch.no_grad():
            codes, _ = comp.encode(x.view(1, 1, -1))
        seqs.append(codes[0])
        for k in range(4):
            assert len(torch.unique(codes[0, k])) >= 100, f"codebook {k} uses few codes"
    assert not torch.equal(seqs[0], seqs[1]) and not torch.equal(seqs[1], seqs[2])
    same = (seqs[0] == seqs[1]).float().mean().item()
    assert same < 0.2


def test_float16_checkpoint_loads_in_float32(tmp_path: Path) -> None:
    """The released MusicGen weights are stored in float16; the model still runs in float32."""
    ckpt = _copy_tiny(tmp_path)

    def halve(pkg: dict[str, Any]) -> None:
        pkg["best_state"] = {k: v.half() if v.is_floating_point() else v for k, v in pkg["best_state"].items()}

    _rewrite(ckpt / "state_dict.bin", halve)
    model = load_model(ckpt, sha256_model_files(ckpt), CPU)
    w = model.lm.get_parameter("transformer.layers.43.linear1.weight")
    ref = torch.load(TINY / "state_dict.bin", weights_only=True)["best_state"]["transformer.layers.43.linear1.weight"]
    assert w.dtype == torch.float32 and torch.equal(w.detach(), ref.half().float())


def test_null_conditioning_serves_audiocraft_sampling(session: Any) -> None:
    """Absent descriptions tokenize to the null condition, so ``lm.generate`` runs without T5; text is refused."""
    from audiocraft.modules.conditioners import ConditioningAttributes

    lm = session.model.lm
    (conditioner,) = lm.condition_provider.conditioners.values()
    assert isinstance(conditioner, NullTextConditioner)
    cond, mask = conditioner(conditioner.tokenize([None, None]))
    assert cond.shape == (2, 1, conditioner.output_dim) and not cond.any() and not mask.any()
    with pytest.raises(ModelError, match="needs T5"):
        conditioner.tokenize(["a song with a guitar solo"])
    torch.manual_seed(422024)
    with torch.no_grad():
        codes = lm.generate(prompt=None, conditions=[ConditioningAttributes(text={"description": None})],
                            num_samples=1, max_gen_len=12, use_sampling=True, temp=1.0, top_k=50, cfg_coef=1.0)
    assert codes.shape == (1, 4, 12) and int(codes.min()) >= 0 and int(codes.max()) < 2048
