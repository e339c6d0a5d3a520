"""MusicGen-Large on paper: its shape, the FLOPs the spec needs per chunk, fp32 peaks, and memory.

No torch here: :mod:`scripts.gpu_check_steps` and :mod:`benchmarks.bench_memory` measure, this module counts.

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

**Fine-tuning** (``finetune_memory``, ``finetune_flops``, ``finetune_seconds``): what
``lumina_audit.customization.tuning.finetune`` needs on the device, for every LM parameter or
for named transformer layers (``FineTune.layers``). Its parts: the unmodified LM (``finetune``
trains a deep copy, the base stays), the copy's weights, the gradients and AdamW's two moments
of the trained parameters, the activations autograd keeps for the backward (counted tensor by
tensor from the shape: ``finetune_activations``; equal to a saved-tensor-hook count on random
models of the family, ``tests/benchmarks/test_finetune_memory.py``), the logits alive beside
them at the end of the forward, and the temporaries of the optimizer step.

    python -m benchmarks.musicgen_large

(from the repository root) prints the fine-tuning table for MusicGen-Large.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lumina_tools.markdown import gib, md_table

__all__ = ["FINETUNE_HEADER", "HBM_TBS", "HOOKED_LAYERS", "LARGE", "OPTIMIZER_BYTES_PER_PARAMETER", "PEAK_FP32_TFLOPS",
           "SUSTAINED_TFLOPS", "Shape", "computed_peak_tflops", "encodec_config", "finetune_activations",
           "finetune_flops", "finetune_memory", "finetune_seconds", "finetune_summary", "hooked_entries",
           "layer_parameters", "lm_parameters", "main", "paper_memory", "peak_fp32", "positions", "spec_flops",
           "summary", "trained_parameters"]

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
    from scripts.make_tiny_checkpoint import compression_config

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


def summary(rows: Mapping[str, Mapping[str, float]]) -> list[list[str]]:
    """Table cells ``option, model, activations+gradients, sums, peak, host`` (GiB) of :func:`paper_memory`'s rows."""
    return [[k, gib(r["model"]), gib(r["work"]), gib(r["sums"]), f"**{gib(r['peak'])}**", gib(r["host"])]
            for k, r in rows.items()]


# --- Fine-tuning (lumina_audit.customization.tuning.finetune) ---------------------------------------

#: Sustained fp32 TFLOP/s assumed for the time-per-step estimate on an H100 SXM or H200: 60 % of
#: their 67 TFLOPS data-sheet peak (CUDA cores, no TF32). An assumption, not a measurement.
SUSTAINED_TFLOPS = 40.0
#: HBM bandwidth of an H100 SXM in TB/s (the H200 has 4.8): what the optimizer step is bound by.
HBM_TBS = 3.35
#: Bytes read and written per trained float32 parameter by the gradient clip (norm, scale: 12)
#: and the foreach AdamW step (lerp of m, scale and addcmul of v, sqrt, two in-place ops and
#: addcdiv into the weight: 72), counted from ``torch.optim.adam._multi_tensor_adam``.
OPTIMIZER_BYTES_PER_PARAMETER = 84


def layer_parameters(s: Shape) -> int:
    """Parameters of one transformer layer: self- and cross-attention (in 3d², out d² each), FFN, 3 LayerNorms."""
    d = s.width
    return 8 * d * d + 2 * d * s.ffn + 3 * 2 * d


def _layers(s: Shape, layers: Iterable[int] | None) -> tuple[int, ...] | None:
    """The named layers, sorted and checked; None for every parameter."""
    if layers is None:
        return None
    chosen = tuple(sorted(set(layers)))
    if not chosen:
        raise ValueError("layers: name at least one transformer layer, or None for every LM parameter")
    bad = [i for i in chosen if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < s.layers]
    if bad:
        raise ValueError(f"layers {bad} do not exist: the LM has {s.layers} transformer layers")
    return chosen


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def trained_parameters(s: Shape, layers: Iterable[int] | None = None) -> int:
    """Parameters fine-tuning gives a gradient and AdamW a state.

    Every LM parameter but the text condition's projection (``T5 dim x d + d``: the null condition
    is a precomputed constant, so it never gets a gradient and AdamW skips it), or the named layers'.
    """
    chosen = _layers(s, layers)
    if chosen is None:
        return lm_parameters(s) - (s.t5_dim * s.width + s.width)
    return len(chosen) * layer_parameters(s)


