"""Reading expected checkpoint digests from files and ``NAME=HEX`` arguments."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import ConfigError
from .space import MODEL_FILES

__all__ = ["parse_digest_args", "parse_digest_text"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _check(name: str, value: str, origin: str) -> tuple[str, str]:
    name = Path(name.strip().lstrip("*")).name
    value = value.strip().lower()
    if name not in MODEL_FILES:
        raise ConfigError(f"{origin}: {name!r} is not a checkpoint file ({', '.join(MODEL_FILES)})")
    if not _HEX64.match(value):
        raise ConfigError(f"{origin}: digest of {name} is not 64 hex digits")
    return name, value


def parse_digest_text(text: str, origin: str) -> dict[str, str]:
    """JSON ``{"state_dict.bin": HEX, ...}`` or ``sha256sum`` lines ``HEX  NAME``."""
    out: dict[str, str] = {}
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except ValueError as exc:
            raise ConfigError(f"{origin}: invalid JSON ({exc})") from None
        if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
            raise ConfigError(f"{origin}: expected an object of file name to hex digest")
        pairs = [_check(k, v, origin) for k, v in doc.items()]
    else:
        pairs = []
        for n, line in enumerate(stripped.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split(None, 1)
            if len(parts) != 2:
                raise ConfigError(f"{origin}:{n}: expected 'HEX  NAME'")
            pairs.append(_check(parts[1], parts[0], f"{origin}:{n}"))
    for name, value in pairs:
        if name in out and out[name] != value:
            raise ConfigError(f"{origin}: two different digests for {name}")
        out[name] = value
    return out


def parse_digest_args(digest_file: Path | None, assignments: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    if digest_file is not None:
        try:
            out.update(parse_digest_text(digest_file.read_text(encoding="utf-8"), str(digest_file)))
        except OSError as exc:
            raise ConfigError(f"{digest_file}: cannot read ({exc.strerror})") from None
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--sha256 {item!r}: expected NAME=HEX")
        key, hexd = _check(name, value, "--sha256")
        if out.get(key, hexd) != hexd:
            raise ConfigError(f"--sha256 {key}: conflicts with another expected digest of {key}")
        out[key] = hexd
    missing = [n for n in MODEL_FILES if n not in out]
    if missing:
        raise ConfigError(f"no expected SHA-256 for {', '.join(missing)}",
                          hint="pass --digests FILE or --sha256 NAME=HEX; `lumina-audit model digests DIR` "
                          "prints them, pin them only from a source you trust")
    return out
