"""Lazy public names for an area's ``__init__``: importing an area imports none of its modules.

An area's ``__all__`` is its public surface; its names are imported from their modules
only when first used, so that ``import lumina_audit.signature.pins`` (which runs the
area's ``__init__``) never pulls in torch before the numerical pins are applied.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, names: Mapping[str, str],
                 modules: Mapping[str, str] | None = None) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps a public name to its module (relative);
    ``modules`` maps a public name that is a module itself to that module (``{"golden": ".golden"}``)."""
    modules = modules or {}

    def __getattr__(name: str) -> Any:
        if name in modules:
            return importlib.import_module(modules[name], package)
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)

    def __dir__() -> list[str]:
        return sorted({*names, *modules})

    return __getattr__, __dir__
