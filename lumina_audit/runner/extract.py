"""``kind: Extract``: audio files -> a signature store (step 7 of :mod:`.run`)."""

from __future__ import annotations

from pathlib import Path

from ..evidence.manifest import LoadedManifest
from .base import (
    Context,
    Plan,
    audio_entries,
    signatures,
)

__all__ = ["plan", "read"]


def read(_loaded: LoadedManifest) -> None:
    """Nothing to read before the model loads."""
    return None


def plan(ctx: Context) -> Plan:
    from ..attribution.store import create_or_append

    loaded, session, inputs, audios, on_progress = ctx.loaded, ctx.session, ctx.inputs, ctx.audios, ctx.on_progress
    sigs = signatures(session, inputs, audios, on_progress)
    store = loaded.store_path

    def write(_seq: int) -> list[tuple[Path, str]]:
        store.parent.mkdir(parents=True, exist_ok=True)
        create_or_append(store, session.space, sigs)
        return [(store, "signature-store")]

    result = {"signature_space_sha256": session.space.digest, "songs": len(sigs),
              "chunks": sum(len(a.chunks) for a in audios)}
    return Plan(audio_entries(inputs, audios), result, write)
