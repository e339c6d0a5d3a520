"""The benchmarks' smoke tests call their ``main`` in this process: a re-execution must not replace pytest."""

from __future__ import annotations

import os
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def no_reexec(monkeypatch: pytest.MonkeyPatch) -> None:
    """``reexec_if_needed`` returns at once under the suite's pins; if it ever tried ``os.execve``, fail instead."""

    def refuse(*args: Any) -> None:
        raise AssertionError(f"a benchmark tried to re-execute the test process: {args[:2]}")

    monkeypatch.setattr(os, "execve", refuse)
