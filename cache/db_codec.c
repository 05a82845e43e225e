/* db_codec.c: the byte layouts of the index's records (db_codec.h) and nothing else: no LMDB,
 * no I/O. Pure functions on caller-owned memory; any thread. Layouts are explicit
 * little-endian fields after a version byte, never raw structs. */
#include "cache/db_codec.h"

#include <errno.h>
#include <string.h>

#include "cache/bitmap.h"

void db_codec_put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t db_codec_get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

void db_codec_blob_rec_encode(const struct blob_rec *rec, uint8_t *p)
{
	p[0] = DB_REC_VERSION;
	db_codec_put_le(p + 1, rec->size, 8);
	db_codec_put_le(p + 9, rec->block_size, 4);
	p[13] = rec->hash;
	p[14] = rec->state;
	db_codec_put_le(p + 15, rec->blocks_present, 8);
	db_codec_put_le(p + 23, rec->last_access, 8);
	db_codec_put_le(p + 31, rec->bad_count, 8);
}

int db_codec_blob_rec_decode(const void *data, size_t len, struct blob_rec *rec)
{
	const uint8_t *p = data;

	if (len != DB_BLOB_REC_LEN || p[0] != DB_REC_VERSION)
		return -EBADMSG;
	*rec = (struct blob_rec){
		.size = db_codec_get_le(p + 1, 8),
		.block_size = (uint32_t)db_codec_get_le(p + 9, 4),
		.hash = p[13],
		.state = p[14],
		.blocks_present = db_codec_get_le(p + 15, 8),
		.last_access = db_codec_get_le(p + 23, 8),
		.bad_count = db_codec_get_le(p + 31, 8),
	};
	if (rec->block_size == 0 || rec->hash > BLOB_HASH_GITSHA1 || rec->state > BLOB_BAD ||
	    rec->blocks_present > block_count(rec->size, rec->block_size))
		return -EBADMSG;
	return 0;
}

int db_codec_bitmap_check(const struct blob_rec *rec, const void *data, size_t len)
{
	uint64_t n = block_count(rec->size, rec->block_size);

	/* Also what db_blob.c asserts before it writes: the bits and the count agree. */
	if (len != bitmap_bytes(n) || !bitmap_is_sane(data, n) ||
	    bitmap_count(data, n) != rec->blocks_present)
		return -EBADMSG;
	return 0;
}

bool db_codec_is_commit(const char *s)
{
	return blob_cid_is_valid(s) && strlen(s) == 40;
}

int db_codec_ref_decode(const void *data, size_t len, char *ret_commit)
{
	char commit[41];

	if (len != 40)
		return -EBADMSG;
	memcpy(commit, data, 40);
	commit[40] = '\0';
	if (!db_codec_is_commit(commit))
		return -EBADMSG;
	memcpy(ret_commit, commit, 41);
	return 0;
}

int db_codec_key_split(const void *data, size_t len, char *buf, const char **ret_a,
		       const char **ret_b)
{
	const char *sep;

	if (len == 0 || len > DB_KEY_BUF)
		return -EBADMSG;
	memcpy(buf, data, len);
	buf[len] = '\0';
	if (buf[0] == DB_HASHED_KEY_MARK)
		return 0;
	sep = memchr(buf, '\0', len);
	if (!sep || sep == buf || sep + 1 == buf + len ||
	    memchr(sep + 1, '\0', (size_t)(buf + len - (sep + 1))))
		return -EBADMSG;
	*ret_a = buf;
	*ret_b = sep + 1;
	return 1;
}

/* Mount records: version, then mountpoint, repo_key, revision, commit, endpoint as (u16
 * length, bytes), then pid i32, started u64, flags u32 (DB_MOUNT_REC_MAX). */

static size_t db_codec_put_str(uint8_t *p, const char *s)
{
	size_t n = strlen(s);

	db_codec_put_le(p, n, 2);
	memcpy(p + 2, s, n);
	return n + 2;
}

/* Reads one string into dst (size bytes with its NUL). 0, or -EBADMSG if it does not fit. */
static int db_codec_get_str(const uint8_t **p, const uint8_t *end, char *dst, size_t size)
{
	size_t n;

	if (end - *p < 2)
		return -EBADMSG;
	n = (size_t)db_codec_get_le(*p, 2);
	if ((size_t)(end - *p - 2) < n || n >= size || memchr(*p + 2, '\0', n))
		return -EBADMSG;
	memcpy(dst, *p + 2, n);
	dst[n] = '\0';
	*p += 2 + n;
	return 0;
}

size_t db_codec_mount_encode(const struct db_mount *m, uint8_t *p)
{
	uint8_t *start = p;

	*p++ = DB_REC_VERSION;
	p += db_codec_put_str(p, m->mountpoint);
	p += db_codec_put_str(p, m->repo_key);
	p += db_codec_put_str(p, m->revision);
	p += db_codec_put_str(p, m->commit);
	p += db_codec_put_str(p, m->endpoint);
	db_codec_put_le(p, (uint32_t)m->pid, 4);
	db_codec_put_le(p + 4, m->started, 8);
	db_codec_put_le(p + 12, m->flags, 4);
	return (size_t)(p + 16 - start);
}

int db_codec_mount_decode(const void *data, size_t len, struct db_mount *m)
{
	const uint8_t *p = data, *end = p + len;

	memset(m, 0, sizeof(*m));
	if (len < 1 || *p++ != DB_REC_VERSION)
		return -EBADMSG;
	if (db_codec_get_str(&p, end, m->mountpoint, sizeof(m->mountpoint)) < 0 ||
	    db_codec_get_str(&p, end, m->repo_key, sizeof(m->repo_key)) < 0 ||
	    db_codec_get_str(&p, end, m->revision, sizeof(m->revision)) < 0 ||
	    db_codec_get_str(&p, end, m->commit, sizeof(m->commit)) < 0 ||
	    db_codec_get_str(&p, end, m->endpoint, sizeof(m->endpoint)) < 0 || end - p != 16 ||
	    !m->mountpoint[0])
		return -EBADMSG;
	m->pid = (int32_t)(uint32_t)db_codec_get_le(p, 4);
	m->started = db_codec_get_le(p + 4, 8);
	m->flags = (uint32_t)db_codec_get_le(p + 12, 4);
	return 0;
}
