"""Area ``signature``: the LUMINA method, from audio and a checkpoint to a song's signatures.

Stages, one module each: :mod:`.audio` (decode, mono, resample, chunks: spec 1-2),
:mod:`.model` (the digest-checked checkpoint loader), :mod:`.pins` (numerical pins,
applied before torch starts: spec 9), :mod:`.gradients` (the loss and gradient of one
chunk: spec 3-4), :mod:`.extract` (the float64 average over chunks, spec 5, handed to the
methods), :mod:`.methods` (one module per signature method behind one interface),
:mod:`.space` (the signature space, spec 8), :mod:`.result` (a song's signatures),
:mod:`.golden` (committed golden vectors, compared bit for bit), :mod:`.environment`
(what a run records of its machine) and :mod:`.session` (pins applied, model loaded).

This area imports no other area. Importing it imports none of its modules (and so not
torch): the names below load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from .audio import Audio, load_audio
    from .environment import describe
    from .extract import extract, signature_of_audio
    from .methods import GRADSTATS, METHODS, SignatureMethod, get_method
    from .model import LoadedModel, load_model, sha256_model_files
    from .pins import Pins, apply_torch_pins, check_runtime, pinned_environ, reexec_if_needed
    from .result import DIM, Signature
    from .session import Session
    from .space import MODEL_FILES, TENSORS, SignatureConfig, SignatureSpace

__all__ = [
    "Audio",
    "DIM",
    "GRADSTATS",
    "LoadedModel",
    "METHODS",
    "MODEL_FILES",
    "Pins",
    "Session",
    "Signature",
    "SignatureConfig",
    "SignatureMethod",
    "SignatureSpace",
    "TENSORS",
    "apply_torch_pins",
    "check_runtime",
    "describe",
    "extract",
    "get_method",
    "load_audio",
    "load_model",
    "pinned_environ",
    "reexec_if_needed",
    "sha256_model_files",
    "signature_of_audio",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "Audio": ".audio",
    "load_audio": ".audio",
    "LoadedModel": ".model",
    "load_model": ".model",
    "sha256_model_files": ".model",
    "Pins": ".pins",
    "apply_torch_pins": ".pins",
    "check_runtime": ".pins",
    "pinned_environ": ".pins",
    "reexec_if_needed": ".pins",
    "SignatureConfig": ".space",
    "SignatureSpace": ".space",
    "MODEL_FILES": ".space",
    "TENSORS": ".space",
    "DIM": ".result",
    "Signature": ".result",
    "extract": ".extract",
    "signature_of_audio": ".extract",
    "METHODS": ".methods",
    "GRADSTATS": ".methods",
    "SignatureMethod": ".methods",
    "get_method": ".methods",
    "Session": ".session",
    "describe": ".environment",
})
