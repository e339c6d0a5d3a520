"""Make the tiny MusicGen checkpoint in lumina_audit/_data/golden/models/tiny-musicgen/ (run once, then commit).

Same structure as MusicGen-Large where the signature depends on it: 48
transformer layers, 4 codebooks of 2048 entries, the delay pattern, a T5-style
``description`` conditioner fused by cross-attention, no biases, pre-norm,
memory-efficient (SDPA) attention, and a 32 kHz EnCodec at 50 Hz (ratios
8, 5, 4, 4). Only the widths are tiny. Seed 422024.

The RVQ codebooks are not left random (a random codebook maps every frame to
one code): stage k is filled with 2048 distinct residual frames of the
encoder's output on synthetic music, sampled with the seed.

Usage (from the repository root): python -m scripts.make_tiny_checkpoint [OUT_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from unittest import mock

from lumina_tools.files import RANDOM, file_sha256

SEED = 422024
SONGS = 24
SONG_SECONDS = 12.0


def lm_config() -> dict[str, Any]:
    return {
        "device": "cpu", "dtype": "float32", "sample_rate": 32000, "channels": 1,
        "lm_model": "transformer_lm",
        "dataset": {"segment_duration": 30.0},
        "codebooks_pattern": {
            "modeling": "delay",
            "delay": {"delays": [0, 1, 2, 3], "flatten_first": 0, "empty_initial": 0},
            "unroll": {"flattening": [0, 1, 2, 3], "delays": [0, 0, 0, 0]},
            "music_lm": {"group_by": 2},
            "coarse_first": {"delays": [0, 0, 0]},
        },
        "transformer_lm": {
            "dim": 32, "num_heads": 4, "num_layers": 48, "hidden_scale": 4, "n_q": 4, "card": 2048,
            "dropout": 0.0, "emb_lr": None, "activation": "gelu", "norm_first": True,
            "bias_ff": False, "bias_attn": False, "bias_proj": False, "past_context": None,
            "causal": True, "custom": False, "memory_efficient": True, "attention_as_float32": False,
            "layer_scale": None, "positional_embedding": "sin", "xpos": False, "checkpointing": "none",
            "weight_init": "gaussian", "depthwise_init": "current", "zero_bias_init": True,
            "norm": "layer_norm", "cross_attention": False, "qk_layer_norm": False,
            "qk_layer_norm_cross": False, "attention_dropout": None, "kv_repeat": 1, "two_step_cfg": False,
        },
        "classifier_free_guidance": {"training_dropout": 0.3, "inference_coef": 3.0},
        "attribute_dropout": {},
        "fuser": {"cross_attention_pos_emb": False, "cross_attention_pos_emb_scale": 1, "sum": [],
                  "prepend": [], "cross": ["description"], "input_interpolate": []},
        "conditioners": {"description": {"model": "t5", "t5": {
            "name": "t5-base", "finetune": False, "word_dropout": 0.3, "normalize_text": False}}},
    }


def compression_config() -> dict[str, Any]:
    return {
        "device": "cpu", "dtype": "float32", "sample_rate": 32000, "channels": 1,
        "compression_model": "encodec",
        "encodec": {"autoencoder": "seanet", "quantizer": "rvq", "sample_rate": 32000, "channels": 1,
                    "causal": False, "renormalize": False},
        "seanet": {
            "dimension": 16, "channels": 1, "causal": False, "n_filters": 4, "n_residual_layers": 1,
            "ratios": [8, 5, 4, 4], "activation": "ELU", "activation_params": {"alpha": 1.0},
            "norm": "weight_norm", "norm_params": {}, "kernel_size": 7, "residual_kernel_size": 3,
            "last_kernel_size": 7, "dilation_base": 2, "pad_mode": "constant", "true_skip": True,
            "compress": 2, "lstm": 2, "disable_norm_outer_blocks": 0,
            "decoder": {"trim_right_ratio": 1.0, "final_activation": None, "final_activation_params": None},
            "encoder": {},
        },
        "rvq": {"n_q": 4, "q_dropout": False, "bins": 2048, "decay": 0.99, "kmeans_init": True,
                "kmeans_iters": 50, "threshold_ema_dead_code": 2, "orthogonal_reg_weight": 0.0,
                "orthogonal_reg_active_codes_only": False},
        "no_quant": {},
    }


def seed_codebooks(compression: Any, torch: Any) -> None:
    """Fill each RVQ stage with distinct residual encoder frames of synthetic music."""
    from lumina_audit._internal.synth import SongSpec, render

    gen = torch.Generator().manual_seed(SEED)
    clips = [render(SongSpec(seed=SEED + i, seconds=SONG_SECONDS, sample_rate=32000, channels=1))
             for i in range(SONGS)]
    with torch.no_grad():
        x = torch.tensor([c[0] for c in clips], dtype=torch.float32).unsqueeze(1)  # [B, 1, S]
        frames = compression.encoder(x)  # [B, D, T]
        residual = frames.permute(0, 2, 1).reshape(-1, frames.shape[1])  # [N, D]
        for layer in compression.quantizer.vq.layers:
            book = layer._codebook
            unique = torch.unique(residual, dim=0)
            if unique.shape[0] < book.codebook_size:
                raise SystemExit(f"only {unique.shape[0]} distinct frames for {book.codebook_size} codes")
            pick = torch.randperm(unique.shape[0], generator=gen)[: book.codebook_size]
            book.embed.copy_(unique[pick])
            book.embed_avg.copy_(unique[pick])
            book.cluster_size.fill_(1.0)
            book.inited.fill_(1.0)
            codes = layer.encode(residual.T.unsqueeze(0))  # [1, N]
            residual = residual - layer.decode(codes)[0].T


def main(out: Path) -> None:
    import audiocraft
    import torch
    from audiocraft.models import builders
    from omegaconf import OmegaConf

    from lumina_audit.signature.model import NullTextConditioner

    torch.manual_seed(SEED)
    out.mkdir(parents=True, exist_ok=True)
    ccfg, lcfg = OmegaConf.create(compression_config()), OmegaConf.create(lm_config())
    compression = builders.get_compression_model(ccfg).eval()
    seed_codebooks(compression, torch)
    with mock.patch.object(builders, "T5Conditioner", NullTextConditioner):
        lm = builders.get_lm_model(lcfg).eval()
    for name, model, cfg in (("compression_state_dict.bin", compression, ccfg), ("state_dict.bin", lm, lcfg)):
        pkg = {"best_state": model.state_dict(), "xp.cfg": OmegaConf.to_yaml(cfg),
               "version": audiocraft.__version__, "exported": True}
        torch.save(pkg, out / name)
    digests = {n: file_sha256(out / n) for n in ("state_dict.bin", "compression_state_dict.bin")}
    print(json.dumps(digests, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else RANDOM)
