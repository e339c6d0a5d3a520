"""lumina-audit: court-grade music attribution evidence.

Importing this package does not import torch. Programs that compute
signatures must apply the numerical pins (:mod:`lumina_audit.signature.pins`) before
torch runs its first operation; the ``lumina-audit`` command does so itself.

``METHODS`` holds every signature method by name: ``GRADPROJ_V1`` (``lumina-gradproj-v1``,
the primary one, and the method of a signature space that names none) and ``GRADSTATS_V1``
(``lumina-gradstats-v1``, the one method of ``lumina-audit/v1`` manifests and version 1 stores).
"""

from __future__ import annotations

from .errors import LuminaError
from .signature import DIM, GRADPROJ_V1, GRADSTATS_V1, METHODS, Signature, SignatureConfig, SignatureSpace

__all__ = [
    "DIM",
    "GRADPROJ_V1",
    "GRADSTATS_V1",
    "METHODS",
    "LuminaError",
    "Signature",
    "SignatureConfig",
    "SignatureSpace",
    "__version__",
]

__version__ = "0.1.0"
