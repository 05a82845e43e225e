/* tree.c: the cache's tree record and its codec. Pure but for tree_get/tree_put, which are
 * one index call each; any thread. Knows nothing of the Hub's JSON beyond its first byte.
 *
 * Layout: version u8, entry count u32, (version 2:) commit date u64 (unix seconds, 0:
 * unknown), then per entry: flags u8 (TREE_F_*), path length u16, path bytes, and for a file
 * size u64 and its content id as raw bytes (32 for sha256, 20 for a git sha1). Little-endian.
 * Version 1 is version 2 without the date; it is read, never written. */
#include "cache/tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache/db_codec.h"
#include "util/cleanup.h"

#define TREE_F_DIR 1U
#define TREE_F_SHA256 2U /* a file whose cid is a sha256 (else a git sha1) */
#define TREE_F_ALL (TREE_F_DIR | TREE_F_SHA256)
#define TREE_HEAD_V1 5 /* version, count */
#define TREE_HEAD 13 /* version, count, commit date */
#define TREE_ENTRY_MIN 3 /* flags, path length: the smallest entry */

static size_t tree_cid_len(enum blob_hash hash)
{
	return hash == BLOB_HASH_SHA256 ? 64 : 40;
}

static bool tree_entry_is_sane(const char *path, size_t plen, bool is_dir, uint64_t size,
			       enum blob_hash hash, const char *cid)
{
	if (plen == 0 || plen > TREE_PATH_MAX || memchr(path, '\0', plen))
		return false;
	if (is_dir)
		return size == 0 && !cid;
	return (hash == BLOB_HASH_SHA256 || hash == BLOB_HASH_GITSHA1) && cid &&
	       blob_cid_is_valid(cid) && strlen(cid) == tree_cid_len(hash) && size <= INT64_MAX;
}

/* tree_push() of a path of plen bytes, not NUL-terminated. */
static int tree_push_n(struct tree *t, const char *path, size_t plen, bool is_dir, uint64_t size,
		       enum blob_hash hash, const char *cid)
{
	struct tree_entry *e;

	if (!tree_entry_is_sane(path, plen, is_dir, size, hash, cid))
		return -EINVAL;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct tree_entry *v = reallocarray(t->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	e = &t->v[t->n];
	*e = (struct tree_entry){ .size = size, .is_dir = is_dir, .hash = (uint8_t)hash };
	e->path = strndup(path, plen);
	if (!e->path)
		return -ENOMEM;
	if (!is_dir)
		memcpy(e->cid, cid, tree_cid_len(hash) + 1);
	t->n++;
	return 0;
}

int tree_push(struct tree *t, const char *path, bool is_dir, uint64_t size, enum blob_hash hash,
	      const char *cid)
{
	return tree_push_n(t, path, strlen(path), is_dir, size, hash, cid);
}

void tree_done(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].path);
	free(t->v);
	*t = (struct tree){ 0 };
}

bool tree_entry_has_data(const struct tree_entry *e)
{
	return !e->is_dir && e->size > 0;
}

static void tree_hex_to_raw(const char *hex, uint8_t *raw, size_t nraw)
{
	for (size_t i = 0; i < nraw; i++) {
		char d[3] = { hex[2 * i], hex[2 * i + 1], '\0' };

		raw[i] = (uint8_t)strtoul(d, NULL, 16);
	}
}

static void tree_raw_to_hex(const uint8_t *raw, size_t nraw, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < nraw; i++) {
		hex[2 * i] = digits[raw[i] >> 4];
		hex[2 * i + 1] = digits[raw[i] & 15];
	}
	hex[2 * nraw] = '\0';
}

static size_t tree_entry_len(const struct tree_entry *e)
{
	return TREE_ENTRY_MIN + strlen(e->path) + (e->is_dir ? 0 : 8 + tree_cid_len(e->hash) / 2);
}

