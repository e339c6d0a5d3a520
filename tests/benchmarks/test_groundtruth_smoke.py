"""``benchmarks.bench_groundtruth`` part 1 on a tiny configuration (no apt, well under a minute).

Three catalog songs and ten controls rendered by ``lumina_audit._internal.synth``; ``customize`` on the
random tiny checkpoint (1 fine-tuning step, 2 pieces of 1 s per copy and from the unmodified model);
then the benchmark's whole scoring and its report. The figures are checked against what the trials
must hold, and the code-histogram baseline's ranks against an independent count on the pieces' files.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import benchmarks._groundtruth_measure as gm
import benchmarks.bench_groundtruth as bench
from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.customization.settings import FineTune, Sampling

from ..conftest import ROOT, TINY

N_CATALOG, N_CONTROLS, PIECES = 3, 10, 2
GRAD = [f"{m} {c}" for m in ("lumina-gradproj-v1", "lumina-gradstats-v1") for c in ("P", "M")]


def _songs(folder: Path, prefix: str, seeds: range, seconds: float) -> list[Path]:
    folder.mkdir(parents=True)
    out = []
    for s in seeds:
        path = folder / f"{prefix}{s}.wav"
        write_wav(path, render(SongSpec(seed=s, seconds=seconds)), 32000, 16)
        out.append(path)
    return out


def _finite(x: Any) -> bool:
    return isinstance(x, float) and math.isfinite(x)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    root = tmp_path_factory.mktemp("groundtruth")
    catalog = _songs(root / "catalog", "cat", range(8100, 8100 + N_CATALOG), 10.5)  # one whole 10 s chunk
    controls = _songs(root / "controls", "ctl", range(8200, 8200 + N_CONTROLS), 1.5)
    settings = gm.Settings(tuning=FineTune(steps=1, lr=1e-3), sampling=Sampling(count=PIECES, seconds=1.0))
    meta = {"command": "python -m benchmarks.bench_groundtruth (smoke test)", "date": "today", "niceness": 0,
            "apt_installed": []}
    data = {"catalog": "synth seeds 8100..8102", "controls": "synth seeds 8200..8209", "song_seconds": 10.5,
            "source": "lumina_audit._internal.synth", "why": "a smoke test."}
    doc = bench.groundtruth(meta, [(TINY, None)], catalog, controls, settings, root / "work", data)
    doc["run_seconds"] = 1.0
    return doc, root


def test_settings_and_pieces(run: tuple[dict[str, Any], Path]) -> None:
    doc, root = run
    s = doc["settings"]
    assert (s["finetune"]["steps"], s["finetune"]["lr"], s["sampling"]["seeds"]) == (1, 1e-3, [1000, 1001])
    assert s["calibration"]["proposition"] == "influence" and s["calibration"]["folds"] == 5
    m = doc["models"][0]
    assert m["model"].endswith("tiny-musicgen") and not m["customization"]["reused"]
    assert m["customization"]["carried_as"] == ["codes"]
    assert m["customization"]["decoder"]["round_trip_correlation"] < m["customization"]["decoder"]["decodes_at"]
    pos, neg = m["pieces"]["positives"], m["pieces"]["negatives"]
    assert [(p["song"], p["seed"]) for p in pos] == [(f"cat{8100 + i}", 1000 + k)
                                                    for i in range(N_CATALOG) for k in range(PIECES)]
    assert [p["seed"] for p in neg] == [1000, 1001] and all(p["frames"] == 50 for p in [*pos, *neg])
    assert len({p["codes_sha256"] for p in [*pos, *neg]}) == len(pos) + len(neg)
    assert all(len(r["losses"]) == 1 and r["chunks"] == 1 for r in m["per_song"])
    assert m["customization"]["base_lm_sha256"] not in {r["lm_sha256"] for r in m["per_song"]}
    assert {k: v["met"] for k, v in m["minimums"].items()} == {"controls": False, "sources": False,
                                                                "h1_trials": False}


def test_recall_agrees_with_ranks_and_v2_with_the_trials(run: tuple[dict[str, Any], Path]) -> None:
    doc, _ = run
    m = doc["models"][0]
    res = m["results"]
    assert list(res) == gm.score_keys() == [*GRAD, "latent-mean", "latent-mean-std", "code-histogram",
                                           "code-histogram-std"]
    p, n, c, g = N_CATALOG * PIECES, N_CATALOG, N_CONTROLS, PIECES
    statuses = []
    for key, r in res.items():
        ranks, v1 = r["ranks"], r["v1"]
        assert len(ranks) == p and all(1 <= x <= n for x in ranks)
        assert v1["queries"] == p and v1["catalog"] == n
        assert v1["recall_at_1"] == sum(x == 1 for x in ranks) / p
        assert v1["recall_at_5"] == sum(x <= 5 for x in ranks) / p == 1.0  # 3 songs: always in the top 5
        assert v1["median_rank"] == statistics.median(ranks)
        assert v1["exemplar_above_tau"] == sum(r["above_tau"]) / p
        fl = r["floor"]
        assert fl["tau"] == fl["mu"] + doc["k"] * fl["sigma"]
        v2 = r["v2"]
        statuses.append(v2["status"])
        if v2["status"] == "refused":
            assert v2["reason"], key
            continue
        t, f = v2["trials"], v2["figures"]
        assert (t["h1"], t["h2_positives"], t["h2_controls"], t["h2_negatives"]) == (p, p * (n - 1), c * n, g * n)
        assert t["h2"] == t["h2_positives"] + t["h2_controls"] + t["h2_negatives"]
        assert (t["units"], t["source_units"], t["controls"], t["negatives"]) == (n + c + g, n, c, g)
        assert (f["h1_trials"], f["h2_trials"], f["h1_units"], f["h2_units"]) == (t["h1"], t["h2"], n, n + c + g)
        assert _finite(f["cllr"]) and f["cllr"] >= 0 and 0 <= f["cllr_min"] <= 1 + 1e-12 and 0 <= f["eer"] <= 1
        assert v2["bounds"] == f["bounds"] and f["bounds"]["lower"] <= 0 <= f["bounds"]["upper"]
        assert v2["model"]["a"] > 0 and v2["folds"] == 5
        for side in ("h1", "h2"):
            rate = f["misleading"][side]
            lo, hi = rate["interval"]
            assert rate["rate"] == rate["count"] / rate["trials"] and lo <= rate["rate"] <= hi
    assert "ok" in statuses  # at least one score calibrates on these trials


def test_code_histogram_ranks_recounted_from_the_piece_files(run: tuple[dict[str, Any], Path], session: Any) -> None:
    """The raw code-histogram baseline, recomputed from the ``.codes`` files and the songs' own codes."""
    import torch

    from lumina_audit.signature.codes import read_codes
    from lumina_audit.signature.gradients import chunk_codes
    from lumina_audit.signature.session import load_all

    doc, root = run
    m = doc["models"][0]
    audios = load_all(sorted((root / "catalog").glob("*.wav")), session.config)

    def hist(codes: np.ndarray) -> np.ndarray:
        h = np.stack([np.bincount(row, minlength=2048) / row.size for row in codes])
        out: np.ndarray = h.reshape(-1) / np.linalg.norm(h.reshape(-1))
        return out

    cat = np.stack([hist(chunk_codes(session.model, torch.from_numpy(a.samples[:320000]))[0].numpy())
                    for a in audios])
    folder = ROOT / m["customization"]["folder"]  # absolute when outside the repository: ROOT / abs == abs
    ranks = []
    for p in m["pieces"]["positives"]:
        piece = read_codes(folder / "positives" / p["song"] / f"{p['piece']}.codes")
        sims = cat @ hist(piece.codes)
        j = m["catalog_ids"].index(p["song"])
        ranks.append(1 + int(np.count_nonzero(sims > sims[j])))
    assert ranks == m["results"]["code-histogram"]["ranks"]


def test_report(run: tuple[dict[str, Any], Path]) -> None:
    from benchmarks._groundtruth_report import label, write_groundtruth

    doc, root = run
    text = write_groundtruth(doc, root / "out")
    assert (root / "out" / "groundtruth.md").read_text() == text and (root / "out" / "groundtruth.json").is_file()
    v2 = text.split("### attribution-v2")[1].split("### attribution-v1")[0]
    for key in gm.score_keys():
        name = label(key) if key in GRAD else f"{key} (no gradients)"
        assert v2.count(f"| {name} | ") == 1, name
    assert {label(k) for k in GRAD} == {"gradproj P", "gradproj M", "gradstats P", "gradstats M"}
    assert "NOT met" in v2 and "Cllr_min" in v2 and "misleading H1" in v2
    v1 = text.split("### attribution-v1")[1].split("### Rank")[0]
    res = doc["models"][0]["results"]
    for key in gm.score_keys():
        assert f"| {label(key)} | {100 * res[key]['v1']['recall_at_1']:.0f}% |" in v1
    assert "## What the figures show" in text and "nan%" not in text and "| nan" not in text
