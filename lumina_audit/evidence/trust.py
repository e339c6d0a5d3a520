"""The trust file: who may sign what, and when (in the style of OpenSSH ``allowed_signers``).

One entry per line::

    # principal  options  key
    alice@lab namespaces="lumina-audit/manifest,lumina-audit/ledger",valid-after="20260101" ssh-ed25519 AAAA... c

Options are comma separated, values in double quotes: ``namespaces`` (required),
``valid-after`` and ``valid-before`` (``YYYYMMDD`` or ``YYYYMMDDHHMM[SS]``, UTC, an
optional ``Z``). A key id is the SHA-256 of the raw public key
(:func:`lumina_audit.evidence.keys.key_id`). :meth:`TrustStore.authorise` answers one
question, in numbered steps that raise: may this key sign in this namespace at this time?
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import LuminaError
from .keys import KeyFileError, key_id, parse_public_key

__all__ = ["NAMESPACES", "TrustEntry", "TrustError", "TrustStore", "format_entry", "load_trust", "parse_trust"]

#: Namespaces lumina-audit signs in.
NAMESPACES = ("lumina-audit/manifest", "lumina-audit/ledger", "lumina-audit/certificate")

_PRINCIPAL = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")
_OPTION = re.compile(r'([a-z-]+)="([^"]*)"(?:,|$)')


class TrustError(LuminaError):
    """A key is not trusted for what it signed (unknown, wrong namespace, out of its window)."""

    exit_code = 1


@dataclass(frozen=True)
class TrustEntry:
    principal: str
    namespaces: frozenset[str]
    valid_after: datetime | None
    valid_before: datetime | None
    public_key: Ed25519PublicKey
    key_id: str
    line: int


def _time(value: str, where: str) -> datetime:
    text = value.rstrip("Z")
    for fmt in ("%Y%m%d%H%M%S", "%Y%m%d%H%M", "%Y%m%d"):
        if len(text) == len(datetime(2000, 1, 1).strftime(fmt)):
            try:
                return datetime.strptime(text, fmt).replace(tzinfo=UTC)
            except ValueError:
                break
    raise TrustError(f"{where}: invalid time {value!r} (YYYYMMDD[HHMM[SS]][Z], UTC)")


def _parse_line(text: str, where: str, n: int) -> TrustEntry:
    try:
        principal, options, keyspec = text.split(None, 2)
    except ValueError:
        raise TrustError(f"{where}: expected 'principal options ssh-ed25519 KEY'") from None
    if not _PRINCIPAL.match(principal):
        raise TrustError(f"{where}: invalid principal {principal!r}")
    opts: dict[str, str] = {}
    pos = 0
    while pos < len(options):
        m = _OPTION.match(options, pos)
        if not m or m.group(1) in opts:
            raise TrustError(f"{where}: malformed or repeated option in {options!r}")
        opts[m.group(1)] = m.group(2)
        pos = m.end()
    unknown = set(opts) - {"namespaces", "valid-after", "valid-before"}
    if unknown:
        raise TrustError(f"{where}: unknown option(s) {', '.join(sorted(unknown))}")
    if "namespaces" not in opts:
        raise TrustError(f"{where}: namespaces=\"...\" is required")
    namespaces = frozenset(s.strip() for s in opts["namespaces"].split(",") if s.strip())
    if not namespaces or not namespaces <= set(NAMESPACES):
        raise TrustError(f"{where}: namespaces must be among {', '.join(NAMESPACES)}")
    after = _time(opts["valid-after"], where) if "valid-after" in opts else None
    before = _time(opts["valid-before"], where) if "valid-before" in opts else None
    if after and before and not after < before:
        raise TrustError(f"{where}: valid-after is not before valid-before")
    try:
        public_key = parse_public_key(keyspec)
    except KeyFileError as exc:
        raise TrustError(f"{where}: {exc.message}") from None
    return TrustEntry(principal, namespaces, after, before, public_key, key_id(public_key), n)


@dataclass(frozen=True)
class TrustStore:
    entries: tuple[TrustEntry, ...]
    source: str = "<trust>"

    def authorise(self, kid: str, namespace: str, at: datetime) -> TrustEntry:
        """Steps: (1) the key is listed; (2) for this namespace; (3) ``at`` is inside its window."""
        listed = [e for e in self.entries if e.key_id == kid]
        if not listed:
            raise TrustError(f"key {kid[:16]}... is not in the trust file {self.source}")
        in_ns = [e for e in listed if namespace in e.namespaces]
        if not in_ns:
            raise TrustError(f"key {kid[:16]}... ({listed[0].principal}) is not trusted for {namespace}")
        for e in in_ns:
            if (e.valid_after is None or at >= e.valid_after) and (e.valid_before is None or at < e.valid_before):
                return e
        e = in_ns[0]
        window = f"{e.valid_after or '-inf'} .. {e.valid_before or '+inf'}"
        raise TrustError(f"key {kid[:16]}... ({e.principal}) is not valid at {at.isoformat()} (window {window})")

    def keys_for(self, namespace: str) -> tuple[TrustEntry, ...]:
        return tuple(e for e in self.entries if namespace in e.namespaces)


def parse_trust(text: str, source: str = "<trust>") -> TrustStore:
    entries = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            entries.append(_parse_line(line, f"{source}:{n}", n))
    return TrustStore(tuple(entries), source)


def load_trust(path: Path) -> TrustStore:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrustError(f"{path}: cannot read trust file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise TrustError(f"{path}: trust file is not UTF-8") from None
    return parse_trust(text, str(path))


def format_entry(principal: str, namespaces: list[str], public_key: Ed25519PublicKey,
                 valid_after: datetime | None = None, valid_before: datetime | None = None,
                 comment: str = "") -> str:
    """One trust-file line (the inverse of the parser)."""
    from .keys import public_key_line

    opts = [f'namespaces="{",".join(namespaces)}"']
    if valid_after:
        opts.append(f'valid-after="{valid_after.astimezone(UTC):%Y%m%d%H%M%S}Z"')
    if valid_before:
        opts.append(f'valid-before="{valid_before.astimezone(UTC):%Y%m%d%H%M%S}Z"')
    return f"{principal} {','.join(opts)} {public_key_line(public_key, comment)}"
