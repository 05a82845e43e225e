/* db.c: the LMDB core of the cache index, the only file that includes lmdb.h: open, schema,
 * map growth, transactions, get/put/del/walk on one database, keys, compaction, and the one
 * map of MDB_ codes to -errno (db_core.h). Record kinds live in db_blob.c and db_ref.c.
 * Any thread: every call is one short transaction; read transactions use MDB_NOTLS so a slot
 * belongs to the transaction, not the thread. Several processes share the environment through
 * LMDB's lock file; within a process, one MDB_env per index is shared by every handle (LMDB
 * forbids opening an environment twice in one process: closing one breaks the other's locks).
 * Lock order: db_registry_lock, then cache_db.resize; LMDB's own locks are taken inside them. */
#include "cache/db_core.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "cache/db_priv.h"
#include "util/cleanup.h"
#include "util/log.h"

/* The map is sparse: 256 MiB of address space costs no disk. Each growth doubles it; the cap
 * only bounds address space (an index of 1 TiB would mean something is badly wrong). */
#define DB_MAPSIZE_INITIAL ((size_t)256 << 20)
#define DB_MAPSIZE_MAX (sizeof(size_t) > 4 ? (size_t)1 << 40 : (size_t)1 << 30)
/* Growths and adoptions of another process's map size one call may go through. */
#define DB_RETRIES_MAX 32

#define DB_SCHEMA_KEY "schema_version"
/* Beside LMDB's files: every process holding the environment open holds a shared flock() on
 * it, so db_compact() can tell that it is alone (an exclusive lock) and keep newcomers out
 * until the compacted file is in place. */
#define DB_LOCK_FILE "hffs.lock"

static const char *const dbi_names[DB_DBI_COUNT] = {
	[DB_DBI_META] = "meta", [DB_DBI_BLOBS] = "blobs", [DB_DBI_BITMAPS] = "bitmaps",
	[DB_DBI_REFS] = "refs", [DB_DBI_TREES] = "trees", [DB_DBI_MOUNTS] = "mounts",
	[DB_DBI_LIVE] = "live",
};

/* One open environment, shared by every db_open() of the same index in this process.
 * Invariants: env is open and every dbi[] is valid while refs > 0; pid is the process that
 * opened env (a child of fork() must not use it). */
struct cache_db {
	/* Set at open, then constant. */
	MDB_env *env;
	MDB_dbi dbi[DB_DBI_COUNT];
	dev_t dev;
	ino_t ino;
	pid_t pid;
	size_t maxkey;
	uint32_t schema;
	int lock_fd; /* DB_LOCK_FILE, held shared (exclusive during db_compact()), or -1 */

	/* Every transaction holds it shared; changing the map size holds it exclusive, as LMDB
	 * requires no transaction of this process to be active then. Writer-preferring, so a
	 * growth is not starved by a stream of readers. */
	pthread_rwlock_t resize;
	size_t mapsize; /* written under resize exclusive, read under resize shared */
	bool broken; /* likewise: a resize lost the map, the environment is unusable */

	/* Under db_registry_lock. */
	unsigned refs;
	struct cache_db *next;
};

static pthread_mutex_t db_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache_db *db_registry; /* under db_registry_lock */

struct db_txn {
	MDB_txn *txn;
	struct cache_db *db;
	int full; /* MDB_MAP_FULL or MDB_MAP_RESIZED seen by a call in txn, else 0 */
};

/* The one mapping from LMDB's code space to -errno, chosen by what the caller does next. */
static int db_error(int r)
{
	switch (r) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_KEYEXIST:
		return -EEXIST;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
		return -ENOSPC;
	case MDB_CORRUPTED:
	case MDB_INVALID:
	case MDB_PAGE_NOTFOUND:
	case MDB_INCOMPATIBLE:
		return -EBADMSG;
	case MDB_VERSION_MISMATCH:
		return -EPROTONOSUPPORT;
	case MDB_READERS_FULL:
	case MDB_TLS_FULL:
	case MDB_MAP_RESIZED:
		return -EAGAIN;
	case MDB_BAD_VALSIZE:
	case MDB_BAD_TXN:
	case MDB_BAD_DBI:
	case MDB_BAD_RSLOT:
	case MDB_DBS_FULL:
		return -EINVAL;
	case MDB_PANIC:
	case MDB_CURSOR_FULL:
	case MDB_PAGE_FULL:
		return -EIO;
	default:
		/* LMDB passes system errors as positive errno; ours are already negative. */
		return r > 0 ? -r : r;
	}
}

