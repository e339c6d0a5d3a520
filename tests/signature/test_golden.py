"""Golden vectors: bitwise equality in-process and under hostile caller environments."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lumina_audit.signature import golden
from lumina_audit.signature.pins import MARKER

from ..conftest import GOLDEN, ROOT

CLI = [sys.executable, "-m", "lumina_audit"]


def _all(session: Any) -> Any:
    return lambda path, song_id: session.all_signatures([path], [song_id])[0][1]


def _digests(session: Any) -> dict[str, str]:
    return {name: space.digest for name, space in session.spaces.items()}


def test_golden_vectors_bitwise_in_process(session: Any) -> None:
    gf = golden.read(GOLDEN)
    assert len(gf.expected) >= 5 and gf.spaces == _digests(session)
    assert list(gf.spaces) == ["lumina-gradproj-v1", "lumina-gradstats-v1"]
    report = golden.check(gf, _all(session), _digests(session), session.environment())
    assert report.bottom_line, report
    assert len(report.clips) == 2 * len(gf.expected)


def test_every_committed_checkpoint_has_golden_vectors_bitwise() -> None:
    """The trained checkpoint loads through the digest-checked path and gives its own golden vectors bit for bit."""
    from lumina_audit.signature.methods import get_method
    from lumina_audit.signature.pins import Pins
    from lumina_audit.signature.session import Session

    names = golden.files(GOLDEN)
    assert names[0] == "golden.json" and "golden-tiny-musicgen-trained.json" in names
    models = {p.name for p in (GOLDEN / "models").iterdir() if p.is_dir()}
    assert {golden.read(GOLDEN, n).model_dir.name for n in names} == models  # one golden file per checkpoint
    gf = golden.read(GOLDEN, "golden-tiny-musicgen-trained.json")
    trained = Session.open(gf.model_dir, gf.digests, Pins(), methods=[get_method(m) for m in gf.spaces])
    assert trained.spaces.keys() == gf.spaces.keys()
    report = golden.check(gf, _all(trained), _digests(trained), trained.environment())
    assert report.bottom_line, report
    random_gf = golden.read(GOLDEN)
    assert set(gf.spaces.values()).isdisjoint(random_gf.spaces.values())  # another model, other spaces


def test_the_trained_checkpoint_learned_something() -> None:
    """Its committed training log describes these very files, and its held-out loss is far below chance."""
    folder = GOLDEN / "models" / "tiny-musicgen-trained"
    log = json.loads((folder / "training-log.json").read_text())
    for name, digest in log["sha256"].items():  # the log is about the committed weights, not an earlier run
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    random_loss = log["committed_random_tiny_musicgen"]["validation"]
    first, final = log["epochs"][0]["validation"], log["epochs"][-1]["validation"]
    assert abs(log["log_2048"] - np.log(2048)) < 1e-12
    assert first > log["log_2048"] and random_loss > log["log_2048"]  # untrained: worse than uniform
    assert final < log["log_2048"] - 2.0 and final < random_loss - 2.0, (final, random_loss)
    assert log["epochs"][-1]["step"] == log["training"]["steps"]


@pytest.mark.parametrize("method", ["lumina-gradproj-v1", "lumina-gradstats-v1"])
def test_same_pcm_in_flac_gives_the_same_signature(method: str) -> None:
    by_id = {s.song_id: s for _, s in golden.read(GOLDEN).expected_for(method)}
    wav, flac = by_id["a_stereo44k_pcm16"], by_id["a_copy"]
    assert wav.pcm_sha256 == flac.pcm_sha256 and wav.file_sha256 != flac.file_sha256
    assert wav.p.tobytes() == flac.p.tobytes() and wav.raw_m.tobytes() == flac.raw_m.tobytes()


@pytest.mark.parametrize("method", ["lumina-gradproj-v1", "lumina-gradstats-v1"])
def test_golden_clips_give_clearly_different_signatures(method: str) -> None:
    sigs = {s.pcm_sha256: s for _, s in golden.read(GOLDEN).expected_for(method)}  # distinct music only
    assert len(sigs) == 4
    for channel in ("p", "m"):
        vecs = np.array([getattr(s, channel) for s in sigs.values()], dtype=np.float64)
        cos = vecs @ vecs.T
        off = cos[~np.eye(len(vecs), dtype=bool)]
        assert off.max() < 0.95, (channel, cos)


def test_golden_clips_cover_the_required_cases() -> None:
    import soundfile

    infos = {p.name: soundfile.info(p) for p, _ in golden.read(GOLDEN).expected}
    a, b, c = infos["a_stereo44k_pcm16.wav"], infos["b_mono48k_pcm24.wav"], infos["c_stereo32k_pcm16.wav"]
    assert (a.channels, a.samplerate, a.subtype) == (2, 44100, "PCM_16")
    assert b.subtype == "PCM_24" and b.frames / b.samplerate == 13.5  # partial last chunk
    assert (c.frames / c.samplerate) % 10.0 == pytest.approx(0.6)  # sub-second tail dropped


def test_a_one_bit_change_is_reported(session: Any, tmp_path: Path) -> None:
    shutil.copytree(GOLDEN / "clips", tmp_path / "clips")
    doc = json.loads((GOLDEN / "golden.json").read_text())
    doc["model"]["directory"] = str(GOLDEN / "models" / "tiny-musicgen")
    vectors = doc["clips"][2]["vectors"]["lumina-gradstats-v1"]
    v = np.float64(vectors["p_raw"][7])
    vectors["p_raw"][7] = float(np.frombuffer((v.view(np.uint64) ^ np.uint64(1)).tobytes(), np.float64)[0])
    (tmp_path / "golden.json").write_text(json.dumps(doc))
    report = golden.check(golden.read(tmp_path), _all(session), _digests(session), session.environment())
    assert not report.bottom_line
    bad = [c for c in report.clips if not c.equal]
    assert [(c.song_id, c.method, c.differing) for c in bad] == [
        (doc["clips"][2]["song_id"], "lumina-gradstats-v1", ("raw_p",))]
    assert 0 < bad[0].max_abs_diff < 1e-15


def test_golden_file_refuses_unknown_version(tmp_path: Path) -> None:
    doc = json.loads((GOLDEN / "golden.json").read_text())
    for version in (1, 3):
        doc["version"] = version
        (tmp_path / "golden.json").write_text(json.dumps(doc))
        with pytest.raises(Exception, match="not a lumina-golden version 2 file"):
            golden.read(tmp_path)


# A pairwise covering array of the hostile caller environments of the issue:
# threads 1/2/3, ATEN_CPU_CAPABILITY unset/avx2 (+ "default", which changes bits when obeyed),
# MKL_CBWR unset/AUTO/COMPATIBLE, ONEDNN_MAX_CPU_ISA unset/AVX2.
HOSTILE: list[dict[str, str | None]] = [
    {"T": "1", "ATEN": None, "CBWR": None, "ISA": None},
    {"T": "1", "ATEN": "avx2", "CBWR": "AUTO", "ISA": "AVX2"},
    {"T": "1", "ATEN": None, "CBWR": "COMPATIBLE", "ISA": "AVX2"},
    {"T": "2", "ATEN": "avx2", "CBWR": None, "ISA": "AVX2"},
    {"T": "2", "ATEN": None, "CBWR": "AUTO", "ISA": None},
    {"T": "2", "ATEN": "avx2", "CBWR": "COMPATIBLE", "ISA": None},
    {"T": "3", "ATEN": None, "CBWR": None, "ISA": "AVX2"},
    {"T": "3", "ATEN": "avx2", "CBWR": "AUTO", "ISA": None},
    {"T": "3", "ATEN": "default", "CBWR": "COMPATIBLE", "ISA": "AVX2"},
]


def _hostile_env(row: dict[str, str | None]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA"):
        env.pop(k, None)
    assert row["T"] is not None
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = row["T"]
    for key, var in (("ATEN", "ATEN_CPU_CAPABILITY"), ("CBWR", "MKL_CBWR"), ("ISA", "ONEDNN_MAX_CPU_ISA")):
        value = row[key]
        if value is not None:
            env[var] = value
    return env


@pytest.mark.slow
def test_golden_check_under_hostile_caller_environments() -> None:
    def run(row: dict[str, str | None]) -> tuple[dict[str, str | None], Any]:
        out = subprocess.run([*CLI, "golden", "check", "--json"], env=_hostile_env(row), cwd=ROOT,
                             capture_output=True, text=True, timeout=300, check=False)
        return row, out

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, HOSTILE))
    for row, out in results:
        assert out.returncode == 0, (row, out.stdout[-2000:], out.stderr[-2000:])
        doc = json.loads(out.stdout)
        expected = sum(2 * len(golden.read(GOLDEN, n).expected) for n in golden.files(GOLDEN))
        assert doc["bottom_line"] is True and len(doc["clips"]) == expected == 20, row  # 2 checkpoints x 5 x 2
        assert all(c["equal"] for c in doc["clips"])
