"""The Merkle tree over a ledger's records (RFC 9162, :mod:`..merkle`): the root of every prefix, and
whether two checkpoints describe one growing log."""

from __future__ import annotations

from collections.abc import Sequence

from .. import merkle, note

__all__ = ["consistency_problem", "prefix_roots"]


def prefix_roots(leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """``roots[k]``: the RFC 9162 root of the first ``k`` leaves, for every k (O(n log n))."""
    roots: list[bytes] = [merkle.EMPTY_ROOT]
    stack: list[tuple[bytes, int]] = []
    for h in leaf_hashes:
        node, height = h, 0
        while stack and stack[-1][1] == height:
            node, height = merkle.node_hash(stack.pop()[0], node), height + 1
        stack.append((node, height))
        r = node
        for left, _ in reversed(stack[:-1]):
            r = merkle.node_hash(left, r)
        roots.append(r)
    return roots


def consistency_problem(leaves: Sequence[bytes], old: note.Checkpoint, new: note.Checkpoint) -> str | None:
    """Why checkpoint ``new`` is not a consistent extension of ``old`` over these leaf hashes (None: it is)."""
    if new.size < old.size:
        return f"size {new.size} is smaller than the previous checkpoint's {old.size}"
    try:
        proof = merkle.consistency_proof(leaves, old.size, new.size)
        merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    except merkle.ProofError as exc:
        return f"not consistent with the checkpoint of size {old.size}: {exc.message}"
    return None
