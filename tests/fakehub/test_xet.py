"""Tests of the fake Xet CAS: the spec's chunking and hashing against reference vectors, xorbs,
repos made with genrepo --xet, the CAS as served, its faults, and the official JS client.

Run: /usr/bin/python3 -m pytest tests/fakehub/test_xet.py
"""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import xet  # noqa: E402

# Reference values of xet-core's aggregated-hash test (xet_core_structures/src/merklehash/
# aggregated_hashes.rs, test_correctness): eight chunk hashes (as strings, api.md), then node
# lists given as indices into them, each node sized index * 100, with the xorb hash and the file
# hash (salt zero) of each list. They check BLAKE3's keyed mode, both keys, the hash strings
# and the merkle tree's shape (the 64-node list has three levels).
REF_HASHES = ["0" * 64,
              "cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6",
              "c3e67584b5c4fc2a89837ec39e40f2c8a6bb0b2987ac94cd4b31e5fbdd210a72",
              "0d2beb91b9196929a5ddec9f6e306924ddf4a24268e3e59fd8464738d525af37",
              "adf8773496a9b7319b2e50dc98093f344053b17d8ad37100b9c07d9805988784",
              "4ac202caf347fc1e9c874b1ef6a1c5e619141eb775a6f43f0f0124ccd0060d9e",
              "b3b28636f65c149ea52eb1f94669466f70f033b54cea792824c696ba6ef3c389",
              "0e2c1a002aae913d2c0fc8ddfa4e9e14b7b311b3b0d458726d5d9f6a6318013c"]