/* ---- keys ---- */

static void db_key_compose(char *dst, const char *a, size_t la, const char *b, size_t lb)
{
	memcpy(dst, a, la);
	if (b) {
		dst[la] = '\0';
		memcpy(dst + la + 1, b, lb - 1);
	}
}

int db_key_make(struct cache_db *db, struct db_key *k, const char *a, const char *b)
{
	size_t la = strlen(a), lb = b ? strlen(b) + 1 : 0, n = la + lb;
	_cleanup_free_ char *tmp = NULL;
	char hex[CID_MAX];

	if (la == 0)
		return -EINVAL;
	if (n <= db->maxkey && n <= sizeof(k->buf)) {
		db_key_compose(k->buf, a, la, b, lb);
		k->val = (struct db_val){ .len = n, .data = k->buf };
		return 0;
	}
	tmp = malloc(n);
	if (!tmp)
		return -ENOMEM;
	db_key_compose(tmp, a, la, b, lb);
	verify_hash_buf(tmp, n, BLOB_HASH_SHA256, hex);
	if (!hex[0])
		return -ENOMEM;
	k->buf[0] = DB_HASHED_KEY_MARK;
	memcpy(k->buf + 1, hex, 64);
	k->val = (struct db_val){ .len = 65, .data = k->buf };
	return 0;
}

int db_key_cid(struct db_key *k, const char *cid)
{
	if (!blob_cid_is_valid(cid))
		return -EINVAL;
	k->val = (struct db_val){ .len = strlen(cid), .data = k->buf };
	memcpy(k->buf, cid, k->val.len);
	return 0;
}

/* ---- transactions and map growth ---- */

/* Under resize exclusive: maps size bytes. LMDB unmaps before it maps again, so a failed
 * mmap (RLIMIT_AS, say) would leave no map at all: the old size is mapped back, and only if
 * that fails too is the environment given up (every later call is -EIO). */
static int db_remap_locked(struct cache_db *db, size_t size, size_t old)
{
	int r = mdb_env_set_mapsize(db->env, size);

	if (r && mdb_env_set_mapsize(db->env, old)) {
		log_debug("db: the index map is lost after a failed resize: %s", mdb_strerror(r));
		db->broken = true;
	}
	return r;
}

/* Grows the map (doubling from seen, unless another thread already did) or, with adopt, takes
 * the size another process grew it to. -ENOSPC when the map cannot grow. */
static int db_grow(struct cache_db *db, size_t seen, bool adopt)
{
	MDB_envinfo info;
	int r = 0;

	pthread_rwlock_wrlock(&db->resize);
	if (db->broken)
		r = EIO;
	else if (adopt)
		r = db_remap_locked(db, 0, db->mapsize);
	else if (db->mapsize != seen)
		r = 0; /* another thread grew it meanwhile */
	else if (seen >= DB_MAPSIZE_MAX)
		r = MDB_MAP_FULL;
	else
		r = db_remap_locked(db, seen > DB_MAPSIZE_MAX / 2 ? DB_MAPSIZE_MAX : seen * 2,
				    seen);
	if (!db->broken && mdb_env_info(db->env, &info) == 0)
		db->mapsize = info.me_mapsize;
	pthread_rwlock_unlock(&db->resize);
	if (r) {
		log_debug("db: cannot grow the index map beyond %zu bytes: %s", seen,
			  mdb_strerror(r));
		return adopt || r == EIO ? db_error(r) : -ENOSPC;
	}
	log_debug("db: index map is now %zu bytes (%s)", db->mapsize,
		  adopt ? "grown by another process" : "grown here");
	return 0;
}