def _largest_trained(s: Shape, layers: tuple[int, ...] | None) -> int:
    inner = max(s.width * s.ffn, 3 * s.width * s.width)
    return inner if layers is not None else max(inner, (s.card + 1) * s.width)


def finetune_activations(s: Shape, frames: int = 500, layers: Iterable[int] | None = None, batch: int = 1,
                         dtype_bytes: int = 4) -> float:
    """Bytes autograd keeps for the backward of one fine-tuning step on ``batch`` chunks of ``frames`` frames.

    With ``S = frames + 1`` positions, ``h`` heads, ``C`` condition tokens, ``N = K T - K(K-1)/2``
    valid delay-pattern positions, in values of ``dtype_bytes``:

    * a trained layer: ``14 S d`` (the three LayerNorm inputs, the five Linear inputs the weight
      gradients need, self-attention's scaled q and k and cross-attention's scaled q, the whole
      QKV projection of which v is a view) ``+ 2 S F`` (GELU input and output) ``+ h S (S + C)``
      (self- and cross-attention probabilities, the math backend's) ``+ 6 S`` (LayerNorm means
      and inverse deviations) ``+ 3 C d`` (the condition's K, V and their projection's input);
    * a frozen layer above the lowest trained one (the input gradient passes through it):
      ``8 S d + S F + h S (S + C) + 6 S + 2 C d`` (no Linear input, no scaled cross q, no GELU output);
    * layers below the lowest trained one: nothing;
    * above the last layer: the output norm's input, mean and inverse deviation ``S d + 2 S``, the
      heads' input ``S d`` when they train, the log-softmax of the valid logits ``N V``; and
      int64 and bool indices (``9 K T + 8 N`` bytes), with the codes for the embeddings' gradient
      (``8 K S`` bytes) when they train.
    """
    chosen = _layers(s, layers)
    _positive("frames", frames)
    _positive("batch", batch)
    seq, d, f, h, c, k, v = positions(frames), s.width, s.ffn, s.heads, s.condition_tokens, s.codebooks, s.card
    valid = k * frames - k * (k - 1) // 2
    trained_layer = 14 * seq * d + 2 * seq * f + h * seq * (seq + c) + 6 * seq + 3 * c * d
    frozen_layer = 8 * seq * d + seq * f + h * seq * (seq + c) + 6 * seq + 2 * c * d
    if chosen is None:
        values = s.layers * trained_layer + 2 * seq * d + 2 * seq + valid * v
        ints = 9 * k * frames + 8 * valid + 8 * k * seq
    else:
        live = s.layers - chosen[0]
        values = (len(chosen) * trained_layer + (live - len(chosen)) * frozen_layer + seq * d + 2 * seq
                  + valid * v)
        ints = 9 * k * frames + 8 * valid
    return float(batch * (dtype_bytes * values + ints))


def finetune_memory(s: Shape, layers: Iterable[int] | None = None, batch: int = 1, frames: int = 500,
                    dtype_bytes: int = 4, foreach: bool = True, base: bool = True) -> dict[str, float]:
    """Device bytes of fine-tuning with AdamW (``finetune``), by part, and the expected peak.

    ``layers``: None trains every LM parameter, else the named transformer layers. ``batch``
    chunks of ``frames`` frames per step. Weights, gradients and activations in values of
    ``dtype_bytes`` (the pins run float32; other values are on paper only); AdamW's two moments
    in float32. ``foreach``: the optimizer's multi-tensor step (torch's default on CUDA), whose
    ``sqrt`` of the second moments is one temporary the size of every trained parameter; on the
    CPU torch steps tensor by tensor (two temporaries of the largest). ``base``: count the
    unmodified LM that stays on the device while ``finetune`` trains its copy.

    From the second step on, the previous step's gradients are still alive during the forward
    (``finetune`` zeroes them after it), so the forward's end holds everything at once: base,
    copy, gradients, moments, activations and the logits (the reverted logits and the gathered
    valid ones, beside their saved log-softmax). The optimizer step holds base, copy,
    gradients, moments and its temporaries, the activations freed. ``peak`` is the larger.
    """
    chosen = _layers(s, layers)
    _positive("dtype_bytes", dtype_bytes)
    trained = trained_parameters(s, chosen)
    parts: dict[str, float] = {
        "base": float(4 * lm_parameters(s)) if base else 0.0,
        "weights": float(dtype_bytes * lm_parameters(s)),
        "gradients": float(dtype_bytes * trained),
        "adam": float(2 * 4 * trained),
        "activations": finetune_activations(s, frames, chosen, batch, dtype_bytes),
        "logits": float(2 * dtype_bytes * batch * s.codebooks * frames * s.card),
        "optimizer": float(dtype_bytes * (trained if foreach else 2 * _largest_trained(s, chosen))),
    }
    held = parts["base"] + parts["weights"] + parts["gradients"] + parts["adam"]
    parts["peak"] = held + max(parts["activations"] + parts["logits"], parts["optimizer"])
    return parts


