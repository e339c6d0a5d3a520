"""The trust file: who may sign what, and when (in the style of OpenSSH ``allowed_signers``).

One entry per line::

    # principal  options  key
    alice@lab namespaces="lumina-audit/manifest,lumina-audit/ledger",valid-after="20260101" ssh-ed25519 AAAA... c

Options are comma separated, values in double quotes: ``namespaces`` (required),
``valid-after`` and ``valid-before`` (``YYYYMMDD`` or ``YYYYMMDDHHMM[SS]``, UTC, an
optional ``Z``), and ``role`` (a name such as ``operator`` or ``reviewer``; every line of one
principal states the same role, or none). A key id is the SHA-256 of the raw public key
(:func:`lumina_audit.evidence.keys.key_id`). :meth:`TrustStore.authorise` answers one
question, in numbered steps that raise: may this key sign in this namespace at this time?

The signing policy (version 1) is stated in the same file, one marker line per manifest kind
(``Extract``, ``Calibrate``, ``Attribute``) or ``default`` for the kinds not named::

    @policy default version="1",threshold="2"
    @policy Attribute version="1",threshold="2",roles="operator,reviewer",require="reviewer:1"

``threshold``: how many distinct principals must sign; ``roles``: only signers with one of
these roles count (absent: every trusted signer counts); ``require``: at least that many of
the counted principals hold that role. A file without ``@policy`` line gets the default:
two distinct principals for every kind (:data:`DEFAULT_POLICY`). A first field starting with
``@`` is a marker, never a principal; an unknown marker or policy version is refused, so a
reader never ignores a policy it does not understand. :meth:`TrustStore.check_policy` checks
a manifest's verified signers against it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import LuminaError
from .keys import KeyFileError, key_id, parse_public_key

__all__ = [
    "DEFAULT_POLICY",
    "NAMESPACES",
    "POLICY_FORMAT",
    "POLICY_KINDS",
    "POLICY_VERSIONS",
    "PolicyCheck",
    "PolicyError",
    "SigningPolicy",
    "SigningRule",
    "TrustEntry",
    "TrustError",
    "TrustStore",
    "format_entry",
    "format_policy",
    "load_trust",
    "parse_trust",
]

#: Namespaces lumina-audit signs in.
NAMESPACES = ("lumina-audit/manifest", "lumina-audit/ledger", "lumina-audit/certificate")

_PRINCIPAL = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")
_OPTION = re.compile(r'([a-z-]+)="([^"]*)"(?:,|$)')
_ROLE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")

#: What a policy statement may name: a manifest kind, or ``default`` for the kinds not named.
POLICY_KINDS = ("default", "Extract", "Calibrate", "Attribute")
#: The ``format`` of a policy's JSON document (:meth:`SigningPolicy.document`).
POLICY_FORMAT = "lumina-signing-policy"
#: Policy versions this reader understands; any other is refused.
POLICY_VERSIONS = ("1",)
_MAX_THRESHOLD = 32


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
    role: str | None = None


def _time(value: str, where: str) -> datetime:
    text = value.rstrip("Z")
    for fmt in ("%Y%m%d%H%M%S", "%Y%m%d%H%M", "%Y%m%d"):
        if len(text) == len(datetime(2000, 1, 1).strftime(fmt)):
            try:
                return datetime.strptime(text, fmt).replace(tzinfo=UTC)
            except ValueError:
                break
    raise TrustError(f"{where}: invalid time {value!r} (YYYYMMDD[HHMM[SS]][Z], UTC)")


def _options(options: str, where: str) -> dict[str, str]:
    opts: dict[str, str] = {}
    pos = 0
    while pos < len(options):
        m = _OPTION.match(options, pos)
        if not m or m.group(1) in opts:
            raise TrustError(f"{where}: malformed or repeated option in {options!r}")
        opts[m.group(1)] = m.group(2)
        pos = m.end()
    return opts


def _parse_line(text: str, where: str, n: int) -> TrustEntry:
    try:
        principal, options, keyspec = text.split(None, 2)
    except ValueError:
        raise TrustError(f"{where}: expected 'principal options ssh-ed25519 KEY'") from None
    if not _PRINCIPAL.match(principal):
        raise TrustError(f"{where}: invalid principal {principal!r}")
    opts = _options(options, where)
    unknown = set(opts) - {"namespaces", "valid-after", "valid-before", "role"}
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
    role = opts.get("role")
    if role is not None and not _ROLE.match(role):
        raise TrustError(f"{where}: invalid role {role!r} (a lowercase name such as operator or reviewer)")
    try:
        public_key = parse_public_key(keyspec)
    except KeyFileError as exc:
        raise TrustError(f"{where}: {exc.message}") from None
    return TrustEntry(principal, namespaces, after, before, public_key, key_id(public_key), n, role)


class PolicyError(TrustError):
    """A manifest's signers fall short of the signing policy (who or which role is missing)."""


