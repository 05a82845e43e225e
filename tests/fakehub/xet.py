"""The Xet protocol's content-addressing, written from its specification (hub-docs docs/xet/:
chunking.md, hashing.md, xorb.md, api.md "Converting Hashes to Strings").

Content-defined chunking (gearhash), chunk hashes, the merkle aggregation of xorb and file hashes,
hashes as strings, and chunk serialization with its three compression schemes. Pure functions of
bytes, safe from any thread; knows nothing of repos, storage or HTTP. BLAKE3 comes from
blake3lib (the official C implementation).
"""
import lz4.frame
import numpy as np

from blake3lib import keyed_hash

# chunking.md: target 64 KiB, chunks of 8 KiB to 128 KiB, a boundary where the top 16 bits of
# the gear hash are zero.
MIN_CHUNK = 8 * 1024
MAX_CHUNK = 128 * 1024
MASK = 0xFFFF000000000000
# hashing.md: the BLAKE3 keys of chunk hashes and of internal merkle nodes.
DATA_KEY = bytes([102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28, 157,
                  228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41])
INTERNAL_NODE_KEY = bytes([1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2,
                           230, 93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83,
                           113, 63])
FILE_KEY = bytes(32)  # hashing.md "File Hashes": a key of 32 zero bytes
MEAN_BRANCHING = 4  # the merkle tree's mean branching factor (xet-core aggregated_hashes)
# xorb.md: chunk compression schemes.
SCHEME_NONE, SCHEME_LZ4, SCHEME_BG4_LZ4 = 0, 1, 2
CHUNK_HEADER = 8
XORB_MAX_BYTES = 64 * 1024 * 1024  # xorb.md: a serialized xorb holds at most 64 MiB

