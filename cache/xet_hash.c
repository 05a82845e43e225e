/* xet_hash.c: the Xet hashes, written from the specification (huggingface xet-core
 * spec/hashing.md and draft-denis-xet §5) over upstream BLAKE3's C implementation; the one
 * file that includes blake3.h. Runs on the caller's thread and holds no state.
 * It lives in cache/ because checking bytes against a content name is the cache's job (as
 * verify.c's sha256): fetch/ only moves and decodes bytes, and util/ knows no protocol. */
#include "cache/xet_hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blake3.h>

/* The keys of the spec's "Hashing" section, byte for byte. */
static const uint8_t data_key[BLAKE3_KEY_LEN] = {
	102, 151, 245, 119, 91,	 149, 80, 222, 49,  53,	 203, 172, 165, 151, 24,  28,
	157, 228, 33,  16,  155, 235, 43, 88,  180, 208, 176, 75,  147, 173, 242, 41,
};
static const uint8_t internal_node_key[BLAKE3_KEY_LEN] = {
	1,  126, 197, 199, 165, 71,  41,  150, 253, 148, 102, 102, 180, 138, 2,	  230,
	93, 221, 83,  111, 55,	199, 109, 210, 248, 99,	 82,  230, 74,	83,  113, 63,
};
static const uint8_t verification_key[BLAKE3_KEY_LEN] = {
	127, 24,  87, 214, 206, 86,  237, 102, 18, 127, 249, 19,  231, 165, 195, 243,
	164, 205, 38, 213, 181, 219, 73,  230, 65, 36,	152, 127, 40,  251, 148, 195,
};
static const uint8_t zero_key[BLAKE3_KEY_LEN];

/* The tree's shape (spec "Merkle Tree Construction"): a node closes after at least 3
 * children on a hash whose last u64 is 0 mod 4, or at 9 children, or at the end. */
#define MEAN_BRANCHING 4
#define MAX_CHILDREN (2 * MEAN_BRANCHING + 1)
/* A line "<64 hex> : <size>\n": 64 + 3 + at most 20 digits + 1. */
#define NODE_LINE_MAX (64 + 3 + 20 + 1)

static void keyed(const uint8_t key[BLAKE3_KEY_LEN], const void *data, size_t len,
		  struct xet_hash *ret)
{
	blake3_hasher h;

	blake3_hasher_init_keyed(&h, key);
	if (len)
		blake3_hasher_update(&h, data, len);
	blake3_hasher_finalize(&h, ret->b, XET_HASH_LEN);
}

void xet_hash_chunk(const void *data, size_t len, struct xet_hash *ret)
{
	keyed(data_key, data, len, ret);
}

