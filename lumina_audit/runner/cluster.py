"""``engine: ray``: an Extract's songs computed by Ray actors, each a :class:`~.compute.Worker` (issue 13).

Each actor's environment is :func:`~lumina_audit.signature.pins.pinned_environ` of the
manifest's pins, set through ``runtime_env`` before its Python starts; it checks the pins,
loads the model through ``Session.open`` (digests checked) and reports its
:func:`~lumina_audit.signature.environment.describe`. Each actor has :data:`IN_FLIGHT` songs
queued, so it never waits for the coordinator between two. A worker that dies (SIGKILL, lost
node) loses nothing: its songs go back to the front of the queue for the other workers, a
replacement actor is started (at most ``workers`` replacements in all), and a song whose
worker died :data:`MAX_ATTEMPTS` times while computing it is a bad input. A result is only
ever taken from a task that returned, so no song is journaled twice.

Without ``address`` a local cluster is started for the run and shut down after it: usage
statistics off, no dashboard, token authentication with a fresh token kept in the process
environment (nothing written under ``~/.ray``), and every Ray server on the loopback
interface (Ray's ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` switch; Ray turns an explicit
``127.0.0.1`` node address into the machine's address, so that alone would not do).
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import os
import secrets
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..signature.pins import Pins, pinned_environ
from ..signature.space import SignatureConfig
from .base import RunError
from .compute import Bad, Job, OnResult, OnWorker, Worker, new_worker_id

__all__ = ["IN_FLIGHT", "MAX_ATTEMPTS", "START_TIMEOUT_S", "RayEngine"]

#: Songs queued on each actor: the one it computes and the next.
IN_FLIGHT = 2

#: A song whose worker died this many times is a bad input (skipped, or the run stops).
MAX_ATTEMPTS = 3
#: How long the run waits for a first (or, after losing all, a new) worker to come up.
START_TIMEOUT_S = 900.0
#: Environment of the coordinator while it drives a local cluster (restored afterwards). The token is
#: one per process: Ray keeps the first it sees for the life of the process.
_LOCAL_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token",
              "RAY_AUTH_TOKEN": secrets.token_hex(32)}


@dataclass
class _Slot:
    actor: Any
    id: str
    ready: Any  # the ObjectRef of Worker.info() until the worker is up, then None
    inflight: dict[Any, Job] = field(default_factory=dict)  # ObjectRef -> song, oldest first


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


class RayEngine:
    """Ray actors as workers; ``retries`` lists ``(song index, id of the worker that died computing it)``."""

    def __init__(self, workers: int, address: str | None, cpus: float, gpus: float, model_dir: str,
                 digests: dict[str, str], pins: Pins, config: SignatureConfig, methods: Sequence[str]) -> None:
        self.workers, self.address, self.cpus, self.gpus = workers, address, cpus, gpus
        self._args = (model_dir, digests, pins, config, tuple(methods))
        self.pins = pins
        self.retries: list[tuple[int, str]] = []
        self._slots: list[_Slot] = []
        self._saved_env: dict[str, str | None] = {}
        self._temp: str | None = None
        self._ray: Any = None
        self._on_worker: OnWorker | None = None
        self._replacements = 0
        self._stdout: contextlib.AbstractContextManager[Any] | None = None

    # ------------------------------------------------------------------ cluster
    def start(self, on_worker: OnWorker) -> None:
        """Join the cluster at ``address``, or start a local one on loopback; start the workers."""
        self._on_worker = on_worker
        # Ray's driver prints the raylet's error messages (a worker that died) on stdout, from a thread;
        # stdout is the command's result (``manifest run --json``), so they go to stderr while the engine runs.
        self._stdout = contextlib.redirect_stdout(sys.stderr)
        self._stdout.__enter__()
        env = _LOCAL_ENV if self.address is None else {"RAY_USAGE_STATS_ENABLED": "0"}
        for key, value in env.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        try:
            import logging

            import ray as ray_module
        except ImportError:
            raise RunError("execution.engine is ray, but ray is not installed",
                           hint="install the locked requirements (make venv), or use engine: local") from None
        ray: Any = ray_module
        self._ray = ray
        try:
            if self.address is None:
                self._temp = tempfile.mkdtemp(prefix="lumina-ray-")
                gpus = None if self.gpus > 0 else 0
                ray.init(num_cpus=max(1, math.ceil(self.workers * self.cpus)), num_gpus=gpus,
                         include_dashboard=False, object_store_memory=128 * 1024**2, _temp_dir=self._temp,
                         log_to_driver=False, logging_level=logging.ERROR)
                ip = ray.util.get_node_ip_address()
                if not ipaddress.ip_address(ip).is_loopback:
                    raise RunError(f"the local Ray cluster listens on {ip}, not on the loopback interface",
                                   hint="run lumina-audit in a fresh process (ray was imported before the run)")
            else:
                ray.init(address=self.address, log_to_driver=False, logging_level=logging.ERROR)
        except RunError:
            raise
        except Exception as exc:  # ray raises ConnectionError, RuntimeError, ValueError...
            where = f"at {self.address}" if self.address else "(a local cluster)"
            raise RunError(f"cannot start or join a Ray cluster {where}: {_first_line(exc)}") from None
        for _ in range(self.workers):
            self._spawn()

    def _spawn(self) -> None:
        ray = self._ray
        actor_class = ray.remote(Worker)
        worker_id = new_worker_id()
        actor = actor_class.options(num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0,
                                    runtime_env={"env_vars": pinned_environ(self.pins, {})}).remote(
            "ray", worker_id, *self._args)
        self._slots.append(_Slot(actor, worker_id, actor.info.remote()))

    def close(self) -> None:
        """Stop the workers; shut a local cluster down (or leave the one at ``address``); restore the environment."""
        ray = self._ray
        if ray is not None:
            for slot in self._slots:
                with contextlib.suppress(Exception):  # already dead or unreachable: nothing to stop
                    ray.kill(slot.actor)
            self._slots = []
            ray.shutdown()
            self._ray = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None
        if self._stdout is not None:
            self._stdout.__exit__(None, None, None)
            self._stdout = None

    # ------------------------------------------------------------------ songs
    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        """Compute every job on the workers; results are handed to ``on_result`` as they arrive."""
        ray = self._ray
        if ray is None or self._on_worker is None:
            raise RunError("the Ray engine was not started")
        pending, attempts = deque(jobs), dict.fromkeys((j.index for j in jobs), 0)
        while pending or any(s.inflight for s in self._slots):
            for slot in self._slots:
                while slot.ready is None and len(slot.inflight) < IN_FLIGHT and pending:
                    job = pending.popleft()
                    slot.inflight[slot.actor.compute.remote(job)] = job
            if not self._slots:
                raise RunError("every Ray worker died; the songs computed so far are in the journal",
                               hint="run the same manifest again to compute the rest")
            waiting = {s.ready: s for s in self._slots if s.ready is not None}
            for s in self._slots:
                waiting |= dict.fromkeys(s.inflight, s)
            busy = any(s.inflight for s in self._slots)
            done, _ = ray.wait(list(waiting), num_returns=1, timeout=None if busy else START_TIMEOUT_S)
            if not done:
                raise RunError(f"no Ray worker came up within {START_TIMEOUT_S:.0f} s (each asks for "
                               f"{self.cpus:g} CPU and {self.gpus:g} GPU)",
                               hint="`ray status` on the cluster shows what it has free")
            slot = waiting[done[0]]
            try:
                value = ray.get(done[0])
            except ray.exceptions.RayActorError as exc:
                if getattr(exc, "actor_init_failed", False):
                    raise RunError(f"Ray worker {slot.id} failed to start: {_first_line(exc)}") from None
                self._lost(slot, pending, attempts, on_result)
                continue
            except ray.exceptions.RayError as exc:
                raise RunError(f"Ray worker {slot.id} failed: {_first_line(exc)}") from None
            if slot.ready is not None:  # a worker came up (songs are queued on a slot only once it is up)
                slot.ready = None
                if "error" in value:
                    raise RunError(f"Ray worker {slot.id} on {value.get('host')}: {value['error']}",
                                   hint=value.get("hint"))
                self._on_worker(value)
                continue
            slot.inflight.pop(done[0])
            if isinstance(value, dict):
                raise RunError(f"Ray worker {slot.id}: {value['error']}", hint=value.get("hint"))
            on_result(value)

    def _lost(self, slot: _Slot, pending: deque[Job], attempts: dict[int, int], on_result: OnResult) -> None:
        """A worker died: its songs go back to the front of the queue, and it is replaced.

        The oldest song in flight is the one it was computing: that one counts an attempt, and after
        :data:`MAX_ATTEMPTS` it is a bad input; the songs queued behind it had not started.
        """
        self._slots.remove(slot)
        queued = list(slot.inflight.values())
        if queued:
            computing = queued[0]
            self.retries.append((computing.index, slot.id))
            attempts[computing.index] += 1
            if attempts[computing.index] >= MAX_ATTEMPTS:
                on_result(Bad(computing.index, f"its worker died {MAX_ATTEMPTS} times while computing it", slot.id))
                queued = queued[1:]
            pending.extendleft(reversed(queued))
        if self._replacements < self.workers:
            self._replacements += 1
            self._spawn()
