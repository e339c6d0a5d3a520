"""Train the tiny MusicGen in lumina_audit/_data/golden/models/tiny-musicgen-trained/ (run once, then commit).

Same family as the random checkpoint of ``scripts/make_tiny_checkpoint.py`` (48 layers, 4 codebooks
of 2048, the delay pattern [0, 1, 2, 3], cross-attention on a T5-style ``description`` conditioner,
no biases, pre-norm), wider (:data:`DIM`), trained by teacher forcing under null conditioning on
the project's own music: the seeded scores of ``lumina_audit._internal.scores`` rendered with the
FluidR3_GM SoundFont (Debian ``fluid-soundfont-gm``, MIT licence), cut into 10 s chunks and encoded
by the EnCodec of ``lumina_audit/_data/golden/models/tiny-musicgen/`` (copied byte for byte, so both checkpoints share
one codec). Plain mean cross-entropy over the valid delay-pattern positions, AdamW, linear warm-up
then cosine decay, all from seed 422024, at one CPU thread.

Writes ``state_dict.bin``, ``compression_state_dict.bin``, ``NOTICE``, ``TRAINING.md`` and
``training-log.json`` into OUT_DIR and ``OUT_DIR.sha256`` beside it. Rendered audio never leaves a
temporary folder; the codes are cached under ``--work`` (git-ignored).

Usage (from the repository root): python -m scripts.train_tiny [--out OUT_DIR] [--work WORK_DIR] [--time-steps N]
``--time-steps N`` only times N training steps (to size :data:`STEPS`) and writes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any
from unittest import mock

from lumina_tools import ToolError
from lumina_tools.environment import SOUNDFONT_PACKAGES, ensure_debian
from lumina_tools.files import RANDOM, TRAINED, WORK, file_sha256, read_digests, write_digests
from lumina_tools.songs import score_audio
from scripts.make_tiny_checkpoint import lm_config  # the same family, by construction

SEED = 422024
DIM, HEADS, HIDDEN_SCALE = 64, 4, 4
TRAIN_SONGS, VAL_SONGS, SONG_SECONDS = 240, 24, 60.0
CHUNK_SECONDS, FRAMES = 10.0, 500  # 50 Hz EnCodec frames per chunk
BATCH, EPOCHS = 8, 6  # 6 x 180 steps: about 1.6 h at 4.8 s/step (measured with --time-steps)
LR, MIN_LR_RATIO, WARMUP, WEIGHT_DECAY, BETAS, CLIP = 1e-3, 0.1, 100, 0.1, (0.9, 0.95), 1.0
SOURCE = RANDOM
SOUNDFONT_COPYRIGHT = Path("/usr/share/doc/fluid-soundfont-gm/copyright")
LOG2048 = math.log(2048)


def ensure_renderer() -> None:
    """Install fluidsynth and the FluidR3_GM SoundFont with apt when missing (as root only).

    Checked twice: the SoundFont renders, and its copyright file (the same package) goes into NOTICE.
    """
    try:
        ensure_debian(SOUNDFONT_PACKAGES)
        ensure_debian({"fluid-soundfont-gm": SOUNDFONT_COPYRIGHT})
    except ToolError as exc:
        raise SystemExit(str(exc)) from None


def source_digests() -> dict[str, str]:
    """The digests of the random checkpoint whose EnCodec this one copies."""
    return read_digests(SOURCE)[1]


def encode_songs(compression: Any, seeds: range, work: Path) -> Any:
    """Codes ``[N, 4, FRAMES]`` int64 of every 10 s chunk of the songs of ``seeds`` (cached in ``work``)."""
    import torch

    from lumina_audit._internal import scores

    source = Path(scores.__file__).read_bytes()
    key = hashlib.sha256(json.dumps([seeds.start, seeds.stop, SONG_SECONDS, CHUNK_SECONDS,
                                     source_digests()["compression_state_dict.bin"],
                                     hashlib.sha256(source).hexdigest()]).encode()).hexdigest()[:16]
    cache = work / f"codes-{seeds.start}-{seeds.stop}-{key}.pt"
    if cache.is_file():
        codes: Any = torch.load(cache, weights_only=True)
        return codes
    chunk = round(CHUNK_SECONDS * 32000)
    out = []
    for i, seed in enumerate(seeds):
        x = torch.from_numpy(score_audio(seed, SONG_SECONDS)).view(-1, 1, chunk)  # [chunks, 1, samples]
        with torch.no_grad():
            c, _scale = compression.encode(x)
        if c.shape[1:] != (4, FRAMES):
            raise SystemExit(f"unexpected codes shape {tuple(c.shape)}")
        out.append(c.long())
        if i % 20 == 0:
            print(f"  encoded song {seed} ({i + 1}/{len(seeds)})", flush=True)
    codes = torch.cat(out)
    work.mkdir(parents=True, exist_ok=True)
    torch.save(codes, cache)
    return codes


def build_lm() -> tuple[Any, Any]:
    """The untrained LM (seeded) and its config."""
    import torch
    from audiocraft.models import builders
    from omegaconf import OmegaConf

    from lumina_audit.signature.model import NullTextConditioner

    cfg = lm_config()
    cfg["transformer_lm"].update(dim=DIM, num_heads=HEADS, hidden_scale=HIDDEN_SCALE)
    lcfg = OmegaConf.create(cfg)
    torch.manual_seed(SEED)
    with mock.patch.object(builders, "T5Conditioner", NullTextConditioner):
        lm = builders.get_lm_model(lcfg)
    return lm.float(), lcfg


def batch_loss(lm: Any, codes: Any) -> Any:
    """Mean cross-entropy over the valid positions of codes ``[B, 4, T]`` under null conditioning.

    The library's ``lumina_audit.customization.tuning.training_loss`` (what ``customize`` fine-tunes
    with), handed the null condition of this LM's own conditioners: the LM being trained has no
    ``LoadedModel``, and ``training_loss`` reads nothing else of one. The same bits, value and
    gradients, as the inline loss this script trained the committed checkpoint with (zeros
    ``[B, 1, dim]`` and mask zeros ``[B, 1]``), checked on that checkpoint in train and eval mode.
    """
    import types

    from lumina_audit.customization.tuning import training_loss

    null = {name: c.null_condition(1, codes.device) for name, c in lm.condition_provider.conditioners.items()}
    model: Any = types.SimpleNamespace(null_condition=null)
    return training_loss(model, lm, codes)


def evaluate(lm: Any, codes: Any) -> float:
    """Mean loss over ``codes`` (every chunk has the same number of valid positions)."""
    import torch

    lm.eval()
    with torch.no_grad():
        losses = [float(batch_loss(lm, codes[i: i + BATCH])) * len(codes[i: i + BATCH])
                  for i in range(0, len(codes), BATCH)]
    return sum(losses) / len(codes)


def lr_at(step: int, total: int) -> float:
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    progress = (step - WARMUP) / max(1, total - WARMUP)
    return LR * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress)))


def optimizer(lm: Any) -> Any:
    import torch

    decay = [p for p in lm.parameters() if p.ndim >= 2]
    rest = [p for p in lm.parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": rest, "weight_decay": 0.0}],
                             lr=LR, betas=BETAS, eps=1e-8)


def export(model: Any, cfg: Any, path: Path) -> None:
    import audiocraft
    import torch
    from omegaconf import OmegaConf

    state = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in model.state_dict().items()}
    torch.save({"best_state": state, "xp.cfg": OmegaConf.to_yaml(cfg), "version": audiocraft.__version__,
                "exported": True}, path)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.train_tiny", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=TRAINED)
    parser.add_argument("--work", type=Path, default=WORK / "train-tiny")
    parser.add_argument("--time-steps", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    from lumina_audit._internal.scores import TRAIN_SEEDS, VALIDATION_SEEDS
    from lumina_audit.signature.model import load_model

    ensure_renderer()
    t_start = time.monotonic()
    source = load_model(SOURCE, source_digests(), torch.device("cpu"))
    train_seeds = range(TRAIN_SEEDS.start, TRAIN_SEEDS.start + TRAIN_SONGS)
    val_seeds = range(VALIDATION_SEEDS.start, VALIDATION_SEEDS.start + VAL_SONGS)
    print("rendering and encoding", flush=True)
    train, val = encode_songs(source.compression, train_seeds, args.work), encode_songs(source.compression,
                                                                                      val_seeds, args.work)
    t_data = time.monotonic() - t_start
    gen = torch.Generator().manual_seed(SEED)
    train_probe = train[torch.randperm(len(train), generator=gen)[: len(val)]]  # a fixed training subset
    lm, lcfg = build_lm()
    opt = optimizer(lm)
    steps_per_epoch = len(train) // BATCH
    total = EPOCHS * steps_per_epoch
    if args.time_steps:
        lm.train()
        for step in range(args.time_steps + 1):
            t0 = time.monotonic()
            loss = batch_loss(lm, train[step * BATCH: (step + 1) * BATCH])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            print(f"step {step}: loss {float(loss.detach()):.4f}, {time.monotonic() - t0:.2f} s", flush=True)
        t0 = time.monotonic()
        evaluate(lm, val)
        print(f"evaluation of {len(val)} chunks: {time.monotonic() - t0:.1f} s; {total} steps planned")
        return
    rows: list[dict[str, Any]] = []
    reference = {"train": evaluate(source.lm, train_probe), "validation": evaluate(source.lm, val)}
    rows.append({"epoch": 0, "step": 0, "train_running": None, "train": evaluate(lm, train_probe),
                 "validation": evaluate(lm, val), "wall_s": 0.0})
    print(f"random init: {rows[0]}; committed random tiny-musicgen: {reference}", flush=True)
    t_train = time.monotonic()
    step, t_steps = 0, 0.0
    for epoch in range(1, EPOCHS + 1):
        order = torch.randperm(len(train), generator=gen)
        lm.train()
        running = 0.0
        for i in range(steps_per_epoch):
            t0 = time.monotonic()
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total)
            loss = batch_loss(lm, train[order[i * BATCH: (i + 1) * BATCH]])
            if not torch.isfinite(loss):
                raise SystemExit(f"non-finite loss at step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lm.parameters(), CLIP)
            opt.step()
            running += float(loss.detach())
            step += 1
            t_steps += time.monotonic() - t0
            if step % 25 == 0:
                print(f"  step {step}/{total} loss {float(loss.detach()):.4f} lr {lr_at(step - 1, total):.2e} "
                      f"{t_steps / step:.2f} s/step", flush=True)
        rows.append({"epoch": epoch, "step": step, "train_running": running / steps_per_epoch,
                     "train": evaluate(lm, train_probe), "validation": evaluate(lm, val),
                     "wall_s": round(time.monotonic() - t_train, 1)})
        print(f"epoch {epoch}: {rows[-1]}", flush=True)
    t_total = time.monotonic() - t_start
    args.out.mkdir(parents=True, exist_ok=True)
    export(lm.eval(), lcfg, args.out / "state_dict.bin")
    shutil.copyfile(SOURCE / "compression_state_dict.bin", args.out / "compression_state_dict.bin")
    names = ("state_dict.bin", "compression_state_dict.bin")
    digests = {n: file_sha256(args.out / n) for n in names}
    if digests["compression_state_dict.bin"] != source_digests()["compression_state_dict.bin"]:
        raise SystemExit("the copied EnCodec differs from the source")
    log = {
        "command": "OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python -m scripts.train_tiny",
        "seed": SEED, "family": "scripts/make_tiny_checkpoint.py lm_config()",
        "width": {"dim": DIM, "num_heads": HEADS, "hidden_scale": HIDDEN_SCALE, "num_layers": 48,
                  "n_q": 4, "card": 2048},
        "parameters": sum(p.numel() for p in lm.parameters()),
        "data": {"train_seeds": [train_seeds.start, train_seeds.stop], "validation_seeds": [val_seeds.start,
                 val_seeds.stop], "song_seconds": SONG_SECONDS, "chunk_seconds": CHUNK_SECONDS,
                 "train_chunks": len(train), "validation_chunks": len(val), "train_probe_chunks": len(train_probe),
                 "train_seconds": len(train) * CHUNK_SECONDS, "validation_seconds": len(val) * CHUNK_SECONDS},
        "training": {"steps": total, "epochs": EPOCHS, "batch": BATCH, "steps_per_epoch": steps_per_epoch,
                     "optimizer": "AdamW", "lr": LR, "betas": list(BETAS), "eps": 1e-8,
                     "weight_decay": f"{WEIGHT_DECAY} on matrices, 0 on vectors", "warmup_steps": WARMUP,
                     "schedule": f"linear warm-up, then cosine to {MIN_LR_RATIO} x lr", "grad_clip": CLIP,
                     "loss": "mean cross-entropy over valid delay-pattern positions, null conditioning"},
        "wall_s": {"data": round(t_data, 1), "training": round(time.monotonic() - t_train, 1),
                   "steps": round(t_steps, 1), "step_mean": round(t_steps / total, 3), "total": round(t_total, 1)},
        "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
                    "cpu": platform.processor() or platform.machine()},
        "log_2048": LOG2048, "committed_random_tiny_musicgen": reference, "epochs": rows,
        "sha256": digests,
    }
    (args.out / "training-log.json").write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")
    (args.out / "TRAINING.md").write_text(training_md(log), encoding="utf-8")
    (args.out / "NOTICE").write_text(notice(), encoding="utf-8")
    write_digests(args.out, digests)
    print(json.dumps(digests, indent=2))


def training_md(log: dict[str, Any]) -> str:
    d, t, w = log["data"], log["training"], log["width"]
    ref = log["committed_random_tiny_musicgen"]
    lines = [
        "# tiny-musicgen-trained", "",
        "A tiny MusicGen LM of the family of `scripts/make_tiny_checkpoint.py`, trained by "
        "`scripts/train_tiny.py`. Its EnCodec is a byte-identical copy of "
        "`../tiny-musicgen/compression_state_dict.bin`.",
        "", "## Reproduce", "", "```", "cd <repo root>", log["command"], "```", "",
        "Bitwise reproduction needs the same torch build and CPU; the figures below are from one run.", "",
        "## Model", "",
        f"- 48 layers, dim {w['dim']}, {w['num_heads']} heads, hidden_scale {w['hidden_scale']}, "
        f"4 codebooks x 2048, delay pattern [0, 1, 2, 3], cross-attention on a null `description` conditioner, "
        f"no biases, pre-norm; {log['parameters']:,} parameters, float32; initialised from seed {log['seed']}.", "",
        "## Data", "",
        f"- Training: {d['train_seeds'][1] - d['train_seeds'][0]} songs (`scores.TRAIN_SEEDS` "
        f"{d['train_seeds'][0]}..{d['train_seeds'][1] - 1}), {d['song_seconds']:.0f} s each, "
        f"{d['train_chunks']} chunks of {d['chunk_seconds']:.0f} s ({d['train_seconds'] / 3600:.2f} h).",
        f"- Held out: {d['validation_seeds'][1] - d['validation_seeds'][0]} songs (`scores.VALIDATION_SEEDS` "
        f"{d['validation_seeds'][0]}..{d['validation_seeds'][1] - 1}), {d['validation_chunks']} chunks "
        f"({d['validation_seconds'] / 60:.0f} min). Never trained on.",
        "- Songs: `lumina_audit._internal.scores.score(seed, 60)` rendered by fluidsynth with FluidR3_GM "
        "(see NOTICE) at 32 kHz mono; each 10 s chunk encoded separately (500 frames).", "",
        "## Training", "",
        f"- {t['steps']} steps = {t['epochs']} epochs x {t['steps_per_epoch']} steps, batch {t['batch']} chunks; "
        f"{t['loss']}.",
        f"- {t['optimizer']}, lr {t['lr']}, betas {tuple(t['betas'])}, eps {t['eps']}, weight decay "
        f"{t['weight_decay']}; {t['schedule']} after {t['warmup_steps']} warm-up steps; "
        f"grad-norm clip {t['grad_clip']}.",
        f"- Wall time: {log['wall_s']['training'] / 3600:.2f} h training with the evaluations "
        f"({log['wall_s']['step_mean']:.2f} s per step), {log['wall_s']['data'] / 60:.1f} min rendering and "
        f"encoding, {log['wall_s']['total'] / 3600:.2f} h in all; 1 thread, nice 19, torch "
        f"{log['machine']['torch']}, on a 2-core machine shared with other work.", "",
        "## Loss (nats per code)", "",
        f"`train` is evaluated on a fixed subset of {d['train_probe_chunks']} training chunks, `held-out` on all "
        f"{d['validation_chunks']} validation chunks, both in eval mode after the epoch; `running` is the mean "
        f"training loss over the epoch's steps. Uniform guessing: log(2048) = {log['log_2048']:.3f}.", "",
        "| epoch | step | running | train | held-out |", "|---|---|---|---|---|",
        f"| committed random `tiny-musicgen` (dim 32) | - | - | {ref['train']:.4f} | {ref['validation']:.4f} |",
    ]
    for r in log["epochs"]:
        label = "0 (random init, seed 422024)" if r["epoch"] == 0 else str(r["epoch"])
        running = "-" if r["train_running"] is None else f"{r['train_running']:.4f}"
        lines.append(f"| {label} | {r['step']} | {running} | {r['train']:.4f} | {r['validation']:.4f} |")
    lines += ["", "## SHA-256", "", "```", *(f"{v}  {k}" for k, v in log["sha256"].items()), "```", ""]
    return "\n".join(lines)


def notice() -> str:
    copyright_text = SOUNDFONT_COPYRIGHT.read_text(encoding="utf-8")
    return (
        "tiny-musicgen-trained: what trained it\n"
        "======================================\n\n"
        "The LM in state_dict.bin was trained only on the project's own music: the seeded scores\n"
        "generated by lumina_audit/_internal/scores.py (code of this project), played into audio with\n"
        "fluidsynth using the FluidR3_GM SoundFont (/usr/share/sounds/sf2/FluidR3_GM.sf2) from Debian's\n"
        "fluid-soundfont-gm package. No recording and no third-party music entered the training.\n"
        "No audio is committed; the audio existed only in temporary files while training.\n\n"
        "compression_state_dict.bin is a byte-identical copy of ../tiny-musicgen/compression_state_dict.bin\n"
        "(made by scripts/make_tiny_checkpoint.py from the project's synthetic music).\n\n"
        "The FluidR3_GM SoundFont is released under the MIT licence, which permits use, copying,\n"
        "modification, publication and distribution, including in proprietary works, provided the\n"
        "copyright notice and permission notice are included. Its copyright and licence, as stated in\n"
        f"{SOUNDFONT_COPYRIGHT}, follow verbatim:\n\n"
        "----------------------------------------------------------------------\n"
        f"{copyright_text.rstrip()}\n"
        "----------------------------------------------------------------------\n"
    )


if __name__ == "__main__":
    main()