@dataclass(frozen=True)
class SigningRule:
    """How many distinct trusted principals must sign a manifest, and in which roles.

    ``roles`` (sorted): only signers with one of these roles count; empty, every trusted
    signer counts. ``require`` (sorted by role): at least that many counted principals
    hold that role.
    """

    threshold: int = 2
    roles: tuple[str, ...] = ()
    require: tuple[tuple[str, int], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The rule's JSON form: ``{"threshold"[, "roles"][, "require"]}``."""
        doc: dict[str, Any] = {"threshold": self.threshold}
        if self.roles:
            doc["roles"] = list(self.roles)
        if self.require:
            doc["require"] = dict(self.require)
        return doc

    def describe(self) -> str:
        """In words: ``2 distinct signers with role operator or reviewer, at least 1 reviewer``."""
        text = f"{self.threshold} distinct signer{'s' if self.threshold != 1 else ''}"
        if self.roles:
            text += f" with role {' or '.join(self.roles)}"
        if self.require:
            text += ", at least " + " and ".join(f"{n} {r}" for r, n in self.require)
        return text


@dataclass(frozen=True)
class SigningPolicy:
    """The rule of each manifest kind; ``default`` applies to the kinds not named.

    ``stated``: the trust file states it (``@policy`` lines); else it is :data:`DEFAULT_POLICY`.
    """

    rules: tuple[tuple[str, SigningRule], ...] = (("default", SigningRule()),)
    stated: bool = False

    def rule_for(self, kind: str) -> tuple[str, SigningRule]:
        """The name (the kind, or ``default``) and the rule that apply to a manifest of ``kind``."""
        named = dict(self.rules)
        return (kind, named[kind]) if kind in named else ("default", named["default"])

    def document(self) -> dict[str, Any]:
        """``{"format": "lumina-signing-policy", "version": 1, "rules": {name: rule}}`` (every rule in force)."""
        return {"format": POLICY_FORMAT, "version": int(POLICY_VERSIONS[-1]),
                "rules": {name: rule.to_json() for name, rule in self.rules}}

    @property
    def sha256(self) -> str:
        """SHA-256 of the RFC 8785 canonical JSON of :meth:`document`: the policy's identity."""
        return hashlib.sha256(rfc8785.dumps(self.document())).hexdigest()


#: The policy of a trust file without ``@policy`` line: two distinct principals sign every kind.
DEFAULT_POLICY = SigningPolicy()


@dataclass(frozen=True)
class PolicyCheck:
    """A manifest's signers met ``policy``'s rule ``rule`` for ``kind``; ``counted``: one entry per principal."""

    policy: SigningPolicy
    kind: str
    rule: str
    counted: tuple[TrustEntry, ...]

    def to_json(self) -> dict[str, Any]:
        """What a ledger record and ``manifest verify --json`` state of the policy a manifest met."""
        return {"sha256": self.policy.sha256, "policy": self.policy.document(), "stated": self.policy.stated,
                "kind": self.kind, "rule": self.rule,
                "counted": [{"principal": e.principal, "role": e.role} for e in self.counted]}


def _who(e: TrustEntry) -> str:
    return f"{e.principal} ({e.role})" if e.role else e.principal


def _check(policy: SigningPolicy, kind: str, signers: tuple[TrustEntry, ...], store: TrustStore,
           namespace: str) -> PolicyCheck:
    name, rule = policy.rule_for(kind)
    counted: dict[str, TrustEntry] = {}
    keys: Counter[str] = Counter(e.principal for e in signers)
    ignored: dict[str, TrustEntry] = {}
    for e in signers:
        if rule.roles and e.role not in rule.roles:
            ignored.setdefault(e.principal, e)
        else:
            counted.setdefault(e.principal, e)
    have = Counter(e.role for e in counted.values())
    short = [(r, n - have[r]) for r, n in rule.require if have[r] < n]
    more = rule.threshold - len(counted) - sum(k for _, k in short)
    if not short and more <= 0:
        return PolicyCheck(policy, kind, name, tuple(counted.values()))
    missing = [f"{k} {r}" for r, k in short]
    if more > 0:
        missing.append(f"{more} {'more ' if counted or short else ''}distinct signer{'s' if more != 1 else ''}"
                       + (f" with role {' or '.join(rule.roles)}" if rule.roles else ""))
    where = f"@policy {name} in {store.source}" if policy.stated else f"the default: {store.source} states no @policy"
    text = (f"signing policy not met: {kind} manifests need {rule.describe()} ({where}); counted "
            f"{len(counted)}: {', '.join(_who(e) for e in counted.values()) or 'none'}")
    twice = sorted(p for p in counted if keys[p] > 1)
    if twice:
        text += f" ({', '.join(twice)} signed with several keys, counted once)"
    if ignored:
        text += "; not counted: " + ", ".join(f"{_who(e)}" for e in ignored.values())
    text += f"; missing: {' and '.join(missing)}"
    eligible = {e.principal: e.role for e in store.keys_for(namespace) if not rule.roles or e.role in rule.roles}
    listed = Counter(eligible.values())
    if len(eligible) < rule.threshold or any(listed[r] < n for r, n in rule.require):
        hint = (f"{store.source} lists too few principals for this policy: add trust lines "
                "(lumina-audit keys trust-line PUB --principal WHO --namespace lumina-audit/manifest --role ROLE)")
    else:
        need = " or ".join(r for r, _ in short) if short else " or ".join(rule.roles)
        hint = (f"have another trusted principal{f' with role {need}' if need else ''} add a signature "
                "(lumina-audit manifest sign MANIFEST --key KEY)")
    raise PolicyError(text, hint=hint)


@dataclass(frozen=True)
class TrustStore:
    entries: tuple[TrustEntry, ...]
    source: str = "<trust>"
    policy: SigningPolicy = field(default=DEFAULT_POLICY)

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

    def check_policy(self, kind: str, signers: tuple[TrustEntry, ...],
                     namespace: str = "lumina-audit/manifest") -> PolicyCheck:
        """The verified ``signers`` of a ``kind`` manifest meet the policy, or :class:`PolicyError` says
        what is missing: distinct principals count once, a signer outside the rule's roles not at all."""
        return _check(self.policy, kind, signers, self, namespace)


def _names(value: str, what: str, where: str) -> list[str]:
    names = [v.strip() for v in value.split(",")]
    if not value or any(not _ROLE.match(v) for v in names) or len(set(names)) != len(names):
        raise TrustError(f"{where}: {what} must be distinct role names, comma separated (got {value!r})")
    return names


def _parse_policy(text: str, where: str) -> tuple[str, SigningRule]:
    parts = text.split()
    if len(parts) != 3:
        raise TrustError(f"{where}: expected '@policy KIND version=\"1\",threshold=\"N\"[,roles=...][,require=...]'")
    _, kind, options = parts
    opts = _options(options, where)
    if opts.get("version") not in POLICY_VERSIONS:
        raise TrustError(f"{where}: @policy version {opts.get('version')!r} is not known to this lumina-audit "
                         f"(known: {', '.join(POLICY_VERSIONS)}); refusing to ignore a signing policy",
                         hint="use a lumina-audit that reads this policy version, or state version=\"1\"")
    if kind not in POLICY_KINDS:
        raise TrustError(f"{where}: @policy names {kind!r}; expected one of {', '.join(POLICY_KINDS)}")
    unknown = set(opts) - {"version", "threshold", "roles", "require"}
    if unknown:
        raise TrustError(f"{where}: unknown @policy option(s) {', '.join(sorted(unknown))}")
    value = opts.get("threshold", "")
    if not re.fullmatch(r"[1-9][0-9]?", value) or int(value) > _MAX_THRESHOLD:
        raise TrustError(f"{where}: threshold=\"N\" is required, N from 1 to {_MAX_THRESHOLD} (got {value!r})")
    threshold = int(value)
    roles = sorted(_names(opts["roles"], "roles", where)) if "roles" in opts else []
    require: dict[str, int] = {}
    for item in (opts["require"].split(",") if "require" in opts else []):
        m = re.fullmatch(r"([a-z][a-z0-9-]{0,31}):([1-9][0-9]?)", item.strip())
        if not m or m.group(1) in require:
            raise TrustError(f"{where}: require must be distinct ROLE:N items, comma separated "
                             f"(got {opts['require']!r})")
        if roles and m.group(1) not in roles:
            raise TrustError(f"{where}: require names role {m.group(1)!r}, which roles={','.join(roles)!r} leaves out")
        require[m.group(1)] = int(m.group(2))
    if sum(require.values()) > threshold:
        raise TrustError(f"{where}: require asks for {sum(require.values())} signers, more than threshold {threshold}")
    return kind, SigningRule(threshold, tuple(roles), tuple(sorted(require.items())))


def parse_trust(text: str, source: str = "<trust>") -> TrustStore:
    """Read a trust file: key lines, and ``@policy`` lines (the module's docstring)."""
    entries: list[TrustEntry] = []
    rules: dict[str, tuple[SigningRule, str]] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{source}:{n}"
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            marker = line.split()[0]
            if marker != "@policy":
                raise TrustError(f"{where}: unknown marker {marker!r} (a principal cannot start with '@'; "
                                 "the one marker is @policy)")
            kind, rule = _parse_policy(line, where)
            if kind in rules:
                raise TrustError(f"{where}: a second @policy for {kind} (the first is at {rules[kind][1]})")
            rules[kind] = (rule, where)
        else:
            entries.append(_parse_line(line, where, n))
    roles: dict[str, TrustEntry] = {}
    for e in entries:
        first = roles.setdefault(e.principal, e)
        if first.role != e.role:
            raise TrustError(f"{source}:{e.line}: {e.principal} has role {e.role or '(none)'} here and "
                             f"{first.role or '(none)'} at line {first.line}; a principal has one role")
    carried = {e.role for e in entries}
    for kind, (rule, where) in rules.items():
        uncarried = sorted({*rule.roles, *(r for r, _ in rule.require)} - carried)
        if uncarried:
            raise TrustError(f"{where}: @policy {kind} names role(s) {', '.join(uncarried)}, which no trust line "
                             "carries (role=\"...\")")
    if not rules:
        return TrustStore(tuple(entries), source)
    rules.setdefault("default", (SigningRule(), ""))
    ordered = tuple((k, rules[k][0]) for k in POLICY_KINDS if k in rules)
    return TrustStore(tuple(entries), source, SigningPolicy(ordered, stated=True))


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
                 comment: str = "", role: str | None = None) -> str:
    """One trust-file line (the inverse of the parser).

    A principal may not start with ``@``: such a line is a marker (``@policy``), not a signer.
    """
    from .keys import public_key_line

    if not principal or principal.startswith("@") or any(c.isspace() for c in principal):
        raise TrustError(f"principal {principal!r} must be non-empty, without spaces, and not start with '@' "
                         "(a trust line starting with '@' is a marker such as @policy)")
    opts = [f'namespaces="{",".join(namespaces)}"']
    if valid_after:
        opts.append(f'valid-after="{valid_after.astimezone(UTC):%Y%m%d%H%M%S}Z"')
    if valid_before:
        opts.append(f'valid-before="{valid_before.astimezone(UTC):%Y%m%d%H%M%S}Z"')
    if role:
        opts.append(f'role="{role}"')
    return f"{principal} {','.join(opts)} {public_key_line(public_key, comment)}"


def format_policy(kind: str, threshold: int, roles: tuple[str, ...] = (),
                  require: dict[str, int] | None = None) -> str:
    """One ``@policy`` line (version 1), e.g. ``format_policy("Attribute", 2, ("operator", "reviewer"),
    {"reviewer": 1})``."""
    opts = [f'version="{POLICY_VERSIONS[-1]}"', f'threshold="{threshold}"']
    if roles:
        opts.append(f'roles="{",".join(roles)}"')
    if require:
        opts.append(f'require="{",".join(f"{r}:{n}" for r, n in require.items())}"')
    return f"@policy {kind} {','.join(opts)}"