void xet_hash_verification(const struct xet_hash *hashes, size_t n, struct xet_hash *ret)
{
	keyed(verification_key, hashes, n * XET_HASH_LEN, ret);
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void xet_hash_to_hex(const struct xet_hash *h, char *ret)
{
	for (int w = 0; w < 4; w++)
		snprintf(ret + 16 * w, 17, "%016llx", (unsigned long long)le64(h->b + 8 * w));
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int xet_hash_from_hex(const char *hex, struct xet_hash *ret)
{
	struct xet_hash h;

	for (int w = 0; w < 4; w++) {
		uint64_t v = 0;

		for (int i = 0; i < 16; i++) {
			int d = hex_digit(hex[16 * w + i]);

			if (d < 0)
				return -EBADMSG;
			v = v << 4 | (uint64_t)d;
		}
		for (int i = 0; i < 8; i++)
			h.b[8 * w + i] = (uint8_t)(v >> (8 * i));
	}
	if (hex[64] != '\0')
		return -EBADMSG;
	*ret = h;
	return 0;
}

bool xet_hash_eq(const struct xet_hash *a, const struct xet_hash *b)
{
	return memcmp(a->b, b->b, XET_HASH_LEN) == 0;
}

/* How many of the n nodes at the front of a level close the next node. */
static size_t merge_cut(const struct xet_hash_node *nodes, size_t n)
{
	size_t end = n < MAX_CHILDREN ? n : MAX_CHILDREN;

	if (n <= 2)
		return n;
	for (size_t i = 2; i < end; i++)
		if (le64(nodes[i].hash.b + 24) % MEAN_BRANCHING == 0)
			return i + 1;
	return end;
}

/* The parent of n (at most MAX_CHILDREN) nodes: its hash over their lines, their total size. */
static void merge(const struct xet_hash_node *nodes, size_t n, struct xet_hash_node *ret)
{
	char buf[MAX_CHILDREN * NODE_LINE_MAX + 1];
	size_t len = 0;
	uint64_t size = 0;

	for (size_t i = 0; i < n; i++) {
		char hex[XET_HASH_HEX];

		xet_hash_to_hex(&nodes[i].hash, hex);
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s : %llu\n", hex,
					(unsigned long long)nodes[i].size);
		size += nodes[i].size;
	}
	keyed(internal_node_key, buf, len, &ret->hash);
	ret->size = size;
}

int xet_hash_merkle(const struct xet_hash_node *nodes, size_t n, struct xet_hash *ret)
{
	struct xet_hash_node *level;

	if (n == 0) {
		memset(ret->b, 0, XET_HASH_LEN);
		return 0;
	}
	level = malloc(n * sizeof(*level));
	if (!level)
		return -ENOMEM;
	memcpy(level, nodes, n * sizeof(*level));
	/* Each pass writes a level's parents over its front: a parent's slot never passes the
	 * first of its children, which has been read. */
	while (n > 1) {
		size_t out = 0;

		for (size_t in = 0; in < n;) {
			size_t cut = merge_cut(level + in, n - in);
			struct xet_hash_node parent;

			merge(level + in, cut, &parent);
			level[out++] = parent;
			in += cut;
		}
		n = out;
	}
	*ret = level[0].hash;
	free(level);
	return 0;
}

int xet_hash_file(const struct xet_hash_node *chunks, size_t n, struct xet_hash *ret)
{
	struct xet_hash root;
	int r;

	/* No chunks, no hash: xet-core's reference (and its test vectors) give an empty file 32
	 * zero bytes, where draft-denis-xet would hash the zero root once more. */
	if (n == 0) {
		memset(ret->b, 0, XET_HASH_LEN);
		return 0;
	}
	r = xet_hash_merkle(chunks, n, &root);
	if (r < 0)
		return r;
	keyed(zero_key, root.b, XET_HASH_LEN, ret);
	return 0;
}

void xet_hash_stream_init(struct xet_hash_stream *s)
{
	memset(s->n_pending, 0, sizeof(s->n_pending));
	memset(s->n_pushed, 0, sizeof(s->n_pushed));
	s->bytes = 0;
}

/* Adds node to level, closing the level's pending node when this child decides it: the cut
 * rule of merge_cut(), seen one child at a time. */
static int stream_add(struct xet_hash_stream *s, size_t level, const struct xet_hash_node *node)
{
	struct xet_hash_node *p;
	uint8_t n;

	if (level >= XET_HASH_LEVELS)
		return -E2BIG;
	p = s->pending[level];
	n = s->n_pending[level];
	p[n++] = *node;
	s->n_pending[level] = n;
	s->n_pushed[level]++;
	if ((n >= 3 && le64(node->hash.b + 24) % MEAN_BRANCHING == 0) || n == MAX_CHILDREN) {
		struct xet_hash_node parent;

		merge(p, n, &parent);
		s->n_pending[level] = 0;
		return stream_add(s, level + 1, &parent);
	}
	return 0;
}

int xet_hash_stream_push(struct xet_hash_stream *s, const struct xet_hash *hash, uint64_t size)
{
	struct xet_hash_node leaf = { .hash = *hash, .size = size };

	s->bytes += size;
	return stream_add(s, 0, &leaf);
}

void xet_hash_stream_finish(struct xet_hash_stream *s, bool file, struct xet_hash *ret)
{
	struct xet_hash root = { { 0 } };

	/* Bottom up: a level that only ever held one node holds the root; any other closes
	 * its tail (1 to 8 nodes: the batch form merges a tail of any length) into the level
	 * above. An empty stream's root is 32 zero bytes. */
	for (size_t level = 0; level < XET_HASH_LEVELS && s->n_pushed[level]; level++) {
		struct xet_hash_node parent;

		if (s->n_pushed[level] == 1) {
			root = s->pending[level][0].hash;
			break;
		}
		if (!s->n_pending[level])
			continue;
		merge(s->pending[level], s->n_pending[level], &parent);
		s->n_pending[level] = 0;
		/* Cannot fail: a level below the top one exists above it only when pushed to. */
		(void)stream_add(s, level + 1, &parent);
	}
	if (file && s->n_pushed[0])
		keyed(zero_key, root.b, XET_HASH_LEN, &root);
	*ret = root;
}
