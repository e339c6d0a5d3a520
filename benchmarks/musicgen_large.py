"""MusicGen-Large on paper: its shape, the FLOPs the spec needs per chunk, fp32 peaks, and memory.

No torch here: :mod:`gpu_check_steps` and :mod:`bench_memory` measure, this module counts.

**FLOPs** (``spec_flops``): 2 per multiply-add, matmuls only (elementwise work, norms,
softmax, GELU, the cross-entropy and the float64 sums are not counted, so the achieved
fraction is a lower bound). One 10 s chunk is ``T = 500`` EnCodec frames of ``K = 4``
codebooks; the delay pattern feeds the LM ``S = T + 1 = 501`` positions (keep-only-valid
steps) of summed codebook embeddings (lookups: no matmul). With width ``d``, FFN width
``F``, ``L`` layers, ``V = 2048`` codes per codebook, ``C = 1`` condition token (the null
text condition) and ``P = 3d² + d² + d² + d² + 2dF`` multiply-adds per position and layer
(self-attention QKV and output, cross-attention query and output, the two FFN matmuls)::

    forward  = L · 2 (S P + 2 C d² + 2 S² d + 2 S C d)  +  2 K S d V
               (projections; cross K, V of the condition; self scores and values, full S x S
                as the math backend computes them; cross scores and values; the K output heads)
    backward = Σ over layers l ≥ l0 of 2 (S P + 4 S² d + 2 S C d)       input gradients
             - 2 S 3d²                                                  (layer l0's input needs none)
             + Σ over hooked layers of 2 (S P + 2 C d² + 2 S C d)       weight gradients (+ cross K, V)
             + 2 K S d V                                                the heads' input gradient

``l0`` is the lowest hooked layer (12): the loss's gradient flows from the heads down to it
and no further, and weight gradients exist only for the 12 hooked layers (the 72 hooked
tensors are all of their matmul weights). MusicGen-Large (d 2048, F 8192, 48 layers): 2.94
TFLOP forward and 2.98 TFLOP backward per chunk, 5.92 TFLOP in all. A chunk batch of
``B`` multiplies everything by ``B``. ``tests/scripts/test_gpu_check.py`` checks the formula
against ``torch.utils.flop_counter.FlopCounterMode`` on random models of the family.

**Peak fp32** (``peak_fp32``): dense FP32 (CUDA cores, no TF32: the pins forbid it) at boost
clock, from NVIDIA's data sheets, by device name; else ``SMs x FP32 lanes per SM x 2 x max SM
clock``, which reproduces the table's entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["HOOKED_LAYERS", "LARGE", "PEAK_FP32_TFLOPS", "Shape", "computed_peak_tflops", "encodec_config", "gib",
           "hooked_entries", "lm_parameters", "paper_memory", "peak_fp32", "positions", "spec_flops", "summary"]

#: The hooked layers of both channels (spec section 4): P 42-47, M 12-17.
HOOKED_LAYERS: tuple[int, ...] = (*range(12, 18), *range(42, 48))


@dataclass(frozen=True)
class Shape:
    """An LM of the MusicGen family: widths and counts only."""

    width: int
    heads: int
    ffn: int
    layers: int = 48
    codebooks: int = 4
    card: int = 2048
    condition_tokens: int = 1
    t5_dim: int = 768


#: MusicGen-Large: 48 layers x 2048, 32 heads, FFN 8192, 4 codebooks of 2048 codes, T5-base conditioner.
LARGE = Shape(width=2048, heads=32, ffn=8192)


def encodec_config(n_filters: int = 64, dimension: int = 128) -> dict[str, Any]:
    """An audiocraft config of MusicGen's 32 kHz EnCodec shape (SEANet 64 filters, 128 dimensions, ratios
    8 5 4 4, two LSTM layers, 4 codebooks of 2048), from the tiny checkpoint's own config."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from make_tiny_checkpoint import compression_config

    cfg = compression_config()
    cfg["seanet"].update(n_filters=n_filters, dimension=dimension)
    return cfg


def positions(frames: int = 500) -> int:
    """LM positions of a chunk of ``frames`` EnCodec frames under the delay pattern (keep-only-valid steps)."""
    return frames + 1


def _per_position(s: Shape) -> int:
    d, f = s.width, s.ffn
    return 3 * d * d + d * d + d * d + d * d + 2 * d * f


def spec_flops(s: Shape, seq: int, hooked: Iterable[int] = HOOKED_LAYERS, batch: int = 1) -> dict[str, int]:
    """FLOPs of one forward and the spec's backward of ``batch`` chunks of ``seq`` positions (module doc)."""
    hooked = sorted(set(hooked))
    d, c, k, v = s.width, s.condition_tokens, s.codebooks, s.card
    p = _per_position(s)
    heads = 2 * k * seq * d * v
    forward = s.layers * 2 * (seq * p + 2 * c * d * d + 2 * seq * seq * d + 2 * seq * c * d) + heads
    below = hooked[0]
    inputs = (s.layers - below) * 2 * (seq * p + 4 * seq * seq * d + 2 * seq * c * d) - 2 * seq * 3 * d * d
    weights = len(hooked) * 2 * (seq * p + 2 * c * d * d + 2 * seq * c * d)
    backward = inputs + weights + heads
    return {"forward": batch * forward, "backward": batch * backward, "total": batch * (forward + backward)}


