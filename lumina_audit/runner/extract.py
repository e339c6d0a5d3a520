"""``kind: Extract``: audio files -> a signature store, one song at a time (steps 5 and 7 of :mod:`.run`).

:func:`read`, before any model work: every input is checked cheaply
(:func:`~lumina_audit.signature.audio.probe_audio`: it exists, its size, its header within
``max_seconds``, its pinned digest by a streaming hash) and the run's journal (:mod:`.journal`)
is opened: a journal of another manifest or signature space is refused, and each journaled
song is kept only if its input is still the file it was computed from.

:func:`plan`: the engine (:mod:`.compute` in this process, or :mod:`.cluster` on Ray actors)
computes the other songs; each result is checked (its worker's bit-relevant environment equals
the others', its signature spaces are the run's) and journaled as it arrives. Memory holds one
song's audio and signatures per worker and a few hundred bytes of metadata per song (what the
ledger record lists anyway). The store is written from the journal in blocks, in manifest order
(:func:`~lumina_audit.attribution.store_writer.write_streamed`), byte for byte the store an
uninterrupted run writes, and recorded by one ledger record; then the journal is removed.

Bad inputs (``on_bad_input``, ``lumina-audit/v2``): under ``stop`` the first refuses the run
(exit 2) before the model loads when the cheap checks find it, else when its song is decoded
(the songs computed so far stay in the journal); under ``skip`` each is left out and listed,
with its reason, in the record's ``result.skipped``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AudioError
from ..evidence.manifest import API_V1, LoadedManifest, ResolvedInput, resolve_inputs
from .base import Context, Plan, Progress, RunError
from .compute import Bad, Done, Job, LocalEngine
from .journal import Journal, SongEntry, journal_path

__all__ = ["Checked", "Skip", "plan", "read"]


@dataclass(frozen=True)
class Skip:
    """A bad input left out under ``on_bad_input: skip``."""

    index: int
    path: str
    song_id: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "path": self.path, "song_id": self.song_id, "reason": self.reason}


@dataclass
class Checked:
    """What :func:`read` found: the songs to compute, those kept from the journal, the bad inputs."""

    inputs: list[ResolvedInput]
    jobs: list[Job]
    kept: dict[int, SongEntry]
    skipped: list[Skip]
    journal: Journal
    journal_workers: dict[str, dict[str, Any]]
    dropped: int
    policy: str
    spaces: dict[str, str] = field(default_factory=dict)


def _policy(loaded: LoadedManifest) -> str:
    return str(getattr(loaded.manifest, "on_bad_input", "stop"))


def _refuse_bad(bad: list[Skip], loaded: LoadedManifest) -> None:
    more = f" (and {len(bad) - 1} more bad input(s))" if len(bad) > 1 else ""
    hint = "nothing was computed; fix or remove the input" + (
        ", or set on_bad_input: skip to leave bad inputs out" if loaded.api_version != API_V1 else "")
    raise RunError(bad[0].reason + more, hint=hint)


def read(loaded: LoadedManifest) -> Checked:
    """Check every input cheaply and open the journal, before the model loads (no audio is decoded)."""
    from ..signature.audio import probe_audio

    policy, config = _policy(loaded), loaded.config()
    inputs = resolve_inputs(loaded, allow_missing=policy == "skip")
    spaces = {str(s.as_dict()["method"]): s.digest for s in loaded.spaces()}
    dims = {m.name: m.dim for m in loaded.methods()}
    store = loaded.store_path
    journal = Journal.open(journal_path(store), loaded.digest, spaces, dims, store.name)
    journaled = set(journal.indexes())
    jobs: list[Job] = []
    kept: dict[int, SongEntry] = {}
    bad: list[Skip] = []
    stale: list[int] = []
    for index, inp in enumerate(inputs):
        try:
            probe = probe_audio(inp.path, config, inp.expected_sha256, hash_file=index in journaled)
        except AudioError as exc:
            bad.append(Skip(index, str(inp.path), inp.song_id, exc.message))
            continue
        if index in journaled:
            entry, _ = journal.read(index)
            if (entry.song_id, entry.path, entry.file_size, entry.file_sha256) == (
                    inp.song_id, str(inp.path), probe.file_size, probe.file_sha256):
                kept[index] = entry
                continue
            stale.append(index)  # computed from another file than the one there now
        jobs.append(Job(index, str(inp.path), inp.song_id, inp.expected_sha256))
    if bad and policy == "stop":
        _refuse_bad(bad, loaded)  # before anything changes, the journal included
    if not jobs and not kept:
        raise RunError(f"every one of the {len(inputs)} input(s) is bad; there is nothing to store",
                       hint=bad[0].reason if bad else None)
    workers = journal.workers()
    for entry in kept.values():
        if entry.worker not in workers:
            raise RunError(f"{journal.path}: song {entry.index} names worker {entry.worker}, which the journal does "
                           "not hold", hint=f"remove the journal ({journal.path}) to compute every song again")
    for index in stale:
        journal.drop(index)
    return Checked(inputs, jobs, kept, bad, journal, workers, len(stale), policy, spaces)


class _Collector:
    """The coordinator: every worker and result is checked, journaled and counted here, as it arrives."""

    def __init__(self, checked: Checked, ctx: Context) -> None:
        self.c, self.ctx = checked, ctx
        self.entries: dict[int, SongEntry] = dict(checked.kept)
        self.skipped: list[Skip] = list(checked.skipped)
        self.workers: dict[str, dict[str, Any]] = {}
        self.pcm: dict[str, int] = {e.pcm_sha256: e.index for e in self.entries.values()}
        self.reference: tuple[str, dict[str, Any]] | None = None
        self.computed, self.started = 0, time.monotonic()
        from ..signature.environment import bit_relevant

        for wid in sorted({e.worker for e in checked.kept.values()}):
            info = checked.journal_workers[wid]
            self._compare(info, bit_relevant(info["environment"]), "the songs already in the journal")

    def _compare(self, info: dict[str, Any], bits: dict[str, Any], what: str) -> None:
        from ..signature.environment import differences

        if self.reference is None:
            self.reference = (str(info["id"]), bits)
            return
        if bits != self.reference[1]:
            diff = "; ".join(differences(self.reference[1], bits)[:4])
            raise RunError(f"worker {info['id']} on {info.get('host')} computes under another environment than "
                           f"{what} (worker {self.reference[0]}): {diff}",
                           hint="every song of a store must come from one environment; make the workers alike"
                           + (f", or remove the journal ({self.c.journal.path}) to compute every song again"
                              if self.c.kept else ""))

    def worker(self, info: dict[str, Any]) -> None:
        from ..signature.environment import bit_relevant

        if info.get("spaces") != self.c.spaces:
            raise RunError(f"worker {info['id']} on {info.get('host')} computes signature spaces "
                           f"{info.get('spaces')}, this run's are {self.c.spaces}")
        self._compare(info, bit_relevant(info["environment"]), "the other workers")
        record = {k: v for k, v in info.items() if k != "spaces"}
        self.c.journal.add_worker(record)
        self.workers[str(info["id"])] = record
        if self.computed == 0:
            self.started = time.monotonic()

    def result(self, r: Done | Bad) -> None:
        job = self.c.inputs[r.index]
        if isinstance(r, Bad):
            if self.c.policy == "stop":
                raise RunError(r.reason, hint=f"the {len(self.entries)} song(s) computed so far are kept in the "
                               f"journal {self.c.journal.path}; fix the input and run the same manifest again")
            self.skipped.append(Skip(r.index, str(job.path), job.song_id, r.reason))
        else:
            first = self.pcm.get(r.pcm_sha256)
            if first is not None and self.c.policy == "stop":
                raise RunError(f"{job.path}: the same audio (PCM SHA-256 {r.pcm_sha256}) as input "
                               f"{self.c.inputs[first].path}; a store holds each song once",
                               hint="remove one of them from the manifest")
            entry = SongEntry(r.index, job.song_id, str(job.path), r.file_size, r.file_sha256, r.pcm_sha256,
                              r.chunks, r.worker)
            self.c.journal.put(entry, r.signatures)
            self.entries[r.index] = entry
            self.pcm.setdefault(r.pcm_sha256, r.index)
            self.computed += 1
        self.progress(str(job.path.name))

    def progress(self, name: str = "") -> None:
        if self.ctx.on_progress is None:
            return
        total, done = len(self.c.inputs), len(self.entries)
        rate = self.computed / max(time.monotonic() - self.started, 1e-9) if self.computed else None
        left = total - done - len(self.skipped)
        self.ctx.on_progress(Progress("songs", done, total, len(self.skipped), rate,
                                      left / rate if rate else None, name))

    def stored(self) -> list[SongEntry]:
        """The songs of the store, in manifest order; under ``skip`` a later copy of a song's audio is left out."""
        out: list[SongEntry] = []
        seen: dict[str, SongEntry] = {}
        for index in sorted(self.entries):
            entry = self.entries[index]
            if entry.pcm_sha256 in seen:
                first = seen[entry.pcm_sha256]
                reason = (f"{entry.path}: the same audio (PCM SHA-256 {entry.pcm_sha256}) as input {first.path}; "
                          "a store holds each song once")
                if self.c.policy == "stop":
                    raise RunError(reason, hint="remove one of them from the manifest")
                self.skipped.append(Skip(index, entry.path, entry.song_id, reason))
                continue
            seen[entry.pcm_sha256] = entry
            out.append(entry)
        if not out:
            raise RunError("every input was skipped; there is nothing to store")
        return out


