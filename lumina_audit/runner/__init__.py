"""Area ``runner``: ``lumina-audit manifest run``, a signed manifest in, outputs and one ledger record out.

:mod:`.run` (the numbered steps every run takes), one module per kind (:mod:`.extract`,
:mod:`.calibrate`, :mod:`.attribute`: what it reads before the model loads and what it
computes) and :mod:`.base` (what the kinds share). An Extract streams through
:mod:`.journal` (its durable record of finished songs) on an engine: :mod:`.compute` (a
worker, and the local engine) or :mod:`.cluster` (Ray actors).

The top of the library: it imports every other area except ``cli``. Importing it imports
none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from .base import Progress, content_sha256, is_codes, load_input, signatures
    from .run import run_manifest

__all__ = [
    "Progress",
    "content_sha256",
    "is_codes",
    "load_input",
    "run_manifest",
    "signatures",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "Progress": ".base",
    "content_sha256": ".base",
    "is_codes": ".base",
    "load_input": ".base",
    "signatures": ".base",
    "run_manifest": ".run",
})
