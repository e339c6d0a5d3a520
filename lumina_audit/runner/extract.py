"""``kind: Extract``: audio files -> a signature store (step 7 of :mod:`.run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..evidence.manifest import LoadedManifest
from .base import (
    Context,
    Plan,
    audio_entries,
    primary,
    signatures,
)

__all__ = ["plan", "read"]


def read(_loaded: LoadedManifest) -> None:
    """Nothing to read before the model loads."""
    return None


def plan(ctx: Context) -> Plan:
    from ..attribution.store_writer import create_or_append, create_or_append_multi
    from ..evidence.manifest import API_V1

    loaded, session, inputs, audios, on_progress = ctx.loaded, ctx.session, ctx.inputs, ctx.audios, ctx.on_progress
    sigs = signatures(session, inputs, audios, on_progress)
    store = loaded.store_path

    def write(_seq: int) -> list[tuple[Path, str]]:
        store.parent.mkdir(parents=True, exist_ok=True)
        if loaded.api_version == API_V1:  # a version 1 manifest re-runs to its version 1 store, byte for byte
            create_or_append(store, session.space, primary(sigs, session))
        else:
            create_or_append_multi(store, [session.spaces[m.name] for m in session.methods], sigs)
        return [(store, "signature-store")]

    result: dict[str, Any] = {"signature_space_sha256": session.space.digest, "songs": len(sigs),
                              "chunks": sum(len(a.chunks) for a in audios)}
    if loaded.api_version != API_V1:
        result["signature_spaces"] = {m.name: session.spaces[m.name].digest for m in session.methods}
    return Plan(audio_entries(inputs, audios), result, write)
