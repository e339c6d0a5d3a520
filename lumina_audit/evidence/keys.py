"""Ed25519 keys: generation, files, key ids.

Private keys are PKCS#8 PEM files created with mode 0600 (never overwritten),
optionally encrypted with a passphrase. Public keys are one OpenSSH line
(``ssh-ed25519 AAAA... comment``), the form a trust file holds. A key id is the
lowercase hex SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .._internal.fileio import FILE_MODE, SECRET_MODE, write_file
from ..errors import LuminaError

__all__ = [
    "KeyFileError",
    "generate",
    "key_id",
    "load_private_key",
    "parse_public_key",
    "public_key_line",
    "raw_public_key",
    "write_private_key",
    "write_public_key",
]


class KeyFileError(LuminaError):
    """A key file could not be written, read or decrypted."""


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the raw 32-byte public key."""
    return hashlib.sha256(raw_public_key(public_key)).hexdigest()


def public_key_line(public_key: Ed25519PublicKey, comment: str = "") -> str:
    line = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{line} {comment}".rstrip()


def parse_public_key(text: str) -> Ed25519PublicKey:
    """An OpenSSH ``ssh-ed25519 BASE64 [comment]`` line."""
    parts = text.strip().split()
    if len(parts) < 2 or parts[0] != "ssh-ed25519":
        raise KeyFileError("not an ssh-ed25519 public key")
    try:
        key = serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except (ValueError, TypeError):
        raise KeyFileError("malformed ssh-ed25519 public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError("not an Ed25519 public key")
    return key


def _create_exclusive(path: Path, data: bytes, mode: int) -> None:
    try:
        write_file(path, data, mode=mode)
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot write ({exc.strerror})") from None


def write_private_key(path: Path, key: Ed25519PrivateKey, passphrase: bytes | None = None) -> None:
    """PKCS#8 PEM, mode 0600, encrypted when a passphrase is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    _create_exclusive(path, pem, SECRET_MODE)


def write_public_key(path: Path, public_key: Ed25519PublicKey, comment: str = "") -> None:
    _create_exclusive(path, (public_key_line(public_key, comment) + "\n").encode(), FILE_MODE)


def load_private_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read private key ({exc.strerror})") from None
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:
        raise KeyFileError(f"{path}: private key is encrypted; a passphrase is needed"
                           if passphrase is None else f"{path}: private key is not encrypted") from None
    except ValueError:
        raise KeyFileError(f"{path}: not a PEM private key, or wrong passphrase") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 private key")
    return key
