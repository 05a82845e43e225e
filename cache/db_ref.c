/* db_ref.c: the string-keyed records of the index (db.h): refs (revision -> commit), trees
 * (opaque bytes; cache/tree.c gives them their meaning), mount records and live figures.
 * Never sees LMDB: every access goes through db_core.h, every byte layout through
 * db_codec.h. Any thread; one transaction per call. */
#include "cache/db_core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"

/* Opaque values under string keys: refs, trees, live. */

struct db_ref_kv_ctx {
	enum db_dbi dbi;
	const char *a, *b; /* the key: a, or a \0 b */
	const void *data; /* put */
	size_t len;
	void *ret; /* get: malloc'd copy, NUL-terminated past ret_len */
	size_t ret_len;
};

static int db_ref_kv_put_fn(struct cache_db *db, struct db_txn *txn, void *ud)
{
	struct db_ref_kv_ctx *c = ud;
	struct db_key k;
	int r = db_key_make(db, &k, c->a, c->b);

	return r ? r : db_put(txn, c->dbi, &k, c->data, c->len);
}

static int db_ref_kv_get_fn(struct cache_db *db, struct db_txn *txn, void *ud)
{
	struct db_ref_kv_ctx *c = ud;
	struct db_key k;
	struct db_val v;
	int r = db_key_make(db, &k, c->a, c->b);

	if (r == 0)
		r = db_get(txn, c->dbi, &k, &v);
	if (r)
		return r;
	free(c->ret);
	c->ret = malloc(v.len + 1);
	if (!c->ret)
		return -ENOMEM;
	memcpy(c->ret, v.data, v.len);
	((char *)c->ret)[v.len] = '\0';
	c->ret_len = v.len;
	return 0;
}

static int db_ref_kv_del_fn(struct cache_db *db, struct db_txn *txn, void *ud)
{
	struct db_ref_kv_ctx *c = ud;
	struct db_key k;
	int r = db_key_make(db, &k, c->a, c->b);

	return r ? r : db_del(txn, c->dbi, &k);
}

static int db_ref_kv_get(struct cache_db *db, struct db_ref_kv_ctx *c, void **ret, size_t *ret_len)
{
	int r = db_txn_run(db, false, db_ref_kv_get_fn, c);

	if (r < 0) {
		free(c->ret);
		return r;
	}
	*ret = c->ret;
	if (ret_len)
		*ret_len = c->ret_len;
	return 0;
}

int db_ref_put(struct cache_db *db, const char *repo_key, const char *revision, const char *commit)
{
	struct db_ref_kv_ctx c = {
		.dbi = DB_DBI_REFS, .a = repo_key, .b = revision, .data = commit, .len = 40
	};

	if (!db_codec_is_commit(commit) || !*revision)
		return -EINVAL;
	return db_txn_run(db, true, db_ref_kv_put_fn, &c);
}

int db_ref_get(struct cache_db *db, const char *repo_key, const char *revision, char *ret_commit)
{
	struct db_ref_kv_ctx c = { .dbi = DB_DBI_REFS, .a = repo_key, .b = revision };
	_cleanup_free_ char *v = NULL;
	size_t len;
	int r;

	if (!*revision)
		return -EINVAL;
	r = db_ref_kv_get(db, &c, (void **)&v, &len);
	return r < 0 ? r : db_codec_ref_decode(v, len, ret_commit);
}

int db_tree_put(struct cache_db *db, const char *repo_key, const char *commit, const void *data,
		size_t len)
{
	struct db_ref_kv_ctx c = {
		.dbi = DB_DBI_TREES, .a = repo_key, .b = commit, .data = data, .len = len
	};

	if (!*commit)
		return -EINVAL;
	return db_txn_run(db, true, db_ref_kv_put_fn, &c);
}

int db_tree_get(struct cache_db *db, const char *repo_key, const char *commit, char **ret,
		size_t *ret_len)
{
	struct db_ref_kv_ctx c = { .dbi = DB_DBI_TREES, .a = repo_key, .b = commit };

	if (!*commit)
		return -EINVAL;
	return db_ref_kv_get(db, &c, (void **)ret, ret_len);
}

int db_ref_del(struct cache_db *db, const char *repo_key, const char *revision)
{
	struct db_ref_kv_ctx c = { .dbi = DB_DBI_REFS, .a = repo_key, .b = revision };

	if (!*revision)
		return -EINVAL;
	return db_txn_run(db, true, db_ref_kv_del_fn, &c);
}

int db_tree_del(struct cache_db *db, const char *repo_key, const char *commit)
{
	struct db_ref_kv_ctx c = { .dbi = DB_DBI_TREES, .a = repo_key, .b = commit };

	if (!*commit)
		return -EINVAL;
	return db_txn_run(db, true, db_ref_kv_del_fn, &c);
}

struct db_ref_foreach_ctx {
	int (*fn)(void *ud, const char *repo_key, const char *revision, const char *commit);
	void *ud;
};

/* One ref: its key split, its commit checked and handed to the caller. A key stored under
 * its hash is skipped. */
static int db_ref_one(void *ud, const struct db_val *k, const struct db_val *v)
{
	struct db_ref_foreach_ctx *c = ud;
	char key[DB_KEY_BUF + 1], commit[41];
	const char *a = NULL, *b = NULL;
	int r = db_codec_key_split(k->data, k->len, key, &a, &b);

	if (r <= 0)
		return r;
	r = db_codec_ref_decode(v->data, v->len, commit);
	return r < 0 ? r : c->fn(c->ud, a, b, commit);
}