int db_txn_run(struct cache_db *db, bool write, db_txn_fn fn, void *ud)
{
	for (unsigned attempt = 0;; attempt++) {
		struct db_txn t = { .db = db };
		size_t seen;
		int r;

		assert(db->pid == getpid());
		pthread_rwlock_rdlock(&db->resize);
		seen = db->mapsize;
		r = db->broken ? EIO : mdb_txn_begin(db->env, NULL, write ? 0 : MDB_RDONLY, &t.txn);
		if (r == 0) {
			/* The body's -errno hides the MDB_ code: t.full keeps the one that asks
			 * for a larger map. */
			r = fn(db, &t, ud);
			if (t.full)
				r = t.full;
			if (r == 0 && write)
				r = mdb_txn_commit(t.txn); /* frees txn, also on failure */
			else
				mdb_txn_abort(t.txn);
		}
		pthread_rwlock_unlock(&db->resize);
		if ((r != MDB_MAP_FULL && r != MDB_MAP_RESIZED) || attempt >= DB_RETRIES_MAX)
			return db_error(r);
		r = db_grow(db, seen, r == MDB_MAP_RESIZED);
		if (r < 0)
			return r;
	}
}

/* An LMDB result inside txn as -errno, noting a full or resized map for db_txn_run(). */
static int db_txn_error(struct db_txn *txn, int r)
{
	if (r == MDB_MAP_FULL || r == MDB_MAP_RESIZED)
		txn->full = r;
	return db_error(r);
}

int db_get(struct db_txn *txn, enum db_dbi dbi, const struct db_key *k, struct db_val *ret)
{
	MDB_val key = { .mv_size = k->val.len, .mv_data = k->val.data }, v;
	int r = mdb_get(txn->txn, txn->db->dbi[dbi], &key, &v);

	if (r == 0)
		*ret = (struct db_val){ .data = v.mv_data, .len = v.mv_size };
	return db_txn_error(txn, r);
}

int db_put(struct db_txn *txn, enum db_dbi dbi, const struct db_key *k, const void *data,
	   size_t len)
{
	MDB_val key = { .mv_size = k->val.len, .mv_data = k->val.data };
	MDB_val v = { .mv_size = len, .mv_data = (void *)data };

	return db_txn_error(txn, mdb_put(txn->txn, txn->db->dbi[dbi], &key, &v, 0));
}

int db_reserve(struct db_txn *txn, enum db_dbi dbi, const struct db_key *k, size_t len, void **ret)
{
	MDB_val key = { .mv_size = k->val.len, .mv_data = k->val.data };
	MDB_val v = { .mv_size = len, .mv_data = NULL };
	int r = mdb_put(txn->txn, txn->db->dbi[dbi], &key, &v, MDB_RESERVE);

	*ret = r == 0 ? v.mv_data : NULL;
	return db_txn_error(txn, r);
}

int db_del(struct db_txn *txn, enum db_dbi dbi, const struct db_key *k)
{
	MDB_val key = { .mv_size = k->val.len, .mv_data = k->val.data };

	return db_txn_error(txn, mdb_del(txn->txn, txn->db->dbi[dbi], &key, NULL));
}

struct db_walk_ctx {
	enum db_dbi dbi;
	int (*one)(void *ud, const struct db_val *k, const struct db_val *v);
	void *ud;
};

static int db_walk_fn(struct cache_db *db, struct db_txn *txn, void *ud)
{
	struct db_walk_ctx *w = ud;
	MDB_cursor *cur;
	MDB_val k, v;
	int stop = 0, r;

	r = mdb_cursor_open(txn->txn, db->dbi[w->dbi], &cur);
	if (r)
		return db_txn_error(txn, r);
	for (r = mdb_cursor_get(cur, &k, &v, MDB_FIRST); r == 0;
	     r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct db_val key = { .data = k.mv_data, .len = k.mv_size };
		struct db_val val = { .data = v.mv_data, .len = v.mv_size };

		stop = w->one(w->ud, &key, &val);
		if (stop < 0)
			break;
	}
	mdb_cursor_close(cur);
	if (stop < 0)
		return stop;
	return r == MDB_NOTFOUND ? 0 : db_txn_error(txn, r);
}

int db_walk(struct cache_db *db, enum db_dbi dbi,
	    int (*one)(void *ud, const struct db_val *k, const struct db_val *v), void *ud)
{
	struct db_walk_ctx w = { .dbi = dbi, .one = one, .ud = ud };

	return db_txn_run(db, false, db_walk_fn, &w);
}

