"""Signature methods: each one module behind :class:`~.base.SignatureMethod`, registered here by name.

Adding a method is one new module plus one line in :data:`METHODS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ...errors import ConfigError
from .base import ChannelSummary, SignatureMethod, normalise
from .gradproj import GradProj
from .gradstats import GradStats

__all__ = ["DEFAULT_METHODS", "GRADPROJ", "GRADSTATS", "METHODS", "ChannelSummary", "SignatureMethod", "get_method",
           "normalise"]

GRADPROJ = GradProj()
GRADSTATS = GradStats()

#: Every method this package implements, by name.
METHODS: Mapping[str, SignatureMethod] = MappingProxyType({m.name: m for m in (GRADPROJ, GRADSTATS)})
#: What an extraction computes unless told otherwise: gradproj first (the primary method), then gradstats.
DEFAULT_METHODS: tuple[SignatureMethod, ...] = (GRADPROJ, GRADSTATS)


def get_method(name: str) -> SignatureMethod:
    """The registered method called ``name``; an unknown name is a :class:`ConfigError`."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown signature method {name!r} (known: {', '.join(METHODS)})") from None
