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
    from .run import RunError, RunResult, recorded_outputs, run_manifest

__all__ = [
    "RunError",
    "RunResult",
    "recorded_outputs",
    "run_manifest",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "run_manifest": ".run",
    "RunResult": ".run",
    "RunError": ".run",
    "recorded_outputs": ".run",
})