/* ---- open and close ---- */

/* Inside the opening write transaction: checks the schema of an existing index, or lays out
 * a new one. An index of another version (or a foreign LMDB environment) is left untouched:
 * the caller aborts. */
static int db_schema_setup(struct cache_db *db, MDB_txn *txn)
{
	MDB_val key = { .mv_size = strlen(DB_SCHEMA_KEY), .mv_data = (void *)DB_SCHEMA_KEY };
	uint8_t vbuf[4];
	MDB_val val;
	MDB_stat st;
	MDB_dbi main_dbi;
	int r;

	r = mdb_dbi_open(txn, dbi_names[DB_DBI_META], 0, &db->dbi[DB_DBI_META]);
	if (r == MDB_NOTFOUND) {
		/* New (empty) environment: create every database and stamp the version. */
		r = mdb_dbi_open(txn, NULL, 0, &main_dbi);
		if (r == 0)
			r = mdb_stat(txn, main_dbi, &st);
		if (r)
			return r;
		if (st.ms_entries > 0) {
			log_debug("db: the index holds foreign databases and no schema version");
			return -EPROTONOSUPPORT;
		}
		for (int i = 0; i < DB_DBI_COUNT; i++) {
			r = mdb_dbi_open(txn, dbi_names[i], MDB_CREATE, &db->dbi[i]);
			if (r)
				return r;
		}
		db_codec_put_le(vbuf, DB_SCHEMA_VERSION, 4);
		val = (MDB_val){ .mv_size = 4, .mv_data = vbuf };
		db->schema = DB_SCHEMA_VERSION;
		return mdb_put(txn, db->dbi[DB_DBI_META], &key, &val, 0);
	}
	if (r)
		return r;
	r = mdb_get(txn, db->dbi[DB_DBI_META], &key, &val);
	if (r == MDB_NOTFOUND || (r == 0 && val.mv_size != 4)) {
		log_debug("db: the index has no readable schema version");
		return -EPROTONOSUPPORT;
	}
	if (r)
		return r;
	db->schema = (uint32_t)db_codec_get_le(val.mv_data, 4);
	if (db->schema != DB_SCHEMA_VERSION) {
		log_debug("db: the index has schema version %u, this build reads %u", db->schema,
			  DB_SCHEMA_VERSION);
		return -EPROTONOSUPPORT;
	}
	for (int i = 0; i < DB_DBI_COUNT; i++) {
		r = mdb_dbi_open(txn, dbi_names[i], 0, &db->dbi[i]);
		if (r == MDB_NOTFOUND)
			return -EBADMSG; /* same version, a database missing: not ours */
		if (r)
			return r;
	}
	return 0;
}

/* Opens the environment at path. Sync choice: full durability (no MDB_NOSYNC or
 * MDB_NOMETASYNC). Bits are committed in batches every 50-100 ms after the data files are
 * fdatasync'ed, so one more fsync per batch is cheap, and a committed bit then survives a
 * power loss together with the data it claims. */
static int db_env_open(struct cache_db *db, const char *path, size_t mapsize)
{
	MDB_envinfo info;
	MDB_txn *txn;
	int dead = 0, r;

	r = mdb_env_create(&db->env);
	if (r == 0)
		r = mdb_env_set_maxdbs(db->env, DB_DBI_COUNT);
	if (r == 0)
		r = mdb_env_set_mapsize(db->env, mapsize);
	if (r == 0)
		r = mdb_env_open(db->env, path, MDB_NOTLS, 0644);
	if (r) {
		log_debug("db: cannot open the index '%s': %s", path, mdb_strerror(r));
		return db_error(r);
	}
	/* Reader slots of processes that died (kill -9) would pin old pages forever. */
	r = mdb_reader_check(db->env, &dead);
	if (r == 0 && dead > 0)
		log_debug("db: cleared %d reader slots of dead processes in '%s'", dead, path);
	/* Adopt the largest size any process gave the map, but no less than ours. */
	r = mdb_env_set_mapsize(db->env, 0);
	if (r == 0)
		r = mdb_env_info(db->env, &info);
	if (r == 0 && info.me_mapsize < mapsize)
		r = mdb_env_set_mapsize(db->env, mapsize);
	if (r == 0)
		r = mdb_env_info(db->env, &info);
	if (r)
		return db_error(r);
	db->mapsize = info.me_mapsize;
	db->maxkey = (size_t)mdb_env_get_maxkeysize(db->env);

	r = mdb_txn_begin(db->env, NULL, 0, &txn);
	if (r) {
		log_debug("db: cannot begin a transaction in '%s': %s", path, mdb_strerror(r));
		return db_error(r);
	}
	r = db_schema_setup(db, txn);
	if (r) {
		mdb_txn_abort(txn);
		return db_error(r);
	}
	r = mdb_txn_commit(txn); /* writes nothing unless the index is new */
	if (r)
		log_debug("db: cannot set up the index '%s': %s", path, mdb_strerror(r));
	return db_error(r);
}

