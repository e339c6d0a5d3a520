"""Keep library noise (xformers, torch deprecations, font subsetting) off the user's terminal."""

from __future__ import annotations

import logging
import warnings

__all__ = ["silence_libraries"]


def silence_libraries() -> None:
    for name in ("xformers", "audiocraft", "torch", "torchaudio", "transformers", "numba", "h5py", "fontTools",
                 "weasyprint"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
