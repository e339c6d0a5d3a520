"""The repository's folders and checkpoints, digest files, file digests and work folders."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from pathlib import Path

from lumina_tools import ROOT, ToolError

__all__ = [
    "GOLDEN",
    "MODELS",
    "RANDOM",
    "RESULTS",
    "TRAINED",
    "WORK",
    "clean_dir",
    "digests_path",
    "file_sha256",
    "read_digests",
    "remove_inside",
    "shown",
    "write_digests",
]

#: The golden vectors, their clips and the embedded checkpoints (package data of ``lumina_audit``).
GOLDEN = ROOT / "lumina_audit" / "_data" / "golden"
MODELS = GOLDEN / "models"
#: The random tiny checkpoint (``scripts/make_tiny_checkpoint.py``) and the trained one (``scripts/train_tiny.py``).
RANDOM = MODELS / "tiny-musicgen"
TRAINED = MODELS / "tiny-musicgen-trained"
#: Where the benchmarks' reports are committed.
RESULTS = ROOT / "benchmarks" / "results"
#: The git-ignored work folder: audio, caches and anything derived from recorded music stay in it.
WORK = ROOT / "work"


def shown(path: Path) -> str:
    """``path`` relative to the repository root when inside it (as reports name files), else as given."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex), read in blocks of 1 MiB."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def digests_path(model_dir: Path) -> Path:
    """The digest file of a checkpoint directory: ``<model_dir>.sha256`` beside it."""
    return model_dir.with_name(f"{model_dir.name}.sha256")


def read_digests(model_dir: Path, digests: Path | None = None) -> tuple[Path, dict[str, str]]:
    """The digest file of ``model_dir`` (``digests``, default :func:`digests_path`) and its digests, in file order."""
    from lumina_audit.signature.digests import parse_digest_text

    path = digests or digests_path(model_dir)
    if not model_dir.is_dir():
        raise ToolError(f"{model_dir}: no such checkpoint directory")
    if not path.is_file():
        raise ToolError(f"{path}: no digest file for {model_dir} (give --digests)")
    return path, parse_digest_text(path.read_text(encoding="utf-8"), str(path))


def write_digests(model_dir: Path, digests: Mapping[str, str]) -> Path:
    """Write ``<model_dir>.sha256`` as ``sha256sum`` lines (``HEX  NAME``, in the mapping's order); its path."""
    path = digests_path(model_dir)
    path.write_text("".join(f"{hexd}  {name}\n" for name, hexd in digests.items()), encoding="utf-8")
    return path


def _check_inside(path: Path, work: Path, doing: str) -> None:
    if work.resolve() not in path.resolve().parents:
        raise ToolError(f"refusing to {doing} {path}: not inside the work folder {work}")


def remove_inside(path: Path, work: Path) -> None:
    """Remove the folder ``path`` if it exists, only when it lies inside ``work``."""
    _check_inside(path, work, "remove")
    if path.exists():
        shutil.rmtree(path)


def clean_dir(path: Path, work: Path) -> Path:
    """Empty ``path`` (a folder inside the work folder ``work``), make it, and return it."""
    _check_inside(path, work, "clear")
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
