"""The run ledger: append-only, hash-chained, signed and Merkle-logged (in the style of CT and Rekor).

A ledger is a directory: a ``ledger.json`` header, framed ``records`` and ``checkpoints``, and a
``lock``. One module per thing it does, and no private name crosses from one to another:

- :mod:`.format`: the files, frames, header, records and checkpoints: their shapes, read and written,
  checked without keys;
- :mod:`.signatures`: a record's and a checkpoint's signature, checked against the trust file;
- :mod:`.tree`: the Merkle tree over the records (the root of every prefix, consistency of checkpoints);
- :mod:`.writer`: :class:`Ledger` (create, open, read, append) under the ledger's lock, and
  :func:`repair` of a crashed writer's torn tail;
- :mod:`.verification`: :func:`verify`, every rule of a valid ledger, as findings;
- :mod:`.proofs`: :func:`prove` and the offline :func:`verify_proof` of one record's inclusion.

The formats are written up in ``docs/evidence.md``.
"""

from __future__ import annotations

from .format import (
    LEDGER_NAMESPACE,
    LEDGER_PAYLOAD_TYPE,
    Frames,
    LedgerError,
    Record,
    decode_frames,
    encode_frame,
)
from .proofs import ProofReport, prove, verify_proof
from .verification import Finding, LedgerReport, verify
from .writer import Appended, Ledger, RepairReport, repair

__all__ = [
    "LEDGER_NAMESPACE",
    "LEDGER_PAYLOAD_TYPE",
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