def lm_parameters(s: Shape) -> int:
    """Parameters of the LM (embeddings, layers with LayerNorms, output norm, heads without bias, T5 projection)."""
    d = s.width
    layer = 3 * d * d + d * d + 3 * d * d + d * d + 2 * d * s.ffn + 3 * 2 * d
    return (s.codebooks * (s.card + 1) * d + s.layers * layer + 2 * d + s.codebooks * d * s.card
            + s.t5_dim * d + d)


def hooked_entries(s: Shape, hooked: Iterable[int] = HOOKED_LAYERS) -> int:
    """Entries of the 72 hooked tensors (6 per layer: self in/out, cross in/out, linear1, linear2)."""
    d = s.width
    return len(set(hooked)) * (3 * d * d + d * d + 3 * d * d + d * d + 2 * d * s.ffn)


#: Dense FP32 TFLOPS at boost clock (NVIDIA data sheets), matched by substring in this order.
PEAK_FP32_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200 NVL", 60.0), ("GH200", 67.0), ("H200", 67.0), ("H100 PCIe", 51.2), ("H100 NVL", 60.0), ("H100", 67.0),
    ("H800 PCIe", 51.2), ("H800", 67.0), ("A100", 19.5), ("A800", 19.5), ("A40", 37.4), ("A30", 10.3),
    ("A10G", 31.2), ("A10", 31.2), ("L40S", 91.6), ("L40", 90.5), ("L4", 30.3), ("RTX 6000 Ada", 91.1),
    ("RTX A6000", 38.7), ("RTX 4090", 82.6), ("RTX 3090", 35.6), ("V100", 15.7), ("T4", 8.1),
)

#: FP32 lanes per SM by compute capability (major, minor).
_LANES = {(7, 0): 64, (7, 5): 64, (8, 0): 64, (8, 6): 128, (8, 7): 128, (8, 9): 128, (9, 0): 128, (10, 0): 128,
          (12, 0): 128}


def computed_peak_tflops(sms: int, capability: tuple[int, int], max_clock_mhz: float) -> float | None:
    """``SMs x lanes x 2 x clock``; None for a capability not in the table."""
    lanes = _LANES.get(capability)
    return None if lanes is None or max_clock_mhz <= 0 else sms * lanes * 2 * max_clock_mhz * 1e6 / 1e12


def peak_fp32(name: str, sms: int = 0, capability: tuple[int, int] = (0, 0),
              max_clock_mhz: float = 0.0) -> tuple[float | None, str]:
    """The peak dense FP32 TFLOPS of a device and where the figure comes from."""
    for key, tflops in PEAK_FP32_TFLOPS:
        if key.lower() in name.lower():
            return tflops, f"data sheet ({key})"
    computed = computed_peak_tflops(sms, capability, max_clock_mhz)
    if computed is not None:
        return computed, f"computed: {sms} SMs x {_LANES[capability]} lanes x 2 x {max_clock_mhz:.0f} MHz"
    return None, "unknown device: no data-sheet entry and no SM clock"


def paper_memory(s: Shape, layer_activation: float | Mapping[int, float], head_activation: float, encodec: int = 0,
                 hooked: Iterable[int] = HOOKED_LAYERS) -> dict[str, dict[str, float]]:
    """Expected peak device bytes per memory option, from the model's counts and measured activation bytes.

    ``layer_activation``: bytes autograd keeps for the backward per layer from ``l0`` up (one
    figure for every layer, or one per layer index: hooked layers keep more, the inputs of their
    weight gradients), ``head_activation``: bytes kept above the last layer (output norm, heads,
    loss). The backward frees them layer by layer from the top while the hooked gradients
    appear: "together" holds every gradient made so far until the pass ends, "streamed" one at a
    time (the largest, and its float64 copy). ``sums: device`` adds the float64 sums.
    """
    hooked = sorted(set(hooked))
    live = range(hooked[0], s.layers)
    act = {i: float(layer_activation if isinstance(layer_activation, int | float) else layer_activation[i])
           for i in live}
    model = 4 * lm_parameters(s) + encodec
    per_layer_grad = 4 * hooked_entries(s, hooked[:1])
    grads = 4 * hooked_entries(s, hooked)
    sums = 2 * grads
    held = sum(act.values()) + head_activation
    worst, made = held, 0.0
    held -= head_activation
    for layer in reversed(live):
        held -= act[layer]
        made += per_layer_grad if layer in hooked else 0
        worst = max(worst, held + made)
    largest = 4 * s.width * s.ffn
    streamed = sum(act.values()) + head_activation + largest * 3
    rows: dict[str, dict[str, float]] = {}
    for sums_at in ("device", "host"):
        for gradients, work in (("together", worst), ("streamed", streamed)):
            on_device = model + work + (sums if sums_at == "device" else 0)
            rows[f"sums={sums_at}, gradients={gradients}"] = {
                "model": model, "work": work, "sums": sums if sums_at == "device" else 0.0, "peak": on_device,
                "host": 0.0 if sums_at == "device" else sums + grads}
    return rows


def gib(n: float) -> str:
    """``n`` bytes in GiB, two decimals."""
    return f"{n / 2**30:.2f}"


def summary(rows: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Markdown rows ``| option | model | activations+gradients | sums | peak | host |`` in GiB."""
    return [f"| {k} | {gib(r['model'])} | {gib(r['work'])} | {gib(r['sums'])} | **{gib(r['peak'])}** | "
            f"{gib(r['host'])} |" for k, r in rows.items()]
