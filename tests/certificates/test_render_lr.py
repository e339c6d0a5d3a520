"""Certificates of ``lumina-attribution-v2`` reports (version 3): likelihood ratios, validation plots, verification.

The report comes through the real code path: the module fixture ``chain`` of
``tests/runner/test_lr_e2e.py`` extracts a synthetic catalog, calibrates (derived copies) and
attributes one query through signed manifests, leaving a ledger and a version 3 report. Page
text is read with poppler's ``pdftotext`` (skipped without it, as the other certificate tests).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from lumina_audit.attribution.likelihood_ratio import verbal
from lumina_audit.attribution.reports import read_report
from lumina_audit.certificates import plots
from lumina_audit.certificates.issue import check_against_ledger, issue_certificate, rerender_matches
from lumina_audit.certificates.pdf import PAGE_SIZES, CertificateError, page_size_of
from lumina_audit.certificates.pki import write_throwaway_pki
from lumina_audit.certificates.render import SUMMARY_ROWS, TEMPLATES, render_certificate, render_html
from lumina_audit.certificates.signer import load_signer, sign_certificate
from lumina_audit.certificates.verify import verify_certificate
from lumina_audit.evidence.ledger import Ledger, prove

from ..runner.test_lr_e2e import chain  # noqa: F401  (the module fixture: a ledger and a version 3 report)
from ..runner.test_methods_e2e import Chain

Made = tuple[dict[str, Any], bytes, dict[str, Any], datetime]
NOT_A_PROBABILITY = ("A likelihood ratio is not the probability that the proposition is true; that needs prior "
                     "odds, which are for the court, not the expert.")
EVIL = "<script>alert(1)</script> {{ 7*7 }}"
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdfinfo") is None,
                                   reason="poppler-utils (pdftotext, pdfinfo) is not installed; .ci/run installs it")


@pytest.fixture(scope="module")
def made(chain: Chain) -> Made:  # noqa: F811
    """The fixture's report as it reads back from its canonical JSON, its bytes, its proof and its record's time."""
    path = chain.root / "out" / "reports" / "q.json"
    doc, _digest = read_report(path)
    seq = doc["ledger"]["record"]
    when = Ledger.open(chain.root / "ledger").records()[seq].time
    return doc, path.read_bytes(), prove(chain.root / "ledger", seq), when


@pytest.fixture(scope="module")
def rendered(made: Made) -> dict[str, bytes]:
    doc, data, proof, when = made
    return {size: render_certificate(doc, data, proof, issued_at=when, page_size=size) for size in PAGE_SIZES}


def _text(pdf: bytes, tmp: Path, first: int | None = None, last: int | None = None) -> str:
    path = tmp / f"t-{hashlib.sha256(pdf).hexdigest()[:16]}.pdf"
    path.write_bytes(pdf)
    pages = ([] if first is None else ["-f", str(first)]) + ([] if last is None else ["-l", str(last)])
    out = subprocess.run(["pdftotext", *pages, str(path), "-"], check=True, capture_output=True, text=True,
                         timeout=60).stdout
    return out


def _flat(text: str) -> str:
    return " ".join(text.split())


def _pages(pdf: bytes) -> int:
    from pyhanko.pdf_utils.reader import PdfFileReader

    return int(PdfFileReader(io.BytesIO(pdf)).root["/Pages"]["/Count"])


def _worst(doc: dict[str, Any]) -> dict[str, Any]:
    """The fixture's report with 12 listed songs per channel (top_k 10), ids of about 200 characters, a 256-character
    query id, values clipped at both bounds and LRs beyond 1000 (shown as powers of ten)."""
    worst = copy.deepcopy(doc)
    long_id = ("a-very-long-catalog-song-identifier-" * 6)[:190]
    worst["query"]["song_id"] = "q" * 256
    for ch in ("P", "M"):
        res = worst["channels"][ch]
        entries = []
        for i in range(12):
            value = 3.4 - 0.6 * i
            band = verbal(value)
            entries.append({**res["entries"][0], "song_id": f"{long_id}-{i:03d}", "log10_lr": value,
                            "log10_lr_calibrated": value + (0.5 if i == 0 else -0.5 if i == 11 else 0.0),
                            "lr": 10.0**value, "band": band["strength"], "supports": band["supports"],
                            "bounded": "upper" if i == 0 else "lower" if i == 11 else None,
                            "listed_by": "report_at" if value >= 1 else "top_k"})
        res["entries"], res["top_k"] = entries, 10
        res["highest"] = {**res["highest"], "song_id": entries[0]["song_id"], "log10_lr": 3.4, **verbal(3.4)}
    return worst


def _images(pdf: bytes) -> list[str]:
    """Every raster image XObject reachable from the document's root (pages, forms, patterns, annotations)."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(pdf))
    seen: set[tuple[int, int]] = set()
    found: list[str] = []
    stack: list[Any] = [reader.root]
    while stack:
        obj = stack.pop()
        if isinstance(obj, generic.IndirectObject):
            key = (obj.idnum, obj.generation)
            if key in seen:
                continue
            seen.add(key)
            obj = obj.get_object()
        if isinstance(obj, generic.DictionaryObject):  # streams are dictionaries too
            if obj.get("/Subtype") == "/Image":
                found.append(repr(obj.get("/Width")))
            stack.extend(obj.raw_get(k) for k in obj if k != "/Parent")
        elif isinstance(obj, generic.ArrayObject):
            stack.extend(obj.raw_get(i) for i in range(len(obj)))
    return found


