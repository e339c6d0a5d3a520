"""Subprocess helper of tests/evidence/test_ledger.py: append one record to a ledger.

Usage: ``python -m tests.evidence.ledger_worker LEDGER KEY_PEM PRINCIPAL TAG [BARRIER_DIR] [--torn]``. With a
barrier directory the worker touches ``ready-TAG`` there and waits for ``go`` before it appends,
so that all workers race for the lock at once. Prints the seq of the record it appended.

``--torn`` is a crash in the middle of a record (a test double, not a feature of the ledger): the
append writes the first half of the record's frame to ``records`` with the ledger's own durable
append (one ``os.write`` to an ``O_APPEND`` fd, then fsync), under the writer lock, and then
sleeps 60 s, to be killed there.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lumina_audit.evidence.keys import load_private_key
from lumina_audit.evidence.ledger import Ledger


def crash_mid_record() -> None:
    """Make this process's next append to a ``records`` file write half the frame, then hang (to be killed)."""
    from lumina_audit.evidence.ledger import writer
    from lumina_audit.evidence.ledger.format import RECORDS

    real = writer._append_durably

    def torn(path: Path, data: bytes) -> None:
        if path.name != RECORDS:
            real(path, data)
            return
        real(path, data[: len(data) // 2])
        time.sleep(60)
        raise SystemExit("the torn write was not killed within 60 s")

    writer._append_durably = torn


def main(argv: list[str]) -> int:
    if "--torn" in argv:
        argv = [a for a in argv if a != "--torn"]
        crash_mid_record()
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
