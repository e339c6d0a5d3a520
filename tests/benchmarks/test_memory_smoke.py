"""``benchmarks.bench_memory`` at 48 x 64 on a 2 s song: its whole run, six child processes (about 30 s).

Each memory option is measured in its own process under its own pins (``python -m benchmarks.bench_memory
--child``); the host-side buffers are exactly 12 bytes per hooked entry with ``sums=host`` and none
otherwise, and the hooked entries are what ``musicgen_large.hooked_entries`` counts for the shape. The
activations child measures both widths from layer 12 up; the paper tables follow from them.
"""

from __future__ import annotations

import pytest

import benchmarks.bench_memory as bench
from benchmarks.musicgen_large import LARGE, Shape, hooked_entries, lm_parameters

pytestmark = pytest.mark.slow

WIDTH = 64


def test_options_activations_and_paper(capsys: pytest.CaptureFixture[str]) -> None:
    figures = bench.main(["--width", str(WIDTH), "--seconds", "2"])
    out = capsys.readouterr().out
    shape = Shape(width=WIDTH, heads=1, ffn=4 * WIDTH)
    measured = figures["measured"]
    assert list(measured) == [label for label, _, _ in bench.OPTIONS]
    for (label, pins, _), r in zip(bench.OPTIONS, measured.values(), strict=True):
        assert r["chunks"] == 1 and r["hooked_entries"] == hooked_entries(shape), label
        assert r["host_buffers"] == (12 * r["hooked_entries"] if pins.get("sums") == "host" else 0), label
        # The kernel updates VmHWM lazily (at unmaps), so at this tiny width a song that frees pages can
        # report a mark a few hundred KiB under the RSS at the reset: allowed, up to 1 MiB.
        assert r["rest"] > 0 and r["peak"] >= r["rest"] - (1 << 20), label
        assert r["above_rest"] == r["peak"] - r["rest"], label
        assert f"| {label} | " in out
    acts = figures["activations"]
    assert sorted(acts) == [str(WIDTH // 2), str(WIDTH)]
    for w in acts.values():
        assert sorted(int(i) for i in w["per_layer"]) == list(range(12, 48)) and w["head"] > 0
    assert sum(acts[str(WIDTH)]["per_layer"].values()) > sum(acts[str(WIDTH // 2)]["per_layer"].values())
    paper = figures["paper"]
    assert sorted(paper) == sorted([WIDTH, LARGE.width])
    for width, rows in paper.items():
        s = shape if width == WIDTH else LARGE
        assert len(rows) == 4 and all(r["peak"] >= r["model"] >= 4 * lm_parameters(s) for r in rows.values())
    assert out.count("On paper, 48 x ") == 2