# ------------------------------------------------------------------ page 1


@needs_poppler
@pytest.mark.parametrize("size", list(PAGE_SIZES))
def test_page_one_states_propositions_lrs_and_what_an_lr_is_not(rendered: dict[str, bytes], made: Made,
                                                                tmp_path: Path, size: str) -> None:
    doc = made[0]
    pdf = rendered[size]
    first = _flat(_text(pdf, tmp_path, 1, 1))
    assert "Music attribution certificate" in first and doc["query"]["song_id"] in first
    proposition = doc["calibration"]["proposition"]
    assert f"H1, the first proposition: {proposition['h1']}" in first
    assert f"H2, the second proposition: {proposition['h2']}" in first
    assert "catalog song j" in first and NOT_A_PROBABILITY in first
    for ch, words in (("P", "composition"), ("M", "production")):
        res = doc["channels"][ch]
        val = doc["calibration"]["channels"][ch]["validation"]
        top = res["highest"]
        assert f"Channel {ch} ({words}): highest LR" in first
        assert f"{top['song_id']}: {top['words']}" in first, (size, ch)
        assert f"(log10 LR {top['log10_lr']:.2f})" in first
        for e in res["entries"][:SUMMARY_ROWS]:
            assert e["song_id"] in first and f"{e['log10_lr']:.2f}" in first
        bounds = res["bounds"]
        assert f"[10{bounds['lower']:.2f}, 10{bounds['upper']:.2f}]" in first  # superscripts read inline
        assert "the range the validation data support (ELUB)" in first
        h1, h2 = val["misleading"]["h1"], val["misleading"]["h2"]
        assert (f"Cllr {val['cllr']:.3f} (0 is perfect, 1 uninformative); misleading evidence in {h1['count']} of "
                f"{h1['trials']} same-source trials ({100 * h1['rate']:.1f} %, 95 % interval "
                f"{100 * h1['interval'][0]:.1f} % to {100 * h1['interval'][1]:.1f} %, {h1['units']} units) and in "
                f"{h2['count']} of {h2['trials']} different-source trials") in first
        db = res["database_search"]
        assert (f"Database search: {db['expected']:.2f} (95 % interval {db['expected_interval'][0]:.2f} to "
                f"{db['expected_interval'][1]:.2f}) unrelated songs of a catalog of {db['catalog_size']} are expected "
                f"to reach the highest LR here (log10 LR {db['log10_lr']:.2f}) by chance") in first
    clipped = [e for ch in ("P", "M") for e in doc["channels"][ch]["entries"][:SUMMARY_ROWS] if e["bounded"]]
    if clipped:
        assert "marks a value clipped at the" in first
    second = _text(pdf, tmp_path, 2, 2)
    assert second.startswith("Validation"), (size, second[:200])  # page 1 is one page


@needs_poppler
def test_the_word_share_appears_nowhere(rendered: dict[str, bytes], made: Made, tmp_path: Path) -> None:
    doc, data, proof, when = made
    for size, pdf in rendered.items():
        assert "share" not in _text(pdf, tmp_path).lower(), size
    assert "share" not in render_html(doc, data, proof, issued_at=when).lower()


