/* db_blob.c: the blob records and presence bitmaps of the index (db.h): creating, reading,
 * updating blocks and state, deleting, walking. Never sees LMDB: every access goes through
 * db_core.h, every byte layout through db_codec.h. Any thread; one transaction per call.
 * Crash safety is the caller's: data is synced before db_blob_add_blocks() claims it. */
#include "cache/db_core.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache/bitmap.h"
#include "util/cleanup.h"
#include "util/log.h"

const char *db_blob_state_str(enum blob_state s)
{
	switch (s) {
	case BLOB_PARTIAL:
		return "partial";
	case BLOB_COMPLETE:
		return "complete";
	case BLOB_VERIFIED:
		return "verified";
	case BLOB_BAD:
		return "bad";
	}
	return "unknown";
}

static int db_blob_rec_put(struct db_txn *txn, const struct db_key *k, const struct blob_rec *rec)
{
	uint8_t buf[DB_BLOB_REC_LEN];

	db_codec_blob_rec_encode(rec, buf);
	return db_put(txn, DB_DBI_BLOBS, k, buf, sizeof(buf));
}

/* The record of cid; *k receives its key. -EINVAL (bad cid), -ENOENT, -EBADMSG. */
static int db_blob_rec_get(struct db_txn *txn, const char *cid, struct db_key *k,
			   struct blob_rec *rec)
{
	struct db_val v;
	int r = db_key_cid(k, cid);

	if (r == 0)
		r = db_get(txn, DB_DBI_BLOBS, k, &v);
	return r ? r : db_codec_blob_rec_decode(v.data, v.len, rec);
}

/* The stored bitmap of a record, checked against the record's block count. The pointer is
 * LMDB's: valid until the next write in txn. */
static int db_blob_bitmap_get(struct db_txn *txn, const struct db_key *k,
			      const struct blob_rec *rec, struct db_val *ret)
{
	int r = db_get(txn, DB_DBI_BITMAPS, k, ret);

	if (r == -ENOENT)
		return -EBADMSG; /* a record without its bitmap */
	return r ? r : db_codec_bitmap_check(rec, ret->data, ret->len);
}

/* Stores map (nbytes) as the bitmap of k; with map NULL, stores zeros. */
static int db_blob_bitmap_put(struct db_txn *txn, const struct db_key *k, const uint8_t *map,
			      size_t nbytes)
{
	void *p;
	int r = db_reserve(txn, DB_DBI_BITMAPS, k, nbytes, &p);

	if (r == 0 && nbytes) {
		if (map)
			memcpy(p, map, nbytes);
		else
			memset(p, 0, nbytes);
	}
	return r;
}

struct db_blob_get_ctx {
	const char *cid;
	struct blob_rec *rec;
	uint8_t **map;
};

static int db_blob_get_fn(struct cache_db *db, struct db_txn *txn, void *ud)
{
	struct db_blob_get_ctx *c = ud;
	struct db_key k;
	struct db_val v;
	int r;

	(void)db;
	r = db_blob_rec_get(txn, c->cid, &k, c->rec);
	if (r || !c->map)
		return r;
	r = db_blob_bitmap_get(txn, &k, c->rec, &v);
	if (r)
		return r;
	free(*c->map);
	/* At least one byte, so an empty blob's bitmap is not NULL. */
	*c->map = malloc(v.len ? v.len : 1);
	if (!*c->map)
		return -ENOMEM;
	memcpy(*c->map, v.data, v.len);
	return 0;
}

int db_blob_get(struct cache_db *db, const char *cid, struct blob_rec *ret, uint8_t **ret_bitmap)
{
	_cleanup_free_ uint8_t *map = NULL;
	struct blob_rec rec;
	struct db_blob_get_ctx c = { .cid = cid, .rec = &rec, .map = ret_bitmap ? &map : NULL };
	int r = db_txn_run(db, false, db_blob_get_fn, &c);

	if (r < 0)
		return r;
	*ret = rec;
	if (ret_bitmap)
		*ret_bitmap = TAKE_PTR(map);
	return 0;
}

struct db_blob_ensure_ctx {
	const char *cid;
	uint64_t size;
	uint32_t block_size;
	enum blob_hash hash;
	struct blob_rec *rec;
};

static int db_blob_check_same(const struct db_blob_ensure_ctx *c, const struct blob_rec *rec)
{
	if (rec->size != c->size || rec->block_size != c->block_size) {
		log_debug(
			"db: blob '%s' is known with size %llu and block size %u, not %llu and %u",
			c->cid, (unsigned long long)rec->size, rec->block_size,
			(unsigned long long)c->size, c->block_size);
		return -EBADMSG;
	}
	return 0;
}

