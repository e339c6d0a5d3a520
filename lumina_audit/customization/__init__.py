"""Area ``customization``: the ground truth of the ``influence`` proposition, from the pinned model itself.

:mod:`.settings` (the pinned fine-tuning and sampling settings), :mod:`.tuning` (a copy of the
LM fine-tuned on one song), :mod:`.sample` (pieces sampled from an LM; whether the checkpoint's
EnCodec can decode them), :mod:`.records` (the ``lumina-customization`` record beside each piece)
and :mod:`.pipeline` (the whole run: pieces of each fine-tuned copy, and of the unmodified model).

Imports the ``signature`` area only. Importing it imports none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from .pipeline import Carry, Customized, Piece, customize
    from .records import RECORD_SUFFIX, read_record, record_path
    from .sample import decoder_round_trip, generate
    from .settings import FineTune, Sampling
    from .tuning import CustomizationError, finetune, lm_sha256, training_loss

__all__ = [
    "RECORD_SUFFIX",
    "Carry",
    "CustomizationError",
    "Customized",
    "FineTune",
    "Piece",
    "Sampling",
    "customize",
    "decoder_round_trip",
    "finetune",
    "generate",
    "lm_sha256",
    "read_record",
    "record_path",
    "training_loss",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "Carry": ".pipeline",
    "Customized": ".pipeline",
    "Piece": ".pipeline",
    "customize": ".pipeline",
    "CustomizationError": ".tuning",
    "finetune": ".tuning",
    "lm_sha256": ".tuning",
    "training_loss": ".tuning",
    "RECORD_SUFFIX": ".records",
    "read_record": ".records",
    "record_path": ".records",
    "decoder_round_trip": ".sample",
    "generate": ".sample",
    "FineTune": ".settings",
    "Sampling": ".settings",
})
