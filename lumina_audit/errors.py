"""The one exception root of lumina-audit.

Every error a user can cause or meet derives from :class:`LuminaError`. Its
message is one line; :meth:`LuminaError.diagnostics` adds a hint. The CLI
prints ``error: <message>`` and ``hint: <hint>`` and exits with
:attr:`LuminaError.exit_code`; it never shows a traceback for these.
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "ConfigError",
    "EnvironmentMismatch",
    "GoldenMismatch",
    "LuminaError",
    "ModelError",
    "SignatureError",
    "StoreError",
]


class LuminaError(Exception):
    """Root of every error lumina-audit raises on purpose.

    ``message`` is one line saying what is wrong; ``hint`` says what to do.
    """

    #: Process exit code the CLI uses for this error.
    exit_code: int = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(" ".join(message.split()))
        self.hint = hint

    @property
    def message(self) -> str:
        return str(self)

    def diagnostics(self) -> str:
        """A short human explanation: the message, then the hint if any."""
        text = f"{type(self).__name__}: {self.message}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class ConfigError(LuminaError):
    """A configuration value (manifest, signature config, pins) is invalid."""


class AudioError(LuminaError):
    """An audio file was refused (spec signature-v1 section 1 and 2)."""


class ModelError(LuminaError):
    """A checkpoint was refused: wrong digest, wrong shape, missing tensor."""


class SignatureError(LuminaError):
    """A signature could not be computed (for example a raw vector of norm 0)."""


class StoreError(LuminaError):
    """A signature store was refused or could not be written."""


class EnvironmentMismatch(LuminaError):
    """The process does not run under the numerical pins it must run under."""


class GoldenMismatch(LuminaError):
    """Recomputed golden signatures differ from the committed ones."""

    exit_code = 1
