"""The README's first command: the whole chain on the embedded tiny checkpoint.

Everything happens in ``work/demo/`` (made afresh each time, with fresh demo keys):
a synthetic catalog of 30 songs (20-40 s, distinct melodies and timbres, from the
committed generator), 10 control tracks, queries (one made from parts of two catalog
songs, one a FLAC copy of a catalog song); keys and a trust file; the manifests of
``manifests/demo/`` signed by an operator and a reviewer; ``run`` Extract (both signature
methods, one pass), Calibrate once per method, Attribute with gradproj (the primary
method); a signed PDF certificate per query (throwaway PKI), asked for by the Attribute
manifest; ``verify ledger`` (also against a checkpoint kept outside the ledger), an
inclusion proof and the certificate verified offline; the verdict tables; both methods'
noise floors and error rates side by side (positives: copies of catalog songs made by
``lumina-audit derive``), and what the reports show (or the measurement that prevents it).
Each step is the command a user would type, printed before it runs.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "work" / "demo"
MARKER = ".lumina-demo"
CLI = [str(Path(sys.executable).with_name("lumina-audit"))]
SEED = 422024
#: (work-folder name, template in manifests/demo/, values filled in), in the order they run.
MANIFESTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("extract", "extract", {}),
    ("calibrate-gradproj", "calibrate", {"method": "lumina-gradproj-v1", "short": "gradproj"}),
    ("calibrate-gradstats", "calibrate", {"method": "lumina-gradstats-v1", "short": "gradstats"}),
    ("attribute", "attribute", {}),
)
FLAC_QUERY, FLAC_SOURCE = "flac-copy-of-song03", "song03"
#: The checkpoint the demo runs on (folder under golden/models/): the random one, which
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


def make_audio(catalog: int = 30, controls: int = 10, seconds: tuple[float, float] = (20.0, 40.0)) -> str:
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
    """Derived copies of a few catalog songs (the calibration's positives): how often a real source is missed."""
    import soundfile

    from lumina_audit.attribution.derive import TRANSFORMS

    picks = [i for i in ((1, 2, 4) if catalog >= 10 else (1,)) if i < catalog]
    for i in picks:
        song = f"audio/catalog/song{i:02d}.wav"
        long_enough = soundfile.info(WORK / song).duration > 20.0
        names = [t for t, (n, _, _) in TRANSFORMS.items() if n == 1 and (long_enough or t != "excerpt-20s")]
        step("derive", song, *[a for t in names for a in ("--transform", t)], "--out-dir", "audio/derived")
    a, b = (9, 12) if catalog > 12 else (0, 2)
    step("derive", f"audio/catalog/song{a:02d}.wav", f"audio/catalog/song{b:02d}.wav", "--transform", "splice",
         "--out", f"audio/derived/song{a:02d}+song{b:02d}.splice.wav")


def findings(query: str) -> None:
    """Both methods' noise floors side by side, then what the gradproj reports show, or what prevents it."""
    from lumina_audit.attribution.reports import read_calibration, read_report

    print("\nNoise floors (attribution-v1, k = 3): a copy (similarity 1) clears tau only if (1 - mu) / sigma > k")
    print("and the error rates both ways: derived copies missed, unrelated pieces (controls) attributed")
    print(f"  {'method':<22}{'ch':<4}{'mu':>9}{'sigma':>9}{'tau':>9}{'(1-mu)/sigma':>14}{'false-pos.':>12}"
          f"{'missed':>10}{'unrelated':>11}")
    for short in ("gradproj", "gradstats"):
        cal, _ = read_calibration(WORK / "out" / f"calibration-{short}.json")
        for ch in ("P", "M"):
            c = cal["channels"][ch]
            sep = (1.0 - c["mu"]) / c["sigma"]
            missed = c["detection"]["overall"]["missed_rate"] if c.get("detection") else None
            shown = f"{100 * missed:>9.1f}%" if missed is not None else f"{'-':>10}"
            print(f"  {cal['signature_space']['method']:<22}{ch:<4}{c['mu']:>9.4f}{c['sigma']:>9.4f}{c['tau']:>9.4f}"
                  f"{sep:>14.2f}{c['false_positive_rate']:>12.5f}{shown}{100 * c['unrelated_attributed_rate']:>10.1f}%")
    sources = query.removeprefix("query-").split("-")
    print("\nWhat the gradproj reports show:")
    flac, _ = read_report(WORK / "out" / "reports" / f"{FLAC_QUERY}.json")
    splice, _ = read_report(WORK / "out" / "reports" / f"{query}.json")
    for ch in ("P", "M"):
        res, cal = flac["channels"][ch], flac["calibration"]["channels"][ch]
        entry = next((e for e in res["entries"] if e["song_id"] == FLAC_SOURCE), None)
        share = entry["share"] if entry else 0.0
        why = "" if share == 1.0 else (f": its similarity {entry['similarity']:.4f} and tau {cal['tau']:.4f}"
                                       if entry else ": it is not among the listed songs")
        print(f"  FLAC copy of {FLAC_SOURCE}, channel {ch}: {res['verdict']}; share of {FLAC_SOURCE} {share:.4f}{why}")
    for ch in ("P", "M"):
        ranked = sorted(splice["channels"][ch]["entries"], key=lambda e: (-e["similarity"], e["song_id"]))
        ranks = {e["song_id"]: i + 1 for i, e in enumerate(ranked)}
        shown = ", ".join(f"{s} rank {ranks.get(s, 'below the listed ' + str(len(ranked)))}" for s in sources)
        ok = sorted(ranks.get(s, 0) for s in sources) == [1, 2]
        line = f"  splice of {' and '.join(sources)}, channel {ch}: {shown}"
        if not ok:
            above = [f"{e['song_id']} {e['similarity']:.4f}" for e in ranked[:3]]
            line += f" (the most similar: {', '.join(above)})"
        print(line + f"; {splice['channels'][ch]['verdict']}")


def main() -> None:
    global WORK
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=WORK, help="work folder, made afresh (default: work/demo)")
    parser.add_argument("--catalog", type=int, default=30, help="catalog songs (at least 4)")
    parser.add_argument("--controls", type=int, default=10, help="control tracks (at least 10)")
    parser.add_argument("--seconds", type=float, nargs=2, default=(20.0, 40.0), metavar=("MIN", "MAX"),
                        help="song lengths in seconds")
    models = sorted(p.name for p in (ROOT / "golden/models").iterdir() if p.is_dir())
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=models,
                        help=f"embedded checkpoint (default {DEFAULT_MODEL}; README, 'The demo's checkpoint')")
    args = parser.parse_args()
    if args.catalog < 4 or args.controls < 10 or not 2.0 <= args.seconds[0] <= args.seconds[1] <= 120.0:
        parser.error("needs --catalog >= 4, --controls >= 10 and 2 <= MIN <= MAX <= 120 seconds")
    WORK = args.work.resolve()
    if WORK.exists() and any(WORK.iterdir()) and not (WORK / MARKER).exists():
        parser.error(f"{WORK} is not empty and was not made by the demo; refusing to delete it")
    started = time.monotonic()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    (WORK / MARKER).write_text("made by scripts/demo.py; the next demo run deletes this folder\n")
    query = make_audio(args.catalog, args.controls, tuple(args.seconds))
    lines = (ROOT / f"golden/models/{args.model}.sha256").read_text().splitlines()
    digests = "".join(f"    {name}: {value}\n" for value, name in (line.split() for line in lines))
    model = str(ROOT / f"golden/models/{args.model}")
    for name, template, fill in MANIFESTS:
        text = (ROOT / f"manifests/demo/{template}.yaml").read_text()
        for key, value in {**fill, "model": model}.items():
            text = text.replace("{" + key + "}", value)
        (WORK / f"{name}.yaml").write_text(text.replace("{digests}\n", digests))
    trust = []
    for who, principal, ns in (("operator", "operator@demo", ["lumina-audit/manifest", "lumina-audit/ledger"]),
                               ("reviewer", "reviewer@demo", ["lumina-audit/manifest"])):
        out = step("keys", "generate", "--out", f"keys/{who}", "--principal", principal,
                   *[a for n in ns for a in ("--namespace", n)])
        trust.append(out.strip().splitlines()[-1])
    (WORK / "trust").write_text("\n".join(trust) + "\n")
    print(f"\n(wrote the trust file {WORK / 'trust'})")
    step("pki", "throwaway", "--out", "pki")
    derive_positives(args.catalog)
    for name, _, _ in MANIFESTS:
        step("manifest", "sign", f"{name}.yaml", "--key", "keys/operator.key")
        step("manifest", "sign", f"{name}.yaml", "--key", "keys/reviewer.key")
        step("manifest", "verify", f"{name}.yaml", "--trust", "trust")
        step("run", f"{name}.yaml", "--trust", "trust", "--key", "keys/operator.key")
    step("ledger", "show", "ledger")
    step("ledger", "checkpoint", "ledger", into="checkpoint.txt")
    step("ledger", "prove", "3", "--ledger", "ledger", into="proof-3.json")
    step("verify", "proof", "proof-3.json", "--trust", "trust")
    step("verify", "ledger", "ledger", "--trust", "trust", "--checkpoint", "checkpoint.txt")
    step("verify", "certificate", f"out/certificates/{query}.pdf", "--roots", "pki/root.pem",
         "--trust", "trust", "--ledger", "ledger", "--rerender")
    for report in sorted((WORK / "out" / "reports").glob("*.json")):
        step("report", "show", str(report.relative_to(WORK)))
    findings(query)
    print(f"\nDone in {time.monotonic() - started:.0f} s. Everything is in {WORK}:")
    for name, what in (("audio/", "the synthetic catalog, controls and queries"),
                       ("audio/derived/", "derived copies of catalog songs and their records (the positives)"),
                       ("keys/, trust", "the demo keys (throwaway) and the trust file"),
                       ("*.yaml, *.yaml.sig", "the four manifests and their signatures"),
                       ("out/catalog.h5", "the signature store (both methods)"),
                       ("out/calibration-*.json", "the noise floor of each method"),
                       ("out/reports/", "one attribution report per query"),
                       ("out/certificates/", "one signed PDF/A-3b certificate per query"),
                       ("pki/", "a throwaway X.509 root and signer (never trust it outside the demo)"),
                       ("ledger/", "the signed, hash-chained ledger: four runs, one certificate per query"),
                       ("checkpoint.txt", "its latest checkpoint: keep copies elsewhere"),
                       ("proof-3.json", "the inclusion proof of the attribution run")):
        print(f"  {name:<22} {what}")


if __name__ == "__main__":
    main()
