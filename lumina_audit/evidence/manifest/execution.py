"""Where a ``lumina-audit/v2`` Extract computes, and what it does with a bad input (issue 13).

``execution`` never changes a bit of the store: every engine computes the same signatures
under the same pins, and the store is written in manifest order from the run's journal.
It is signed with the rest of the manifest, so a reviewer sees where the work runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from .fields import StrictModel, matching

__all__ = ["BadInputPolicy", "ExecutionResources", "ExecutionSettings", "resources_problem"]

#: ``stop``: the first bad input refuses the run (exit 2, nothing written); ``skip``: it is left
#: out of the store and listed, with its reason, in the run's ledger record.
BadInputPolicy = Literal["stop", "skip"]

#: A Ray address: ``auto``, ``HOST:PORT`` (a driver on a cluster node) or ``ray://HOST:PORT`` (Ray Client).
_ADDRESS = r"auto|(ray://)?([A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\]):[0-9]{1,5}"


class ExecutionResources(StrictModel):
    """What each Ray worker reserves: CPUs (at least the pinned thread count) and GPUs (CUDA pins: above 0)."""

    cpus: Annotated[float, Field(gt=0, le=1024)] = 1.0
    gpus: Annotated[float, Field(ge=0, le=64)] = 0.0


class ExecutionSettings(StrictModel):
    """``engine: local`` computes in the ``manifest run`` process; ``engine: ray`` on ``workers`` Ray actors.

    Without ``address`` a Ray run starts a local cluster on the loopback interface and shuts it
    down afterwards; with one it joins the cluster there and leaves it running.
    """

    engine: Literal["local", "ray"] = "local"
    workers: Annotated[int, Field(ge=1, le=4096)] = 1
    address: Annotated[str, matching(_ADDRESS, "{value!r} is not a Ray address (auto, HOST:PORT or "
                                     "ray://HOST:PORT)")] | None = None
    resources: ExecutionResources = Field(default_factory=ExecutionResources)

    @model_validator(mode="after")
    def _local_is_one_process(self) -> ExecutionSettings:
        if self.engine == "local" and (self.workers != 1 or self.address is not None
                                       or self.resources != ExecutionResources()):
            raise ValueError("engine 'local' computes in the run's own process: workers, address and resources "
                             "are for engine 'ray'")
        return self


def resources_problem(execution: ExecutionSettings, pins: Any) -> tuple[tuple[str, ...], str] | None:
    """Where and why a Ray worker's ``resources`` do not fit the manifest's ``pins`` (None: they fit)."""
    res = execution.resources
    if execution.engine != "ray":
        return None
    where = ("execution", "resources")
    if res.cpus < pins.threads:
        return (*where, "cpus"), (f"execution.resources.cpus ({res.cpus:g}) is below pins.threads ({pins.threads}): "
                                  "each worker runs that many threads")
    if pins.device == "cuda" and res.gpus <= 0:
        return (*where, "gpus"), "pins.device is cuda: give each worker a GPU (execution.resources.gpus above 0)"
    if pins.device == "cpu" and res.gpus > 0:
        return (*where, "gpus"), "pins.device is cpu: execution.resources.gpus must be 0"
    return None
