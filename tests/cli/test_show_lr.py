"""``report show`` and ``calibration show`` as a user meets them, on the files of a ``lumina-attribution-v2`` chain.

Every figure printed is checked against the document it comes from (read here independently
of the CLI: the JSON bytes, or the archive's ``calibration.json`` member), in the channel it
belongs to: a version 3 report (listed songs, LRs, bands, bounds, validation, database
search), a version 3 calibration (model, bounds, trials, the validation table overall and per
transform), the noise floors of versions 2 and 1, and a version 2 report, which keeps its
table. ``--json`` reads back to the document plus its SHA-256; a damaged, unknown or
incomplete file ends in one line and exit 2.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from lumina_audit.attribution.reports import canonical

from ..runner.test_lr_e2e import chain  # noqa: F401  (the module fixture: catalog, calibration.zip, reports/q.json)
from ..runner.test_methods_e2e import Chain, head

CLI = str(Path(sys.executable).with_name("lumina-audit"))
NAMES = {"P": "P (composition)", "M": "M (production)"}


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=300, check=False)


def shown(*args: str | Path) -> str:
    out = cli(*args)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    return out.stdout


def channel_text(text: str, ch: str) -> str:
    """The part of the output about channel ``ch`` (from its heading to the next channel or the end)."""
    start = next(i for i, line in enumerate(text.splitlines()) if line.startswith(NAMES[ch]))
    lines = text.splitlines()[start:]
    other = NAMES["M" if ch == "P" else "P"]
    end = next((i for i, line in enumerate(lines) if line.startswith(other)), len(lines))
    return "\n".join(lines[:end])


def table_rows(text: str) -> dict[str, list[str]]:
    """Header and body rows of the tables in ``text``, by their first cell."""
    rows = {}
    for line in text.splitlines():
        if line.startswith(("│", "┃", "|")):
            cells = [c.strip() for c in re.split(r"[│┃|]", line.strip("│┃| "))]
            rows[cells[0]] = cells
    return rows


def lr_words(lr: float) -> str:
    return f"{lr:.3g}" if lr >= 1 else f"1/{1 / lr:.3g}"


def rate(fig: dict[str, Any]) -> str:
    return f"{fig['rate']:.4f} [{fig['interval'][0]:.4f}, {fig['interval'][1]:.4f}]"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_error(out: subprocess.CompletedProcess[str], fragment: str) -> None:
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stdout + out.stderr
    assert lines and lines[0].startswith("error: ") and fragment in lines[0], out.stderr
    assert len(lines) <= 2 and all(ln.startswith(("error: ", "hint: ")) for ln in lines), lines
    assert out.stdout == "" and "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def files(chain: Chain) -> dict[str, Path]:  # noqa: F811
    """The chain's v3 files, a version 2 noise floor on the same catalog, controls and positives, its version 2
    report, and a version 1 noise floor (the version 2 one less what version 2 added)."""
    root = chain.root
    chain.run("floor", head("floor", "Calibrate") + "catalog: {path: out/catalog.h5}\ncontrols:\n  - path: controls\n"
              "positives:\n  - path: derived\ncalibration: {method: lumina-attribution-v1, k: 3.0, min_controls: 6}\n"
              "outputs: {calibration: out/floor.json}\n")
    chain.run("floor-attr", head("floor-attr", "Attribute") + "catalog: {path: out/catalog.h5}\ncalibration: {path: "
              "out/floor.json}\nqueries:\n  - path: queries\noutputs: {reports: out/floor-reports}\n")
    v1 = json.loads((root / "out" / "floor.json").read_bytes())
    v1["version"] = 1
    for key in ("P", "positives"):
        del v1[key]
    for ch in ("P", "M"):
        del v1["channels"][ch]["unrelated_attributed_rate"], v1["channels"][ch]["detection"]
    (root / "floor-v1.json").write_bytes(canonical(v1))
    return {"report": root / "out" / "reports" / "q.json", "calibration": root / "out" / "calibration.zip",
            "floor": root / "out" / "floor.json", "floor_report": root / "out" / "floor-reports" / "q.json",
            "floor_v1": root / "floor-v1.json"}


def archive_document(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as z:
        doc: dict[str, Any] = json.loads(z.read("calibration.json"))
    return doc


def test_report_show_states_each_channel_of_a_version_3_report(files: dict[str, Path]) -> None:
    path = files["report"]
    doc = json.loads(path.read_bytes())
    assert doc["version"] == 3
    text = shown("report", "show", path)
    head_ = text.split(NAMES["P"])[0]
    q = doc["query"]
    assert f"query {q['song_id']}  (file {q['file_sha256'][:16]}..., PCM {q['pcm_sha256'][:16]}...)" in head_
    led = doc["ledger"]
    assert f"report {sha256(path)[:16]}...  ledger record {led['record']} of {led['origin']}" in head_
    prop = doc["calibration"]["proposition"]
    assert f"H1: {prop['h1']}" in head_ and f"H2: {prop['h2']}" in head_ and prop["name"] in head_
    for ch in ("P", "M"):
        res, cal = doc["channels"][ch], doc["calibration"]["channels"][ch]
        part = channel_text(text, ch)
        hi = res["highest"]
        assert part.splitlines()[0] == (f"{NAMES[ch]}: highest {hi['song_id']}, log10 LR {hi['log10_lr']:+.2f} "
                                        f"(LR {lr_words(hi['lr'])}): {hi['words']}")
        rows = table_rows(part)
        assert list(rows) == ["song", *(e["song_id"] for e in res["entries"])]  # header, then the entries in order
        for e in res["entries"]:
            song, log10, lr, band, score, sim, bound, listed = rows[e["song_id"]]
            assert (log10, lr, score, sim) == (f"{e['log10_lr']:+.2f}", lr_words(e["lr"]), f"{e['score']:.3f}",
                                               f"{e['similarity']:.4f}")
            assert band == f"{e['band']} support for {e['supports']}"
            assert (bound == f"clipped at {e['bounded']} bound (calibrated {e['log10_lr_calibrated']:+.2f})"
                    if e["bounded"] else bound == "")
            assert listed.startswith(e["listed_by"])
        b = res["bounds"]
        assert f"every log10 LR is clipped to [{b['lower']:+.2f}, {b['upper']:+.2f}]" in part
        v = cal["validation"]
        m = v["misleading"]
        assert (f"Cllr {v['cllr']:.3f}, Cllr_min {v['cllr_min']:.3f}, EER {v['eer']:.3f}; misleading evidence H1 "
                f"{rate(m['h1'])} ({m['h1']['count']} of {m['h1']['trials']}), H2 {rate(m['h2'])} "
                f"({m['h2']['count']} of {m['h2']['trials']})") in part
        assert (f"H1 {v['h1_trials']} trials of {v['h1_units']} units, H2 {v['h2_trials']} trials of "
                f"{v['h2_units']} units") in part
        db = res["database_search"]
        lo, up = db["expected_interval"]
        assert (f"expected number of unrelated songs of a catalog of {db['catalog_size']} reaching the highest LR "
                f"(log10 LR {db['log10_lr']:+.2f}) by chance: {db['expected']:.3g} [") in part
        assert f", {up:.3g}] (share of validation H2 trials" in part and lo < db["expected"] < up
    # Both channels' figures differ here, so a figure shown under the wrong channel is caught.
    assert doc["channels"]["P"]["highest"]["log10_lr"] != doc["channels"]["M"]["highest"]["log10_lr"]
    assert text.rstrip().splitlines()[-1].startswith(
        "A likelihood ratio is not the probability that the proposition is true.")


def test_report_show_json_is_the_document_and_its_sha256(files: dict[str, Path]) -> None:
    for name in ("report", "floor_report"):
        path = files[name]
        assert json.loads(shown("report", "show", path, "--json")) == json.loads(path.read_bytes()) | {
            "sha256": sha256(path)}


def test_calibration_show_states_model_bounds_trials_and_validation_per_transform(files: dict[str, Path]) -> None:
    path = files["calibration"]
    doc = archive_document(path)
    text = shown("calibration", "show", path)
    head_ = text.split(NAMES["P"])[0]
    assert f"calibration {sha256(path)} " in head_ and "method lumina-attribution-v2" in head_
    assert f"C {doc['C']} controls, N {doc['N']} catalog songs, P {doc['P']} positives" in head_
    assert "settings: " + ", ".join(f"{k} {v}" for k, v in sorted(doc["settings"].items())) in head_
    assert f"signature method {doc['signature_method']}, signature space {doc['signature_space_sha256']}" in head_
    assert f"H1: {doc['proposition']['h1']}" in head_ and f"H2: {doc['proposition']['h2']}" in head_
    for ch in ("P", "M"):
        c = doc["channels"][ch]
        part = channel_text(text, ch)
        assert f"a {c['model']['a']:.6g}, b {c['model']['b']:.6g}" in part
        assert f"clipped to [{c['bounds']['lower']:+.2f}, {c['bounds']['upper']:+.2f}]" in part
        t = c["trials"]
        assert f"H1 {t['h1']}, H2 {t['h2']} (controls {t['h2_controls']}, positives {t['h2_positives']}" in part
        v = c["validation"]
        rows = table_rows(part)
        assert set(rows) == {"transform", "all", *v["by_transform"]} and len(v["by_transform"]) == 2
        header = rows["transform"]
        assert header[-4:-1] == ["H2 >= 1 (<= 0.1)", "H2 >= 2 (<= 0.01)", "H2 >= 3 (<= 0.001)"]
        for name, f in [("all", v), *v["by_transform"].items()]:
            m = f["misleading"]
            shares = []
            for r in f["h2_at_or_above"]:
                shares.append(f"{r['share']:.4f} ({r['count']})"
                              + (f" > {r['valid_at_most']:g}" if r["share"] > r["valid_at_most"] else ""))
            assert rows[name] == [name, str(f["h1_trials"]), str(f["h2_trials"]), f"{f['h1_units']}/{f['h2_units']}",
                                  f"{f['cllr']:.3f}", f"{f['cllr_min']:.3f}", f"{f['eer']:.3f}", rate(m["h1"]),
                                  rate(m["h2"]), *shares,
                                  f"[{f['bounds']['lower']:+.2f}, {f['bounds']['upper']:+.2f}]"], (ch, name)
    cllr = {ch: f"{doc['channels'][ch]['validation']['cllr']:.3f}" for ch in ("P", "M")}
    assert cllr["P"] != cllr["M"]  # so a row shown under the wrong channel fails


def test_calibration_show_json_is_the_document_without_its_arrays(files: dict[str, Path]) -> None:
    path = files["calibration"]
    out = json.loads(shown("calibration", "show", path, "--json"))
    assert out == archive_document(path) | {"sha256": sha256(path)}
    assert {name: sorted(a) for name, a in out["arrays"].items()} == {
        name: ["dtype", "sha256", "shape"] for name in ("cohort-M.npy", "cohort-P.npy", "controls-M.npy",
                                                        "controls-P.npy")}
    floor = files["floor"]
    assert json.loads(shown("calibration", "show", floor, "--json")) == json.loads(floor.read_bytes()) | {
        "sha256": sha256(floor)}


def test_noise_floor_calibrations_still_print_tau_and_version_2_its_error_rates(files: dict[str, Path]) -> None:
    for name, version in (("floor", 2), ("floor_v1", 1)):
        path = files[name]
        doc = json.loads(path.read_bytes())
        assert doc["version"] == version
        text = shown("calibration", "show", path)
        assert f"calibration {sha256(path)} " in text and f"version {version}, method lumina-attribution-v1" in text
        for ch in ("P", "M"):
            c = doc["channels"][ch]
            part = channel_text(text, ch)
            assert (f"tau {c['tau']:.4f} = mu {c['mu']:.4f} + {c['k']:g} x sigma {c['sigma']:.4f}; false-positive "
                    f"rate {c['false_positive_rate']:.4f}") in part
            rows = table_rows(part)
            if version == 1:
                assert "unrelated attributed rate" not in part and rows == {}
                continue
            assert f"unrelated attributed rate {c['unrelated_attributed_rate']:.4f}" in part
            det = c["detection"]
            assert set(rows) == {"positives", "all", *det["by_transform"]}
            for row, f in [("all", det["overall"]), *det["by_transform"].items()]:
                assert rows[row] == [row, str(f["cases"]), str(f["detected"]), f"{f['detection_rate']:.4f}",
                                     f"{f['missed_rate']:.4f}", f"{f['median_rank']:g}"]


def test_a_version_2_report_keeps_its_noise_floor_table(files: dict[str, Path]) -> None:
    path = files["floor_report"]
    doc = json.loads(path.read_bytes())
    assert doc["version"] == 2
    text = shown("report", "show", path)
    assert "likelihood ratio" not in text.lower()
    for ch in ("P", "M"):
        res, cal = doc["channels"][ch], doc["calibration"]["channels"][ch]
        part = channel_text(text, ch)
        assert part.splitlines()[0] == f"{NAMES[ch]}: {res['verdict']}"
        assert f"tau {cal['tau']:.4f} = mu {cal['mu']:.4f}" in part
        rows = table_rows(part)
        for e in res["entries"]:
            assert rows[e["song_id"]] == [e["song_id"], f"{e['share']:.4f}", f"{e['similarity']:.4f}",
                                          f"{e['z']:.2f}",
                                          "above threshold" if e["above_threshold"] else "below threshold"]


def test_damaged_unknown_or_incomplete_files_end_in_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    zipped = files["calibration"].read_bytes()
    (tmp_path / "truncated.zip").write_bytes(zipped[: len(zipped) // 2])
    flipped = bytearray(zipped)
    flipped[zipped.index(b'"cllr"') + 2] ^= 0x01  # inside calibration.json: its CRC-32 no longer holds
    (tmp_path / "flipped.zip").write_bytes(bytes(flipped))
    with zipfile.ZipFile(files["calibration"]) as z, zipfile.ZipFile(tmp_path / "v4.zip", "w") as v4:
        for info in z.infolist():
            data = z.read(info)
            if info.filename == "calibration.json":
                data = canonical(json.loads(data) | {"version": 4})
            v4.writestr(info, data)
    (tmp_path / "v9.json").write_bytes(canonical(json.loads(files["floor"].read_bytes()) | {"version": 9}))
    report = json.loads(files["report"].read_bytes())
    del report["channels"]["M"]["database_search"]
    (tmp_path / "no-search.json").write_bytes(canonical(report))
    (tmp_path / "v4-report.json").write_bytes(canonical(json.loads(files["report"].read_bytes()) | {"version": 4}))
    cases = [
        (("calibration", "show", tmp_path / "truncated.zip"), "not a readable calibration archive"),
        (("calibration", "show", tmp_path / "flipped.zip"), "calibration.json"),
        (("calibration", "show", tmp_path / "v4.zip"), "version 4 is not supported (only 3 in an archive"),
        (("calibration", "show", tmp_path / "v9.json"), "version 9 is not supported"),
        (("calibration", "show", tmp_path / "missing.zip"), "cannot read"),
        (("calibration", "show", files["report"]), "not a lumina-calibration file"),
        (("report", "show", tmp_path / "no-search.json"), "lacks 'database_search'"),
        (("report", "show", tmp_path / "v4-report.json"), "version 4 is not supported"),
        (("report", "show", files["calibration"]), "not JSON"),
    ]
    for args, fragment in cases:
        out = cli(*args)
        one_line_error(out, fragment)
        assert str(args[-1]) in out.stderr  # names the file


def test_both_commands_have_an_example_in_their_help() -> None:
    for group in ("report", "calibration"):
        out = cli(group, "show", "--help")
        assert out.returncode == 0 and f"Example: lumina-audit {group} show " in out.stdout, out.stdout
