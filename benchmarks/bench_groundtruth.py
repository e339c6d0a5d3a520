"""Benchmark: attribution against a known right answer ("attribution by customization"), and a derive battery.

    python benchmarks/bench_groundtruth.py [--model DIR ...] [--songs 12] [--steps 50] [--seconds 10] [...]
    python benchmarks/bench_groundtruth.py --battery [--model DIR ...] [--battery-tracks 10] [...]

Part 1, ground truth (Wang et al., ICCV 2023, "Evaluating data attribution for text-to-image models"):
for each catalog song, the *exemplar*, a deep copy of the base LM is fine-tuned on that one song's
EnCodec codes (the checkpoint's own training loss: plain mean cross-entropy over the valid
delay-pattern positions, null conditioning, full-batch AdamW at a constant learning rate, a fixed
number of steps, fixed seed), a piece is sampled from the fine-tuned copy with audiocraft's
``lm.generate`` (null conditioning, ``temp`` 1.0, ``top_k`` 250, ``cfg_coef`` 1.0, fixed seed),
decoded by the checkpoint's EnCodec and written as a 32 kHz WAV. The exemplar is the right answer.
Each generated piece is then attributed with the BASE model against the catalog, with both
signature methods (``lumina-gradproj-v1``, ``lumina-gradstats-v1``) and both channels (P, M),
through the library (``Session.all_signatures``, ``attribution.method.calibrate`` on float64
similarities of the float32 signatures, ``attribute``; ``attribution.detection.detect`` for the
rank), with the noise floor calibrated on control songs outside the catalog (k = 3). Four
gradient-free baselines are scored the same way: the cosine of the time-mean of EnCodec encoder
embeddings and of per-band log-mel mean and std, each raw and standardised by the controls.
Reported per method and channel: recall@1, recall@5, the median rank of the exemplar, its mean
share and how often it is above tau, mu, sigma, tau; and, as a measured chance level, the same
figures for pieces sampled from the BASE model with the same seeds (their "exemplar" is only a
label, so recall@1 should sit near 1/N).

Catalog and controls are the project's seeded scores (``lumina_audit._internal.scores``) from
``BENCHMARK_SEEDS``, rendered with fluidsynth and FluidR3_GM (installed with apt when missing):
never trained on, so the fine-tuning is the only time any model saw the exemplar, and the other
catalog songs are not also right answers (songs of ``TRAIN_SEEDS`` are all in the base model's
training set, so each would be "in" the model before any customization).

Part 2, ``--battery``: recorded music, Planet Blupi's soundtrack (Debian ``planetblupi-music-ogg``,
GPL-3+, installed with apt at run time; never committed, nor anything derived from it: every
file stays in the git-ignored work folder). One excerpt per OGG track is a catalog song; controls
are rendered scores of ``BENCHMARK_SEEDS`` (the package has only 10 tracks, each a loop, so there
are no other unrelated recorded tracks to use); derived copies are made with
``lumina_audit.attribution.derive.derive`` (mp3-128k, opus-64k, noise-30db, noise-20db, gain-3db,
gain-6db, speed+2, speed-2, excerpt-20s, splice of a track and the next one), and per method,
channel and transform the detection rate (source above tau) and median rank of the source come
from ``lumina_audit.attribution.detection.detect``. By default on the trained checkpoint and, for
contrast, on the random one.

``--pilot``: how ``--lr`` was fixed, from losses alone (no attribution figure): copies of the base LM
are fine-tuned on songs of ``VALIDATION_SEEDS`` at 1e-4, 3e-4 and 1e-3, and the largest rate whose
loss on another held-out song rises by at most 0.25 nats per code is the default (the rule was
fixed before the pilot ran). Writes ``groundtruth-pilot.md``/``.json``.

Everything runs under the numerical pins (the script re-executes itself, like
``benchmarks/bench_signature.py``), on one CPU thread. Seeds are fixed and written into the
results. Nothing was tuned on attribution figures: the settings are fixed in the options below.
Outputs: ``groundtruth.md``/``groundtruth.json`` or ``battery.md``/``battery.json`` in ``--out``
(default ``benchmarks/results``), also printed; audio in ``--work`` (default
``work/bench-groundtruth``, git-ignored). Smoke test (a few minutes):

    nice -n 10 python benchmarks/bench_groundtruth.py --model golden/models/tiny-musicgen \\
        --songs 2 --controls 10 --song-seconds 10 --steps 2 --seconds 2 --out work/bench-groundtruth/smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRAINED = ROOT / "golden/models/tiny-musicgen-trained"
RANDOM = ROOT / "golden/models/tiny-musicgen"
TRANSFORM_NAMES = ("mp3-128k", "opus-64k", "noise-30db", "noise-20db", "gain-3db", "gain-6db", "speed+2", "speed-2",
                   "excerpt-20s", "splice")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    p = argparse.ArgumentParser(
        prog="bench_groundtruth.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Full runs: no option (ground truth on the trained checkpoint), --battery (both checkpoints),\n"
               "--pilot (the learning-rate pilot). Run under `nice -n 10`; one CPU thread (the pins).")
    add = p.add_argument_group("both parts").add_argument
    add("--battery", action="store_true",
        help="run part 2, the derive battery on recorded music, instead of part 1, the ground truth")
    add("--pilot", action="store_true",
        help="instead, the loss-only pilot that fixed --lr: fine-tune copies of the first --model on "
             "validation-range songs at each candidate rate, with --steps, --song-seconds and --ft-seed "
             "(no attribution figure)")
    add("--model", type=Path, action="append", metavar="DIR",
        help=f"checkpoint directory (repeat for several; one table each). Default: the trained "
             f"{TRAINED.relative_to(ROOT)} for part 1; it and the random {RANDOM.relative_to(ROOT)} for --battery")
    add("--digests", type=Path, action="append", metavar="FILE",
        help="digest file of the --model at the same position (default: DIR.sha256 beside each)")
    add("--controls", type=int, default=12, help="control songs (noise floor; at least 10; default %(default)s)")
    add("--k", type=float, default=3.0, help="tau = mu + k sigma (attribution-v1; default %(default)s)")
    add("--work", type=Path, default=ROOT / "work/bench-groundtruth",
        help="folder for the audio (default work/bench-groundtruth, git-ignored; recorded music never leaves it)")
    add("--out", type=Path, default=ROOT / "benchmarks/results",
        help="folder for the Markdown and JSON (default benchmarks/results)")
    add = p.add_argument_group("part 1: ground truth").add_argument
    add("--songs", type=int, default=12, help="catalog songs, each once the exemplar (default %(default)s)")
    add("--song-seconds", type=float, default=30.0,
        help="length of catalog and control songs in seconds; the fine-tuning uses every whole 10 s chunk "
             "(default %(default)s)")
    add("--steps", type=int, default=50, help="fine-tuning steps per exemplar (default %(default)s)")
    add("--lr", type=float, default=1e-4,
        help="fine-tuning learning rate, constant (default %(default)s, fixed by --pilot)")
    add("--ft-seed", type=int, default=422024, help="torch seed before each fine-tuning (default %(default)s)")
    add("--seconds", type=float, default=10.0,
        help="seconds sampled per exemplar (default %(default)s: the 10 s context the checkpoint was trained on)")
    add("--gen-seed", type=int, default=1000,
        help="sampling seed of exemplar i is GEN_SEED + i (default %(default)s)")
    add("--top-k", type=int, default=250, help="top-k of the sampling (default %(default)s)")
    add("--temp", type=float, default=1.0, help="sampling temperature (default %(default)s)")
    add("--no-null", action="store_true",
        help="skip the chance level (pieces sampled from the base model with the same seeds)")
    add("--fresh", action="store_true",
        help="ignore generations cached in --work by an earlier run with identical inputs and settings")
    add = p.add_argument_group("part 2: --battery").add_argument
    add("--battery-tracks", type=int, default=10,
        help="Planet Blupi tracks in the catalog, 2 to 10 (default %(default)s)")
    add("--battery-seconds", type=float, default=60.0,
        help="length of each track's excerpt and of each control, over 20 s for excerpt-20s (default %(default)s)")
    add("--battery-offset", type=float, default=30.0,
        help="where each excerpt starts in its track, in seconds (default %(default)s)")
    add("--transforms", nargs="+", default=list(TRANSFORM_NAMES), choices=TRANSFORM_NAMES, metavar="T",
        help=f"transforms of the battery (default: all of {', '.join(TRANSFORM_NAMES)})")
    args = p.parse_args(argv)
    problems = []
    if args.controls < 10:
        problems.append("--controls must be at least 10 (attribution-v1 min_controls)")
    if args.songs < 2 or args.steps < 0 or args.lr <= 0 or args.seconds <= 0 or args.song_seconds < 10:
        problems.append("need --songs >= 2, --steps >= 0, --lr > 0, --seconds > 0, --song-seconds >= 10")
    if not 2 <= args.battery_tracks <= 10 or args.battery_seconds <= 20 or args.battery_offset < 0:
        problems.append("need 2 <= --battery-tracks <= 10, --battery-seconds > 20, --battery-offset >= 0")
    if args.pilot and args.battery:
        problems.append("--pilot and --battery exclude each other")
    if args.digests and len(args.digests) != len(args.model or []):
        problems.append("give one --digests per --model")
    if problems:
        p.error("; ".join(problems))
    if not args.model:
        args.model = [TRAINED, RANDOM] if args.battery else [TRAINED]
    args.digests = args.digests or [None] * len(args.model)
    return args


def main() -> int:
    argv = sys.argv[1:]
    args = parse_args(argv)
    from lumina_audit.signature.pins import Pins, reexec_if_needed

    reexec_if_needed(Pins(), argv, entry=(sys.executable, str(Path(__file__).resolve())))

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _groundtruth_common import BenchError

    from lumina_audit._internal.quiet import silence_libraries

    silence_libraries()
    started = time.monotonic()
    meta = {"command": "python benchmarks/bench_groundtruth.py " + shlex.join(argv),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "niceness": os.nice(0)}
    try:
        if args.pilot:
            from _groundtruth_pilot import run_pilot, write_pilot

            result = run_pilot(args, meta)
            result["run_seconds"] = round(time.monotonic() - started, 1)
            text = write_pilot(result, args.out)
        elif args.battery:
            from _groundtruth_battery import run_battery, write_battery

            result = run_battery(args, meta)
            result["run_seconds"] = round(time.monotonic() - started, 1)
            text = write_battery(result, args.out)
        else:
            from _groundtruth_report import write_groundtruth

            result = run_groundtruth(args, meta)
            result["run_seconds"] = round(time.monotonic() - started, 1)
            text = write_groundtruth(result, args.out)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


def run_groundtruth(args: argparse.Namespace, meta: dict[str, Any]) -> dict[str, Any]:
    """Part 1 on every ``--model``; the result document (see ``_groundtruth_report``)."""
    from _groundtruth_common import (
        CATALOG_OFFSET,
        CONTROL_OFFSET,
        HELDOUT_OFFSET,
        SOUNDFONT_PACKAGES,
        ensure_debian,
        git_state,
        render_song,
        versions,
    )

    from lumina_audit._internal.scores import BENCHMARK_SEEDS, VALIDATION_SEEDS

    installed = ensure_debian(SOUNDFONT_PACKAGES)
    songs_dir = args.work / "groundtruth" / "songs"
    cat_seeds = [BENCHMARK_SEEDS.start + CATALOG_OFFSET + i for i in range(args.songs)]
    ctl_seeds = [BENCHMARK_SEEDS.start + CONTROL_OFFSET + i for i in range(args.controls)]
    heldout_seed = VALIDATION_SEEDS.start + HELDOUT_OFFSET
    t0 = time.monotonic()
    catalog = [render_song(s, args.song_seconds, songs_dir / f"cat{s}.wav") for s in cat_seeds]
    controls = [render_song(s, args.song_seconds, songs_dir / f"ctl{s}.wav") for s in ctl_seeds]
    heldout = render_song(heldout_seed, args.song_seconds, songs_dir / f"val{heldout_seed}.wav")
    print(f"rendered {len(catalog)} catalog and {len(controls)} control songs in {time.monotonic() - t0:.0f} s",
          flush=True)
    doc: dict[str, Any] = {
        **meta, "part": "groundtruth", "git": git_state(), "versions": versions(), "apt_installed": installed,
        "data": {"catalog_seeds": cat_seeds, "control_seeds": ctl_seeds, "heldout_seed": heldout_seed,
                 "song_seconds": args.song_seconds, "source": "lumina_audit._internal.scores, BENCHMARK_SEEDS, "
                 "fluidsynth + FluidR3_GM, 32 kHz mono 16-bit WAV"},
        "k": args.k, "models": []}
    for model_dir, digests in zip(args.model, args.digests, strict=True):
        doc["models"].append(groundtruth_on(args, Path(model_dir), digests, catalog, controls, heldout))
    return doc


def groundtruth_on(args: argparse.Namespace, model_dir: Path, digests_file: Path | None, catalog: list[Path],
                   controls: list[Path], heldout: Path) -> dict[str, Any]:
    """Fine-tune, generate and attribute on one checkpoint."""
    import numpy as np
    import torch
    from _groundtruth_codes import code_features, codes_path_check, decoded_alike, signatures_of_codes
    from _groundtruth_common import (
        CHANNELS,
        METHOD_NAMES,
        BenchError,
        baseline_similarities,
        floor,
        lm_digest,
        read_digests,
    )
    from _groundtruth_finetune import FineTune, Sampling, chunk_codes, codes_path, finetune, generate, mean_loss

    from lumina_audit.attribution.search import exact_similarities
    from lumina_audit.signature.methods import GRADPROJ, GRADSTATS
    from lumina_audit.signature.pins import Pins
    from lumina_audit.signature.session import Session, load_all

    digests_path, digests = read_digests(model_dir, digests_file)
    t_model = time.monotonic()
    session = Session.open(model_dir, digests, Pins(), methods=(GRADPROJ, GRADSTATS))
    model, config, pins = session.model, session.config, session.pins
    base_before = lm_digest(model.lm)
    ft = FineTune(steps=args.steps, lr=args.lr, seed=args.ft_seed)
    sampling = Sampling(seconds=args.seconds, temp=args.temp, top_k=args.top_k)
    audios = load_all([*catalog, *controls, heldout], config)
    cat_audio, ctl_audio, held_audio = audios[: len(catalog)], audios[len(catalog): -1], audios[-1]
    held_codes = chunk_codes(model.compression, held_audio.samples, config.chunk_samples)
    held_base = mean_loss(model.lm, held_codes, pins)
    tag = "-".join(digests[n][:12] for n in sorted(digests))
    gen_dir = args.work / "groundtruth" / f"gen-{tag}"
    cat_ids = [p.stem for p in catalog]
    fine: list[dict[str, Any]] = []
    ft_paths: list[Path] = []
    null_paths: list[Path] = []
    reused = 0
    for i, (path, audio) in enumerate(zip(catalog, cat_audio, strict=True)):
        seed = args.gen_seed + i
        key = json.dumps({"model": digests, "exemplar_pcm": audio.pcm_sha256, "finetune": ft.as_dict(),
                          "sampling": sampling.as_dict(), "seed": seed, "heldout_pcm": held_audio.pcm_sha256,
                          "kept": "wav and codes"}, sort_keys=True)
        out, record_path = gen_dir / f"gen-ft-{path.stem}.wav", gen_dir / f"gen-ft-{path.stem}.json"
        null_out = gen_dir / f"gen-base-{path.stem}.wav"
        cached = None if args.fresh or not record_path.is_file() else json.loads(record_path.read_text("utf-8"))
        hit = cached is not None and cached.get("key") == key and codes_path(out).is_file() and \
            (args.no_null or codes_path(null_out).is_file())
        if hit and cached is not None:
            fine.append(cached["record"])
            reused += 1
        else:
            codes = chunk_codes(model.compression, audio.samples, config.chunk_samples)
            before = mean_loss(model.lm, codes, pins)
            lm, losses, ft_s = finetune(model.lm, codes, ft, pins)
            record = {"song": path.stem, "gen_seed": seed, "chunks": int(codes.shape[0]),
                      "exemplar_loss_before": before, "exemplar_loss_after": mean_loss(lm, codes, pins),
                      "heldout_loss_before": held_base, "heldout_loss_after": mean_loss(lm, held_codes, pins),
                      "train_losses": losses, "finetune_s": round(ft_s, 1)}
            peak, gen_s, _codes = generate(lm, model.compression, sampling, seed, pins, out)
            record |= {"generate_s": round(gen_s, 1), "peak": peak}
            del lm
            if not args.no_null:
                peak, null_s, _codes = generate(model.lm, model.compression, sampling, seed, pins, null_out)
                record |= {"generate_base_s": round(null_s, 1), "peak_base": peak}
            record_path.write_text(json.dumps({"key": key, "record": record}, indent=1), encoding="utf-8")
            fine.append(record)
        r = fine[-1]
        print(f"  {path.stem}: exemplar loss {r['exemplar_loss_before']:.3f} -> {r['exemplar_loss_after']:.3f}, "
              f"held-out {r['heldout_loss_before']:.3f} -> {r['heldout_loss_after']:.3f}"
              + (" (cached)" if hit else
                 f", {r['finetune_s']:.0f} s fine-tuning, {r['generate_s']:.0f} s sampling"), flush=True)
        ft_paths.append(out)
        null_paths.append(null_out)
    if lm_digest(model.lm) != base_before:
        raise BenchError("the base LM changed during fine-tuning; the attribution would not be on the base model")
    t_sig = time.monotonic()
    queries = {"finetuned": ft_paths, **({} if args.no_null else {"base": null_paths})}
    q_codes = {name: [torch.from_numpy(np.load(codes_path(p))).long() for p in paths]
               for name, paths in queries.items()}
    decoded = decoded_alike(queries)
    check = codes_path_check(session, cat_audio[0])
    if not all(check["bitwise_equal"].values()):
        raise BenchError(f"the codes path differs from the library's audio path: {check}")
    sigs = session.all_signatures([*catalog, *controls], audios=[*cat_audio, *ctl_audio])
    for name, paths in queries.items():
        sigs += [(p, signatures_of_codes(session, c, p.stem)) for p, c in zip(paths, q_codes[name], strict=True)]
    sig_s = time.monotonic() - t_sig
    n_cat, n_ctl = len(catalog), len(controls)
    rows = {"catalog": slice(0, n_cat), "controls": slice(n_cat, n_cat + n_ctl)}
    start = n_cat + n_ctl
    for name, paths in queries.items():
        rows[name] = slice(start, start + len(paths))
        start += len(paths)
    cat_pcm = [a.pcm_sha256 for a in cat_audio]
    ctl_pcm = [a.pcm_sha256 for a in ctl_audio]
    song_codes = [chunk_codes(model.compression, a.samples, config.chunk_samples) for a in [*cat_audio, *ctl_audio]]
    per_row = [code_features(model.compression, c) for c in [*song_codes, *(c for cs in q_codes.values() for c in cs)]]
    feats = {family: np.stack([f[family] for f in per_row]) for family in per_row[0]}
    results: dict[str, Any] = {}
    per_song: dict[str, dict[str, Any]] = {}
    for method in METHOD_NAMES:
        space = session.spaces[method].digest
        for ch in CHANNELS:
            vec = np.stack([getattr(s[method], ch.lower()) for _, s in sigs]).astype(np.float32)
            sims = {name: exact_similarities(vec[rows[name]], vec[rows["catalog"]]) for name in rows}
            fl = floor(sims["controls"], ctl_pcm, cat_pcm, args.k, space)
            results[f"{method} {ch}"] = _scored(sims, queries, cat_ids, fl, per_song, f"{method} {ch}")
    ctl_sims = baseline_similarities(feats, rows, "controls")
    q_sims = {name: baseline_similarities(feats, rows, name) for name in queries}
    for family, x in ctl_sims.items():
        fl = floor(x, ctl_pcm, cat_pcm, args.k, family)
        results[family] = _scored({name: q_sims[name][family] for name in queries}, queries, cat_ids, fl, per_song,
                                  family)
    shown = model_dir.resolve().relative_to(ROOT) if model_dir.resolve().is_relative_to(ROOT) else model_dir
    return {"model": str(shown), "width": int(model.lm.dim),
            "parameters": sum(int(p.numel()) for p in model.lm.parameters()),
            "digests_file": str(digests_path), "digests": dict(digests), "base_lm_sha256": base_before,
            "finetune": ft.as_dict(), "sampling": sampling.as_dict(), "generations_reused": reused,
            "catalog_ids": cat_ids, "per_exemplar": fine, "results": results, "per_song": per_song,
            "decoded_pieces": decoded, "codes_path_check": check,
            "seconds": {"model_load": round(t_sig - t_model, 1), "signatures": round(sig_s, 1)}}


def _scored(sims: dict[str, Any], queries: dict[str, list[Path]], cat_ids: list[str], fl: Any,
            per_song: dict[str, dict[str, Any]], label: str) -> dict[str, Any]:
    """Summary per query set (``finetuned`` and ``base``) of one method and channel, and per-song ranks."""
    from _groundtruth_common import score_queries

    out: dict[str, Any] = {"floor": fl.as_dict(), "queries": {}}
    for name, paths in queries.items():
        sc = score_queries(sims[name], cat_ids, [p.stem for p in paths], cat_ids, fl)
        out["queries"][name] = sc.summary(len(cat_ids))
        for song, rank, sim, top in zip(cat_ids, sc.ranks, sc.similarities, sc.top1, strict=True):
            per_song.setdefault(song, {}).setdefault(name, {})[label] = {"rank": rank, "similarity": sim, "top1": top}
    return out


if __name__ == "__main__":
    sys.exit(main())