static int db_blob_ensure_read_fn(struct cache_db *db, struct db_txn *txn, void *ud)
{
	struct db_blob_ensure_ctx *c = ud;
	struct db_key k;
	int r = db_blob_rec_get(txn, c->cid, &k, c->rec);

	(void)db;
	return r ? r : db_blob_check_same(c, c->rec);
}

static int db_blob_ensure_write_fn(struct cache_db *db, struct db_txn *txn, void *ud)
{
	struct db_blob_ensure_ctx *c = ud;
	uint64_t n = block_count(c->size, c->block_size);
	char hex[CID_MAX];
	struct db_key k;
	int r = db_blob_rec_get(txn, c->cid, &k, c->rec);

	(void)db;
	if (r != -ENOENT)
		return r ? r : db_blob_check_same(c, c->rec); /* another process was first */
	*c->rec = (struct blob_rec){ .size = c->size,
				     .block_size = c->block_size,
				     .hash = (uint8_t)c->hash,
				     .state = BLOB_PARTIAL };
	if (n == 0) {
		/* An empty blob is complete at once, and its hash needs no file. */
		verify_hash_buf("", 0, c->hash, hex);
		c->rec->state = strcmp(hex, c->cid) ? BLOB_BAD : BLOB_VERIFIED;
		c->rec->bad_count = c->rec->state == BLOB_BAD;
	}
	r = db_blob_rec_put(txn, &k, c->rec);
	return r ? r : db_blob_bitmap_put(txn, &k, NULL, bitmap_bytes(n));
}

int db_blob_ensure(struct cache_db *db, const char *cid, uint64_t size, enum blob_hash hash,
		   uint32_t block_size, struct blob_rec *ret)
{
	struct blob_rec rec;
	struct db_blob_ensure_ctx c = {
		.cid = cid, .size = size, .block_size = block_size, .hash = hash, .rec = &rec
	};
	int r;

	if (block_size == 0 || (hash != BLOB_HASH_SHA256 && hash != BLOB_HASH_GITSHA1) ||
	    size > INT64_MAX)
		return -EINVAL;
	/* Mounts ensure every blob of a tree, and almost all exist: a read needs no writer lock. */
	r = db_txn_run(db, false, db_blob_ensure_read_fn, &c);
	if (r == -ENOENT)
		r = db_txn_run(db, true, db_blob_ensure_write_fn, &c);
	if (r < 0)
		return r;
	*ret = rec;
	return 0;
}

struct db_blob_add_ctx {
	const struct db_block_run *runs;
	size_t n;
	bool *completed; /* n entries, or NULL */
	uint8_t *map; /* scratch copy of one bitmap */
	size_t map_cap;
};

/* Applies one run inside the batch's transaction; *ret_done tells whether it completed the
 * blob. */
static int db_blob_add_run(struct db_txn *txn, struct db_blob_add_ctx *c,
			   const struct db_block_run *run, bool *ret_done)
{
	struct blob_rec rec;
	uint64_t n, added = 0;
	struct db_key k;
	struct db_val v;
	int r;

	*ret_done = false;
	r = db_blob_rec_get(txn, run->cid, &k, &rec);
	if (r)
		return r;
	n = block_count(rec.size, rec.block_size);
	if (run->first > n || run->count > n - run->first)
		return -EINVAL;
	if (run->count == 0 || run->gen != rec.bad_count)
		return 0;
	r = db_blob_bitmap_get(txn, &k, &rec, &v);
	if (r)
		return r;
	/* A copy: the put below may move the record LMDB's pointer refers to. */
	if (v.len > c->map_cap) {
		uint8_t *p = realloc(c->map, v.len);

		if (!p)
			return -ENOMEM;
		c->map = p;
		c->map_cap = v.len;
	}
	memcpy(c->map, v.data, v.len);
	for (uint64_t i = run->first; i < run->first + run->count; i++) {
		if (!bitmap_test(c->map, i)) {
			bitmap_set(c->map, i);
			added++;
		}
	}
	if (added == 0)
		return 0;
	rec.blocks_present += added;
	assert(bitmap_is_sane(c->map, n) && bitmap_count(c->map, n) == rec.blocks_present);
	if (rec.blocks_present == n && (rec.state == BLOB_PARTIAL || rec.state == BLOB_BAD)) {
		rec.state = BLOB_COMPLETE;
		*ret_done = true;
	} else if (rec.state == BLOB_BAD) {
		rec.state = BLOB_PARTIAL; /* refetching after a failed hash */
	}
	r = db_blob_bitmap_put(txn, &k, c->map, v.len);
	return r ? r : db_blob_rec_put(txn, &k, &rec);
}

