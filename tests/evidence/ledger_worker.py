"""Subprocess helper of tests/evidence/test_ledger.py: append one record to a ledger.

Usage: ``python -m tests.evidence.ledger_worker LEDGER KEY_PEM PRINCIPAL TAG [BARRIER_DIR]``. With a
barrier directory the worker touches ``ready-TAG`` there and waits for ``go`` before it appends,
so that all workers race for the lock at once. Prints the seq of the record it appended.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lumina_audit.evidence.keys import load_private_key
from lumina_audit.evidence.ledger import Ledger


def main(argv: list[str]) -> int:
    ledger, key_file, principal, tag = Path(argv[0]), Path(argv[1]), argv[2], argv[3]
    key = load_private_key(key_file)
    if len(argv) > 4:
        barrier = Path(argv[4])
        (barrier / f"ready-{tag}").touch()
        deadline = time.monotonic() + 60
        while not (barrier / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.002)
    appended = Ledger.open(ledger).append("run", {"worker": tag}, key, principal)
    print(appended.seq, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
