"""Reading a versioned, canonical JSON document: the one check every format of the project makes.

Every file format carries a name (``format``) and a ``version``; readers refuse another name,
an unknown version, and a document that is not in RFC 8785 canonical form (so its SHA-256 names
exactly what was written). Each format's reader calls :func:`read_versioned` and then checks
its own fields.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..errors import LuminaError

__all__ = ["read_versioned"]


def read_versioned(data: bytes, where: str, fmt: str, versions: Sequence[int], error: type[LuminaError], *,
                   what: str = "file", note: str = "") -> dict[str, Any]:
    """The document in ``data``: JSON, ``format`` ``fmt``, a ``version`` in ``versions``, canonical.

    Anything else raises ``error`` with one line naming ``where``; ``note`` follows the list of
    versions read (e.g. where another version lives).
    """
    import rfc8785

    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise error(f"{where}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise error(f"{where}: not a {fmt} {what}")
    version = doc.get("version")
    if isinstance(version, bool) or version not in versions:
        raise error(f"{where}: {fmt} version {version!r} is not supported (only "
                    f"{' and '.join(map(str, versions))}{note})")
    try:
        canonical = rfc8785.dumps(doc)
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        canonical = b""
    if canonical != data:
        raise error(f"{where}: not in canonical form (edited by hand?)")
    return doc
