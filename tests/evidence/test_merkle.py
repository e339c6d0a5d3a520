"""RFC 9162 / RFC 6962 Merkle tree hashing, inclusion and consistency proofs.

The literal known answers below are the 8-leaf reference tree of Certificate
Transparency, as published in transparency-dev/merkle (``testonly/constants.go``,
``rfc6962/rfc6962_test.go``, ``proof/verify_test.go``) and, independently, in
Chromium's ``net/cert/ct_log_verifier_unittest.cc`` (copied from
google/certificate-transparency ``cpp/merkletree/merkle_tree_test.cc``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumina_audit.errors import LuminaError
from lumina_audit.evidence.merkle import (
    EMPTY_ROOT,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


LEAVES = [h(x) for x in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
)]

# Leaf hashes (level 0 of testonly.NodeHashes()).
LEAF_HASHES = [h(x) for x in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
)]

# ROOTS[n] is the root of the tree over LEAVES[:n] (testonly.RootHashes()).
ROOTS = [h(x) for x in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]

# (0-based leaf index, tree size, audit path) from proof/verify_test.go (1-based there).
KNOWN_INCLUSION = [
    (0, 8, [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]),
    (5, 8, [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]),
]

# (old size, new size, consistency proof) from proof/verify_test.go and Chromium.
KNOWN_CONSISTENCY = [
    (1, 1, []),
    (1, 8, [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]),
    (6, 8, [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]),
    (2, 5, [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]),
    (6, 7, [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]),
]

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


# --- hasher -----------------------------------------------------------------------------------------------


def test_hasher_vectors() -> None:
    # Vectors of transparency-dev/merkle rfc6962/rfc6962_test.go.
    assert EMPTY_ROOT == h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert root([]) == EMPTY_ROOT
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert leaf_hash(b"") == h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456") == h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    node = node_hash(b"N123", b"N456")
    assert node == h("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")


def test_hasher_domain_separation() -> None:
    a, b = leaf_hash(b"Hello"), leaf_hash(b"World")
    assert a != b
    assert node_hash(a, b) != leaf_hash(a + b)
    assert node_hash(a, b) != node_hash(b, a)


def test_leaf_hashes_of_reference_tree() -> None:
    assert [leaf_hash(x) for x in LEAVES] == LEAF_HASHES


@pytest.mark.parametrize("size", range(9))
def test_reference_roots(size: int) -> None:
    assert root(LEAVES[:size]) == ROOTS[size]
    assert root_from_leaf_hashes(LEAF_HASHES[:size]) == ROOTS[size]


def _reference_mth(hashes: Sequence[bytes]) -> bytes:
    """MTH straight from RFC 9162 section 2.1.1, recursively."""
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + _reference_mth(hashes[:k]) + _reference_mth(hashes[k:])).digest()


# --- known proofs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size", "path"), KNOWN_INCLUSION)
def test_known_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    proof = inclusion_proof(LEAF_HASHES, index, size)
    assert [p.hex() for p in proof] == path
    verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("old", "new", "path"), KNOWN_CONSISTENCY)
def test_known_consistency_proofs(old: int, new: int, path: list[str]) -> None:
    proof = consistency_proof(LEAF_HASHES, old, new)
    assert [p.hex() for p in proof] == path
    verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


ALL_INCLUSION = [(i, n) for n in range(1, 9) for i in range(n)]
ALL_CONSISTENCY = [(m, n) for n in range(9) for m in range(n + 1)]


@pytest.mark.parametrize(("index", "size"), ALL_INCLUSION)
def test_every_inclusion_proof_up_to_8(index: int, size: int) -> None:
    proof = inclusion_proof(LEAF_HASHES, index, size)
    verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("old", "new"), ALL_CONSISTENCY)
def test_every_consistency_proof_up_to_8(old: int, new: int) -> None:
    proof = consistency_proof(LEAF_HASHES, old, new)
    verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


# --- mutations --------------------------------------------------------------------------------------------


def _flip(proof: list[bytes], i: int, byte: int, bit: int) -> list[bytes]:
    out = list(proof)
    element = bytearray(out[i])
    element[byte] ^= 1 << bit
    out[i] = bytes(element)
    return out


InclusionArgs = tuple[bytes, int, int, list[bytes], bytes]


def _inclusion_mutations(index: int, size: int) -> dict[str, InclusionArgs]:
    leaf, proof, good_root = LEAF_HASHES[index], inclusion_proof(LEAF_HASHES, index, size), ROOTS[size]
    cases: dict[str, InclusionArgs] = {
        "index - 1": (leaf, index - 1, size, proof, good_root),
        "index + 1": (leaf, index + 1, size, proof, good_root),
        "index ^ 2": (leaf, index ^ 2, size, proof, good_root),
        "size * 2": (leaf, index, size * 2, proof, good_root),
        "size // 2": (leaf, index, size // 2, proof, good_root),
        "wrong leaf": (leaf_hash(b"WrongLeaf"), index, size, proof, good_root),
        "short leaf": (b"WrongLeaf", index, size, proof, good_root),
        "empty root": (leaf, index, size, proof, EMPTY_ROOT),
        "random root": (leaf, index, size, proof, SOME_HASH),
        "other size root": (leaf, index, size, proof, ROOTS[size - 1]),
        "appended garbage": (leaf, index, size, [*proof, b""], good_root),
        "appended root": (leaf, index, size, [*proof, good_root], good_root),
        "appended hash": (leaf, index, size, [*proof, SOME_HASH], good_root),
        "prepended garbage": (leaf, index, size, [b"", *proof], good_root),
        "prepended root": (leaf, index, size, [good_root, *proof], good_root),
        "prepended leaf": (leaf, index, size, [leaf, *proof], good_root),
    }
    for i in range(len(proof)):
        cases[f"proof[{i}] bit 3 of byte 0"] = (leaf, index, size, _flip(proof, i, 0, 3), good_root)
        cases[f"proof[{i}] bit 0 of byte 31"] = (leaf, index, size, _flip(proof, i, 31, 0), good_root)
        cases[f"proof[{i}] removed"] = (leaf, index, size, proof[:i] + proof[i + 1 :], good_root)
        cases[f"proof[{i}] doubled"] = (leaf, index, size, proof[: i + 1] + proof[i:], good_root)
    if len(proof) > 1:
        cases["inserted component"] = (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], good_root)
        cases["reversed"] = (leaf, index, size, proof[::-1], good_root)
    return cases


@pytest.mark.parametrize(("index", "size"), ALL_INCLUSION)
def test_inclusion_mutations_are_refused(index: int, size: int) -> None:
    accepted = []
    for desc, args in _inclusion_mutations(index, size).items():
        try:
            verify_inclusion(*args)
        except ProofError:
            continue
        accepted.append(desc)
    assert accepted == []


ConsistencyArgs = tuple[int, int, bytes, bytes, list[bytes]]


def _consistency_mutations(old: int, new: int) -> dict[str, ConsistencyArgs]:
    proof, r1, r2 = consistency_proof(LEAF_HASHES, old, new), ROOTS[old], ROOTS[new]
    cases: dict[str, ConsistencyArgs] = {
        "old - 1": (old - 1, new, r1, r2, proof),
        "old + 1": (old + 1, new, r1, r2, proof),
        "old ^ 2": (old ^ 2, new, r1, r2, proof),
        "new * 2": (old, new * 2, r1, r2, proof),
        "new // 2": (old, new // 2, r1, r2, proof),
        "short root1": (old, new, b"WrongRoot", r2, proof),
        "short root2": (old, new, r1, b"WrongRoot", proof),
        "wrong root1": (old, new, SOME_HASH, r2, proof),
        "wrong root2": (old, new, r1, SOME_HASH, proof),
        "swapped roots": (old, new, r2, r1, proof),
        "empty proof": (old, new, r1, r2, []),
        "appended garbage": (old, new, r1, r2, [*proof, b""]),
        "appended root1": (old, new, r1, r2, [*proof, r1]),
        "appended root2": (old, new, r1, r2, [*proof, r2]),
        "appended hash": (old, new, r1, r2, [*proof, SOME_HASH]),
        "prepended garbage": (old, new, r1, r2, [b"", *proof]),
        "prepended root1": (old, new, r1, r2, [r1, *proof]),
        "prepended root2": (old, new, r1, r2, [r2, *proof]),
        "prepended proof[0]": (old, new, r1, r2, [proof[0], *proof]),
    }
    for i in range(len(proof)):
        cases[f"proof[{i}] bit 4 of byte 0"] = (old, new, r1, r2, _flip(proof, i, 0, 4))
        cases[f"proof[{i}] bit 7 of byte 31"] = (old, new, r1, r2, _flip(proof, i, 31, 7))
        cases[f"proof[{i}] removed"] = (old, new, r1, r2, proof[:i] + proof[i + 1 :])
        replaced = [*proof[:i], EMPTY_ROOT, *proof[i + 1 :]]
        cases[f"proof[{i}] replaced by empty root"] = (old, new, r1, r2, replaced)
    return cases


@pytest.mark.parametrize(("old", "new"), [(m, n) for (m, n) in ALL_CONSISTENCY if 0 < m < n])
def test_consistency_mutations_are_refused(old: int, new: int) -> None:
    accepted = []
    for desc, args in _consistency_mutations(old, new).items():
        try:
            verify_consistency(*args)
        except ProofError:
            continue
        accepted.append(desc)
    assert accepted == []


# --- edge cases and preconditions -------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (1, 1), (2, 1), (8, 8), (-1, 8)])
def test_verify_inclusion_refuses_index_outside_tree(index: int, size: int) -> None:
    with pytest.raises(ProofError, match="step 1"):
        verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


def test_single_leaf_tree() -> None:
    lh = leaf_hash(b"data")
    verify_inclusion(lh, 0, 1, [], lh)
    with pytest.raises(ProofError, match="differs"):
        verify_inclusion(lh, 0, 1, [], SOME_HASH)
    with pytest.raises(ProofError, match="32 bytes"):
        verify_inclusion(b"", 0, 1, [], lh)
    with pytest.raises(ProofError, match="32 bytes"):
        verify_inclusion(lh, 0, 1, [], b"")


def test_inclusion_messages_name_the_step() -> None:
    proof = inclusion_proof(LEAF_HASHES, 0, 8)
    with pytest.raises(ProofError, match=r"step 4a: proof element 3 is superfluous"):
        verify_inclusion(LEAF_HASHES[0], 0, 8, [*proof, SOME_HASH], ROOTS[8])
    with pytest.raises(ProofError, match=r"step 5: proof has 2 elements, too few"):
        verify_inclusion(LEAF_HASHES[0], 0, 8, proof[:2], ROOTS[8])
    with pytest.raises(ProofError, match=r"step 5: computed root [0-9a-f]{64} differs"):
        verify_inclusion(LEAF_HASHES[1], 0, 8, proof, ROOTS[8])


def test_consistency_edge_cases() -> None:
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    verify_consistency(3, 3, ROOTS[3], ROOTS[3], [])
    refused: list[ConsistencyArgs] = [
        (0, 0, EMPTY_ROOT, SOME_HASH, []),  # same size, different roots
        (3, 3, ROOTS[3], ROOTS[4], []),
        (0, 5, SOME_HASH, ROOTS[5], []),  # size 0 must have the empty-tree root
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]),  # trivial cases need an empty proof
        (0, 1, EMPTY_ROOT, ROOTS[1], [EMPTY_ROOT]),
        (1, 1, ROOTS[1], ROOTS[1], [EMPTY_ROOT]),
        (1, 0, ROOTS[1], EMPTY_ROOT, []),  # time travel
        (2, 1, ROOTS[2], ROOTS[1], []),
        (-1, 1, EMPTY_ROOT, ROOTS[1], []),
        (1, 2, ROOTS[1], ROOTS[2], []),  # different sizes need a proof
    ]
    for args in refused:
        with pytest.raises(ProofError, match="step"):
            verify_consistency(*args)


def test_consistency_messages_name_the_step() -> None:
    proof = consistency_proof(LEAF_HASHES, 6, 8)
    with pytest.raises(ProofError, match="step 1"):
        verify_consistency(6, 8, ROOTS[6], ROOTS[8], [])
    with pytest.raises(ProofError, match="step 6a: proof element 3 is superfluous"):
        verify_consistency(6, 8, ROOTS[6], ROOTS[8], [*proof, SOME_HASH])
    with pytest.raises(ProofError, match="step 7: proof has 2 elements, too few"):
        verify_consistency(6, 8, ROOTS[6], ROOTS[8], proof[:2])
    with pytest.raises(ProofError, match="step 7: computed old root"):
        verify_consistency(6, 8, ROOTS[5], ROOTS[8], proof)
    with pytest.raises(ProofError, match="step 7: computed new root"):
        verify_consistency(6, 8, ROOTS[6], ROOTS[7], proof)


@pytest.mark.parametrize(
    "call",
    [
        lambda: inclusion_proof(LEAF_HASHES, 0, 9),
        lambda: inclusion_proof(LEAF_HASHES, 8, 8),
        lambda: inclusion_proof(LEAF_HASHES, -1, 8),
        lambda: inclusion_proof(LEAF_HASHES, 0, 0),
        lambda: consistency_proof(LEAF_HASHES, 3, 9),
        lambda: consistency_proof(LEAF_HASHES, 5, 4),
        lambda: consistency_proof(LEAF_HASHES, -1, 4),
        lambda: root_from_leaf_hashes([b"short"]),
    ],
)
def test_generation_preconditions(call: Callable[[], object]) -> None:
    with pytest.raises(ProofError):
        call()


def test_proof_error_is_a_lumina_error() -> None:
    assert issubclass(ProofError, LuminaError)
    assert ProofError.exit_code == 1


# --- random larger trees ----------------------------------------------------------------------------------

MAX_LEAVES = 300


@lru_cache(maxsize=1)
def _big_leaf_hashes() -> tuple[bytes, ...]:
    return tuple(leaf_hash(i.to_bytes(4, "big") * (i % 5)) for i in range(MAX_LEAVES))


@st.composite
def _index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX_LEAVES))
    return draw(st.integers(0, size - 1)), size


@st.composite
def _sizes(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(0, MAX_LEAVES))
    return draw(st.integers(0, new)), new


@settings(max_examples=150, deadline=None)
@given(_index_and_size(), st.data())
def test_random_inclusion(index_size: tuple[int, int], data: st.DataObject) -> None:
    index, size = index_size
    hashes = _big_leaf_hashes()
    tree_root = root_from_leaf_hashes(hashes[:size])
    assert tree_root == _reference_mth(hashes[:size])
    proof = inclusion_proof(hashes, index, size)
    verify_inclusion(hashes[index], index, size, proof, tree_root)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        byte, bit = data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7))
        with pytest.raises(ProofError):
            verify_inclusion(hashes[index], index, size, _flip(proof, i, byte, bit), tree_root)
    with pytest.raises(ProofError):
        verify_inclusion(hashes[index], index, size, [*proof, SOME_HASH], tree_root)
    other = data.draw(st.integers(0, size - 1))
    if other != index:
        with pytest.raises(ProofError):
            verify_inclusion(hashes[index], other, size, proof, tree_root)


@settings(max_examples=150, deadline=None)
@given(_sizes(), st.data())
def test_random_consistency(sizes: tuple[int, int], data: st.DataObject) -> None:
    old, new = sizes
    hashes = _big_leaf_hashes()
    old_root, new_root = root_from_leaf_hashes(hashes[:old]), root_from_leaf_hashes(hashes[:new])
    proof = consistency_proof(hashes, old, new)
    verify_consistency(old, new, old_root, new_root, proof)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        byte, bit = data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7))
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, _flip(proof, i, byte, bit))
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, proof[:-1])
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, [*proof, SOME_HASH])
