"""The run ledger: append-only, hash-chained, signed and Merkle-logged (in the style of CT and Rekor).

A ledger is a directory: a ``ledger.json`` header, framed ``records`` and ``checkpoints``, and a
``lock``. One module per concern:

- :mod:`.format`: the header, frames, records and checkpoints, and what makes each well formed;
- :mod:`.writer`: :class:`Ledger` (create, open, read, append under the writer lock) and
  :func:`repair` of a crashed writer's torn tail;
- :mod:`.verification`: :func:`verify`, every rule of a valid ledger, as findings;
- :mod:`.proofs`: :func:`prove` and the offline :func:`verify_proof` of one record's inclusion.

The formats are written up in ``docs/evidence.md``.
"""

from __future__ import annotations

from .format import NAMESPACE, PAYLOAD_TYPE, Frames, LedgerError, Record, decode_frames, encode_frame
from .proofs import ProofReport, prove, verify_proof
from .verification import Finding, LedgerReport, verify
from .writer import Appended, Ledger, RepairReport, repair

__all__ = [
    "NAMESPACE",
    "PAYLOAD_TYPE",
    "Appended",
    "Finding",
    "Frames",
    "Ledger",
    "LedgerError",
    "LedgerReport",
    "ProofReport",
    "Record",
    "RepairReport",
    "decode_frames",
    "encode_frame",
    "prove",
    "repair",
    "verify",
    "verify_proof",
]
