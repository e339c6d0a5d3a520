"""Test session set-up: the numerical pins go into the environment before torch loads."""

from __future__ import annotations

import os

from lumina_audit.signature.pins import Pins, pinned_environ

_PINNED = pinned_environ(Pins(), os.environ)
os.environ.clear()
os.environ.update(_PINNED)

import json  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# No per-example deadline: CI runs on a loaded 2-core machine; the example counts stay as each test sets them.
settings.register_profile("lumina", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("lumina")

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "golden"
TINY = GOLDEN / "models" / "tiny-musicgen"


def tiny_digests() -> dict[str, str]:
    doc: dict[str, Any] = json.loads((GOLDEN / "golden.json").read_text())
    return dict(doc["model"]["digests"])


@pytest.fixture(scope="session")
def session() -> Any:
    from lumina_audit._internal.quiet import silence_libraries
    from lumina_audit.signature.session import Session

    silence_libraries()
    return Session.open(TINY, tiny_digests(), Pins())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
