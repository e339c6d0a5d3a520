"""lumina-audit: court-grade music attribution evidence.

Importing this package does not import torch. Programs that compute
signatures must apply the numerical pins (:mod:`lumina_audit.signature.pins`) before
torch runs its first operation; the ``lumina-audit`` command does so itself.

``METHODS`` holds every signature method by name (``lumina-gradproj-v1``, the primary
one, and ``lumina-gradstats-v1``); ``METHOD`` is ``lumina-gradstats-v1``, the one method
of ``lumina-audit/v1`` manifests and version 1 stores.
"""

from __future__ import annotations

from .errors import LuminaError
from .signature.methods import METHODS
from .signature.result import DIM, Signature
from .signature.space import METHOD, SignatureConfig, SignatureSpace

__all__ = [
    "DIM",
    "METHOD",
    "METHODS",
    "LuminaError",
    "Signature",
    "SignatureConfig",
    "SignatureSpace",
    "__version__",
]

__version__ = "0.1.0"
