"""``bench_groundtruth --pilot``: how the fine-tuning learning rate was fixed, from losses alone.

Fine-tunes copies of the base LM on songs of ``scores.VALIDATION_SEEDS`` (never catalog songs, never
an attribution figure) at each candidate learning rate for ``--steps`` steps, and records the
training loss of the song fine-tuned on and of another held-out song, before and after. The rule,
fixed before the pilot ran: the largest candidate whose held-out loss rises by at most
:data:`MAX_FORGETTING` nats per code (customization as strong as possible while the copy stays a
model of this music). Writes ``groundtruth-pilot.md`` and ``.json``.

The fine-tuning and the losses are the library's: ``lumina_audit.customization.tuning.finetune``
(what ``customize`` fine-tunes with) and ``tuning.mean_loss`` (its training loss without gradient,
mean over chunks), on the codes of every whole 10 s chunk of a song, encoded one chunk at a time
by ``signature.gradients.chunk_codes`` as ``customize`` encodes them (``_groundtruth_codes.codes_of``).
``customize`` itself is not called: it keeps no fine-tuned copy, and the pilot needs one to
measure the held-out loss after fine-tuning.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchmarks._groundtruth_codes import codes_of
from benchmarks._groundtruth_common import HELDOUT_OFFSET
from benchmarks._groundtruth_report import common_header
from lumina_tools.environment import SOUNDFONT_PACKAGES, ensure_debian, git_state, versions
from lumina_tools.files import read_digests, shown
from lumina_tools.markdown import md_table, num
from lumina_tools.songs import render_song

__all__ = ["MAX_FORGETTING", "PILOT_LRS", "PILOT_OFFSETS", "run_pilot", "write_pilot"]

#: Candidate learning rates: the training schedule's floor (1e-4), its middle and its peak (1e-3).
PILOT_LRS = (1e-4, 3e-4, 1e-3)
#: Pilot songs: ``scores.VALIDATION_SEEDS`` start + these (validation losses only; not the held-out song).
PILOT_OFFSETS = (200, 201)
#: Largest accepted rise of the held-out loss (nats per code).
MAX_FORGETTING = 0.25


def run_pilot(args: argparse.Namespace, meta: dict[str, Any]) -> dict[str, Any]:
    """Loss-only pilot on the first ``--model``."""
    from lumina_audit._internal.scores import VALIDATION_SEEDS
    from lumina_audit.customization.settings import FineTune
    from lumina_audit.customization.tuning import finetune, mean_loss
    from lumina_audit.signature.pins import Pins
    from lumina_audit.signature.session import Session, load_all

    installed = ensure_debian(SOUNDFONT_PACKAGES)
    model_dir = Path(args.model[0])
    digests_path, digests = read_digests(model_dir, args.digests[0])
    session = Session.open(model_dir, digests, Pins())
    model, pins = session.model, session.pins
    songs_dir = args.work / "pilot"
    seeds = [VALIDATION_SEEDS.start + o for o in PILOT_OFFSETS]
    held_seed = VALIDATION_SEEDS.start + HELDOUT_OFFSET
    paths = [render_song(s, args.song_seconds, songs_dir / f"val{s}.wav") for s in [*seeds, held_seed]]
    audios = load_all(paths, session.config)
    codes = [codes_of(a, model, session.config) for a in audios]
    held = codes[-1]
    held_base = mean_loss(model, model.lm, held, pins)
    rows: list[dict[str, Any]] = []
    for lr in PILOT_LRS:
        for seed, c in zip(seeds, codes[:-1], strict=True):
            before = mean_loss(model, model.lm, c, pins)
            t0 = time.monotonic()
            lm, losses = finetune(model, c, FineTune(steps=args.steps, lr=lr, seed=args.ft_seed), pins)
            secs = time.monotonic() - t0
            rows.append({"lr": lr, "song_seed": seed, "exemplar_before": before,
                         "exemplar_after": mean_loss(model, lm, c, pins), "heldout_before": held_base,
                         "heldout_after": mean_loss(model, lm, held, pins), "train_losses": losses,
                         "seconds": round(secs, 1)})
            print(f"  lr {lr:g}, song {seed}: exemplar {before:.3f} -> {rows[-1]['exemplar_after']:.3f}, held-out "
                  f"{held_base:.3f} -> {rows[-1]['heldout_after']:.3f} ({secs:.0f} s)", flush=True)
            del lm
    accepted = [lr for lr in PILOT_LRS
                if all(r["heldout_after"] - r["heldout_before"] <= MAX_FORGETTING for r in rows if r["lr"] == lr)]
    return {**meta, "part": "pilot", "git": git_state(), "versions": versions(), "apt_installed": installed,
            "model": shown(model_dir), "digests_file": str(digests_path), "digests": dict(digests), "steps": args.steps,
            "song_seconds": args.song_seconds, "song_seeds": seeds, "heldout_seed": held_seed,
            "candidates": list(PILOT_LRS), "max_forgetting": MAX_FORGETTING, "rows": rows,
            "chosen_lr": max(accepted) if accepted else None, "finished": time.strftime("%H:%M:%S")}


def write_pilot(doc: dict[str, Any], out: Path) -> str:
    """Write ``groundtruth-pilot.md`` and ``.json`` into ``out``; return the Markdown."""
    lines = common_header(doc, "Ground truth: the fine-tuning pilot (losses only)")
    digests = ", ".join(f"{k} `{v[:16]}...`" for k, v in sorted(doc["digests"].items()))
    lines += [f"Checkpoint `{doc['model']}` ({digests}). "
              f"{doc['steps']} full-batch AdamW steps per copy on one song of {doc['song_seconds']:g} s "
              f"(`scores.VALIDATION_SEEDS` seeds {', '.join(map(str, doc['song_seeds']))}); held-out song: seed "
              f"{doc['heldout_seed']}. Rule, fixed before the pilot ran: the largest learning rate whose held-out loss "
              f"rises by at most {doc['max_forgetting']:g} nats per code. No attribution figure is computed here.", ""]
    body = [[f"{r['lr']:g}", str(r["song_seed"]), num(r["exemplar_before"]), num(r["exemplar_after"]),
             num(r["heldout_before"]), num(r["heldout_after"]), num(r["heldout_after"] - r["heldout_before"]),
             f"{r['seconds']:.0f}"] for r in doc["rows"]]
    lines += md_table(["lr", "song", "its loss, base", "its loss, fine-tuned", "held-out, base",
                       "held-out, fine-tuned", "held-out rise", "seconds"], body) + [""]
    chosen = doc["chosen_lr"]
    lines += [f"Chosen: lr {chosen:g}." if chosen is not None else "No candidate met the rule.", ""]
    text = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "groundtruth-pilot.md").write_text(text, encoding="utf-8")
    (out / "groundtruth-pilot.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return text
