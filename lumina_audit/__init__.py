"""lumina-audit: court-grade music attribution evidence.

Importing this package does not import torch. Programs that compute
signatures must apply the numerical pins (:mod:`lumina_audit.signature.pins`) before
torch runs its first operation; the ``lumina-audit`` command does so itself.
"""

from __future__ import annotations

from .errors import LuminaError
from .signature.result import DIM, Signature
from .signature.space import METHOD, SignatureConfig, SignatureSpace

__all__ = [
    "DIM",
    "METHOD",
    "LuminaError",
    "Signature",
    "SignatureConfig",
    "SignatureSpace",
    "__version__",
]

__version__ = "0.1.0"
