"""What a ``lumina-audit/v2`` Extract does with a bad input (issue 13)."""

from __future__ import annotations

from typing import Literal

__all__ = ["BadInputPolicy"]

#: ``stop``: the first bad input refuses the run (exit 2, nothing written); ``skip``: it is left
#: out of the store and listed, with its reason, in the run's ledger record.
BadInputPolicy = Literal["stop", "skip"]
