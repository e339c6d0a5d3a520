"""``python -m benchmarks.musicgen_large``: MusicGen-Large's fine-tuning table, run as a module from the root.

The printed table is a Markdown table of :data:`FINETUNE_HEADER`'s columns, one row per case, whose
figures are ``finetune_memory``'s, ``trained_parameters``' and ``finetune_flops``' for that case; and
``encodec_config`` (from the tiny checkpoint's config in ``scripts.make_tiny_checkpoint``) builds an
EnCodec of MusicGen's shape.
"""

from __future__ import annotations

import subprocess
import sys

import benchmarks.musicgen_large as mg
from lumina_tools.markdown import gib

from ..conftest import ROOT

CASES = {"all": None, "layers 12-17, 42-47": mg.HOOKED_LAYERS, "layers 42-47": tuple(range(42, 48))}


def test_the_module_prints_the_fine_tuning_table() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.musicgen_large"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True)
    lines = done.stdout.strip().splitlines()
    assert lines == mg.md_table(mg.FINETUNE_HEADER, mg.finetune_summary())
    assert lines[0] == "| " + " | ".join(mg.FINETUNE_HEADER) + " |" and len(lines) == 2 + len(CASES)
    for line, (label, layers) in zip(lines[2:], CASES.items(), strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        memory = mg.finetune_memory(mg.LARGE, layers)
        assert len(cells) == len(mg.FINETUNE_HEADER) and cells[0] == label
        assert cells[1] == f"{mg.trained_parameters(mg.LARGE, layers) / 1e9:.2f} B"
        assert cells[2:8] == [gib(memory[k]) for k in ("base", "weights", "gradients", "adam")] + [
            gib(memory["activations"] + memory["logits"]), gib(memory["optimizer"])]
        assert cells[8] == f"**{gib(memory['peak'])}**"
        assert cells[9] == f"{mg.finetune_flops(mg.LARGE, mg.positions(), layers)['total'] / 1e12:.2f}"
    full, hooked = (float(line.split("|")[9].strip().strip("*")) for line in lines[2:4])
    assert full > hooked  # every parameter needs more than the hooked layers


def test_encodec_of_musicgens_shape() -> None:
    cfg = mg.encodec_config(64, 128)
    assert (cfg["seanet"]["n_filters"], cfg["seanet"]["dimension"]) == (64, 128)
    from benchmarks.bench_memory import encodec_parameters

    assert 10_000_000 < encodec_parameters() < 100_000_000  # MusicGen's 32 kHz EnCodec: about 57 M
