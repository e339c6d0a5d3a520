"""One song computed by one worker: what the local engine and every Ray worker run (issue 13).

A worker is one process under the manifest's pins with the model loaded through
:meth:`~lumina_audit.signature.session.Session.open` (digests checked). For each :class:`Job`
it decodes the file (its pinned digest checked against the very bytes decoded), computes
every method's signatures in one pass per chunk (:func:`~lumina_audit.signature.extract.signatures_of_audio`)
and returns a :class:`Done`, or a :class:`Bad` when the input itself is refused. Whatever
the engine, the bits are those of this function on this worker's environment
(:meth:`Worker.info`), which the coordinator compares across workers.
"""

from __future__ import annotations

import os
import platform
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import AudioError, LuminaError, SignatureError
from ..signature.pins import Pins
from ..signature.result import Signature
from ..signature.space import SignatureConfig

__all__ = ["Bad", "Done", "Job", "LocalEngine", "OnResult", "OnWorker", "Worker", "new_worker_id"]


@dataclass(frozen=True)
class Job:
    """One song to compute: its index in the manifest's input order, its file, its id, its pinned digest."""

    index: int
    path: str
    song_id: str
    expected_sha256: str | None


@dataclass(frozen=True)
class Done:
    """A computed song: the identity of the bytes decoded and every method's :class:`Signature`, by method."""

    index: int
    file_size: int
    file_sha256: str
    pcm_sha256: str
    chunks: int
    signatures: dict[str, Signature]
    worker: str
    seconds: float


@dataclass(frozen=True)
class Bad:
    """A song refused because of its input (cannot be decoded, too short, digest differs): the reason, one line."""

    index: int
    reason: str
    worker: str


def new_worker_id() -> str:
    """A fresh worker id: 12 lowercase hex digits."""
    return secrets.token_hex(6)


class Worker:
    """A process that computes songs: pins checked and applied, model loaded and checked.

    Under Ray this class is the actor (``ray.remote(Worker)``): its environment was set to
    :func:`~lumina_audit.signature.pins.pinned_environ` before Python started. Errors of
    the set-up are kept and reported by :meth:`info` instead of killing the actor, so the
    coordinator can name them in one line.
    """

    def __init__(self, engine: str, worker_id: str, model_dir: str, digests: dict[str, str], pins: Pins,
                 config: SignatureConfig, methods: Sequence[str]) -> None:
        self.id, self.engine, self.session = worker_id, engine, None
        self.error: tuple[str, str | None] | None = None
        self._info: dict[str, Any] = {}
        try:
            from ..signature.environment import describe
            from ..signature.methods import get_method
            from ..signature.pins import check_environment
            from ..signature.session import Session

            check_environment(pins)
            session = Session.open(model_dir, digests, pins, config, [get_method(m) for m in methods])
            self.session = session
            self._info = {"id": worker_id, "engine": engine, "host": platform.node(), "pid": os.getpid(),
                          "device": str(session.model.device), "environment": describe(pins)}
            self._spaces = {name: s.digest for name, s in session.spaces.items()}
        except LuminaError as exc:
            self.error = (exc.message, exc.hint)

    def info(self) -> dict[str, Any]:
        """``{"id", "engine", "host", "pid", "device", "environment", "spaces"}``, or ``{"id", "error", "hint"}``."""
        if self.error is not None:
            return {"id": self.id, "host": platform.node(), "error": self.error[0], "hint": self.error[1]}
        return {**self._info, "spaces": self._spaces}

    def compute(self, job: Job) -> Done | Bad | dict[str, Any]:
        """The signatures of one song (a :class:`Bad` for a refused input; a dict with ``error`` otherwise)."""
        from ..signature.audio import load_audio
        from ..signature.extract import signatures_of_audio

        session = self.session
        if session is None:
            return self.info()
        start = time.monotonic()
        try:
            audio = load_audio(job.path, session.config, job.expected_sha256)
            sigs = signatures_of_audio(audio, session.model, session.config, session.pins, job.song_id,
                                       session.methods)
        except (AudioError, SignatureError) as exc:
            return Bad(job.index, exc.message, self.id)
        except LuminaError as exc:
            return {"id": self.id, "error": exc.message, "hint": exc.hint}
        return Done(job.index, audio.file_size, audio.file_sha256, audio.pcm_sha256, len(audio.chunks), sigs,
                    self.id, time.monotonic() - start)


#: What a coordinator hears from an engine: a worker that came up (its :meth:`Worker.info`), a result.
OnWorker = Callable[[dict[str, Any]], None]
OnResult = Callable[[Done | Bad], None]


class LocalEngine:
    """``engine: local``: one :class:`Worker` in the ``manifest run`` process itself, songs in manifest order."""

    def __init__(self, model_dir: str, digests: dict[str, str], pins: Pins, config: SignatureConfig,
                 methods: Sequence[str]) -> None:
        self._args = (model_dir, digests, pins, config, tuple(methods))
        self._worker: Worker | None = None

    def start(self, on_worker: OnWorker) -> None:
        from .base import RunError

        self._worker = Worker("local", new_worker_id(), *self._args)
        if self._worker.error is not None:
            raise RunError(self._worker.error[0], hint=self._worker.error[1])
        on_worker(self._worker.info())

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        from .base import RunError

        if self._worker is None:
            raise RunError("the local engine was not started")
        for job in jobs:
            result = self._worker.compute(job)
            if isinstance(result, dict):
                raise RunError(str(result["error"]), hint=result.get("hint"))
            on_result(result)

    def close(self) -> None:
        self._worker = None