REF_TREES = [
    ([], "0" * 64, "0" * 64),
    ([1], REF_HASHES[1], "8e16257caa3fe079d484d872a8975264b2ff683b0d6db9028cc7c0f968a45661"),
    ([1, 2, 3], "71ec1275fca074724e2dd666921b3277c7cee603e4d025bcab2d4050015be2bc",
     "54e55dccc6653c612bdb5576c5d3cb34bb31bc4e100248abccf4c908b3ef7715"),
    ([1, 2, 1, 2, 3, 4], "52c826f99507aa05d0b45e9837fa1709e0485425cfbcb1e80db3905cf98b3ee9",
     "91d21684db364c8883ab8209fa5eb2e781cf07f37e1fa43e731c30839afe422f"),
    (list(range(8)), "f62abe77e3fb9c954fe52b0028027ddc90c064c45951a4fd2211d87e5c0011db",
     "d1b068be5bbdb38992269e8efe61f601881e39f7a7585fd76883cc6ea5c23b44"),
    ([i % 8 for i in range(64)],
     "6554007c9b5d0a5e7918f79596a1b68815c1407535585435f5735db761f21b88",
     "a8640ab81d48854e00078e12b1ea8be5d90be0ffb5f73a15b7009981d093ddd8"),
    (list(range(8)) + [1] * 4, "e7fc30b73ec9930593f80fe777b334e9d3bb73e45e6a79fa5784b2603446158b",
     "69e1af2fd6023ce133e0d1b90e32d1d42ef79f5a710f2b0accfc3a735e98de9d"),
    ([i // 2 for i in range(16)],
     "636c65db520ec16e8166f9ec7a0cf9f74b26369077ac60160ec0221c86bc9f77",
     "6a90ad0d6f5246ac61f1de898c6944c03e14004a1368e6fb23387108c4d039e0"),
]


def splitmix64_bytes(n, seed):
    """The test data of xet-core's chunker tests: SplitMix64 outputs as little-endian bytes."""
    out, state, m = bytearray(), seed, (1 << 64) - 1
    while len(out) < n:
        state = (state + 0x9E3779B97F4A7C15) & m
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        out += (z ^ (z >> 31)).to_bytes(8, "little")
    return bytes(out[:n])


# --- the spec's functions --------------------------------------------------------------------------

@pytest.mark.parametrize("indices,xorb_hex,file_hex", REF_TREES)
def test_merkle_reference_vectors(indices, xorb_hex, file_hex):
    nodes = [(xet.hex_hash(REF_HASHES[i]), i * 100) for i in indices]
    assert xet.hash_hex(xet.xorb_hash(nodes)) == xorb_hex
    assert xet.hash_hex(xet.file_hash(nodes)) == file_hex


def test_hash_strings_reverse_each_8_bytes():
    """api.md's example: bytes 0..31 print as 0706050403020100 0f0e0d0c0b0a0908 ... (the
    spec's text drops the "10" of the third group, a typo: its byte list has it)."""
    raw = bytes(range(32))
    s = xet.hash_hex(raw)
    assert s == "07060504030201000f0e0d0c0b0a09081716151413121110" "1f1e1d1c1b1a1918"
    assert xet.hex_hash(s) == raw


def test_chunk_boundaries_reference_vectors():
    """xet-core's chunker tests (xet_data/src/deduplication/chunking.rs): 1 MB of SplitMix64
    data (seed 0), and 1 MB of one byte value (every chunk at the 128 KiB maximum)."""
    data = splitmix64_bytes(1_000_000, 0)
    assert (data[0], data[127], data[111111]) == (175, 132, 118)
    assert xet.chunk_ends(data) == [
        84493, 134421, 144853, 243318, 271793, 336457, 467529, 494581, 582000, 596735, 616815,
        653164, 678202, 724510, 815591, 827760, 958832, 991092, 1000000]
    assert xet.chunk_ends(bytes([59]) * 1_000_000) == [131072 * i for i in range(1, 8)] + [1000000]


def test_chunking_follows_the_rule_bytewise():
    """The vectorised chunker against the spec's byte-by-byte pseudocode, on data whose
    boundaries fall at varied places (min-size skips, mask hits, forced max cuts)."""
    data = splitmix64_bytes(300_000, 7) + bytes(200_000) + splitmix64_bytes(150_000, 8)
    ends, h, start = [], 0, 0
    table = [int(v) for v in xet.GEAR_TABLE]
    for i, b in enumerate(data):
        h = ((h << 1) + table[b]) & ((1 << 64) - 1)
        size = i + 1 - start
        if size < xet.MIN_CHUNK:
            continue
        if size >= xet.MAX_CHUNK or h & xet.MASK == 0:
            ends.append(i + 1)
            start, h = i + 1, 0
    if start < len(data):
        ends.append(len(data))
    assert xet.chunk_ends(data) == ends
    assert xet.chunk_ends(b"") == [] and xet.chunk_ends(b"x") == [1]


def test_chunk_serialization_round_trip_in_every_scheme():
    floats = bytes(b for i in range(20000) for b in (i % 251, (i * 7) % 256, 0x3c, 0xbc))
    for data in (splitmix64_bytes(70_000, 3), b'{"a": 1}' * 4000, floats, b"", b"abc"):
        for scheme in (xet.SCHEME_NONE, xet.SCHEME_LZ4, xet.SCHEME_BG4_LZ4):
            blob = xet.serialize_chunk(data, scheme)
            assert blob[0] == 0 and blob[4] == scheme
            assert int.from_bytes(blob[5:8], "little") == len(data)
            assert xet.decode_chunks(blob) == [(scheme, data)]
    # The writer's own choice: incompressible data raw, text LZ4, float-like data BG4.
    assert xet.compress(splitmix64_bytes(70_000, 3))[0] == xet.SCHEME_NONE
    assert xet.compress(b'{"a": 1}' * 4000)[0] == xet.SCHEME_LZ4
    assert xet.compress(floats)[0] == xet.SCHEME_BG4_LZ4
    assert xet.bg4_group(b"ABCDABCDAB") == b"AAABBBCCDD"
    assert xet.bg4_ungroup(b"AAABBBCCDD") == b"ABCDABCDAB"


def test_decode_refuses_malformed_chunks():
    good = xet.serialize_chunk(b"x" * 100, xet.SCHEME_NONE)
    for bad in (good[:5], good[:-1], b"\x01" + good[1:], good[:4] + b"\x07" + good[5:]):
        with pytest.raises(ValueError):
            xet.decode_chunks(bad)
