"""The one definition of an acceptable RFC 3161 timestamp-authority URL (manifests and signing share it)."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["timestamp_url_problem"]


def timestamp_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a timestamp authority (``http`` or ``https`` with a host), or None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        return f"timestamp authority URL {url!r} is not an http:// or https:// URL"
    return None