# chunking.md's TABLE[256]: rust-gearhash's DEFAULT_TABLE (src/table.rs at adad44e7).
GEAR_TABLE = np.array([
    0xb088d3a9e840f559, 0x5652c7f739ed20d6, 0x45b28969898972ab, 0x6b0a89d5b68ec777,
    0x368f573e8b7a31b7, 0x1dc636dce936d94b, 0x207a4c4e5554d5b6, 0xa474b34628239acb,
    0x3b06a83e1ca3b912, 0x90e78d6c2f02baf7, 0xe1c92df7150d9a8a, 0x8e95053a1086d3ad,
    0x5a2ef4f1b83a0722, 0xa50fac949f807fae, 0x0e7303eb80d8d681, 0x99b07edc1570ad0f,
    0x689d2fb555fd3076, 0x00005082119ea468, 0xc4b08306a88fcc28, 0x3eb0678af6374afd,
    0xf19f87ab86ad7436, 0xf2129fbfbe6bc736, 0x481149575c98a4ed, 0x0000010695477bc5,
    0x1fba37801a9ceacc, 0x3bf06fd663a49b6d, 0x99687e9782e3874b, 0x79a10673aa50d8e3,
    0xe4accf9e6211f420, 0x2520e71f87579071, 0x2bd5d3fd781a8a9b, 0x00de4dcddd11c873,
    0xeaa9311c5a87392f, 0xdb748eb617bc40ff, 0xaf579a8df620bf6f, 0x86a6e5da1b09c2b1,
    0xcc2fc30ac322a12e, 0x355e2afec1f74267, 0x2d99c8f4c021a47b, 0xbade4b4a9404cfc3,
    0xf7b518721d707d69, 0x3286b6587bf32c20, 0x0000b68886af270c, 0xa115d6e4db8a9079,
    0x484f7e9c97b2e199, 0xccca7bb75713e301, 0xbf2584a62bb0f160, 0xade7e813625dbcc8,
    0x000070940d87955a, 0x8ae69108139e626f, 0xbd776ad72fde38a2, 0xfb6b001fc2fcc0cf,
    0xc7a474b8e67bc427, 0xbaf6f11610eb5d58, 0x09cb1f5b6de770d1, 0xb0b219e6977d4c47,
    0x00ccbc386ea7ad4a, 0xcc849d0adf973f01, 0x73a3ef7d016af770, 0xc807d2d386bdbdfe,
    0x7f2ac9966c791730, 0xd037a86bc6c504da, 0xf3f17c661eaa609d, 0xaca626b04daae687,
    0x755a99374f4a5b07, 0x90837ee65b2caede, 0x6ee8ad93fd560785, 0x0000d9e11053edd8,
    0x9e063bb2d21cdbd7, 0x07ab77f12a01d2b2, 0xec550255e6641b44, 0x78fb94a8449c14c6,
    0xc7510e1bc6c0f5f5, 0x0000320b36e4cae3, 0x827c33262c8b1a2d, 0x14675f0b48ea4144,
    0x267bd3a6498deceb, 0xf1916ff982f5035e, 0x86221b7ff434fb88, 0x9dbecee7386f49d8,
    0xea58f8cac80f8f4a, 0x008d198692fc64d8, 0x6d38704fbabf9a36, 0xe032cb07d1e7be4c,
    0x228d21f6ad450890, 0x635cb1bfc02589a5, 0x4620a1739ca2ce71, 0xa7e7dfe3aae5fb58,
    0x0c10ca932b3c0deb, 0x2727fee884afed7b, 0xa2df1c6df9e2ab1f, 0x4dcdd1ac0774f523,
    0x000070ffad33e24e, 0xa2ace87bc5977816, 0x9892275ab4286049, 0xc2861181ddf18959,
    0xbb9972a042483e19, 0xef70cd3766513078, 0x00000513abfc9864, 0xc058b61858c94083,
    0x09e850859725e0de, 0x9197fb3bf83e7d94, 0x7e1e626d12b64bce, 0x520c54507f7b57d1,
    0xbee1797174e22416, 0x6fd9ac3222e95587, 0x0023957c9adfbf3e, 0xa01c7d7e234bbe15,
    0xaba2c758b8a38cbb, 0x0d1fa0ceec3e2b30, 0x0bb6a58b7e60b991, 0x4333dd5b9fa26635,
    0xc2fd3b7d4001c1a3, 0xfb41802454731127, 0x65a56185a50d18cb, 0xf67a02bd8784b54f,
    0x696f11dd67e65063, 0x00002022fca814ab, 0x8cd6be912db9d852, 0x695189b6e9ae8a57,
    0xee9453b50ada0c28, 0xd8fc5ea91a78845e, 0xab86bf191a4aa767, 0x0000c6b5c86415e5,
    0x267310178e08a22e, 0xed2d101b078bca25, 0x3b41ed84b226a8fb, 0x13e622120f28dc06,
    0xa315f5ebfb706d26, 0x8816c34e3301bace, 0xe9395b9cbb71fdae, 0x002ce9202e721648,
    0x4283db1d2bb3c91c, 0xd77d461ad2b1a6a5, 0xe2ec17e46eeb866b, 0xb8e0be4039fbc47c,
    0xdea160c4d5299d04, 0x7eec86c8d28c3634, 0x2119ad129f98a399, 0xa6ccf46b61a283ef,
    0x2c52cedef658c617, 0x2db4871169acdd83, 0x0000f0d6f39ecbe9, 0x3dd5d8c98d2f9489,
    0x8a1872a22b01f584, 0xf282a4c40e7b3cf2, 0x8020ec2ccb1ba196, 0x6693b6e09e59e313,
    0x0000ce19cc7c83eb, 0x20cb5735f6479c3b, 0x762ebf3759d75a5b, 0x207bfe823d693975,
    0xd77dc112339cd9d5, 0x9ba7834284627d03, 0x217dc513e95f51e9, 0xb27b1a29fc5e7816,
    0x00d5cd9831bb662d, 0x71e39b806d75734c, 0x7e572af006fb1a23, 0xa2734f2f6ae91f85,
    0xbf82c6b5022cddf2, 0x5c3beac60761a0de, 0xcdc893bb47416998, 0x6d1085615c187e01,
    0x77f8ae30ac277c5d, 0x917c6b81122a2c91, 0x5b75b699add16967, 0x0000cf6ae79a069b,
    0xf3c40afa60de1104, 0x2063127aa59167c3, 0x621de62269d1894d, 0xd188ac1de62b4726,
    0x107036e2154b673c, 0x0000b85f28553a1d, 0xf2ef4e4c18236f3d, 0xd9d6de6611b9f602,
    0xa1fc7955fb47911c, 0xeb85fd032f298dbd, 0xbe27502fb3befae1, 0xe3034251c4cd661e,
    0x441364d354071836, 0x0082b36c75f2983e, 0xb145910316fa66f0, 0x021c069c9847caf7,
    0x2910dfc75a4b5221, 0x735b353e1c57a8b5, 0xce44312ce98ed96c, 0xbc942e4506bdfa65,
    0xf05086a71257941b, 0xfec3b215d351cead, 0x00ae1055e0144202, 0xf54b40846f42e454,
    0x00007fd9c8bcbcc8, 0xbfbd9ef317de9bfe, 0xa804302ff2854e12, 0x39ce4957a5e5d8d4,
    0xffb9e2a45637ba84, 0x55b9ad1d9ea0818b, 0x00008acbf319178a, 0x48e2bfc8d0fbfb38,
    0x8be39841e848b5e8, 0x0e2712160696a08b, 0xd51096e84b44242a, 0x1101ba176792e13a,
    0xc22e770f4531689d, 0x1689eff272bbc56c, 0x00a92a197f5650ec, 0xbc765990bda1784e,
    0xc61441e392fcb8ae, 0x07e13a2ced31e4a0, 0x92cbe984234e9d4d, 0x8f4ff572bb7d8ac5,
    0x0b9670c00b963bd0, 0x62955a581a03eb01, 0x645f83e5ea000254, 0x41fce516cd88f299,
    0xbbda9748da7a98cf, 0x0000aab2fe4845fa, 0x19761b069bf56555, 0x8b8f5e8343b6ad56,
    0x3e5d1cfd144821d9, 0xec5c1e2ca2b0cd8f, 0xfaf7e0fea7fbb57f, 0x000000d3ba12961b,
    0xda3f90178401b18e, 0x70ff906de33a5feb, 0x0527d5a7c06970e7, 0x22d8e773607c13e9,
    0xc9ab70df643c3bac, 0xeda4c6dc8abe12e3, 0xecef1f410033e78a, 0x0024c2b274ac72cb,
    0x06740d954fa900b4, 0x1d7a299b323d6304, 0xb3c37cb298cbead5, 0xc986e3c76178739b,
    0x9fabea364b46f58a, 0x6da214c5af85cc56, 0x17a43ed8b7a38f84, 0x6eccec511d9adbeb,
    0xf9cab30913335afb, 0x4a5e60c5f415eed2, 0x00006967503672b4, 0x9da51d121454bb87,
    0x84321e13b9bbc816, 0xfb3d6fb6ab2fdd8d, 0x60305eed8e160a8d, 0xcbbf4b14e9946ce8,
    0x00004f63381b10c3, 0x07d5b7816fcc4e10, 0xe5a536726a6a8155, 0x57afb23447a07fdd,
    0x18f346f7abc9d394, 0x636dc655d61ad33d, 0xcc8bab4939f7f3f6, 0x63c7a906c1dd187b,
], dtype=np.uint64)
GEAR_BLOCK = 16 * 1024 * 1024  # bytes hashed per numpy pass (bounds memory on big files)