static struct cache_db *db_free(struct cache_db *db)
{
	if (!db)
		return NULL;
	/* A child of fork() must not close its parent's environment: mdb_env_close() would
	 * release the reader slots of the parent's pid. */
	if (db->env && db->pid == getpid())
		mdb_env_close(db->env);
	/* After the environment: a compaction elsewhere must not start while it is open. A
	 * child of fork() shares the lock with its parent, and closing its copy keeps it. */
	if (db->lock_fd >= 0)
		close(db->lock_fd);
	pthread_rwlock_destroy(&db->resize);
	free(db);
	return NULL;
}

/* Opens DB_LOCK_FILE in the index directory and takes it shared, before LMDB opens anything:
 * this waits while another process compacts the index, so that process's new data file is
 * the one opened here. */
static int db_lock_open(struct cache_db *db, const char *dir)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/" DB_LOCK_FILE, dir);

	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	db->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (db->lock_fd < 0 && errno == EACCES)
		db->lock_fd = open(path, O_RDONLY | O_CLOEXEC); /* someone else's cache, read */
	if (db->lock_fd < 0) {
		log_debug("db: cannot open '%s': %s", path, strerror(errno));
		return -errno;
	}
	while (flock(db->lock_fd, LOCK_SH) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int db_open_with_mapsize(const char *cache_dir, size_t mapsize, struct cache_db **ret)
{
	pthread_rwlockattr_t attr;
	char path[PATH_MAX];
	struct cache_db *db;
	struct stat st;
	int n, r;

	n = snprintf(path, sizeof(path), "%s/index", cache_dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	r = blob_mkdir_p(path);
	if (r < 0) {
		log_debug("db: cannot create '%s': %s", path, strerror(-r));
		return r;
	}
	if (stat(path, &st) < 0)
		return -errno;

	pthread_mutex_lock(&db_registry_lock);
	for (db = db_registry; db; db = db->next) {
		if (db->dev == st.st_dev && db->ino == st.st_ino && db->pid == getpid()) {
			db->refs++;
			pthread_mutex_unlock(&db_registry_lock);
			*ret = db;
			return 0;
		}
	}
	db = calloc(1, sizeof(*db));
	if (!db) {
		pthread_mutex_unlock(&db_registry_lock);
		return -ENOMEM;
	}
	db->dev = st.st_dev;
	db->ino = st.st_ino;
	db->pid = getpid();
	db->refs = 1;
	db->lock_fd = -1;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&db->resize, &attr);
	pthread_rwlockattr_destroy(&attr);
	r = db_lock_open(db, path);
	if (r == 0)
		r = db_env_open(db, path, mapsize);
	if (r < 0) {
		pthread_mutex_unlock(&db_registry_lock);
		db_free(db);
		return r;
	}
	db->next = db_registry;
	db_registry = db;
	pthread_mutex_unlock(&db_registry_lock);
	*ret = db;
	return 0;
}

int db_open(const char *cache_dir, struct cache_db **ret)
{
	return db_open_with_mapsize(cache_dir, DB_MAPSIZE_INITIAL, ret);
}

struct cache_db *db_close(struct cache_db *db)
{
	struct cache_db **p;

	if (!db)
		return NULL;
	pthread_mutex_lock(&db_registry_lock);
	if (--db->refs > 0) {
		pthread_mutex_unlock(&db_registry_lock);
		return NULL;
	}
	for (p = &db_registry; *p; p = &(*p)->next) {
		if (*p == db) {
			*p = db->next;
			break;
		}
	}
	pthread_mutex_unlock(&db_registry_lock);
	return db_free(db);
}

uint32_t db_schema_version(struct cache_db *db)
{
	return db->schema;
}

size_t db_priv_mapsize(struct cache_db *db)
{
	size_t n;

	pthread_rwlock_rdlock(&db->resize);
	n = db->mapsize;
	pthread_rwlock_unlock(&db->resize);
	return n;
}

/* ---- compaction ---- */

static int db_file_size(const char *path, uint64_t *ret)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	*ret = (uint64_t)st.st_size;
	return 0;
}