static int db_blob_add_fn(struct cache_db *db, struct db_txn *txn, void *ud)
{
	struct db_blob_add_ctx *c = ud;

	(void)db;
	for (size_t i = 0; i < c->n; i++) {
		bool done;
		int r = db_blob_add_run(txn, c, &c->runs[i], &done);

		if (r)
			return r;
		if (c->completed)
			c->completed[i] = done;
	}
	return 0;
}

int db_blob_add_blocks(struct cache_db *db, const struct db_block_run *runs, size_t n,
		       bool *ret_completed)
{
	struct db_blob_add_ctx c = { .runs = runs, .n = n, .completed = ret_completed };
	int r;

	if (n == 0)
		return 0;
	r = db_txn_run(db, true, db_blob_add_fn, &c);
	free(c.map);
	return r;
}

struct db_blob_state_ctx {
	const char *cid;
	enum blob_state state;
	uint64_t when; /* for touch */
};

static int db_blob_state_fn(struct cache_db *db, struct db_txn *txn, void *ud)
{
	struct db_blob_state_ctx *c = ud;
	struct blob_rec rec;
	struct db_key k;
	uint64_t n;
	bool full;
	int r;

	(void)db;
	r = db_blob_rec_get(txn, c->cid, &k, &rec);
	if (r)
		return r;
	n = block_count(rec.size, rec.block_size);
	full = rec.blocks_present == n;
	switch (c->state) {
	case BLOB_BAD:
		/* The blocks are dropped: they are refetched, then hashed again. */
		r = db_blob_bitmap_put(txn, &k, NULL, bitmap_bytes(n));
		if (r)
			return r;
		rec.blocks_present = 0;
		rec.bad_count++;
		break;
	case BLOB_COMPLETE:
	case BLOB_VERIFIED:
		if (!full)
			return -EINVAL;
		break;
	case BLOB_PARTIAL:
		if (full)
			return -EINVAL;
		break;
	}
	rec.state = (uint8_t)c->state;
	return db_blob_rec_put(txn, &k, &rec);
}

int db_blob_set_state(struct cache_db *db, const char *cid, enum blob_state state)
{
	struct db_blob_state_ctx c = { .cid = cid, .state = state };

	if (state > BLOB_BAD)
		return -EINVAL;
	return db_txn_run(db, true, db_blob_state_fn, &c);
}

static int db_blob_touch_fn(struct cache_db *db, struct db_txn *txn, void *ud)
{
	struct db_blob_state_ctx *c = ud;
	struct blob_rec rec;
	struct db_key k;
	int r;

	(void)db;
	r = db_blob_rec_get(txn, c->cid, &k, &rec);
	if (r)
		return r;
	rec.last_access = c->when;
	return db_blob_rec_put(txn, &k, &rec);
}

int db_blob_touch(struct cache_db *db, const char *cid, uint64_t when)
{
	struct db_blob_state_ctx c = { .cid = cid, .when = when };

	return db_txn_run(db, true, db_blob_touch_fn, &c);
}

static int db_blob_delete_fn(struct cache_db *db, struct db_txn *txn, void *ud)
{
	struct db_key k;
	int r;

	(void)db;
	r = db_key_cid(&k, ud);
	if (r == 0)
		r = db_del(txn, DB_DBI_BLOBS, &k);
	if (r)
		return r;
	r = db_del(txn, DB_DBI_BITMAPS, &k);
	return r == -ENOENT ? 0 : r;
}

int db_blob_delete(struct cache_db *db, const char *cid)
{
	return db_txn_run(db, true, db_blob_delete_fn, (void *)cid);
}

struct db_blob_foreach_ctx {
	int (*fn)(void *ud, const char *cid, const struct blob_rec *rec);
	void *ud;
};

static int db_blob_one(void *ud, const struct db_val *k, const struct db_val *v)
{
	struct db_blob_foreach_ctx *c = ud;
	char cid[CID_MAX];
	struct blob_rec rec;
	int r;

	if (k->len >= sizeof(cid))
		return -EBADMSG;
	memcpy(cid, k->data, k->len);
	cid[k->len] = '\0';
	r = db_codec_blob_rec_decode(v->data, v->len, &rec);
	return r ? r : c->fn(c->ud, cid, &rec);
}

int db_blob_foreach(struct cache_db *db,
		    int (*fn)(void *ud, const char *cid, const struct blob_rec *rec), void *ud)
{
	struct db_blob_foreach_ctx c = { .fn = fn, .ud = ud };

	return db_walk(db, DB_DBI_BLOBS, db_blob_one, &c);
}