def gear_candidates(data):
    """Positions i where the gear hash after byte i has (h & MASK) == 0, as a sorted array.

    h after byte i is sum(TABLE[data[i-k]] << k for k in 0..63) (mod 2^64): the shift drops
    every older byte. So the hash a chunk has at any testable position (at least MIN_CHUNK > 64
    bytes into it) does not depend on where the chunk began, and one pass over the whole data
    serves every chunk. Computed by doubling: S_2m[i] = S_m[i] + (S_m[i-m] << m)."""
    view = np.frombuffer(data, dtype=np.uint8)
    found = []
    for start in range(0, len(view), GEAR_BLOCK):
        lo = max(0, start - 63)  # the 63 bytes before the block still reach its first hashes
        h = GEAR_TABLE[view[lo:start + GEAR_BLOCK]]
        m = 1
        while m < 64:
            h[m:] += h[:-m] << np.uint64(m)
            m *= 2
        hits = np.flatnonzero((h & np.uint64(MASK)) == 0) + lo
        found.append(hits[hits >= start])
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def chunk_ends(data):
    """The end offset of every chunk of `data` (chunking.md): a chunk ends at the first position
    where its size is at least MIN_CHUNK and the hash matches the mask, or where it reaches
    MAX_CHUNK; the last chunk ends at EOF. Empty data has no chunk."""
    n = len(data)
    cands = gear_candidates(data)
    ends, start = [], 0
    while start < n:
        idx = np.searchsorted(cands, start + MIN_CHUNK - 1)
        cut = min(int(cands[idx]) if idx < len(cands) else n, start + MAX_CHUNK - 1)
        if cut >= n - 1:
            ends.append(n)
            break
        ends.append(cut + 1)
        start = cut + 1
    return ends