def finetune_flops(s: Shape, seq: int, layers: Iterable[int] | None = None, batch: int = 1) -> dict[str, int]:
    """FLOPs of one fine-tuning step's forward and backward (matmuls, 2 per multiply-add; module doc).

    The spec's count with the trained layers hooked (:func:`spec_flops`: input gradients from the
    lowest one up, weight gradients of their six matmul weights), plus the lowest layer's QKV
    input gradient ``2 S 3d²``, which the spec skips but fine-tuning needs (it reaches that
    layer's first LayerNorm, whose weight and bias train; with every parameter, the
    embeddings); with every parameter also the heads' weight gradient ``2 K S d V`` (the
    embeddings' gradient is a scatter, no matmul).
    """
    chosen = _layers(s, layers)
    _positive("batch", batch)
    base = spec_flops(s, seq, range(s.layers) if chosen is None else chosen)
    extra = 2 * seq * 3 * s.width * s.width + (2 * s.codebooks * seq * s.width * s.card if chosen is None else 0)
    return {"forward": batch * base["forward"], "backward": batch * (base["backward"] + extra),
            "total": batch * (base["total"] + extra)}


def finetune_seconds(s: Shape, seq: int, layers: Iterable[int] | None = None, batch: int = 1,
                     tflops: float = SUSTAINED_TFLOPS, bandwidth_tbs: float = HBM_TBS) -> dict[str, float]:
    """An estimate of the seconds of one fine-tuning step: the matmul FLOPs at ``tflops`` sustained,
    plus the clip and AdamW step at ``bandwidth_tbs`` (``OPTIMIZER_BYTES_PER_PARAMETER`` per
    trained parameter; memory-bound). Elementwise work, launches and the allocator are left out."""
    if not (tflops > 0 and bandwidth_tbs > 0):
        raise ValueError(f"tflops and bandwidth_tbs must be above 0, got {tflops!r} and {bandwidth_tbs!r}")
    chosen = _layers(s, layers)
    compute = finetune_flops(s, seq, chosen, batch)["total"] / (tflops * 1e12)
    optimizer = OPTIMIZER_BYTES_PER_PARAMETER * trained_parameters(s, chosen) / (bandwidth_tbs * 1e12)
    return {"compute": compute, "optimizer": optimizer, "total": compute + optimizer}


#: The columns of :func:`finetune_summary`.
FINETUNE_HEADER = ("parameters", "trained", "base LM", "copy", "gradients", "AdamW m, v", "activations + logits",
                   "optimizer temporaries", "peak", "TFLOP/step", "s/step (est.)")


def finetune_summary(s: Shape = LARGE, cases: Mapping[str, Iterable[int] | None] | None = None, batch: int = 1,
                     frames: int = 500) -> list[list[str]]:
    """Table cells (:data:`FINETUNE_HEADER`): parameters, trained, base, copy, gradients, AdamW, activations,
    optimizer temporaries, peak, TFLOP per step, seconds per step (GiB; the seconds an estimate)."""
    cases = cases if cases is not None else {"all": None, "layers 12-17, 42-47": HOOKED_LAYERS,
                                             "layers 42-47": range(42, 48)}
    rows = []
    for label, layers in cases.items():
        chosen = None if layers is None else tuple(layers)
        m = finetune_memory(s, chosen, batch, frames)
        flops = finetune_flops(s, positions(frames), chosen, batch)["total"]
        sec = finetune_seconds(s, positions(frames), chosen, batch)
        rows.append([label, f"{trained_parameters(s, chosen) / 1e9:.2f} B", gib(m["base"]), gib(m["weights"]),
                     gib(m["gradients"]), gib(m["adam"]), gib(m["activations"] + m["logits"]), gib(m["optimizer"]),
                     f"**{gib(m['peak'])}**", f"{flops / 1e12:.2f}", f"{sec['total']:.2f}"])
    return rows


def main() -> list[str]:
    """Print MusicGen-Large's fine-tuning table (:func:`finetune_summary`); its lines."""
    lines = md_table(FINETUNE_HEADER, finetune_summary())
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