@needs_poppler
def test_page_count_sizes_and_sections(rendered: dict[str, bytes], made: Made, tmp_path: Path) -> None:
    counts = {size: _pages(pdf) for size, pdf in rendered.items()}
    assert counts["A4"] == counts["Letter"] and 3 <= counts["A4"] <= 6, counts
    for size, pdf in rendered.items():
        assert page_size_of(pdf) == size
        text = _flat(_text(pdf, tmp_path))
        assert text.index("Validation") < text.index("Technical appendix")
        for ch in ("P", "M"):
            assert f"Tippett plot, channel {ch}" in text and f"ECE plot, channel {ch}" in text
        method = _flat(_text(pdf, tmp_path, 3))
        assert "lumina-attribution-v2 (spec docs/spec/attribution-v2.md)" in method
        assert ("the S-norm scores from the control cohort are calibrated into likelihood ratios by class-balanced "
                "logistic regression") in method
        assert "lir 1.3.1's LogitCalibrator, Netherlands Forensic Institute" in method
        assert "bounded by ELUB" in method and "validated by cross-validation" in method
        assert "Tippett and ECE as lir defines them" in method and "How to verify" in method
        assert made[0]["calibration"]["sha256"] in method and made[0]["manifest_digest"] in method


# ------------------------------------------------------------------ validation page


@needs_poppler
def test_validation_page_has_vector_plots_and_per_transform_figures(rendered: dict[str, bytes], made: Made,
                                                                    tmp_path: Path) -> None:
    doc = made[0]
    for size, pdf in rendered.items():
        assert _images(pdf) == [], size  # the plots are inline SVG: paths and text, no raster image
        page = _flat(_text(pdf, tmp_path, 2, 2))
        assert page.startswith("Validation")
        for label in ("log10 LR (x)", "proportion of trials with log10 LR \u2265 x", "log10 prior odds",
                      "empirical cross-entropy (bits)", "H1: same-source trials", "H2: different-source trials",
                      "system (these LRs)", "PAV (best calibration)", "neutral (LR = 1)"):
            assert page.count(label) == 2, (size, label)  # once per channel
        for ch in ("P", "M"):
            val = doc["calibration"]["channels"][ch]["validation"]
            top = doc["channels"][ch]["highest"]
            assert f"1: {top['song_id']} ({top['log10_lr']:.2f})" in page  # the highest LR's mark, labelled
            for name, f in val["by_transform"].items():
                assert (f"{name} {f['h1_trials']} {f['h2_trials']} {f['cllr']:.3f} {f['cllr_min']:.3f} "
                        f"{100 * f['eer']:.1f} %") in page, (size, ch, name)


def test_plot_svg_is_drawn_from_the_report(made: Made) -> None:
    doc, data, proof, when = made
    html = render_html(doc, data, proof, issued_at=when)
    assert html.count("<svg ") == 4 and "<img" not in html
    for ch in ("P", "M"):
        val = doc["calibration"]["channels"][ch]["validation"]
        tippett = plots.tippett_plot(val, [(1, "x", 0.0)], bounds=(-1.0, 1.0), title="t")
        ece = plots.ece_plot(val["ece"], title="e")
        for curve in (*tippett.curves, *ece.curves):  # the curves do not depend on the marks: the same path text
            assert curve.d.count("L") > 2 and f'd="{curve.d}"' in html


# ------------------------------------------------------------------ determinism, worst case, escaping


def test_rendering_is_deterministic(rendered: dict[str, bytes], made: Made) -> None:
    doc, data, proof, when = made
    for size, pdf in rendered.items():
        assert render_certificate(copy.deepcopy(doc), data, proof, issued_at=when, page_size=size) == pdf
    assert rendered["A4"] != rendered["Letter"]


@needs_poppler
def test_page_one_stays_one_page_at_its_worst(made: Made, tmp_path: Path) -> None:
    """Twelve listed songs per channel with ids of about 200 characters: page 1 still holds the whole summary."""
    doc, data, proof, when = made
    worst = _worst(doc)
    html = render_html(worst, data, proof, issued_at=when)
    assert "10<sup>3.40</sup>" in html  # an LR beyond 1000 is a power of ten
    for size in PAGE_SIZES:
        pdf = render_certificate(worst, data, proof, issued_at=when, page_size=size)
        first = _flat(_text(pdf, tmp_path, 1, 1))
        assert "Channel M (production)" in first and "(12 in all: appendix)" in first, size
        assert "strong support for the first proposition" in first
        assert "\u25b2 marks a value clipped at the upper bound" in first
        second = _text(pdf, tmp_path, 2, 2)
        assert second.startswith("Validation"), (size, second[:300])
        appendix = "".join(_text(pdf, tmp_path, 3).split())
        for i in (0, 11):
            assert f"-{i:03d}" in appendix  # every listed song is in the appendix
        assert _images(pdf) == []