def chunks(data):
    """[(chunk hash, chunk bytes)] of `data`, in order."""
    out, start = [], 0
    for end in chunk_ends(data):
        piece = bytes(data[start:end])
        out.append((chunk_hash(piece), piece))
        start = end
    return out


def chunk_hash(piece):
    return keyed_hash(DATA_KEY, piece)


def hash_hex(h):
    """api.md: a hash as a string reads each 8-byte group as a little-endian u64, printed as 16
    hex digits."""
    return "".join(f"{int.from_bytes(h[i:i + 8], 'little'):016x}" for i in range(0, 32, 8))


def hex_hash(s):
    """The inverse of hash_hex(); ValueError unless 64 hex digits."""
    if len(s) != 64:
        raise ValueError(f"a hash string has 64 hex digits, not {len(s)}")
    return b"".join(int(s[i:i + 16], 16).to_bytes(8, "little") for i in range(0, 64, 16))


def _natural_cut(h):
    # The hash as four little-endian u64 words; the last one modulo the branching factor.
    return int.from_bytes(h[24:32], "little") % MEAN_BRANCHING == 0


def _merge_cut(nodes, at):
    """How many nodes from `at` form the next parent: 2 to 2*B+1, ending after the first node
    (from the third on) whose hash is a natural cut."""
    left = len(nodes) - at
    if left <= 2:
        return left
    end = min(2 * MEAN_BRANCHING + 1, left)
    for i in range(2, end):
        if _natural_cut(nodes[at + i][0]):
            return i + 1
    return end


def _merge(group):
    """hashing.md: an internal node hashes the lines "{child hash string} : {size}\\n"."""
    text = "".join(f"{hash_hex(h)} : {size}\n" for h, size in group)
    return keyed_hash(INTERNAL_NODE_KEY, text.encode()), sum(size for _, size in group)


def merkle_root(nodes):
    """The root of the aggregated merkle tree over [(hash, size)]; 32 zero bytes when empty."""
    nodes = list(nodes)
    if not nodes:
        return bytes(32)
    while len(nodes) > 1:
        parents, at = [], 0
        while at < len(nodes):
            n = _merge_cut(nodes, at)
            parents.append(_merge(nodes[at:at + n]))
            at += n
        nodes = parents
    return nodes[0][0]


def xorb_hash(nodes):
    """hashing.md "Xorb Hashes": the merkle root over the xorb's (chunk hash, size)."""
    return merkle_root(nodes)


