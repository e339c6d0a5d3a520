"""The field types every manifest model is made of: strict frozen models, immutable lists, digests, paths."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

__all__ = ["FrozenList", "Hex64", "InsidePath", "PathText", "StrictModel", "matching"]

_Item = TypeVar("_Item")


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


#: A YAML list held as an immutable tuple (dumped as a JSON list).
FrozenList = Annotated[tuple[_Item, ...], BeforeValidator(_as_tuple)]


def matching(regex: str, message: str) -> AfterValidator:
    """A validator that accepts a string matching ``regex`` whole; ``message`` may name ``{value!r}``."""
    pattern = re.compile(regex)

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(message.format(value=value))
        return value

    return AfterValidator(check)


def _path_text(value: str) -> str:
    if not value or any(ord(c) < 32 for c in value):
        raise ValueError("must be a non-empty path without control characters")
    return value


def _inside(value: str) -> str:
    """Relative, no '..': outputs and ledgers stay inside the manifest's folder."""
    if PurePosixPath(value).is_absolute() or value.startswith("\\"):
        raise ValueError(f"{value!r} must be a relative path (inside the manifest's folder)")
    if ".." in PurePosixPath(value).parts:
        raise ValueError(f"{value!r} must not contain '..'")
    return value


Hex64 = Annotated[str, matching(r"[0-9a-f]{64}", "must be 64 lowercase hex digits (a SHA-256)")]

PathText = Annotated[str, AfterValidator(_path_text)]

InsidePath = Annotated[str, AfterValidator(_path_text), AfterValidator(_inside)]


class StrictModel(BaseModel):
    """Frozen, strict, unknown keys refused, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
