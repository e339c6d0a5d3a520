"""The README's first command: the whole chain on the embedded tiny checkpoint.

Everything happens in ``work/demo/`` (made afresh each time, with fresh demo keys):
a synthetic catalog of 30 songs (20-40 s, distinct melodies and timbres, from the
committed generator), 20 control tracks, queries (one made from parts of two catalog
songs, one a FLAC copy of a catalog song); keys and a trust file; the manifests of
``manifests/demo/`` signed by an operator and a reviewer; 31 positives (derived copies of
7 catalog songs made by ``lumina-audit audio derive``); ``manifest run`` Extract (both signature methods,
one pass), Calibrate likelihood ratios (``lumina-attribution-v2``) once per signature
method and the noise floor (``lumina-attribution-v1``) of gradproj beside them, Attribute
with gradproj under v2; a signed PDF certificate per query (throwaway PKI), asked for by
the Attribute manifest; ``ledger verify`` (also against a checkpoint kept outside the
ledger), an inclusion proof and the certificate verified offline; the calibrations and
the reports (``calibration show``, ``report show``), the validation figures side by side
with v1's noise floor, and what the reports state.
Each step is the command a user would type, printed before it runs.

    python -m scripts.demo [--work DIR] [--catalog 30] [--controls 20] [--seconds MIN MAX] [--model NAME]

(from the repository root, as every script; ``make demo``).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lumina_tools import ROOT, files
from lumina_tools.files import MODELS, read_digests

WORK = files.WORK / "demo"
MARKER = ".lumina-demo"
CLI = [str(Path(sys.executable).with_name("lumina-audit"))]
SEED = 422024
#: (work-folder name, template in manifests/demo/, values filled in), in the order they run.
MANIFESTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("extract", "extract", {}),
    ("calibrate-gradproj", "calibrate", {"method": "lumina-gradproj-v1", "short": "gradproj"}),
    ("calibrate-gradstats", "calibrate", {"method": "lumina-gradstats-v1", "short": "gradstats"}),
    ("noise-floor-gradproj", "calibrate-v1", {"method": "lumina-gradproj-v1", "short": "gradproj"}),
    ("attribute", "attribute", {}),
)
#: The positives: catalog songs (each at least 27 s long) and five one-source transforms of each,
#: rotating through the battery so that every transform is measured; then one splice.
POSITIVE_SOURCES = (1, 2, 4, 5, 7, 8)
POSITIVE_TRANSFORMS = 5
FLAC_QUERY, FLAC_SOURCE = "flac-copy-of-song03", "song03"
#: The checkpoint the demo runs on (folder under lumina_audit/_data/golden/models/): the random one, which
#: attributes better on the demo's synthetic catalog than the trained one (measured on both,
#: README "The demo's checkpoint": gradproj separation 3.51 / 3.13 against 1.20 / 1.09).
DEFAULT_MODEL = "tiny-musicgen"


def step(*args: str, into: str | None = None) -> str:
    """Run one command in WORK and print it; with ``into``, save its output there instead of printing it."""
    print(f"\n$ lumina-audit {shlex.join(args)}" + (f" > {into}" if into else ""), flush=True)
    out = subprocess.run([*CLI, *args], cwd=WORK, text=True, stdout=subprocess.PIPE, check=False)
    if into:
        (WORK / into).write_text(out.stdout)
    else:
        sys.stdout.write(out.stdout)
    if out.returncode != 0:
        raise SystemExit(f"demo step failed with exit code {out.returncode}")
    return out.stdout


def make_audio(catalog: int = 30, controls: int = 20, seconds: tuple[float, float] = (20.0, 40.0)) -> str:
    """The synthetic catalog, controls and queries; returns the spliced query's song id."""
    import soundfile

    from lumina_audit._internal.synth import SongSpec, render, splice, write_wav

    audio = WORK / "audio"
    for sub in ("catalog", "controls", "queries"):
        (audio / sub).mkdir(parents=True)
    lo, span = seconds[0], int(seconds[1] - seconds[0]) + 1
    songs = {}
    for i in range(catalog):
        rate, channels = ((44100, 2), (32000, 1), (48000, 2))[i % 3]
        x = render(SongSpec(seed=SEED + 1000 + i, seconds=lo + (i * 7) % span, sample_rate=rate, channels=channels))
        write_wav(audio / "catalog" / f"song{i:02d}.wav", x, rate, 16)
        songs[i] = (x, rate)
    for i in range(controls):
        x = render(SongSpec(seed=SEED + 5000 + i, seconds=lo + (i * 5) % ((span + 1) // 2),
                            sample_rate=44100, channels=2))
        write_wav(audio / "controls" / f"control{i:02d}.wav", x, 44100, 16)
    ia, ib = (6, 15) if catalog > 15 else (0, 3)  # both 44.1 kHz stereo
    (a, rate), (b, _) = songs[ia], songs[ib]
    na, nb = a.shape[1], b.shape[1]  # the first 60 % of one, then 30-90 % of the other
    query = splice(a, b, a_stop=na * 3 // 5, b_start=nb * 3 // 10, b_stop=nb * 9 // 10, fade=rate // 2)
    name = f"query-song{ia:02d}-song{ib:02d}"
    write_wav(audio / "queries" / f"{name}.wav", query, rate, 16)
    data, flac_rate = soundfile.read(audio / "catalog" / "song03.wav", dtype="int16")
    soundfile.write(audio / "queries" / "flac-copy-of-song03.flac", data, flac_rate, subtype="PCM_16", format="FLAC")
    print(f"made {catalog} catalog songs, {controls} controls and 2 queries in {audio}")
    return name


def derive_positives(catalog: int) -> None:
    """Derived copies of catalog songs: the calibration's same-source trials."""
    import soundfile

    from lumina_audit.attribution.derive import TRANSFORMS

    battery = [t for t, (n, _, _) in TRANSFORMS.items() if n == 1]
    picks = [i for i in POSITIVE_SOURCES if i < catalog]
    for k, i in enumerate(picks):
        song = f"audio/catalog/song{i:02d}.wav"
        long_enough = soundfile.info(WORK / song).duration > 20.0
        usable = [t for t in battery if long_enough or t != "excerpt-20s"]  # a 20 s excerpt needs a longer song
        names = [usable[(k * POSITIVE_TRANSFORMS + m) % len(usable)] for m in range(POSITIVE_TRANSFORMS)]
        step("audio", "derive", song, *[a for t in names for a in ("--transform", t)], "--out-dir", "audio/derived")
    a, b = (9, 12) if catalog > 12 else (0, 2)
    step("audio", "derive", f"audio/catalog/song{a:02d}.wav", f"audio/catalog/song{b:02d}.wav", "--transform",
         "splice", "--out", f"audio/derived/song{a:02d}+song{b:02d}.splice.wav")


def findings(query: str) -> None:
    """The validation of each calibration beside v1's noise floor, then what the v2 reports state."""
    from lumina_audit.attribution.reports import read_calibration, read_report

    print("\nValidation (lumina-attribution-v2, cross-validated, 5 folds): Cllr (0 perfect, 1 uninformative),")
    print("Cllr_min (discrimination alone), EER, misleading evidence (H1 with LR < 1, H2 with LR > 1), ELUB bounds")
    print(f"  {'method':<22}{'ch':<4}{'Cllr':>7}{'min':>7}{'EER':>7}{'mislead H1':>12}{'mislead H2':>12}"
          f"{'bounds (log10)':>18}")
    for short in ("gradproj", "gradstats"):
        cal, _ = read_calibration(WORK / "out" / f"calibration-{short}.zip")
        for ch in ("P", "M"):
            v = cal["channels"][ch]["validation"]
            b = v["bounds"]
            print(f"  {cal['signature_method']:<22}{ch:<4}{v['cllr']:>7.3f}{v['cllr_min']:>7.3f}{v['eer']:>7.3f}"
                  f"{100 * v['misleading']['h1']['rate']:>11.1f}%{100 * v['misleading']['h2']['rate']:>11.1f}%"
                  f"{'[' + format(b['lower'], '.2f') + ', ' + format(b['upper'], '.2f') + ']':>18}")
    print("\nBeside it, the noise floor of lumina-attribution-v1 (k = 3) on the same controls and positives:")
    print(f"  {'method':<22}{'ch':<4}{'tau':>9}{'false-pos.':>12}{'copies missed':>15}{'unrelated':>11}")
    cal, _ = read_calibration(WORK / "out" / "noise-floor-gradproj.json")
    for ch in ("P", "M"):
        c = cal["channels"][ch]
        missed = c["detection"]["overall"]["missed_rate"]
        print(f"  {cal['signature_space']['method']:<22}{ch:<4}{c['tau']:>9.4f}{c['false_positive_rate']:>12.5f}"
              f"{100 * missed:>14.1f}%{100 * c['unrelated_attributed_rate']:>10.1f}%")
    sources = query.removeprefix("query-").split("-")
    print("\nWhat the reports state (lumina-attribution-v2, gradproj):")
    flac, _ = read_report(WORK / "out" / "reports" / f"{FLAC_QUERY}.json")
    splice, _ = read_report(WORK / "out" / "reports" / f"{query}.json")
    for name, doc, wanted in ((f"FLAC copy of {FLAC_SOURCE}", flac, [FLAC_SOURCE]),
                              (f"splice of {' and '.join(sources)}", splice, sources)):
        for ch in ("P", "M"):
            res = doc["channels"][ch]
            ranks = {e["song_id"]: (i + 1, e) for i, e in enumerate(res["entries"])}
            parts = []
            for s in wanted:
                if s in ranks:
                    r, e = ranks[s]
                    parts.append(f"{s} rank {r}, log10 LR {e['log10_lr']:.2f} ({e['band']})")
                else:
                    parts.append(f"{s} not among the {len(res['entries'])} listed")
            db = res["database_search"]
            print(f"  {name}, channel {ch}: {'; '.join(parts)}; highest {res['highest']['song_id']} "
                  f"{res['highest']['log10_lr']:.2f}; expected chance matches in {db['catalog_size']} songs "
                  f"{db['expected']:.2f}")


def main() -> None:
    global WORK
    parser = argparse.ArgumentParser(prog="python -m scripts.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=WORK, help="work folder, made afresh (default: work/demo)")
    parser.add_argument("--catalog", type=int, default=30, help="catalog songs (at least 4)")
    parser.add_argument("--controls", type=int, default=20, help="control tracks (at least 20)")
    parser.add_argument("--seconds", type=float, nargs=2, default=(20.0, 40.0), metavar=("MIN", "MAX"),
                        help="song lengths in seconds")
    models = sorted(p.name for p in MODELS.iterdir() if p.is_dir())
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=models,
                        help=f"embedded checkpoint (default {DEFAULT_MODEL}; README, 'The demo's checkpoint')")
    args = parser.parse_args()
    if args.catalog < 10 or args.controls < 20 or not 2.0 <= args.seconds[0] <= args.seconds[1] <= 120.0:
        parser.error("needs --catalog >= 10, --controls >= 20 and 2 <= MIN <= MAX <= 120 seconds")
    WORK = args.work.resolve()
    if WORK.exists() and any(WORK.iterdir()) and not (WORK / MARKER).exists():
        parser.error(f"{WORK} is not empty and was not made by the demo; refusing to delete it")
    started = time.monotonic()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    (WORK / MARKER).write_text("made by python -m scripts.demo; the next demo run deletes this folder\n")
    query = make_audio(args.catalog, args.controls, tuple(args.seconds))
    model_dir = MODELS / args.model
    digests = "".join(f"    {name}: {value}\n" for name, value in read_digests(model_dir)[1].items())
    model = str(model_dir)
    for name, template, fill in MANIFESTS:
        text = (ROOT / f"manifests/demo/{template}.yaml").read_text()
        for key, value in {**fill, "model": model}.items():
            text = text.replace("{" + key + "}", value)
        (WORK / f"{name}.yaml").write_text(text.replace("{digests}\n", digests))
    trust = []
    for who, principal, ns in (("operator", "operator@demo", ["lumina-audit/manifest", "lumina-audit/ledger"]),
                               ("reviewer", "reviewer@demo", ["lumina-audit/manifest"])):
        out = step("keys", "generate", "--out", f"keys/{who}", "--principal", principal, "--role", who,
                   *[a for n in ns for a in ("--namespace", n)])
        trust.append(out.strip().splitlines()[-1])
    # The signing policy (docs/evidence.md): every manifest signed by an operator and a reviewer.
    trust.append('@policy default version="1",threshold="2",roles="operator,reviewer",'
                 'require="operator:1,reviewer:1"')
    (WORK / "trust").write_text("\n".join(trust) + "\n")
    print(f"\n(wrote the trust file {WORK / 'trust'})")
    step("pki", "throwaway", "--out", "pki")
    derive_positives(args.catalog)
    for name, _, _ in MANIFESTS:
        step("manifest", "sign", f"{name}.yaml", "--key", "keys/operator.key")
        step("manifest", "sign", f"{name}.yaml", "--key", "keys/reviewer.key")
        step("manifest", "verify", f"{name}.yaml", "--trust", "trust")
        step("manifest", "run", f"{name}.yaml", "--trust", "trust", "--key", "keys/operator.key")
    step("ledger", "show", "--ledger", "ledger")
    step("ledger", "checkpoint", "--ledger", "ledger", into="checkpoint.txt")
    step("ledger", "prove", "4", "--ledger", "ledger", into="proof-4.json")
    step("proof", "verify", "proof-4.json", "--trust", "trust")
    step("ledger", "verify", "--ledger", "ledger", "--trust", "trust", "--checkpoint", "checkpoint.txt")
    step("certificate", "verify", f"out/certificates/{query}.pdf", "--roots", "pki/root.pem",
         "--trust", "trust", "--ledger", "ledger", "--rerender")
    step("calibration", "show", "out/calibration-gradproj.zip")
    for report in sorted((WORK / "out" / "reports").glob("*.json")):
        step("report", "show", str(report.relative_to(WORK)))
    findings(query)
    print(f"\nDone in {time.monotonic() - started:.0f} s. Everything is in {WORK}:")
    for name, what in (("audio/", "the synthetic catalog, controls and queries"),
                       ("audio/derived/", "derived copies of catalog songs and their records (the positives)"),
                       ("keys/, trust", "the demo keys (throwaway) and the trust file"),
                       ("*.yaml, *.yaml.sig", "the five manifests and their signatures"),
                       ("out/catalog.h5", "the signature store (both methods)"),
                       ("out/calibration-*.zip", "the likelihood-ratio calibration of each signature method"),
                       ("out/noise-floor-*.json", "v1's noise floor, for comparison"),
                       ("out/reports/", "one attribution report per query"),
                       ("out/certificates/", "one signed PDF/A-3b certificate per query"),
                       ("pki/", "a throwaway X.509 root and signer (never trust it outside the demo)"),
                       ("ledger/", "the signed, hash-chained ledger: five runs, one certificate per query"),
                       ("checkpoint.txt", "its latest checkpoint: keep copies elsewhere"),
                       ("proof-4.json", "the inclusion proof of the attribution run")):
        print(f"  {name:<22} {what}")


if __name__ == "__main__":
    main()
