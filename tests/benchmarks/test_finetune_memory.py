"""``benchmarks/musicgen_large.py`` fine-tuning on paper, against measurements on random models of the family.

On the CPU, at widths 64 and 128 (48 layers, heads 64 wide, one 10 s chunk): the activations
the formula counts against a saved-tensor-hook count of what autograd keeps; the peak of the
library's own ``finetune`` (torch's profiler: live CPU tensor bytes) against ``finetune_memory``;
the FLOPs of a step against ``FlopCounterMode``. Then MusicGen-Large's figures.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from benchmarks.bench_signature import build_wide
from benchmarks.musicgen_large import (
    HOOKED_LAYERS,
    LARGE,
    Shape,
    finetune_activations,
    finetune_flops,
    finetune_memory,
    finetune_seconds,
    layer_parameters,
    lm_parameters,
    spec_flops,
    trained_parameters,
)
from lumina_audit.customization.settings import FineTune
from lumina_audit.customization.tuning import finetune, trainable, training_loss
from lumina_audit.signature.pins import sdpa_context
from lumina_tools.markdown import gib

FRAMES = 500  # one 10 s chunk
CASES: dict[str, tuple[int, ...] | None] = {"all": None, "hooked": HOOKED_LAYERS, "last 6": tuple(range(42, 48))}


def _shape(width: int) -> Shape:
    return Shape(width=width, heads=max(1, width // 64), ffn=4 * width)


@pytest.fixture(scope="module")
def wide(session: Any) -> dict[int, Any]:
    return {w: build_wide(session.model, w, session.model.device, session.config) for w in (64, 128)}


def _codes(frames: int = FRAMES) -> torch.Tensor:
    return torch.randint(0, 2048, (1, 4, frames), generator=torch.Generator().manual_seed(3))


def _train(lm: Any, layers: tuple[int, ...] | None) -> list[torch.nn.Parameter]:
    for p in lm.parameters():
        p.requires_grad_(False)
    params = [p for _, p in trainable(lm, FineTune(layers=layers or ()))]
    for p in params:
        p.requires_grad_(True)
    return params


def _saved_bytes(model: Any, codes: torch.Tensor, pins: Any) -> int:
    """Bytes of the distinct storages autograd keeps for the backward of ``training_loss`` (weights excluded)."""
    weights = {p.untyped_storage().data_ptr() for p in model.lm.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            seen.setdefault(storage.data_ptr(), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), sdpa_context(pins):
        loss = training_loss(model, model.lm, codes)
    del loss
    return sum(seen.values())


@pytest.mark.parametrize("width", [64, 128])
@pytest.mark.parametrize("case", list(CASES))
def test_saved_activations_are_the_formula(wide: dict[int, Any], session: Any, width: int, case: str) -> None:
    model = wide[width]
    _train(model.lm, CASES[case])
    try:
        model.lm.train()
        measured = _saved_bytes(model, _codes(), session.pins)
    finally:
        model.lm.eval()
        for p in model.lm.parameters():
            p.requires_grad_(False)
    # exact but for a few condition-sized (C x d) tensors that share storage
    assert measured == pytest.approx(finetune_activations(_shape(width), FRAMES, CASES[case]), rel=1e-3)


def _peak_of_finetune(model: Any, layers: tuple[int, ...] | None, pins: Any) -> int:
    """Peak bytes of CPU tensors alive at once during the library's ``finetune`` (2 steps), above its start."""
    from torch.autograd.profiler import profile

    with profile(use_cpu=True, profile_memory=True) as prof:
        lm, losses = finetune(model, _codes(), FineTune(steps=2, layers=layers or ()), pins)
        del lm
    assert len(losses) == 2
    events = sorted((e for e in prof.kineto_results.events() if e.name() == "[memory]"), key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak


@pytest.mark.parametrize("width", [64, 128])
@pytest.mark.parametrize("case", ["all", "hooked"])
def test_peak_of_finetune_is_the_paper_peak(monkeypatch: pytest.MonkeyPatch, wide: dict[int, Any], session: Any,
                                            width: int, case: str) -> None:
    monkeypatch.setenv("KINETO_LOG_LEVEL", "5")
    measured = _peak_of_finetune(wide[width], CASES[case], session.pins)
    # on the CPU AdamW steps tensor by tensor; the base LM is there before the measurement starts
    paper = finetune_memory(_shape(width), CASES[case], frames=FRAMES, foreach=False, base=False)
    assert paper["peak"] == paper["weights"] + paper["gradients"] + paper["adam"] + paper["activations"] + paper[
        "logits"]
    assert measured == pytest.approx(paper["peak"], rel=0.01)


@pytest.mark.parametrize("case", list(CASES))
def test_flops_of_a_step_are_what_the_flop_counter_counts(wide: dict[int, Any], session: Any, case: str) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    model = wide[64]
    codes = _codes(100)
    params = _train(model.lm, CASES[case])
    try:
        with FlopCounterMode(display=False) as counter, sdpa_context(session.pins):
            torch.autograd.grad(training_loss(model, model.lm, codes), params, allow_unused=True)
    finally:
        for p in model.lm.parameters():
            p.requires_grad_(False)
    assert counter.get_total_flops() == finetune_flops(_shape(64), 101, CASES[case])["total"]


def test_trained_parameters_are_what_gets_a_gradient(wide: dict[int, Any], session: Any) -> None:
    model = wide[64]
    for case, layers in CASES.items():
        params = _train(model.lm, layers)
        try:
            model.lm.zero_grad(set_to_none=True)
            with sdpa_context(session.pins):
                training_loss(model, model.lm, _codes(20)).backward()  # type: ignore[no-untyped-call]
            got = sum(p.numel() for p in params if p.grad is not None)
        finally:
            for p in model.lm.parameters():
                p.requires_grad_(False)
                p.grad = None
        assert got == trained_parameters(_shape(64), layers), case


def test_musicgen_large_finetune_on_paper() -> None:
    everything = trained_parameters(LARGE)
    assert everything == lm_parameters(LARGE) - 768 * 2048 - 2048 and 3.2e9 < everything < 3.3e9
    assert trained_parameters(LARGE, HOOKED_LAYERS) == 12 * layer_parameters(LARGE) == 805_453_824
    full = finetune_memory(LARGE)
    assert full["weights"] == full["base"] == 4 * lm_parameters(LARGE)
    assert full["adam"] == 2 * full["gradients"] == 8 * everything
    assert full["optimizer"] == full["gradients"]  # foreach: one temporary the size of the trained parameters
    assert full["peak"] == full["base"] + full["weights"] + full["gradients"] + full["adam"] + full["optimizer"]
    assert gib(full["peak"]) == "72.78" and gib(full["activations"] + full["logits"]) == "5.53"
    hooked = finetune_memory(LARGE, HOOKED_LAYERS)
    assert gib(hooked["peak"]) == "36.51" and hooked["activations"] > hooked["optimizer"]
    assert finetune_memory(LARGE, HOOKED_LAYERS, batch=2)["activations"] == 2 * hooked["activations"]
    assert finetune_memory(LARGE, base=False)["peak"] == full["peak"] - full["base"]
    flops = finetune_flops(LARGE, 501, HOOKED_LAYERS)
    assert flops["total"] == spec_flops(LARGE, 501)["total"] + 2 * 501 * 3 * 2048**2
    assert 8.7e12 < finetune_flops(LARGE, 501)["total"] < 8.9e12
    seconds = finetune_seconds(LARGE, 501)
    assert seconds["total"] == seconds["compute"] + seconds["optimizer"] and 0.25 < seconds["total"] < 0.35


@pytest.mark.parametrize("layers", [(), (48,), (-1,)])
def test_layers_that_do_not_exist_are_refused(layers: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="layer"):
        finetune_memory(LARGE, layers)