def file_hash(nodes):
    """hashing.md "File Hashes": the merkle root over the file's (chunk hash, size), hashed again
    with a zero key; 32 zero bytes for an empty file (no chunk)."""
    nodes = list(nodes)
    if not nodes:
        return bytes(32)
    return keyed_hash(FILE_KEY, merkle_root(nodes))


def verification_hash(chunk_hashes, key):
    """hashing.md "Term Verification Hashes", for the caller's key."""
    return keyed_hash(key, b"".join(chunk_hashes))


# --- chunk serialization (xorb.md) ---------------------------------------------------------------

def bg4_group(data):
    """Byte grouping: the bytes at positions 0, 4, 8, ..., then 1, 5, 9, ..., then 2, ..., 3, ..."""
    return b"".join(data[k::4] for k in range(4))


def bg4_ungroup(grouped):
    n = len(grouped)
    out, at = bytearray(n), 0
    for k in range(4):
        size = n // 4 + (1 if k < n % 4 else 0)
        out[k::4] = grouped[at:at + size]
        at += size
    return bytes(out)


def lz4_compress(data):
    # An LZ4 frame, as xet-core's encoder writes it: 64 KiB independent blocks, no checksums,
    # no content size.
    return lz4.frame.compress(data, block_size=lz4.frame.BLOCKSIZE_MAX64KB, block_linked=False,
                              content_checksum=False, store_size=False)


def compress(data):
    """(scheme, payload): of no compression, LZ4 and byte-grouping + LZ4, the smallest payload,
    ties going to the cheaper scheme. xorb.md leaves the choice to the writer ("Brute Force")
    and says a chunk that does not shrink SHOULD be stored uncompressed."""
    best = (SCHEME_NONE, data)
    for scheme, payload in ((SCHEME_LZ4, lz4_compress(data)),
                            (SCHEME_BG4_LZ4, lz4_compress(bg4_group(data)))):
        if len(payload) < len(best[1]):
            best = (scheme, payload)
    return best


def serialize_chunk(data, scheme=None):
    """A chunk as a xorb stores it: the 8-byte header (version 0, stored length u24 LE, scheme,
    raw length u24 LE), then the payload. `scheme` None picks with compress()."""
    if scheme is None:
        scheme, payload = compress(data)
    else:
        payload = {SCHEME_NONE: lambda d: d, SCHEME_LZ4: lz4_compress,
                   SCHEME_BG4_LZ4: lambda d: lz4_compress(bg4_group(d))}[scheme](data)
    header = (bytes([0]) + len(payload).to_bytes(3, "little") + bytes([scheme]) +
              len(data).to_bytes(3, "little"))
    return header + payload


def decode_chunks(buf):
    """[(scheme, raw bytes)] of a run of serialized chunks; ValueError on any malformation."""
    out, at = [], 0
    while at < len(buf):
        if len(buf) - at < CHUNK_HEADER:
            raise ValueError(f"truncated chunk header at byte {at}")
        version, scheme = buf[at], buf[at + 4]
        stored = int.from_bytes(buf[at + 1:at + 4], "little")
        size = int.from_bytes(buf[at + 5:at + 8], "little")
        if version != 0:
            raise ValueError(f"chunk version {version} at byte {at}")
        payload = bytes(buf[at + CHUNK_HEADER:at + CHUNK_HEADER + stored])
        if len(payload) != stored:
            raise ValueError(f"truncated chunk data at byte {at}")
        if scheme == SCHEME_NONE:
            raw = payload
        elif scheme == SCHEME_LZ4:
            raw = lz4.frame.decompress(payload)
        elif scheme == SCHEME_BG4_LZ4:
            raw = bg4_ungroup(lz4.frame.decompress(payload))
        else:
            raise ValueError(f"unknown compression scheme {scheme} at byte {at}")
        if len(raw) != size:
            raise ValueError(f"chunk at byte {at} holds {len(raw)} bytes, its header says {size}")
        out.append((scheme, raw))
        at += CHUNK_HEADER + stored
    return out
