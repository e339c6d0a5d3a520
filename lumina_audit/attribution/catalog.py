"""A catalog store straight from audio files, all or nothing (inspection and tests; runs use a manifest)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import StoreError
from ..signature.session import Session
from .store import open_info
from .store_writer import StoreSummary, create_or_append

__all__ = ["extract_to_store"]


def extract_to_store(session: Session, paths: Sequence[Path], store: Path,
                     song_ids: Sequence[str] | None = None) -> StoreSummary:
    """Compute every signature, then write the store once, atomically.

    Nothing is written unless every input decodes and every signature is
    computed; the store refuses duplicates and another signature space.
    """
    if store.exists():
        info = open_info(store)  # refuse a foreign store before any work
        if info.space.digest != session.space.digest:
            raise StoreError(f"{store}: store is of signature space {info.space.digest}, "
                             f"this run of {session.space.digest}")
    results = session.signatures(paths, song_ids)
    return create_or_append(store, session.space, [s for _, s in results])
