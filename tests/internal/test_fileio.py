"""One durable-write helper (lumina_audit/_internal/fileio.py) and one file-mode policy.

Policy: a file the project creates is 0644 and a secret (a private key, a PKCS#12 bundle) 0600, whatever the
umask; a replaced file keeps its mode. Every whole-file write goes through ``durable_file``: never an
overwrite unless asked, whole or nothing, the file and its folder fsynced.
"""

from __future__ import annotations

import ast
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from lumina_audit._internal import fileio
from lumina_audit._internal.fileio import FILE_MODE, SECRET_MODE, write_file

from ..conftest import ROOT


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(params=[0o022, 0o077, 0o000], ids=["umask-022", "umask-077", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


# ------------------------------------------------------------------ the helper


def test_a_new_file_is_whole_fsynced_and_never_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          umask: int) -> None:
    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd)))
    path = tmp_path / "out.json"
    write_file(path, b"first")
    assert path.read_bytes() == b"first" and mode(path) == FILE_MODE and listing(tmp_path) == ["out.json"]
    assert str(tmp_path) in synced and any(s.endswith(".tmp") for s in synced)  # the file (before its link), the folder
    with pytest.raises(FileExistsError) as exc:
        write_file(path, b"second")
    assert exc.value.filename == str(path) and path.read_bytes() == b"first" and listing(tmp_path) == ["out.json"]


def test_a_file_that_appears_meanwhile_is_not_overwritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.json"
    real_link = os.link

    def racing_link(src: str, dst: str) -> None:
        Path(dst).write_bytes(b"theirs")  # another writer wins the race
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(FileExistsError) as exc:
        write_file(path, b"ours")
    assert exc.value.filename == str(path) and path.read_bytes() == b"theirs" and listing(tmp_path) == ["out.json"]


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output error"):
        write_file(tmp_path / "new.json", b"data")
    (tmp_path / "old.json").write_bytes(b"old")
    with pytest.raises(OSError, match="Input/output error"):
        write_file(tmp_path / "old.json", b"new", replace=True)
    assert listing(tmp_path) == ["old.json"] and (tmp_path / "old.json").read_bytes() == b"old"


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "store.h5"
    write_file(path, b"one", replace=True)
    assert mode(path) == FILE_MODE
    path.chmod(0o640)
    write_file(path, b"two", replace=True)
    assert path.read_bytes() == b"two" and mode(path) == 0o640 and listing(tmp_path) == ["store.h5"]


def test_without_hard_links_the_data_is_copied_and_still_never_overwrites(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: str, dst: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "key"
    write_file(path, b"secret", mode=SECRET_MODE)
    assert path.read_bytes() == b"secret" and mode(path) == SECRET_MODE and listing(tmp_path) == ["key"]
    with pytest.raises(FileExistsError):
        write_file(path, b"other")
    assert path.read_bytes() == b"secret"


def test_a_published_folder_never_replaces_one(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir(mode=0o700)
    fileio.publish_folder(tmp_path / "tmp", tmp_path / "out")
    assert mode(tmp_path / "out") == fileio.FOLDER_MODE
    (tmp_path / "tmp2").mkdir()
    with pytest.raises(FileExistsError):
        fileio.publish_folder(tmp_path / "tmp2", tmp_path / "out")


#: What only the helper may call: a whole-file write elsewhere is a second implementation.
_ONLY_FILEIO = {("os", "fsync"), ("os", "replace"), ("os", "rename"), ("os", "link"), ("os", "ftruncate"),
                ("os", "O_EXCL"), ("os", "O_APPEND"), ("os", "fchmod"), ("os", "chmod"), ("tempfile", "mkstemp"),
                ("tempfile", "NamedTemporaryFile")}


def test_every_durable_write_goes_through_the_helper() -> None:
    found = []
    for path in sorted((ROOT / "lumina_audit").rglob("*.py")):
        if path == ROOT / "lumina_audit" / "_internal" / "fileio.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and (
                    (node.value.id, node.attr) in _ONLY_FILEIO):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value.id}.{node.attr}")
            elif isinstance(node, ast.ImportFrom) and node.module in ("os", "tempfile") and any(
                    (node.module, a.name) in _ONLY_FILEIO for a in node.names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} from {node.module} import ...")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open" and any(
                    isinstance(a, ast.Constant) and isinstance(a.value, str) and "x" in a.value
                    for a in node.args[1:2]):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} open(..., 'x')")
    assert found == []


# ------------------------------------------------------------------ the policy, product by product


def test_every_product_gets_the_stated_mode(tmp_path: Path, umask: int) -> None:
    """A report, a calibration, a store, a ledger, a certificate, keys and a manifest signature, under any umask."""
    from lumina_audit.attribution import calibration_file
    from lumina_audit.attribution.reports import write_canonical
    from lumina_audit.attribution.store_writer import create_or_append
    from lumina_audit.certificates.issue import issue_certificate
    from lumina_audit.certificates.pki import write_throwaway_pki
    from lumina_audit.certificates.signer import load_signer
    from lumina_audit.evidence.keys import generate, write_private_key, write_public_key
    from lumina_audit.evidence.ledger import Ledger
    from lumina_audit.evidence.manifest import sign_manifest

    from ..attribution.test_calibration_file import _arrays, _doc
    from ..attribution.test_store import SPACE, make_sigs
    from ..certificates.test_render_verify import OPERATOR, _make
    from ..evidence.test_manifest import FULL, write

    want: dict[Path, int] = {}
    write_canonical(tmp_path / "report.json", {"format": "lumina-attribution-report", "version": 1})
    want[tmp_path / "report.json"] = FILE_MODE
    calibration_file.write(tmp_path / "calibration.zip", _doc(), _arrays())
    want[tmp_path / "calibration.zip"] = FILE_MODE
    create_or_append(tmp_path / "store.h5", SPACE, make_sigs(2))
    want[tmp_path / "store.h5"] = FILE_MODE

    # A ledger with two records, a report it lists, and the certificate issued from them.
    _doc_, data, _proof, _when = _make(tmp_path)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "q.json").write_bytes(data)
    want.update({tmp_path / "ledger" / name: FILE_MODE for name in ("ledger.json", "records", "checkpoints", "lock")})
    pki = write_throwaway_pki(tmp_path / "pki", "ec", pkcs12_passphrase=b"passphrase")
    want.update({pki["root"]: FILE_MODE, pki["cert"]: FILE_MODE, pki["key"]: SECRET_MODE, pki["pkcs12"]: SECRET_MODE})
    issue_certificate(tmp_path / "reports" / "q.json", tmp_path / "ledger", tmp_path / "q.pdf", operator_key=OPERATOR,
                      principal="operator", signer=load_signer(key=pki["key"], cert=pki["cert"]))
    assert len(Ledger.open(tmp_path / "ledger").records()) == 3
    want[tmp_path / "q.pdf"] = FILE_MODE

    key = generate()
    write_private_key(tmp_path / "operator.key", key)
    write_public_key(tmp_path / "operator.pub", key.public_key())
    want.update({tmp_path / "operator.key": SECRET_MODE, tmp_path / "operator.pub": FILE_MODE})
    sig = sign_manifest(write(tmp_path, FULL), key)
    want[sig] = FILE_MODE

    assert {str(p.relative_to(tmp_path)): oct(mode(p)) for p in want} == {
        str(p.relative_to(tmp_path)): oct(m) for p, m in want.items()}
    assert not [p for p in tmp_path.rglob("*.tmp")]