/* With the index lock exclusive and resize held exclusive: writes a compacted copy beside
 * data.mdb, makes it durable, renames it over data.mdb (atomic: a crash leaves the old file
 * or the new one, never half of either) and opens the environment again on it. */
static int db_compact_locked(struct cache_db *db, const char *dir, uint64_t *ret_before,
			     uint64_t *ret_after)
{
	char data[PATH_MAX], tmp[PATH_MAX];
	_cleanup_close_ int fd = -1, dfd = -1;
	int n, r;

	n = snprintf(data, sizeof(data), "%s/data.mdb", dir);
	if (n < 0 || (size_t)n >= sizeof(data) ||
	    snprintf(tmp, sizeof(tmp), "%s/data.mdb.compact", dir) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	r = db_file_size(data, ret_before);
	if (r < 0)
		return r;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	r = mdb_env_copyfd2(db->env, fd, MDB_CP_COMPACT);
	if (r == 0 && fdatasync(fd) < 0)
		r = errno;
	if (r == 0 && rename(tmp, data) < 0)
		r = errno;
	if (r) {
		log_debug("db: cannot compact '%s': %s", data, mdb_strerror(r));
		(void)unlink(tmp);
		return db_error(r);
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd); /* the rename itself */
	/* The environment still maps the old, now unlinked file. */
	mdb_env_close(db->env);
	db->env = NULL;
	r = db_env_open(db, dir, db->mapsize);
	if (r < 0) {
		log_debug("db: cannot open the compacted index '%s': %s", data, strerror(-r));
		db->broken = true;
		return r;
	}
	return db_file_size(data, ret_after);
}

int db_compact(struct cache_db *db, uint64_t *ret_before, uint64_t *ret_after)
{
	char dir[PATH_MAX];
	const char *p = NULL;
	uint64_t before = 0, after = 0;
	int r;

	pthread_mutex_lock(&db_registry_lock);
	if (db->refs != 1 || mdb_env_get_path(db->env, &p) || !p) {
		pthread_mutex_unlock(&db_registry_lock);
		return -EBUSY;
	}
	snprintf(dir, sizeof(dir), "%s", p);
	/* Not atomic: a failed attempt may have dropped the shared lock, taken again below. */
	if (flock(db->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
	} else {
		pthread_rwlock_wrlock(&db->resize);
		r = db->broken ? -EIO : db_compact_locked(db, dir, &before, &after);
		pthread_rwlock_unlock(&db->resize);
	}
	while (flock(db->lock_fd, LOCK_SH) < 0 && errno == EINTR)
		;
	pthread_mutex_unlock(&db_registry_lock);
	if (r < 0)
		return r;
	if (ret_before)
		*ret_before = before;
	if (ret_after)
		*ret_after = after;
	return 0;
}

static int db_set_schema_fn(struct cache_db *db, struct db_txn *txn, void *ud)
{
	struct db_key k = { .val = { .len = strlen(DB_SCHEMA_KEY),
				     .data = (void *)DB_SCHEMA_KEY } };
	uint8_t vbuf[4];

	(void)db;
	db_codec_put_le(vbuf, *(const uint32_t *)ud, 4);
	return db_put(txn, DB_DBI_META, &k, vbuf, sizeof(vbuf));
}

int db_priv_set_schema_version(struct cache_db *db, uint32_t version)
{
	return db_txn_run(db, true, db_set_schema_fn, &version);
}
