"""Signature methods: each one module behind :class:`~.base.SignatureMethod`, registered here by name.

Adding a method is one new module plus one line in :data:`METHODS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ...errors import ConfigError
from .base import ChannelSummary, SignatureMethod, normalise
from .gradproj import GRADPROJ_V1, GradProj
from .gradstats import GRADSTATS_V1, GradStats

__all__ = ["DEFAULT_METHOD", "DEFAULT_METHODS", "GRADPROJ", "GRADPROJ_V1", "GRADSTATS", "GRADSTATS_V1", "METHODS",
           "ChannelSummary", "SignatureMethod", "get_method", "normalise"]

#: ``lumina-gradproj-v1`` (:data:`GRADPROJ_V1`), the primary method.
GRADPROJ = GradProj()
#: ``lumina-gradstats-v1`` (:data:`GRADSTATS_V1`), the method of ``lumina-audit/v1`` manifests and version 1 files.
GRADSTATS = GradStats()

#: Every method this package implements, by name.
METHODS: Mapping[str, SignatureMethod] = MappingProxyType({m.name: m for m in (GRADPROJ, GRADSTATS)})
#: The method of a signature space that names none (:meth:`~..space.SignatureConfig.space`): gradproj.
DEFAULT_METHOD: SignatureMethod = GRADPROJ
#: What an extraction computes unless told otherwise: gradproj first (the primary method), then gradstats.
DEFAULT_METHODS: tuple[SignatureMethod, ...] = (DEFAULT_METHOD, GRADSTATS)


def get_method(name: str) -> SignatureMethod:
    """The registered method called ``name``; an unknown name is a :class:`ConfigError`."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown signature method {name!r} (known: {', '.join(METHODS)})") from None
