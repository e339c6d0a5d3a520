"""The grammar of ``lumina-audit``: a noun, then a verb; a ledger is always ``--ledger DIR``.

The spellings of before keep working as hidden aliases. Each prints one line on stderr, before
anything is parsed (``lumina-audit: 'verify ledger' is now 'ledger verify'``), then behaves as the
command it stands for, exit codes included. :data:`DEPRECATED` lists them all; this module and the
aliases registered by :mod:`.main` and :mod:`.verify` are the only places that spell them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from typer import _click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from ._common import err

__all__ = ["DEPRECATED", "alias_of", "default_group", "deprecation", "ledger_named_by_option"]

#: Each old spelling and the one that replaced it (DIR: a ledger directory).
DEPRECATED: dict[str, str] = {
    "run": "manifest run",
    "signature": "signature compute",
    "derive": "audio derive",
    "customize": "model customize",
    "verify ledger": "ledger verify",
    "verify proof": "proof verify",
    "verify certificate": "certificate verify",
    "ledger show DIR": "ledger show --ledger DIR",
    "ledger checkpoint DIR": "ledger checkpoint --ledger DIR",
    "ledger repair DIR": "ledger repair --ledger DIR",
    "ledger prove RECORD": "ledger prove RECORD --ledger ledger",
}


def deprecation(old: str) -> str:
    """The one line an old spelling prints on stderr."""
    return f"lumina-audit: '{old}' is now '{DEPRECATED[old]}'"


class _Alias(TyperCommand):
    old: ClassVar[str] = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = f"Deprecated: now '{DEPRECATED[self.old]}'.\n\n{self.help or ''}".rstrip()

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        if not ctx.resilient_parsing:
            err(deprecation(self.old))
        return super().parse_args(ctx, args)


def alias_of(old: str) -> type[TyperCommand]:
    """The class of the hidden command spelled OLD (a key of :data:`DEPRECATED`)."""
    if old not in DEPRECATED:
        raise KeyError(old)
    return type(f"Alias[{old}]", (_Alias,), {"old": old})


class _DefaultGroup(TyperGroup):
    old: ClassVar[str] = ""
    default: ClassVar[str] = ""

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        if (args and args[0] not in self.commands and args[0] not in ctx.help_option_names
                and not ctx.resilient_parsing):
            err(deprecation(self.old))
            args = [self.default, *args]
        return super().parse_args(ctx, args)


def default_group(old: str, default: str) -> type[TyperGroup]:
    """The class of a group that was a command (OLD): arguments that name none of its commands go to DEFAULT."""
    if old not in DEPRECATED:
        raise KeyError(old)
    return type(f"Group[{old}]", (_DefaultGroup,), {"old": old, "default": default})


class _LedgerOption(TyperCommand):
    old: ClassVar[str] = ""
    #: The ledger the command took when none was named (None: it was the first argument).
    default: ClassVar[str | None] = None

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        if not ctx.resilient_parsing:
            args = self._new_spelling(ctx, list(args))
        return super().parse_args(ctx, args)

    def _new_spelling(self, ctx: _click.Context, args: list[str]) -> list[str]:
        if any(a in ctx.help_option_names or a == "--ledger" or a.startswith("--ledger=") for a in args):
            return args
        taking = {o for p in self.params if isinstance(p, TyperOption) and not p.is_flag for o in p.opts}
        declared = sum(isinstance(p, TyperArgument) for p in self.params)
        positional = _positional(args, taking)
        if self.default is None and len(positional) == declared + 1:
            at = positional[0]
            err(deprecation(self.old))
            return ["--ledger", args[at], *args[:at], *args[at + 1:]]
        if self.default is not None and len(positional) == declared:
            err(deprecation(self.old))
            return ["--ledger", self.default, *args]
        return args


def ledger_named_by_option(old: str, default: str | None = None) -> type[TyperCommand]:
    """The class of a command whose ledger was its first argument (or DEFAULT when not named), now ``--ledger``."""
    if old not in DEPRECATED:
        raise KeyError(old)
    return type(f"Ledger[{old}]", (_LedgerOption,), {"old": old, "default": default})


def _positional(args: list[str], taking: set[str]) -> list[int]:
    """Where the arguments are in ARGS, skipping options and the values of those in TAKING."""
    found: list[int] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return found + list(range(i + 1, len(args)))
        if arg in taking:
            i += 2
            continue
        if not (arg.startswith("-") and arg != "-"):
            found.append(i)
        i += 1
    return found
