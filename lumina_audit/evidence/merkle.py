"""RFC 9162 (RFC 6962) Merkle tree hashing over SHA-256, with proofs.

Leaves are hashed as ``SHA-256(0x00 || data)``, interior nodes as
``SHA-256(0x01 || left || right)``, and the tree over ``n`` leaves splits at
the largest power of two below ``n`` (RFC 9162 section 2.1.1). The root of
the empty tree is ``SHA-256("")``.

Proof generation follows the recursive definitions of RFC 9162 sections
2.1.3.1 (``PATH``) and 2.1.4.1 (``PROOF``/``SUBPROOF``); verification follows
the iterative algorithms of sections 2.1.3.2 and 2.1.4.2 step by step. A
verifier never answers ``False``: it returns ``None`` or raises
:class:`ProofError` naming the RFC step that failed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ..errors import LuminaError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "ProofError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

#: Size in bytes of every hash in the tree (SHA-256).
HASH_SIZE = 32

#: Root hash of the tree with no leaves: ``SHA-256("")``.
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(LuminaError):
    """A Merkle inclusion or consistency proof was refused, or cannot be made."""

    exit_code = 1


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one leaf."""
    return hashlib.sha256(b"\x00" + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return hashlib.sha256(b"\x01" + bytes(left) + bytes(right)).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """Merkle tree hash of the leaf *data* ``leaves`` (``SHA-256("")`` if empty)."""
    return root_from_leaf_hashes([leaf_hash(data) for data in leaves])


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Merkle tree hash of a tree whose leaves are already hashed."""
    # Complete subtrees as (hash, height), heights strictly decreasing.
    stack: list[tuple[bytes, int]] = []
    for h in leaf_hashes:
        _check_hash(h, "leaf hash")
        node, height = bytes(h), 0
        while stack and stack[-1][1] == height:
            node, height = node_hash(stack.pop()[0], node), height + 1
        stack.append((node, height))
    if not stack:
        return EMPTY_ROOT
    result = stack.pop()[0]
    while stack:
        result = node_hash(stack.pop()[0], result)
    return result


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """Audit path ``PATH(index, D[0:size])`` over the first ``size`` leaf hashes."""
    if not 0 <= size <= len(leaf_hashes):
        raise ProofError(f"tree size {size} is outside 0..{len(leaf_hashes)} (the leaves known)")
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside 0..{size - 1} for tree size {size}")
    return _path(leaf_hashes, index, 0, size)


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """Consistency proof ``PROOF(old_size, D[0:new_size])``; empty if old is 0 or new."""
    if not 0 <= new_size <= len(leaf_hashes):
        raise ProofError(f"new tree size {new_size} is outside 0..{len(leaf_hashes)} (the leaves known)")
    if not 0 <= old_size <= new_size:
        raise ProofError(f"old tree size {old_size} is outside 0..{new_size} (the new tree size)")
    if old_size in (0, new_size):
        return []
    return _subproof(leaf_hashes, old_size, 0, new_size, True)


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check an inclusion proof as RFC 9162 section 2.1.3.2 says; raise :class:`ProofError`."""
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root hash")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof element {i}")
    # Step 1.
    if index < 0 or index >= size:
        raise ProofError(f"inclusion step 1: leaf index {index} is not in 0..{size - 1} (tree size {size})")
    # Steps 2 and 3.
    fn, sn, r = index, size - 1, bytes(leaf_hash)
    # Step 4.
    for i, p in enumerate(proof):
        if sn == 0:
            raise ProofError(
                f"inclusion step 4a: proof element {i} is superfluous (proof has {len(proof)} elements)"
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    # Step 5.
    if sn != 0:
        raise ProofError(f"inclusion step 5: proof has {len(proof)} elements, too few for tree size {size}")
    if r != root:
        raise ProofError(
            f"inclusion step 5: computed root {r.hex()} differs from expected root {bytes(root).hex()}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check a consistency proof as RFC 9162 section 2.1.4.2 says; raise :class:`ProofError`."""
    _check_hash(old_root, "old root hash")
    _check_hash(new_root, "new root hash")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof element {i}")
    # Step 0: sizes and the trivial cases the RFC algorithm does not cover.
    if old_size < 0 or old_size > new_size:
        raise ProofError(f"consistency step 0: old size {old_size} is not in 0..{new_size} (new size)")
    if old_size == new_size or old_size == 0:
        if proof:
            raise ProofError(
                f"consistency step 0: proof from size {old_size} to {new_size} must be empty, "
                f"it has {len(proof)} elements"
            )
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ProofError("consistency step 0: old size is 0 but old root is not the empty-tree hash")
        if old_size == new_size and old_root != new_root:
            raise ProofError(f"consistency step 0: roots of the same size {old_size} differ")
        return
    # Step 1.
    if not proof:
        raise ProofError(f"consistency step 1: proof from size {old_size} to {new_size} is empty")
    # Step 2.
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, bytes(old_root))
    # Step 3.
    fn, sn = old_size - 1, new_size - 1
    # Step 4.
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for i, c in enumerate(path[1:], start=1):
        if sn == 0:
            raise ProofError(
                f"consistency step 6a: proof element {i - (len(path) - len(proof))} is superfluous "
                f"(proof has {len(proof)} elements)"
            )
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # Step 7.
    if sn != 0:
        raise ProofError(
            f"consistency step 7: proof has {len(proof)} elements, too few for sizes {old_size} to {new_size}"
        )
    if fr != old_root:
        raise ProofError(
            f"consistency step 7: computed old root {fr.hex()} differs from {bytes(old_root).hex()}"
        )
    if sr != new_root:
        raise ProofError(
            f"consistency step 7: computed new root {sr.hex()} differs from {bytes(new_root).hex()}"
        )


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        size = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {size}")


def _split(n: int) -> int:
    """Largest power of two strictly below ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaf_hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    return root_from_leaf_hashes(leaf_hashes[lo:hi])


def _path(leaf_hashes: Sequence[bytes], m: int, lo: int, hi: int) -> list[bytes]:
    """``PATH(m, D[lo:hi])`` of RFC 9162 section 2.1.3.1."""
    n = hi - lo
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(leaf_hashes, m, lo, lo + k), _mth(leaf_hashes, lo + k, hi)]
    return [*_path(leaf_hashes, m - k, lo + k, hi), _mth(leaf_hashes, lo, lo + k)]


def _subproof(leaf_hashes: Sequence[bytes], m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
    """``SUBPROOF(m, D[lo:hi], b)`` of RFC 9162 section 2.1.4.1."""
    n = hi - lo
    if m == n:
        return [] if whole else [_mth(leaf_hashes, lo, hi)]
    k = _split(n)
    if m <= k:
        return [*_subproof(leaf_hashes, m, lo, lo + k, whole), _mth(leaf_hashes, lo + k, hi)]
    return [*_subproof(leaf_hashes, m - k, lo + k, hi, False), _mth(leaf_hashes, lo, lo + k)]
