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
    from . import golden
    from .audio import load_audio, probe_audio
    from .codes import CODES_SUFFIX, CodesPiece, codes_document, read_codes
    from .digests import parse_digest_args, parse_digest_text
    from .environment import ATTRIBUTION_PACKAGES, bit_relevant, bit_versions, describe, differences
    from .extract import default_song_id, signatures_of_audio, signatures_of_codes
    from .gradients import chunk_codes, codes_loss
    from .methods import GRADPROJ, GRADSTATS, METHODS, get_method, gradproj
    from .methods.base import SignatureMethod
    from .methods.gradproj import GRADPROJ_V1
    from .methods.gradstats import GRADSTATS_V1, STATS
    from .model import LoadedModel, NullTextConditioner, hook_tensors, load_model, sha256_model_files
    from .pins import (
        LEGACY_PINS,
        Pins,
        apply_torch_pins,
        bit_pins,
        check_environment,
        check_runtime,
        pinned_environ,
        reexec_if_needed,
        sdpa_context,
    )
    from .result import DIM, Signature
    from .session import Session, check_inputs, load_all
    from .space import MAX_CHUNK_BATCH, TENSORS, SignatureConfig, SignatureSpace

__all__ = [
    "ATTRIBUTION_PACKAGES",
    "CODES_SUFFIX",
    "CodesPiece",
    "DIM",
    "GRADPROJ",
    "GRADPROJ_V1",
    "GRADSTATS",
    "GRADSTATS_V1",
    "LEGACY_PINS",
    "LoadedModel",
    "MAX_CHUNK_BATCH",
    "METHODS",
    "NullTextConditioner",
    "Pins",
    "STATS",
    "Session",
    "Signature",
    "SignatureConfig",
    "SignatureMethod",
    "SignatureSpace",
    "TENSORS",
    "apply_torch_pins",
    "bit_pins",
    "bit_relevant",
    "bit_versions",
    "check_environment",
    "check_inputs",
    "check_runtime",
    "chunk_codes",
    "codes_document",
    "codes_loss",
    "default_song_id",
    "describe",
    "differences",
    "get_method",
    "golden",
    "gradproj",
    "hook_tensors",
    "load_all",
    "load_audio",
    "load_model",
    "parse_digest_args",
    "parse_digest_text",
    "pinned_environ",
    "probe_audio",
    "read_codes",
    "reexec_if_needed",
    "sdpa_context",
    "sha256_model_files",
    "signatures_of_audio",
    "signatures_of_codes",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "load_audio": ".audio",
    "probe_audio": ".audio",
    "CODES_SUFFIX": ".codes",
    "CodesPiece": ".codes",
    "codes_document": ".codes",
    "read_codes": ".codes",
    "parse_digest_args": ".digests",
    "parse_digest_text": ".digests",
    "ATTRIBUTION_PACKAGES": ".environment",
    "bit_relevant": ".environment",
    "bit_versions": ".environment",
    "describe": ".environment",
    "differences": ".environment",
    "default_song_id": ".extract",
    "signatures_of_audio": ".extract",
    "signatures_of_codes": ".extract",
    "chunk_codes": ".gradients",
    "codes_loss": ".gradients",
    "GRADPROJ": ".methods",
    "GRADSTATS": ".methods",
    "METHODS": ".methods",
    "get_method": ".methods",
    "SignatureMethod": ".methods.base",
    "GRADPROJ_V1": ".methods.gradproj",
    "GRADSTATS_V1": ".methods.gradstats",
    "STATS": ".methods.gradstats",
    "LoadedModel": ".model",
    "NullTextConditioner": ".model",
    "hook_tensors": ".model",
    "load_model": ".model",
    "sha256_model_files": ".model",
    "LEGACY_PINS": ".pins",
    "Pins": ".pins",
    "apply_torch_pins": ".pins",
    "bit_pins": ".pins",
    "check_environment": ".pins",
    "check_runtime": ".pins",
    "pinned_environ": ".pins",
    "reexec_if_needed": ".pins",
    "sdpa_context": ".pins",
    "DIM": ".result",
    "Signature": ".result",
    "Session": ".session",
    "check_inputs": ".session",
    "load_all": ".session",
    "MAX_CHUNK_BATCH": ".space",
    "SignatureConfig": ".space",
    "SignatureSpace": ".space",
    "TENSORS": ".space",
}, modules={"golden": ".golden", "gradproj": ".methods.gradproj"})
