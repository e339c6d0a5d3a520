"""Strict YAML for manifests: no anchors, aliases, merge keys, tags or duplicate keys; every key's line kept.

The reader refuses duplicate keys, anchors, aliases, merge keys, non-string keys and tags
other than plain scalars, and remembers the line of every key so that each error names it
(``manifest.yaml:12: unknown key 'treads' in pins``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeAlias

import yaml

from ...errors import LuminaError

__all__ = ["Loc", "MAX_MANIFEST_BYTES", "ManifestError", "read_yaml"]

MAX_MANIFEST_BYTES = 1 << 20

Loc: TypeAlias = tuple[str | int, ...]


class ManifestError(LuminaError):
    """A manifest was refused; ``key_path`` locates the offending key when known."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None, key_path: Loc = ()) -> None:
        super().__init__(message, hint=hint)
        self.key_path = key_path


_T = "tag:yaml.org,2002:"

_SCALAR_TAGS = {_T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"}


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without anchors, aliases, merge keys, duplicate or non-string keys; records key lines."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.lines: dict[Loc, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.MarkedYAMLError(problem="YAML anchors and aliases are not allowed",
                                       problem_mark=event.start_mark)
        return super().compose_node(parent, index)

    def to_python(self, node: yaml.Node, loc: Loc = ()) -> Any:
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            data: dict[str, Any] = {}
            for key_node, value_node in node.value:
                kline = key_node.start_mark.line + 1
                if key_node.tag == _T + "merge" or key_node.value == "<<":
                    raise ManifestError(f"line {kline}: YAML merge keys (<<) are not allowed")
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _T + "str":
                    raise ManifestError(f"line {kline}: keys must be strings")
                key = key_node.value
                if key in data:
                    first = self.lines[(*loc, key)]
                    raise ManifestError(f"line {kline}: duplicate key {key!r} (first on line {first})")
                self.lines[(*loc, key)] = kline
                data[key] = self.to_python(value_node, (*loc, key))
            return data
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                self.lines[(*loc, i)] = item.start_mark.line + 1
                items.append(self.to_python(item, (*loc, i)))
            return items
        if node.tag == _T + "timestamp":
            raise ManifestError(f"line {line}: dates and times must be quoted strings")
        if node.tag not in _SCALAR_TAGS:
            raise ManifestError(f"line {line}: YAML tag {node.tag} is not allowed")
        return self.construct_object(node)


def read_yaml(path: Path) -> tuple[dict[str, Any], dict[Loc, int]]:
    """The strict YAML document at ``path`` and the line of every key (refusals: :class:`ManifestError`)."""
    try:
        raw = path.read_bytes()[:MAX_MANIFEST_BYTES + 1]
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read manifest ({exc.strerror})") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{path}: manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        loader = _StrictLoader(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: manifest is not UTF-8") from None
    try:
        node = loader.get_single_node()
        doc = None if node is None else loader.to_python(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ManifestError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: invalid YAML: {exc}") from None
    except RecursionError:
        raise ManifestError(f"{path}: YAML nested too deeply") from None
    except ManifestError as exc:
        raise ManifestError(f"{path}:{exc.message.removeprefix('line ')}") from None
    finally:
        loader.dispose()
    if not isinstance(doc, dict):
        raise ManifestError(f"{path}: empty manifest" if doc is None else f"{path}: a manifest is a YAML mapping")
    return doc, loader.lines