int db_ref_foreach(struct cache_db *db,
		   int (*fn)(void *ud, const char *repo_key, const char *revision,
			     const char *commit),
		   void *ud)
{
	struct db_ref_foreach_ctx c = { .fn = fn, .ud = ud };

	return db_walk(db, DB_DBI_REFS, db_ref_one, &c);
}

struct db_tree_foreach_ctx {
	int (*fn)(void *ud, const char *repo_key, const char *commit, const void *data, size_t len);
	void *ud;
};

/* One tree: its key split, its data handed to the caller as LMDB holds it. A key stored under
 * its hash is skipped. */
static int db_tree_one(void *ud, const struct db_val *k, const struct db_val *v)
{
	struct db_tree_foreach_ctx *c = ud;
	char key[DB_KEY_BUF + 1];
	const char *a = NULL, *b = NULL;
	int r = db_codec_key_split(k->data, k->len, key, &a, &b);

	if (r <= 0)
		return r;
	return c->fn(c->ud, a, b, v->data, v->len);
}

int db_tree_foreach(struct cache_db *db,
		    int (*fn)(void *ud, const char *repo_key, const char *commit, const void *data,
			      size_t len),
		    void *ud)
{
	struct db_tree_foreach_ctx c = { .fn = fn, .ud = ud };

	return db_walk(db, DB_DBI_TREES, db_tree_one, &c);
}

int db_live_put(struct cache_db *db, const char *mountpoint, const void *data, size_t len)
{
	struct db_ref_kv_ctx c = { .dbi = DB_DBI_LIVE, .a = mountpoint, .data = data, .len = len };

	return db_txn_run(db, true, db_ref_kv_put_fn, &c);
}

int db_live_get(struct cache_db *db, const char *mountpoint, void **ret, size_t *ret_len)
{
	struct db_ref_kv_ctx c = { .dbi = DB_DBI_LIVE, .a = mountpoint };

	return db_ref_kv_get(db, &c, ret, ret_len);
}

int db_live_del(struct cache_db *db, const char *mountpoint)
{
	struct db_ref_kv_ctx c = { .dbi = DB_DBI_LIVE, .a = mountpoint };

	return db_txn_run(db, true, db_ref_kv_del_fn, &c);
}

/* Mount records. */

/* True when s is NUL-terminated within size bytes. */
static bool db_mount_str_fits(const char *s, size_t size)
{
	return strnlen(s, size) < size;
}

static bool db_mount_strings_ok(const struct db_mount *m)
{
	return m->mountpoint[0] && db_mount_str_fits(m->mountpoint, sizeof(m->mountpoint)) &&
	       db_mount_str_fits(m->repo_key, sizeof(m->repo_key)) &&
	       db_mount_str_fits(m->revision, sizeof(m->revision)) &&
	       db_mount_str_fits(m->commit, sizeof(m->commit)) &&
	       db_mount_str_fits(m->endpoint, sizeof(m->endpoint));
}

struct db_mount_ctx {
	const struct db_mount *in;
	const char *mountpoint;
	struct db_mount *out;
	int (*fn)(void *ud, const struct db_mount *m);
	void *ud;
};

static int db_mount_put_fn(struct cache_db *db, struct db_txn *txn, void *ud)
{
	struct db_mount_ctx *c = ud;
	uint8_t buf[DB_MOUNT_REC_MAX];
	size_t n = db_codec_mount_encode(c->in, buf);
	struct db_key k;
	int r = db_key_make(db, &k, c->in->mountpoint, NULL);

	return r ? r : db_put(txn, DB_DBI_MOUNTS, &k, buf, n);
}

static int db_mount_get_fn(struct cache_db *db, struct db_txn *txn, void *ud)
{
	struct db_mount_ctx *c = ud;
	struct db_key k;
	struct db_val v;
	int r = db_key_make(db, &k, c->mountpoint, NULL);

	if (r == 0)
		r = db_get(txn, DB_DBI_MOUNTS, &k, &v);
	return r ? r : db_codec_mount_decode(v.data, v.len, c->out);
}

static int db_mount_del_fn(struct cache_db *db, struct db_txn *txn, void *ud)
{
	struct db_mount_ctx *c = ud;
	struct db_key k;
	int r = db_key_make(db, &k, c->mountpoint, NULL);

	return r ? r : db_del(txn, DB_DBI_MOUNTS, &k);
}

static int db_mount_one(void *ud, const struct db_val *k, const struct db_val *v)
{
	struct db_mount_ctx *c = ud;
	struct db_mount m;
	int r;

	(void)k;
	r = db_codec_mount_decode(v->data, v->len, &m);
	return r ? r : c->fn(c->ud, &m);
}

int db_mount_put(struct cache_db *db, const struct db_mount *m)
{
	struct db_mount_ctx c = { .in = m };

	if (!db_mount_strings_ok(m))
		return -EINVAL;
	return db_txn_run(db, true, db_mount_put_fn, &c);
}

int db_mount_del(struct cache_db *db, const char *mountpoint)
{
	struct db_mount_ctx c = { .mountpoint = mountpoint };

	return db_txn_run(db, true, db_mount_del_fn, &c);
}

int db_mount_get(struct cache_db *db, const char *mountpoint, struct db_mount *ret)
{
	struct db_mount_ctx c = { .mountpoint = mountpoint, .out = ret };

	return db_txn_run(db, false, db_mount_get_fn, &c);
}

int db_mount_foreach(struct cache_db *db, int (*fn)(void *ud, const struct db_mount *m), void *ud)
{
	struct db_mount_ctx c = { .fn = fn, .ud = ud };

	return db_walk(db, DB_DBI_MOUNTS, db_mount_one, &c);
}