def test_untrusted_song_ids_are_escaped(made: Made) -> None:
    doc, data, proof, when = made
    evil = copy.deepcopy(doc)
    evil["query"]["song_id"] = EVIL
    for ch in ("P", "M"):
        evil["channels"][ch]["entries"][0]["song_id"] = EVIL
        evil["channels"][ch]["highest"]["song_id"] = EVIL
    html = render_html(evil, data, proof, issued_at=when)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }}" in html
    assert "1: &lt;script&gt;" in html  # the Tippett plot's label too
    assert render_certificate(evil, data, proof, issued_at=when).startswith(b"%PDF-")


def test_malformed_or_mismatched_reports_are_refused(made: Made) -> None:
    doc, data, proof, when = made
    with pytest.raises(CertificateError, match=r"lumina-attribution-v2 report must be of version 3, not 2"):
        render_html({**doc, "version": 2}, data, proof, issued_at=when)
    broken = copy.deepcopy(doc)
    del broken["calibration"]["channels"]["M"]["validation"]["tippett"]
    with pytest.raises(CertificateError, match=r"validation has no tippett object"):
        render_certificate(broken, data, proof, issued_at=when)
    broken = copy.deepcopy(doc)
    broken["channels"]["P"]["entries"][0]["log10_lr"] = "1.0"
    with pytest.raises(CertificateError, match=r"^channel P: the report is malformed: log10_lr is '1.0'"):
        render_html(broken, data, proof, issued_at=when)


def test_v1_template_and_stylesheet_are_unchanged() -> None:
    """Certificates of version 1 and 2 reports re-render byte for byte only while these stay as they were issued."""
    assert hashlib.sha256((TEMPLATES / "certificate.html.j2").read_bytes()).hexdigest() == (
        "33e3d6849346f01400e049232483d0d5af8fa5ad2c0458bc851d4bae49a86bea")
    assert hashlib.sha256((TEMPLATES / "certificate.css").read_bytes()).hexdigest() == (
        "b64b2d0b3ee51df36b004a265215e157a935799a5cafda3d429b436d384d3bc8")


# ------------------------------------------------------------------ issued, signed, verified


def test_a_v3_certificate_is_issued_signed_and_verifies(chain: Chain, made: Made,  # noqa: F811
                                                        rendered: dict[str, bytes], tmp_path: Path) -> None:
    pki = write_throwaway_pki(tmp_path / "pki")
    signer = load_signer(key=pki["key"], cert=pki["cert"])
    report = chain.root / "out" / "reports" / "q.json"
    out = chain.root / "out" / "q.pdf"
    issued = issue_certificate(report, chain.root / "ledger", out, operator_key=chain.key, principal="op@lab",
                               signer=signer)
    pdf = out.read_bytes()
    record = Ledger.open(chain.root / "ledger").records()[issued.seq]
    assert record.kind == "certificate" and record.body["signed_pdf_sha256"] == hashlib.sha256(pdf).hexdigest()
    assert issued.unsigned_sha256 == hashlib.sha256(rendered["A4"]).hexdigest()  # the same rendering as here
    got = verify_certificate(pdf, trust_roots_pem=[pki["root"].read_bytes()], ledger_trust=chain.trust)
    assert got.ledger_record == made[0]["ledger"]["record"] and got.report["method"] == "lumina-attribution-v2"
    assert got.report_sha256 == hashlib.sha256(made[1]).hexdigest()
    check_against_ledger(pdf, chain.root / "ledger", chain.trust)
    rerender_matches(pdf)  # what `certificate verify --rerender` checks
    letter = sign_certificate(rendered["Letter"], signer)
    rerender_matches(letter)
    assert page_size_of(letter) == "Letter"
    tampered = json.loads(made[1])
    tampered["channels"]["P"]["highest"]["words"] = "extremely strong support for the first proposition"
    forged = sign_certificate(render_certificate(tampered, made[1], made[2], issued_at=made[3]), signer)
    with pytest.raises(CertificateError, match=r"^step 6:"):
        rerender_matches(forged)  # the page no longer says what the attached report says


