/* xet_hash.h: the Xet protocol's hashes (spec "Hashing", draft-denis-xet §5): a chunk's hash,
 * the aggregated merkle root over (hash, size) pairs that names a xorb, the file hash over a
 * file's chunks, the term verification hash, and the hash's text form in URLs. Pure
 * computation on the caller's thread; no state, no I/O. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XET_HASH_LEN 32
/* The text form: 64 lowercase hex digits and a NUL. */
#define XET_HASH_HEX 65

/* A hash as raw bytes, in the order BLAKE3 outputs them. */
struct xet_hash {
	uint8_t b[XET_HASH_LEN];
};

/* A leaf or node of the merkle tree: a hash and the bytes it covers. */
struct xet_hash_node {
	struct xet_hash hash;
	uint64_t size;
};

/* The hash of one chunk's (uncompressed) bytes: BLAKE3 keyed with DATA_KEY. data may be NULL
 * when len is 0. */
void xet_hash_chunk(const void *data, size_t len, struct xet_hash *ret);

/* The merkle root of n (hash, size) pairs, in order: the xorb hash when they are a xorb's
 * chunks. n = 0 gives 32 zero bytes; n = 1 gives the one hash. Returns 0, or -ENOMEM. */
int xet_hash_merkle(const struct xet_hash_node *nodes, size_t n, struct xet_hash *ret);

/* The file hash (the X-Xet-Hash of a file) of its n chunks in file order: the merkle root,
 * hashed again with an all-zero key; 32 zero bytes for no chunks (an empty file), as
 * xet-core's reference computes it. Returns 0, or -ENOMEM. */
int xet_hash_file(const struct xet_hash_node *chunks, size_t n, struct xet_hash *ret);

/* The term verification hash of n consecutive chunk hashes (raw bytes concatenated, keyed
 * with VERIFICATION_KEY), as a shard's FileVerificationEntry holds it. */
void xet_hash_verification(const struct xet_hash *hashes, size_t n, struct xet_hash *ret);

/* The text form in URLs and headers: the 32 bytes read as four little-endian u64, each
 * printed as 16 lowercase hex digits. Writes XET_HASH_HEX bytes to ret. */
void xet_hash_to_hex(const struct xet_hash *h, char *ret);

/* Parses the text form (exactly 64 hex digits, either case, then NUL). Returns 0, or
 * -EBADMSG for anything else. */
int xet_hash_from_hex(const char *hex, struct xet_hash *ret);

/* Whether two hashes are equal. */
bool xet_hash_eq(const struct xet_hash *a, const struct xet_hash *b);

/* The merkle root of a sequence of (hash, size) pairs fed one at a time in order, in constant
 * memory: a level's node closes as soon as its children decide it (the tree's cuts depend
 * only on the children before them), so a file's chunks can be checked against its file
 * hash as they are decoded, without holding them all. Not thread-safe: one owner. Embedded
 * (no allocation); levels up to XET_HASH_LEVELS are enough for 2^50 leaves. */
#define XET_HASH_LEVELS 48
struct xet_hash_stream {
	struct xet_hash_node pending[XET_HASH_LEVELS][2 * 4 + 1];
	uint8_t n_pending[XET_HASH_LEVELS];
	uint64_t n_pushed[XET_HASH_LEVELS]; /* nodes ever pushed into each level */
	uint64_t bytes; /* sum of the leaves' sizes */
};

/* Starts an empty stream. */
void xet_hash_stream_init(struct xet_hash_stream *s);
/* Feeds the next leaf. -E2BIG past XET_HASH_LEVELS levels (not reachable below 2^50 leaves). */
int xet_hash_stream_push(struct xet_hash_stream *s, const struct xet_hash *hash, uint64_t size);
/* The merkle root of the leaves fed (xet_hash_merkle() of them), and with file true their
 * file hash (xet_hash_file()). The stream is spent: init it again to reuse. */
void xet_hash_stream_finish(struct xet_hash_stream *s, bool file, struct xet_hash *ret);
