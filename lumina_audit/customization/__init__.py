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
    from .pipeline import customize
    from .records import RECORD_SUFFIX, read_record
    from .settings import FineTune, Sampling
    from .tuning import CustomizationError, finetune, mean_loss, training_loss

__all__ = [
    "CustomizationError",
    "FineTune",
    "RECORD_SUFFIX",
    "Sampling",
    "customize",
    "finetune",
    "mean_loss",
    "read_record",
    "training_loss",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "customize": ".pipeline",
    "RECORD_SUFFIX": ".records",
    "read_record": ".records",
    "FineTune": ".settings",
    "Sampling": ".settings",
    "CustomizationError": ".tuning",
    "finetune": ".tuning",
    "mean_loss": ".tuning",
    "training_loss": ".tuning",
})