uint8_t *tree_encode(const struct tree *t, size_t *ret_len)
{
	size_t len = TREE_HEAD;
	uint8_t *buf, *p;

	for (size_t i = 0; i < t->n; i++)
		len += tree_entry_len(&t->v[i]);
	buf = malloc(len);
	if (!buf)
		return NULL;
	buf[0] = TREE_REC_VERSION;
	db_codec_put_le(buf + 1, t->n, 4);
	db_codec_put_le(buf + 5, t->commit_time, 8);
	p = buf + TREE_HEAD;
	for (size_t i = 0; i < t->n; i++) {
		const struct tree_entry *e = &t->v[i];
		size_t plen = strlen(e->path);

		*p++ = (uint8_t)((e->is_dir ? TREE_F_DIR : 0) |
				 (!e->is_dir && e->hash == BLOB_HASH_SHA256 ? TREE_F_SHA256 : 0));
		db_codec_put_le(p, plen, 2);
		memcpy(p + 2, e->path, plen);
		p += 2 + plen;
		if (e->is_dir)
			continue;
		db_codec_put_le(p, e->size, 8);
		tree_hex_to_raw(e->cid, p + 8, tree_cid_len(e->hash) / 2);
		p += 8 + tree_cid_len(e->hash) / 2;
	}
	*ret_len = len;
	return buf;
}

/* One entry from [*p, end) onto t, advancing *p. -EBADMSG, -ENOMEM. */
static int tree_decode_entry(const uint8_t **p, const uint8_t *end, struct tree *t)
{
	const uint8_t *q = *p;
	enum blob_hash hash;
	char cid[CID_MAX];
	uint64_t size = 0;
	size_t plen, nraw;
	unsigned flags;
	int r;

	if (end - q < TREE_ENTRY_MIN)
		return -EBADMSG;
	flags = q[0];
	plen = (size_t)db_codec_get_le(q + 1, 2);
	q += TREE_ENTRY_MIN;
	if ((flags & ~TREE_F_ALL) || (size_t)(end - q) < plen)
		return -EBADMSG;
	if (flags & TREE_F_DIR) {
		if (flags & TREE_F_SHA256)
			return -EBADMSG;
		r = tree_push_n(t, (const char *)q, plen, true, 0, BLOB_HASH_GITSHA1, NULL);
		q += plen;
	} else {
		hash = flags & TREE_F_SHA256 ? BLOB_HASH_SHA256 : BLOB_HASH_GITSHA1;
		nraw = tree_cid_len(hash) / 2;
		if ((size_t)(end - q) - plen < 8 + nraw)
			return -EBADMSG;
		size = db_codec_get_le(q + plen, 8);
		tree_raw_to_hex(q + plen + 8, nraw, cid);
		r = tree_push_n(t, (const char *)q, plen, false, size, hash, cid);
		q += plen + 8 + nraw;
	}
	if (r < 0)
		return r == -EINVAL ? -EBADMSG : r;
	*p = q;
	return 0;
}

int tree_decode(const void *data, size_t len, struct tree *ret)
{
	const uint8_t *p = data, *end = p + len;
	size_t head;
	uint64_t n, when = 0;
	int r = 0;

	*ret = (struct tree){ 0 };
	if (len < 1 || (p[0] != TREE_REC_VERSION && p[0] != 1))
		return -EBADMSG;
	head = p[0] == 1 ? TREE_HEAD_V1 : TREE_HEAD;
	if (len < head)
		return -EBADMSG;
	n = db_codec_get_le(p + 1, 4);
	if (head == TREE_HEAD)
		when = db_codec_get_le(p + 5, 8);
	/* Before allocating for n entries: the bytes must be able to hold them. */
	if (n > (len - head) / TREE_ENTRY_MIN)
		return -EBADMSG;
	p += head;
	for (uint64_t i = 0; r == 0 && i < n; i++)
		r = tree_decode_entry(&p, end, ret);
	if (r == 0 && p != end)
		r = -EBADMSG;
	if (r < 0)
		tree_done(ret);
	else
		ret->commit_time = when;
	return r;
}

bool tree_is_legacy(const void *data, size_t len)
{
	return len > 0 && ((const char *)data)[0] == '[';
}

int tree_get(struct cache_db *db, const char *repo_key, const char *commit, struct tree *ret)
{
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r = db_tree_get(db, repo_key, commit, &data, &len);

	*ret = (struct tree){ 0 };
	return r < 0 ? r : tree_decode(data, len, ret);
}

int tree_put(struct cache_db *db, const char *repo_key, const char *commit, const struct tree *t)
{
	size_t len;
	_cleanup_free_ uint8_t *data = tree_encode(t, &len);

	return data ? db_tree_put(db, repo_key, commit, data, len) : -ENOMEM;
}