# ------------------------------------------------------------------ plot geometry


def _grid(start: float, points: int, **series: list[Any]) -> dict[str, Any]:
    return {"start": start, "step": 0.01, "points": points, **series}


def test_tippett_geometry() -> None:
    validation = {"h1_trials": 4, "h2_trials": 8,
                  "tippett": _grid(-6.0, 1201, h1_at_or_above=[4] * 600 + [2] * 300 + [0] * 301,
                                   h2_at_or_above=[8] * 500 + [1] * 200 + [0] * 501)}
    p = plots.tippett_plot(validation, [(1, "song-a", 0.82), (2, "b", -0.43), (3, "c", -0.43), (4, "d", 5.0)],
                           bounds=(-0.45, 0.82), title="T")
    h1, h2 = p.curves
    assert h1.d.startswith(f"M{p.left:g} {p.top:g} ") and h1.d.endswith(f"L{p.right:g} {p.bottom:g}")
    assert h1.d.count("L") == 5  # runs of equal counts collapse to their ends
    assert [t.label for t in p.x_ticks] == [str(x) for x in range(-6, 7)]
    assert [t.label for t in p.y_ticks] == ["0", "0.25", "0.5", "0.75", "1"]
    (band,) = p.bands
    width = p.right - p.left
    assert band.x == pytest.approx(p.left + 5.55 / 12 * width, abs=0.01)
    strong = [m for m in p.marks if m.strong]
    assert len(strong) == 1 and strong[0].label == "1: song-a (0.82)" and strong[0].anchor == "end"
    labels = sorted(m.label for m in p.marks if m.label and not m.strong)
    assert labels == ["2, 3", "4"]  # coinciding ticks share one label
    assert all(0 <= m.label_x <= p.width for m in p.marks)
    assert all(0 <= i.x and i.x + 22 < p.width for i in p.legend)


def test_ece_geometry_and_clipping() -> None:
    n = 501
    neutral = [1.0 - abs(i - 250) / 250 * 0.9 for i in range(n)]
    pav = [v / 2 for v in neutral]
    system = [3.0 if 200 <= i <= 300 else v for i, v in enumerate(neutral)]  # far above neutral: cut at the frame
    p = plots.ece_plot(_grid(-2.5, n, system=system, pav=pav, neutral=neutral), title="E")
    assert p.y_ticks[-1].label == "1.5" and p.y_ticks[-1].pos == p.top
    assert [t.label for t in p.x_ticks][:3] == ["-2.5", "-2", "-1.5"]
    system_curve = p.curves[-1]
    assert system_curve.d.count("M") == 2  # two pieces: the part above 1.5 is not drawn
    ys = [float(part.split()[1]) for part in system_curve.d.replace("M", "L").split("L") if part.strip()]
    assert min(ys) >= p.top and max(ys) <= p.bottom


def test_plot_data_are_checked() -> None:
    good = {"h1_trials": 1, "h2_trials": 1, "tippett": _grid(-1.0, 3, h1_at_or_above=[1, 1, 0],
                                                             h2_at_or_above=[1, 0, 0])}
    plots.tippett_plot(good, [(1, "a", 0.0)], bounds=(0.0, 0.0), title="ok")
    for bad, match in (({**good, "h2_trials": 0}, "h2_trials is 0"),
                       ({**good, "tippett": {**good["tippett"], "h1_at_or_above": [1, 1]}}, "not a list of 3"),
                       ({**good, "tippett": {**good["tippett"], "step": float("nan")}}, "tippett.step is nan"),
                       ({**good, "tippett": {**good["tippett"], "h2_at_or_above": [2, 0, 0]}}, "outside 0..1")):
        with pytest.raises(CertificateError, match=match):
            plots.tippett_plot(bad, [], bounds=(0.0, 0.0), title="bad")
    with pytest.raises(CertificateError, match=r"ece.system is inf"):
        plots.ece_plot(_grid(-1.0, 2, system=[0.0, float("inf")], pav=[0, 0], neutral=[1, 1]), title="bad")


def test_fit_label() -> None:
    assert plots.fit_label("short", 100.0) == "short"
    cut = plots.fit_label("x" * 100, 60.0, 8.0)
    assert cut == "x" * 9 + "\u2026" and len(cut) * 0.7 * 8.0 <= 60.0