def _engine(loaded: LoadedManifest) -> Any:
    """The manifest's engine: :class:`~.compute.LocalEngine`, or :class:`~.cluster.RayEngine` (``lumina-audit/v2``)."""
    m, pins, config = loaded.manifest, loaded.pins(), loaded.config()
    args = (str(loaded.model_dir), m.model.digests(), pins, config, [x.name for x in loaded.methods()])
    execution = getattr(m, "execution", None)
    if execution is None or execution.engine == "local":
        return LocalEngine(*args)
    from .cluster import RayEngine

    return RayEngine(execution.workers, execution.address, execution.resources.cpus, execution.resources.gpus, *args)


def plan(ctx: Context) -> Plan:
    from ..attribution.store_writer import StoreRows, write_streamed

    loaded, checked = ctx.loaded, ctx.pre
    collector = _Collector(checked, ctx)
    collector.progress()
    engine = _engine(loaded)
    try:
        engine.start(collector.worker)
        engine.run(checked.jobs, collector.result)
    finally:
        engine.close()
    stored = collector.stored()
    journal, store = checked.journal, loaded.store_path
    spaces = list(loaded.spaces())
    rows = StoreRows([e.song_id for e in stored], [e.file_sha256 for e in stored], [e.pcm_sha256 for e in stored],
                     [e.chunks for e in stored])

    def read_block(start: int, stop: int) -> list[dict[str, Any]]:
        return [journal.read(e.index)[1] for e in stored[start:stop]]

    def write(_seq: int) -> list[tuple[Path, str]]:
        store.parent.mkdir(parents=True, exist_ok=True)  # a version 1 manifest re-runs to its version 1 store
        write_streamed(store, spaces, rows, read_block, version=1 if loaded.api_version == API_V1 else 2)
        return [(store, "signature-store")]

    def after(_seq: int, _written: list[Path]) -> tuple[Any, ...]:
        with contextlib.suppress(OSError):  # the run is recorded; a journal left behind is only disk space
            journal.remove()
        return ()

    result: dict[str, Any] = {"signature_space_sha256": spaces[0].digest, "songs": len(stored),
                              "chunks": sum(e.chunks for e in stored)}
    if loaded.api_version != API_V1:
        result["signature_spaces"] = dict(checked.spaces)
        result["skipped"] = [s.as_dict() for s in sorted(collector.skipped, key=lambda s: s.index)]
    songs_of: dict[str, list[int]] = {}
    for e in stored:
        songs_of.setdefault(e.worker, []).append(e.index)
    workers = {**checked.journal_workers, **collector.workers}
    execution = {
        "engine": getattr(getattr(loaded.manifest, "execution", None), "engine", "local"),
        "workers": [{**info, "songs": songs_of.get(wid, [])} for wid, info in sorted(workers.items())],
        "resumed": len(checked.kept), "recomputed": checked.dropped,
        "retries": [{"song": i, "worker": w} for i, w in getattr(engine, "retries", [])],
    }
    inputs = [{"path": e.path, "size": e.file_size, "sha256": e.file_sha256, "song_id": e.song_id,
               "pcm_sha256": e.pcm_sha256, "chunks": e.chunks} for e in stored]
    return Plan(inputs, result, write, after, record={"execution": execution})
