"""Benchmark: attribution against a known right answer ("attribution by customization"), and a derive battery.

    python -m benchmarks.bench_groundtruth [--model DIR ...] [--songs 12] [--steps 50] [--pieces 3] [...]
    python -m benchmarks.bench_groundtruth --battery [--model DIR ...] [--battery-tracks 10] [...]
    python -m benchmarks.bench_groundtruth --pilot

(from the repository root, as every benchmark).

Part 1, ground truth (Wang et al., ICCV 2023, "Evaluating data attribution for text-to-image models"),
a thin client of the library (``_groundtruth_measure`` says which function does each step):
``lumina_audit.customization.customize`` fine-tunes a copy of the base LM on each catalog song
(the *exemplar*) and samples pieces from it, and as many pieces from the unmodified LM (the
negatives); every piece is scored with the BASE model through ``runner.base.signatures``, both
signature methods (``lumina-gradproj-v1``, ``lumina-gradstats-v1``) and both channels (P, M):

- attribution-v1: recall@1, recall@5 and the median rank of the exemplar among the catalog songs,
  its share and how often it is above the noise floor tau = mu + k sigma of control songs;
- attribution-v2, proposition ``influence`` (positives: the pieces of the copy fine-tuned on song
  j, H1 against song j; negatives: the unmodified model's pieces, H2 against every song; controls,
  H2): ``cohort_stats``, ``build_trials`` and ``calibrate_channel`` as ``runner.calibrate._plan_lr``
  composes them, with the folds and minimums of ``LRCalibrationSettings``: Cllr, Cllr_min, EER,
  rates of misleading evidence with intervals counted in units, ELUB bounds.

Four gradient-free baselines are scored the same two ways, on codes: the time-mean of the EnCodec
latent and per-codebook code histograms, each raw and standardised by the controls.

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
are fine-tuned (``customization.tuning.finetune``) on songs of ``VALIDATION_SEEDS`` at 1e-4, 3e-4 and
1e-3, and the largest rate whose loss (``tuning.mean_loss``) on another held-out song rises by at most
0.25 nats per code is the default (the rule was fixed before the pilot ran). Writes
``groundtruth-pilot.md``/``.json``.

Everything runs under the numerical pins (the module re-executes itself, like
``benchmarks.bench_signature``), on one CPU thread. Seeds are fixed and written into the
results. Nothing was tuned on attribution figures: the settings are fixed in the options below
and printed before anything is measured. Outputs: ``groundtruth.md``/``groundtruth.json`` or
``battery.md``/``battery.json`` in ``--out`` (default ``benchmarks/results``), also printed;
songs and pieces in ``--work`` (default ``work/bench-groundtruth``, git-ignored; ``customize``'s
folder is reused by a later run with the same model, songs and settings unless ``--fresh``).
The suite's ``tests/benchmarks/test_groundtruth_smoke.py`` runs part 1 on a tiny configuration;
a smoke run of the script itself (a few minutes):

    nice -n 10 python -m benchmarks.bench_groundtruth --model lumina_audit/_data/golden/models/tiny-musicgen \\
        --songs 3 --controls 10 --song-seconds 10 --steps 2 --seconds 2 --pieces 2 --out work/bench-groundtruth/smoke
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lumina_tools import ROOT, ToolError
from lumina_tools.files import RANDOM, RESULTS, TRAINED, WORK
from lumina_tools.invocation import reexec_pinned, run_record

if TYPE_CHECKING:
    from benchmarks._groundtruth_measure import Settings

__all__ = ["groundtruth", "main", "parse_args", "run_groundtruth", "settings_of"]

TRANSFORM_NAMES = ("mp3-128k", "opus-64k", "noise-30db", "noise-20db", "gain-3db", "gain-6db", "speed+2", "speed-2",
                   "excerpt-20s", "splice")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_groundtruth", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    add("--controls", type=int, default=None,
        help="control songs (at least 10, attribution-v1's minimum; default 20 for part 1, the minimum of "
             "attribution-v2's LRCalibrationSettings, and 12 for --battery)")
    add("--k", type=float, default=3.0, help="tau = mu + k sigma (attribution-v1; default %(default)s)")
    add("--work", type=Path, default=WORK / "bench-groundtruth",
        help="folder for songs and pieces (default work/bench-groundtruth, git-ignored; recorded music never "
             "leaves it)")
    add("--out", type=Path, default=RESULTS,
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
    add("--pieces", type=int, default=3,
        help="pieces sampled per fine-tuned copy, and from the unmodified model (default %(default)s: 36 same-"
             "source trials from 12 songs, over the 30 that attribution-v2 asks for)")
    add("--seconds", type=float, default=10.0,
        help="seconds per piece (default %(default)s: the 10 s context the checkpoint was trained on)")
    add("--gen-seed", type=int, default=1000,
        help="piece i of every copy and of the unmodified model is sampled under GEN_SEED + i (default %(default)s)")
    add("--top-k", type=int, default=250, help="top-k of the sampling (default %(default)s)")
    add("--temp", type=float, default=1.0, help="sampling temperature (default %(default)s)")
    add("--fresh", action="store_true",
        help="remove the customization kept in --work by an earlier run with identical inputs and settings")
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
    if args.controls is None:
        args.controls = 12 if args.battery else 20
    problems = []
    if args.controls < 10:
        problems.append("--controls must be at least 10 (attribution-v1 min_controls)")
    if args.songs < 2 or args.steps < 1 or args.lr <= 0 or args.seconds <= 0 or args.song_seconds < 10 \
            or args.pieces < 1:
        problems.append("need --songs >= 2, --steps >= 1, --lr > 0, --seconds > 0, --song-seconds >= 10, "
                        "--pieces >= 1")
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


def main(argv: list[str] | None = None) -> int:
    """Parse, re-execute under the pins, run the chosen part, write and print its report."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    from lumina_audit.signature.pins import Pins

    reexec_pinned(Pins(), argv, __spec__)
    from lumina_audit._internal.quiet import silence_libraries
    from lumina_audit.errors import LuminaError

    silence_libraries()
    started = time.monotonic()
    meta = run_record(__spec__, argv)
    try:
        if args.pilot:
            from benchmarks._groundtruth_pilot import run_pilot, write_pilot

            result = run_pilot(args, meta)
            result["run_seconds"] = round(time.monotonic() - started, 1)
            text = write_pilot(result, args.out)
        elif args.battery:
            from benchmarks._groundtruth_battery import run_battery, write_battery

            result = run_battery(args, meta)
            result["run_seconds"] = round(time.monotonic() - started, 1)
            text = write_battery(result, args.out)
        else:
            from benchmarks._groundtruth_report import write_groundtruth

            result = run_groundtruth(args, meta)
            result["run_seconds"] = round(time.monotonic() - started, 1)
            text = write_groundtruth(result, args.out)
    except (ToolError, LuminaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


def settings_of(args: argparse.Namespace) -> Settings:
    """Part 1's settings from the command line (every other setting is the library's default)."""
    from benchmarks._groundtruth_measure import Settings
    from lumina_audit.customization.settings import FineTune, Sampling

    return Settings(tuning=FineTune(steps=args.steps, lr=args.lr, seed=args.ft_seed),
                    sampling=Sampling(count=args.pieces, seconds=args.seconds, top_k=args.top_k,
                                      temperature=args.temp, seed=args.gen_seed),
                    k=args.k)


def run_groundtruth(args: argparse.Namespace, meta: dict[str, Any]) -> dict[str, Any]:
    """Part 1 on every ``--model``: render the songs, then :func:`groundtruth`."""
    from benchmarks._groundtruth_common import CATALOG_OFFSET, CONTROL_OFFSET
    from lumina_audit._internal.scores import BENCHMARK_SEEDS
    from lumina_tools.environment import SOUNDFONT_PACKAGES, ensure_debian
    from lumina_tools.songs import render_song

    settings = settings_of(args)  # fixed before anything is rendered or measured
    installed = ensure_debian(SOUNDFONT_PACKAGES)
    songs_dir = args.work / "groundtruth" / "songs"
    cat_seeds = [BENCHMARK_SEEDS.start + CATALOG_OFFSET + i for i in range(args.songs)]
    ctl_seeds = [BENCHMARK_SEEDS.start + CONTROL_OFFSET + i for i in range(args.controls)]
    t0 = time.monotonic()
    catalog = [render_song(s, args.song_seconds, songs_dir / f"cat{s}.wav") for s in cat_seeds]
    controls = [render_song(s, args.song_seconds, songs_dir / f"ctl{s}.wav") for s in ctl_seeds]
    print(f"rendered {len(catalog)} catalog and {len(controls)} control songs in {time.monotonic() - t0:.0f} s",
          flush=True)
    data = {"catalog": f"seeds {cat_seeds[0]}..{cat_seeds[-1]} of `scores.BENCHMARK_SEEDS`",
            "controls": f"seeds {ctl_seeds[0]}..{ctl_seeds[-1]}", "catalog_seeds": cat_seeds,
            "control_seeds": ctl_seeds, "song_seconds": args.song_seconds,
            "source": "lumina_audit._internal.scores, fluidsynth + FluidR3_GM, 32 kHz mono 16-bit WAV",
            "why": "the benchmark seed range was never trained on, so the fine-tuning is the only time any model "
                   "saw an exemplar, and no other catalog song is also a right answer (songs of `TRAIN_SEEDS` are "
                   "all in the base model's training set: each would be \"in\" the model before any customization)."}
    models = list(zip(args.model, args.digests, strict=True))
    return groundtruth({**meta, "apt_installed": installed}, models, catalog, controls, settings,
                       args.work / "groundtruth", data, fresh=args.fresh)


def groundtruth(meta: dict[str, Any], models: list[tuple[Path, Path | None]], catalog: list[Path],
                controls: list[Path], settings: Settings, work: Path, data: dict[str, Any], *,
                fresh: bool = False) -> dict[str, Any]:
    """Part 1's result document: the settings (printed first), then each checkpoint's section."""
    from benchmarks._groundtruth_measure import measure
    from lumina_tools.environment import git_state, versions

    print("settings, fixed before anything is measured:\n" + json.dumps(settings.as_dict(), indent=1), flush=True)
    doc: dict[str, Any] = {
        **meta, "part": "groundtruth", "git": git_state(), "versions": versions(),
        "data": {**data, "catalog_ids": [p.stem for p in catalog], "control_ids": [p.stem for p in controls]},
        "settings": settings.as_dict(), "k": settings.k, "models": []}
    for model_dir, digests in models:
        print(f"checkpoint {model_dir}", flush=True)
        doc["models"].append(measure(Path(model_dir), digests, catalog, controls, settings, work, fresh=fresh))
    return doc


if __name__ == "__main__":
    sys.exit(main())
