"""Test double of ``python -m lumina_audit``: the same command, with a worker that SIGKILLs itself once.

Usage: ``python -m tests.runner.kill_worker INDEX MARKER ARGS...`` runs ``lumina-audit ARGS...``
(re-executed under the numerical pins as the command is, but as this module), with every
:class:`~lumina_audit.runner.compute.Worker` of the run a :class:`KillingWorker`: the process
computing song ``INDEX`` SIGKILLs itself after that song's first chunk, once (the first process
to create the file ``MARKER``). Under ``engine: local`` that is the run's own process; under
``engine: ray`` an actor, whose class Ray imports by this module's path (Ray puts the
driver's working directory, the repository root here, on its workers' ``sys.path``).

Nothing of this is in the product: the module replaces ``Worker`` in
:mod:`lumina_audit.runner.compute` (the local engine) and :mod:`lumina_audit.runner.cluster`
(the Ray engine) in this process, and hands ``INDEX:MARKER`` to the workers in the test-only
variable :data:`SPEC_ENV`, which only this module reads.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import Any

from lumina_audit.runner.compute import Bad, Done, Job, Worker

__all__ = ["SPEC_ENV", "KillingWorker", "main"]

#: ``INDEX:MARKER``, set by :func:`main` for the run's workers (Ray actors inherit the environment).
SPEC_ENV = "KILL_WORKER_TEST_DOUBLE_AT"


def _kill_once(marker: str) -> None:
    """SIGKILL this process unless another one created ``marker`` first."""
    try:
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


class KillingWorker(Worker):
    """A :class:`Worker` whose process dies after the first chunk of the song :data:`SPEC_ENV` names, once."""

    def compute(self, job: Job) -> Done | Bad | dict[str, Any]:
        at, _, marker = os.environ.get(SPEC_ENV, "").partition(":")
        if not (at.isdigit() and int(at) == job.index and marker):
            return super().compute(job)
        extract: Any = importlib.import_module("lumina_audit.signature.extract")
        real = extract.signatures_of_audio

        def killing(*args: Any, **kwargs: Any) -> Any:
            def on_chunk(done: int, _total: int) -> None:
                if done == 1:
                    _kill_once(marker)

            return real(*args, **kwargs, on_chunk=on_chunk)

        extract.signatures_of_audio = killing  # Worker.compute imports it from there when it runs
        try:
            return super().compute(job)
        finally:
            extract.signatures_of_audio = real


def main(argv: list[str]) -> None:
    """``INDEX MARKER ARGS...``: run ``lumina-audit ARGS...`` with :class:`KillingWorker` workers."""
    from lumina_audit.cli.main import _pins_from_argv
    from lumina_audit.cli.main import main as cli_main
    from lumina_audit.signature.pins import reexec_if_needed

    index, marker, args = argv[0], argv[1], argv[2:]
    if not index.isdigit():
        raise SystemExit(f"usage: python -m tests.runner.kill_worker INDEX MARKER ARGS... (INDEX is {index!r})")
    os.environ[SPEC_ENV] = f"{index}:{marker}"
    # What the command does first, but re-executing this module (the command would run lumina_audit's own).
    reexec_if_needed(_pins_from_argv(args), argv, entry=(sys.executable, "-m", "tests.runner.kill_worker"))
    from lumina_audit.runner import cluster, compute

    compute.Worker = KillingWorker  # type: ignore[misc]
    cluster.Worker = KillingWorker  # type: ignore[attr-defined]
    cli_main(args)


if __name__ == "__main__":
    # Through the module's own name, so that Ray pickles KillingWorker by reference, not as __main__'s.
    from tests.runner.kill_worker import main as run

    run(sys.argv[1:])
