/* db.c: the cache index in LMDB; the only file that includes lmdb.h.
 * Any thread: every call is one short transaction; read transactions use MDB_NOTLS so a slot
 * belongs to the transaction, not the thread. Several processes share the environment through
 * LMDB's lock file; within a process, one MDB_env per index is shared by every handle (LMDB
 * forbids opening an environment twice in one process: closing one breaks the other's locks).
 * Lock order: db_registry_lock, then cache_db.resize; LMDB's own locks are taken inside them. */
#include "cache/db.h"

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

#include "cache/bitmap.h"
#include "cache/db_codec.h"
#include "cache/db_priv.h"
#include "util/cleanup.h"
#include "util/log.h"

/* The map is sparse: 256 MiB of address space costs no disk. Each growth doubles it; the cap
 * only bounds address space (an index of 1 TiB would mean something is badly wrong). */
#define DB_MAPSIZE_INITIAL ((size_t)256 << 20)
#define DB_MAPSIZE_MAX (sizeof(size_t) > 4 ? (size_t)1 << 40 : (size_t)1 << 30)
/* Growths and adoptions of another process's map size one call may go through. */
#define DB_RETRIES_MAX 32

/* Record layouts: explicit little-endian fields after a version byte, never raw structs.
 * Bitmaps are plain bytes in bitmap.h's bit order, their length fixed by the blob record. */
#define DB_REC_VERSION 1
#define DB_SCHEMA_KEY "schema_version"
/* Keys longer than LMDB's limit (511 bytes) are stored as this byte and the hex sha256 of
 * the key; no raw key starts with it (paths start with '/', repo keys with a letter). */
#define DB_HASHED_KEY_MARK '\x01'
/* Beside LMDB's files: every process holding the environment open holds a shared flock() on
 * it, so db_compact() can tell that it is alone (an exclusive lock) and keep newcomers out
 * until the compacted file is in place. */
#define DB_LOCK_FILE "hffs.lock"

enum db_dbi {
	DBI_META, /* "schema_version" -> u32 */
	DBI_BLOBS, /* cid -> blob record */
	DBI_BITMAPS, /* cid -> bitmap_bytes(block_count) bytes */
	DBI_REFS, /* repo_key \0 revision -> 40 hex */
	DBI_TREES, /* repo_key \0 commit -> opaque */
	DBI_MOUNTS, /* mountpoint -> mount record */
	DBI_LIVE, /* mountpoint -> opaque */
	DBI_COUNT,
};

static const char *const dbi_names[DBI_COUNT] = {
	[DBI_META] = "meta", [DBI_BLOBS] = "blobs", [DBI_BITMAPS] = "bitmaps",
	[DBI_REFS] = "refs", [DBI_TREES] = "trees", [DBI_MOUNTS] = "mounts",
	[DBI_LIVE] = "live",
};

/* One open environment, shared by every db_open() of the same index in this process.
 * Invariants: env is open and every dbi[] is valid while refs > 0; pid is the process that
 * opened env (a child of fork() must not use it). */
struct cache_db {
	/* Set at open, then constant. */
	MDB_env *env;
	MDB_dbi dbi[DBI_COUNT];
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

/* A transaction body: returns 0, an MDB_* code, a positive errno from LMDB or a -errno. It
 * may run more than once (after the map grows), so it must only write through ud what it
 * overwrites each time. */
typedef int (*db_txn_fn)(struct cache_db *db, MDB_txn *txn, void *ud);

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

/* Little-endian fields. */
static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ---- keys ---- */

struct db_key {
	MDB_val val;
	char buf[DB_KEY_BUF];
};

static void key_compose(char *dst, const char *a, size_t la, const char *b, size_t lb)
{
	memcpy(dst, a, la);
	if (b) {
		dst[la] = '\0';
		memcpy(dst + la + 1, b, lb - 1);
	}
}

/* Builds the key a, or "a\0b" when b is given. -EINVAL for an empty key, -ENOMEM. */
static int key_make(struct cache_db *db, struct db_key *k, const char *a, const char *b)
{
	size_t la = strlen(a), lb = b ? strlen(b) + 1 : 0, n = la + lb;
	_cleanup_free_ char *tmp = NULL;
	char hex[CID_MAX];

	if (la == 0)
		return -EINVAL;
	if (n <= db->maxkey && n <= sizeof(k->buf)) {
		key_compose(k->buf, a, la, b, lb);
		k->val = (MDB_val){ .mv_size = n, .mv_data = k->buf };
		return 0;
	}
	tmp = malloc(n);
	if (!tmp)
		return -ENOMEM;
	key_compose(tmp, a, la, b, lb);
	verify_hash_buf(tmp, n, BLOB_HASH_SHA256, hex);
	if (!hex[0])
		return -ENOMEM;
	k->buf[0] = DB_HASHED_KEY_MARK;
	memcpy(k->buf + 1, hex, 64);
	k->val = (MDB_val){ .mv_size = 65, .mv_data = k->buf };
	return 0;
}

static int key_cid(struct db_key *k, const char *cid)
{
	if (!blob_cid_is_valid(cid))
		return -EINVAL;
	k->val = (MDB_val){ .mv_size = strlen(cid), .mv_data = k->buf };
	memcpy(k->buf, cid, k->val.mv_size);
	return 0;
}

/* ---- transactions and map growth ---- */

/* Under resize exclusive: maps size bytes. LMDB unmaps before it maps again, so a failed
 * mmap (RLIMIT_AS, say) would leave no map at all: the old size is mapped back, and only if
 * that fails too is the environment given up (every later call is -EIO). */
static int remap_locked(struct cache_db *db, size_t size, size_t old)
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
		r = remap_locked(db, 0, db->mapsize);
	else if (db->mapsize != seen)
		r = 0; /* another thread grew it meanwhile */
	else if (seen >= DB_MAPSIZE_MAX)
		r = MDB_MAP_FULL;
	else
		r = remap_locked(db, seen > DB_MAPSIZE_MAX / 2 ? DB_MAPSIZE_MAX : seen * 2, seen);
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

/* Runs fn in one transaction (read-only unless write), committing a write when fn returns 0;
 * grows the map and runs fn again when it fills, adopts a map another process grew. */
static int db_txn(struct cache_db *db, bool write, db_txn_fn fn, void *ud)
{
	for (unsigned attempt = 0;; attempt++) {
		MDB_txn *txn = NULL;
		size_t seen;
		int r;

		assert(db->pid == getpid());
		pthread_rwlock_rdlock(&db->resize);
		seen = db->mapsize;
		r = db->broken ? EIO : mdb_txn_begin(db->env, NULL, write ? 0 : MDB_RDONLY, &txn);
		if (r == 0) {
			r = fn(db, txn, ud);
			if (r == 0 && write)
				r = mdb_txn_commit(txn); /* frees txn, also on failure */
			else
				mdb_txn_abort(txn);
		}
		pthread_rwlock_unlock(&db->resize);
		if ((r != MDB_MAP_FULL && r != MDB_MAP_RESIZED) || attempt >= DB_RETRIES_MAX)
			return db_error(r);
		r = db_grow(db, seen, r == MDB_MAP_RESIZED);
		if (r < 0)
			return r;
	}
}

/* ---- open and close ---- */

/* Inside the opening write transaction: checks the schema of an existing index, or lays out
 * a new one. An index of another version (or a foreign LMDB environment) is left untouched:
 * the caller aborts. */
static int schema_setup(struct cache_db *db, MDB_txn *txn)
{
	MDB_val key = { .mv_size = strlen(DB_SCHEMA_KEY), .mv_data = (void *)DB_SCHEMA_KEY };
	uint8_t vbuf[4];
	MDB_val val;
	MDB_stat st;
	MDB_dbi main_dbi;
	int r;

	r = mdb_dbi_open(txn, dbi_names[DBI_META], 0, &db->dbi[DBI_META]);
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
		for (int i = 0; i < DBI_COUNT; i++) {
			r = mdb_dbi_open(txn, dbi_names[i], MDB_CREATE, &db->dbi[i]);
			if (r)
				return r;
		}
		put_le(vbuf, DB_SCHEMA_VERSION, 4);
		val = (MDB_val){ .mv_size = 4, .mv_data = vbuf };
		db->schema = DB_SCHEMA_VERSION;
		return mdb_put(txn, db->dbi[DBI_META], &key, &val, 0);
	}
	if (r)
		return r;
	r = mdb_get(txn, db->dbi[DBI_META], &key, &val);
	if (r == MDB_NOTFOUND || (r == 0 && val.mv_size != 4)) {
		log_debug("db: the index has no readable schema version");
		return -EPROTONOSUPPORT;
	}
	if (r)
		return r;
	db->schema = (uint32_t)get_le(val.mv_data, 4);
	if (db->schema != DB_SCHEMA_VERSION) {
		log_debug("db: the index has schema version %u, this build reads %u", db->schema,
			  DB_SCHEMA_VERSION);
		return -EPROTONOSUPPORT;
	}
	for (int i = 0; i < DBI_COUNT; i++) {
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
static int env_open(struct cache_db *db, const char *path, size_t mapsize)
{
	MDB_envinfo info;
	MDB_txn *txn;
	int dead = 0, r;

	r = mdb_env_create(&db->env);
	if (r == 0)
		r = mdb_env_set_maxdbs(db->env, DBI_COUNT);
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
	r = schema_setup(db, txn);
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
static int lock_open(struct cache_db *db, const char *dir)
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
	r = lock_open(db, path);
	if (r == 0)
		r = env_open(db, path, mapsize);
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

static int file_size(const char *path, uint64_t *ret)
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
static int compact_locked(struct cache_db *db, const char *dir, uint64_t *ret_before,
			  uint64_t *ret_after)
{
	char data[PATH_MAX], tmp[PATH_MAX];
	_cleanup_close_ int fd = -1, dfd = -1;
	int n, r;

	n = snprintf(data, sizeof(data), "%s/data.mdb", dir);
	if (n < 0 || (size_t)n >= sizeof(data) ||
	    snprintf(tmp, sizeof(tmp), "%s/data.mdb.compact", dir) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	r = file_size(data, ret_before);
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
	r = env_open(db, dir, db->mapsize);
	if (r < 0) {
		log_debug("db: cannot open the compacted index '%s': %s", data, strerror(-r));
		db->broken = true;
		return r;
	}
	return file_size(data, ret_after);
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
		r = db->broken ? -EIO : compact_locked(db, dir, &before, &after);
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

static int set_schema_fn(struct cache_db *db, MDB_txn *txn, void *ud)
{
	MDB_val key = { .mv_size = strlen(DB_SCHEMA_KEY), .mv_data = (void *)DB_SCHEMA_KEY };
	uint8_t vbuf[4];
	MDB_val val = { .mv_size = 4, .mv_data = vbuf };

	put_le(vbuf, *(const uint32_t *)ud, 4);
	return mdb_put(txn, db->dbi[DBI_META], &key, &val, 0);
}

int db_priv_set_schema_version(struct cache_db *db, uint32_t version)
{
	return db_txn(db, true, set_schema_fn, &version);
}

/* ---- blob records ---- */

const char *blob_state_str(enum blob_state s)
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

void db_codec_blob_rec_encode(const struct blob_rec *rec, uint8_t *p)
{
	p[0] = DB_REC_VERSION;
	put_le(p + 1, rec->size, 8);
	put_le(p + 9, rec->block_size, 4);
	p[13] = rec->hash;
	p[14] = rec->state;
	put_le(p + 15, rec->blocks_present, 8);
	put_le(p + 23, rec->last_access, 8);
	put_le(p + 31, rec->bad_count, 8);
}

int db_codec_blob_rec_decode(const void *data, size_t len, struct blob_rec *rec)
{
	const uint8_t *p = data;

	if (len != DB_BLOB_REC_LEN || p[0] != DB_REC_VERSION)
		return -EBADMSG;
	*rec = (struct blob_rec){
		.size = get_le(p + 1, 8),
		.block_size = (uint32_t)get_le(p + 9, 4),
		.hash = p[13],
		.state = p[14],
		.blocks_present = get_le(p + 15, 8),
		.last_access = get_le(p + 23, 8),
		.bad_count = get_le(p + 31, 8),
	};
	if (rec->block_size == 0 || rec->hash > BLOB_HASH_GITSHA1 || rec->state > BLOB_BAD ||
	    rec->blocks_present > block_count(rec->size, rec->block_size))
		return -EBADMSG;
	return 0;
}

static int blob_rec_decode(const MDB_val *v, struct blob_rec *rec)
{
	return db_codec_blob_rec_decode(v->mv_data, v->mv_size, rec);
}

int db_codec_bitmap_check(const struct blob_rec *rec, const void *data, size_t len)
{
	uint64_t n = block_count(rec->size, rec->block_size);

	/* Also what add_run() asserts before it writes: the bits and the count agree. */
	if (len != bitmap_bytes(n) || !bitmap_is_sane(data, n) ||
	    bitmap_count(data, n) != rec->blocks_present)
		return -EBADMSG;
	return 0;
}

static int blob_rec_put(struct cache_db *db, MDB_txn *txn, struct db_key *k,
			const struct blob_rec *rec)
{
	uint8_t buf[DB_BLOB_REC_LEN];
	MDB_val v = { .mv_size = sizeof(buf), .mv_data = buf };

	db_codec_blob_rec_encode(rec, buf);
	return mdb_put(txn, db->dbi[DBI_BLOBS], &k->val, &v, 0);
}

/* The record of cid; *k receives its key. -EINVAL (bad cid), MDB_NOTFOUND, -EBADMSG. */
static int blob_rec_get(struct cache_db *db, MDB_txn *txn, const char *cid, struct db_key *k,
			struct blob_rec *rec)
{
	MDB_val v;
	int r = key_cid(k, cid);

	if (r == 0)
		r = mdb_get(txn, db->dbi[DBI_BLOBS], &k->val, &v);
	return r ? r : blob_rec_decode(&v, rec);
}

/* The stored bitmap of a record, checked against the record's block count. The pointer is
 * LMDB's: valid until the next write in txn. */
static int bitmap_get(struct cache_db *db, MDB_txn *txn, struct db_key *k,
		      const struct blob_rec *rec, MDB_val *ret)
{
	int r = mdb_get(txn, db->dbi[DBI_BITMAPS], &k->val, ret);

	if (r == MDB_NOTFOUND)
		return -EBADMSG; /* a record without its bitmap */
	return r ? r : db_codec_bitmap_check(rec, ret->mv_data, ret->mv_size);
}

/* Stores map (nbytes) as the bitmap of k; with map NULL, stores zeros. */
static int bitmap_put(struct cache_db *db, MDB_txn *txn, struct db_key *k, const uint8_t *map,
		      size_t nbytes)
{
	MDB_val v = { .mv_size = nbytes, .mv_data = NULL };
	int r = mdb_put(txn, db->dbi[DBI_BITMAPS], &k->val, &v, MDB_RESERVE);

	if (r == 0 && nbytes) {
		if (map)
			memcpy(v.mv_data, map, nbytes);
		else
			memset(v.mv_data, 0, nbytes);
	}
	return r;
}

struct blob_get_ctx {
	const char *cid;
	struct blob_rec *rec;
	uint8_t **map;
};

static int blob_get_fn(struct cache_db *db, MDB_txn *txn, void *ud)
{
	struct blob_get_ctx *c = ud;
	struct db_key k;
	MDB_val v;
	int r;

	r = blob_rec_get(db, txn, c->cid, &k, c->rec);
	if (r || !c->map)
		return r;
	r = bitmap_get(db, txn, &k, c->rec, &v);
	if (r)
		return r;
	free(*c->map);
	/* At least one byte, so an empty blob's bitmap is not NULL. */
	*c->map = malloc(v.mv_size ? v.mv_size : 1);
	if (!*c->map)
		return -ENOMEM;
	memcpy(*c->map, v.mv_data, v.mv_size);
	return 0;
}

int db_blob_get(struct cache_db *db, const char *cid, struct blob_rec *ret, uint8_t **ret_bitmap)
{
	_cleanup_free_ uint8_t *map = NULL;
	struct blob_rec rec;
	struct blob_get_ctx c = { .cid = cid, .rec = &rec, .map = ret_bitmap ? &map : NULL };
	int r = db_txn(db, false, blob_get_fn, &c);

	if (r < 0)
		return r;
	*ret = rec;
	if (ret_bitmap)
		*ret_bitmap = TAKE_PTR(map);
	return 0;
}

struct blob_ensure_ctx {
	const char *cid;
	uint64_t size;
	uint32_t block_size;
	enum blob_hash hash;
	struct blob_rec *rec;
};

static int blob_check_same(const struct blob_ensure_ctx *c, const struct blob_rec *rec)
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

static int blob_ensure_read_fn(struct cache_db *db, MDB_txn *txn, void *ud)
{
	struct blob_ensure_ctx *c = ud;
	struct db_key k;
	int r = blob_rec_get(db, txn, c->cid, &k, c->rec);

	return r ? r : blob_check_same(c, c->rec);
}

static int blob_ensure_write_fn(struct cache_db *db, MDB_txn *txn, void *ud)
{
	struct blob_ensure_ctx *c = ud;
	uint64_t n = block_count(c->size, c->block_size);
	char hex[CID_MAX];
	struct db_key k;
	int r = blob_rec_get(db, txn, c->cid, &k, c->rec);

	if (r != MDB_NOTFOUND)
		return r ? r : blob_check_same(c, c->rec); /* another process was first */
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
	r = blob_rec_put(db, txn, &k, c->rec);
	return r ? r : bitmap_put(db, txn, &k, NULL, bitmap_bytes(n));
}

int db_blob_ensure(struct cache_db *db, const char *cid, uint64_t size, enum blob_hash hash,
		   uint32_t block_size, struct blob_rec *ret)
{
	struct blob_rec rec;
	struct blob_ensure_ctx c = {
		.cid = cid, .size = size, .block_size = block_size, .hash = hash, .rec = &rec
	};
	int r;

	if (block_size == 0 || (hash != BLOB_HASH_SHA256 && hash != BLOB_HASH_GITSHA1) ||
	    size > INT64_MAX)
		return -EINVAL;
	/* Mounts ensure every blob of a tree, and almost all exist: a read needs no writer lock. */
	r = db_txn(db, false, blob_ensure_read_fn, &c);
	if (r == -ENOENT)
		r = db_txn(db, true, blob_ensure_write_fn, &c);
	if (r < 0)
		return r;
	*ret = rec;
	return 0;
}

struct add_blocks_ctx {
	const struct db_block_run *runs;
	size_t n;
	bool *completed; /* n entries, or NULL */
	uint8_t *map; /* scratch copy of one bitmap */
	size_t map_cap;
};

/* Applies one run inside the batch's transaction; *ret_done tells whether it completed the
 * blob. */
static int add_run(struct cache_db *db, MDB_txn *txn, struct add_blocks_ctx *c,
		   const struct db_block_run *run, bool *ret_done)
{
	struct blob_rec rec;
	uint64_t n, added = 0;
	struct db_key k;
	MDB_val v;
	int r;

	*ret_done = false;
	r = blob_rec_get(db, txn, run->cid, &k, &rec);
	if (r)
		return r;
	n = block_count(rec.size, rec.block_size);
	if (run->first > n || run->count > n - run->first)
		return -EINVAL;
	if (run->count == 0 || run->gen != rec.bad_count)
		return 0;
	r = bitmap_get(db, txn, &k, &rec, &v);
	if (r)
		return r;
	/* A copy: the put below may move the record LMDB's pointer refers to. */
	if (v.mv_size > c->map_cap) {
		uint8_t *p = realloc(c->map, v.mv_size);

		if (!p)
			return -ENOMEM;
		c->map = p;
		c->map_cap = v.mv_size;
	}
	memcpy(c->map, v.mv_data, v.mv_size);
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
	r = bitmap_put(db, txn, &k, c->map, v.mv_size);
	return r ? r : blob_rec_put(db, txn, &k, &rec);
}

static int add_blocks_fn(struct cache_db *db, MDB_txn *txn, void *ud)
{
	struct add_blocks_ctx *c = ud;

	for (size_t i = 0; i < c->n; i++) {
		bool done;
		int r = add_run(db, txn, c, &c->runs[i], &done);

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
	struct add_blocks_ctx c = { .runs = runs, .n = n, .completed = ret_completed };
	int r;

	if (n == 0)
		return 0;
	r = db_txn(db, true, add_blocks_fn, &c);
	free(c.map);
	return r;
}

struct set_state_ctx {
	const char *cid;
	enum blob_state state;
	uint64_t when; /* for touch */
};

static int set_state_fn(struct cache_db *db, MDB_txn *txn, void *ud)
{
	struct set_state_ctx *c = ud;
	struct blob_rec rec;
	struct db_key k;
	uint64_t n;
	bool full;
	int r;

	r = blob_rec_get(db, txn, c->cid, &k, &rec);
	if (r)
		return r;
	n = block_count(rec.size, rec.block_size);
	full = rec.blocks_present == n;
	switch (c->state) {
	case BLOB_BAD:
		/* The blocks are dropped: they are refetched, then hashed again. */
		r = bitmap_put(db, txn, &k, NULL, bitmap_bytes(n));
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
	return blob_rec_put(db, txn, &k, &rec);
}

int db_blob_set_state(struct cache_db *db, const char *cid, enum blob_state state)
{
	struct set_state_ctx c = { .cid = cid, .state = state };

	if (state > BLOB_BAD)
		return -EINVAL;
	return db_txn(db, true, set_state_fn, &c);
}

static int touch_fn(struct cache_db *db, MDB_txn *txn, void *ud)
{
	struct set_state_ctx *c = ud;
	struct blob_rec rec;
	struct db_key k;
	int r;

	r = blob_rec_get(db, txn, c->cid, &k, &rec);
	if (r)
		return r;
	rec.last_access = c->when;
	return blob_rec_put(db, txn, &k, &rec);
}

int db_blob_touch(struct cache_db *db, const char *cid, uint64_t when)
{
	struct set_state_ctx c = { .cid = cid, .when = when };

	return db_txn(db, true, touch_fn, &c);
}

static int blob_delete_fn(struct cache_db *db, MDB_txn *txn, void *ud)
{
	struct db_key k;
	int r;

	r = key_cid(&k, ud);
	if (r == 0)
		r = mdb_del(txn, db->dbi[DBI_BLOBS], &k.val, NULL);
	if (r)
		return r;
	r = mdb_del(txn, db->dbi[DBI_BITMAPS], &k.val, NULL);
	return r == MDB_NOTFOUND ? 0 : r;
}

int db_blob_delete(struct cache_db *db, const char *cid)
{
	return db_txn(db, true, blob_delete_fn, (void *)cid);
}

/* A foreach callback's result: < 0 stops the walk and is returned, anything else goes on. */
static int stop_if_negative(int r)
{
	return r < 0 ? r : 0;
}

/* A walk of one database: one(ud, key, value) for each record in key order. The MDB_vals are
 * LMDB's memory, valid during the call only. */
struct walk_ctx {
	enum db_dbi dbi;
	int (*one)(void *ud, const MDB_val *k, const MDB_val *v); /* < 0 stops the walk */
	void *ud;
};

static int walk_fn(struct cache_db *db, MDB_txn *txn, void *ud)
{
	struct walk_ctx *w = ud;
	MDB_cursor *cur;
	MDB_val k, v;
	int r;

	r = mdb_cursor_open(txn, db->dbi[w->dbi], &cur);
	if (r)
		return r;
	for (r = mdb_cursor_get(cur, &k, &v, MDB_FIRST); r == 0;
	     r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		r = w->one(w->ud, &k, &v);
		if (r < 0)
			break;
	}
	mdb_cursor_close(cur);
	return r == MDB_NOTFOUND ? 0 : r;
}

/* Walks dbi in one read transaction: 0 at its end, one's first result < 0, or an LMDB error
 * as db_error() maps it. The foreach functions below are adapters: each decodes a record for
 * its caller's fn. */
static int db_walk(struct cache_db *db, enum db_dbi dbi,
		   int (*one)(void *ud, const MDB_val *k, const MDB_val *v), void *ud)
{
	struct walk_ctx w = { .dbi = dbi, .one = one, .ud = ud };

	return db_txn(db, false, walk_fn, &w);
}

struct blob_foreach_ctx {
	int (*fn)(void *ud, const char *cid, const struct blob_rec *rec);
	void *ud;
};

static int blob_one(void *ud, const MDB_val *k, const MDB_val *v)
{
	struct blob_foreach_ctx *c = ud;
	char cid[CID_MAX];
	struct blob_rec rec;
	int r;

	if (k->mv_size >= sizeof(cid))
		return -EBADMSG;
	memcpy(cid, k->mv_data, k->mv_size);
	cid[k->mv_size] = '\0';
	r = blob_rec_decode(v, &rec);
	return r ? r : stop_if_negative(c->fn(c->ud, cid, &rec));
}

int db_blob_foreach(struct cache_db *db,
		    int (*fn)(void *ud, const char *cid, const struct blob_rec *rec), void *ud)
{
	struct blob_foreach_ctx c = { .fn = fn, .ud = ud };

	return db_walk(db, DBI_BLOBS, blob_one, &c);
}

/* ---- opaque values under string keys: refs, trees, live ---- */

struct kv_ctx {
	enum db_dbi dbi;
	const char *a, *b; /* the key: a, or a \0 b */
	const void *data; /* put */
	size_t len;
	void *ret; /* get: malloc'd copy, NUL-terminated past ret_len */
	size_t ret_len;
};

static int kv_put_fn(struct cache_db *db, MDB_txn *txn, void *ud)
{
	struct kv_ctx *c = ud;
	MDB_val v = { .mv_size = c->len, .mv_data = (void *)c->data };
	struct db_key k;
	int r = key_make(db, &k, c->a, c->b);

	return r ? r : mdb_put(txn, db->dbi[c->dbi], &k.val, &v, 0);
}

static int kv_get_fn(struct cache_db *db, MDB_txn *txn, void *ud)
{
	struct kv_ctx *c = ud;
	struct db_key k;
	MDB_val v;
	int r = key_make(db, &k, c->a, c->b);

	if (r == 0)
		r = mdb_get(txn, db->dbi[c->dbi], &k.val, &v);
	if (r)
		return r;
	free(c->ret);
	c->ret = malloc(v.mv_size + 1);
	if (!c->ret)
		return -ENOMEM;
	memcpy(c->ret, v.mv_data, v.mv_size);
	((char *)c->ret)[v.mv_size] = '\0';
	c->ret_len = v.mv_size;
	return 0;
}

static int kv_del_fn(struct cache_db *db, MDB_txn *txn, void *ud)
{
	struct kv_ctx *c = ud;
	struct db_key k;
	int r = key_make(db, &k, c->a, c->b);

	return r ? r : mdb_del(txn, db->dbi[c->dbi], &k.val, NULL);
}

static int kv_get(struct cache_db *db, struct kv_ctx *c, void **ret, size_t *ret_len)
{
	int r = db_txn(db, false, kv_get_fn, c);

	if (r < 0) {
		free(c->ret);
		return r;
	}
	*ret = c->ret;
	if (ret_len)
		*ret_len = c->ret_len;
	return 0;
}

static bool is_commit(const char *s)
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
	if (!is_commit(commit))
		return -EBADMSG;
	memcpy(ret_commit, commit, 41);
	return 0;
}

int db_ref_put(struct cache_db *db, const char *repo_key, const char *revision, const char *commit)
{
	struct kv_ctx c = {
		.dbi = DBI_REFS, .a = repo_key, .b = revision, .data = commit, .len = 40
	};

	if (!is_commit(commit) || !*revision)
		return -EINVAL;
	return db_txn(db, true, kv_put_fn, &c);
}

int db_ref_get(struct cache_db *db, const char *repo_key, const char *revision, char *ret_commit)
{
	struct kv_ctx c = { .dbi = DBI_REFS, .a = repo_key, .b = revision };
	_cleanup_free_ char *v = NULL;
	size_t len;
	int r;

	if (!*revision)
		return -EINVAL;
	r = kv_get(db, &c, (void **)&v, &len);
	return r < 0 ? r : db_codec_ref_decode(v, len, ret_commit);
}

int db_tree_put(struct cache_db *db, const char *repo_key, const char *commit, const void *data,
		size_t len)
{
	struct kv_ctx c = {
		.dbi = DBI_TREES, .a = repo_key, .b = commit, .data = data, .len = len
	};

	if (!*commit)
		return -EINVAL;
	return db_txn(db, true, kv_put_fn, &c);
}

int db_tree_get(struct cache_db *db, const char *repo_key, const char *commit, char **ret,
		size_t *ret_len)
{
	struct kv_ctx c = { .dbi = DBI_TREES, .a = repo_key, .b = commit };

	if (!*commit)
		return -EINVAL;
	return kv_get(db, &c, (void **)ret, ret_len);
}

int db_ref_del(struct cache_db *db, const char *repo_key, const char *revision)
{
	struct kv_ctx c = { .dbi = DBI_REFS, .a = repo_key, .b = revision };

	if (!*revision)
		return -EINVAL;
	return db_txn(db, true, kv_del_fn, &c);
}

int db_tree_del(struct cache_db *db, const char *repo_key, const char *commit)
{
	struct kv_ctx c = { .dbi = DBI_TREES, .a = repo_key, .b = commit };

	if (!*commit)
		return -EINVAL;
	return db_txn(db, true, kv_del_fn, &c);
}

/* Splits a "a\0b" key into a and b (each NUL-terminated in buf). 1 when split, 0 for a key
 * stored under its hash (its parts are gone), -EBADMSG for a key of neither form. */
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

static int key_split(const MDB_val *k, char buf[DB_KEY_BUF + 1], const char **ret_a,
		     const char **ret_b)
{
	return db_codec_key_split(k->mv_data, k->mv_size, buf, ret_a, ret_b);
}

struct ref_foreach_ctx {
	int (*fn)(void *ud, const char *repo_key, const char *revision, const char *commit);
	void *ud;
};

/* One ref: its key split, its commit checked and handed to the caller. A key stored under
 * its hash is skipped. */
static int ref_one(void *ud, const MDB_val *k, const MDB_val *v)
{
	struct ref_foreach_ctx *c = ud;
	char key[DB_KEY_BUF + 1], commit[41];
	const char *a = NULL, *b = NULL;
	int r = key_split(k, key, &a, &b);

	if (r <= 0)
		return r;
	r = db_codec_ref_decode(v->mv_data, v->mv_size, commit);
	return r < 0 ? r : stop_if_negative(c->fn(c->ud, a, b, commit));
}

int db_ref_foreach(struct cache_db *db,
		   int (*fn)(void *ud, const char *repo_key, const char *revision,
			     const char *commit),
		   void *ud)
{
	struct ref_foreach_ctx c = { .fn = fn, .ud = ud };

	return db_walk(db, DBI_REFS, ref_one, &c);
}

struct tree_foreach_ctx {
	int (*fn)(void *ud, const char *repo_key, const char *commit, const void *data, size_t len);
	void *ud;
};

/* One tree: its key split, its data handed to the caller as LMDB holds it. A key stored under
 * its hash is skipped. */
static int tree_one(void *ud, const MDB_val *k, const MDB_val *v)
{
	struct tree_foreach_ctx *c = ud;
	char key[DB_KEY_BUF + 1];
	const char *a = NULL, *b = NULL;
	int r = key_split(k, key, &a, &b);

	if (r <= 0)
		return r;
	return stop_if_negative(c->fn(c->ud, a, b, v->mv_data, v->mv_size));
}

int db_tree_foreach(struct cache_db *db,
		    int (*fn)(void *ud, const char *repo_key, const char *commit, const void *data,
			      size_t len),
		    void *ud)
{
	struct tree_foreach_ctx c = { .fn = fn, .ud = ud };

	return db_walk(db, DBI_TREES, tree_one, &c);
}

int db_live_put(struct cache_db *db, const char *mountpoint, const void *data, size_t len)
{
	struct kv_ctx c = { .dbi = DBI_LIVE, .a = mountpoint, .data = data, .len = len };

	return db_txn(db, true, kv_put_fn, &c);
}

int db_live_get(struct cache_db *db, const char *mountpoint, void **ret, size_t *ret_len)
{
	struct kv_ctx c = { .dbi = DBI_LIVE, .a = mountpoint };

	return kv_get(db, &c, ret, ret_len);
}

int db_live_del(struct cache_db *db, const char *mountpoint)
{
	struct kv_ctx c = { .dbi = DBI_LIVE, .a = mountpoint };

	return db_txn(db, true, kv_del_fn, &c);
}

/* ---- mount records ---- */

/* Layout: version, then mountpoint, repo_key, revision, commit, endpoint as (u16 length,
 * bytes), then pid i32, started u64, flags u32 (DB_MOUNT_REC_MAX). */

static size_t put_str(uint8_t *p, const char *s)
{
	size_t n = strlen(s);

	put_le(p, n, 2);
	memcpy(p + 2, s, n);
	return n + 2;
}

/* Reads one string into dst (size bytes with its NUL). 0, or -EBADMSG if it does not fit. */
static int get_str(const uint8_t **p, const uint8_t *end, char *dst, size_t size)
{
	size_t n;

	if (end - *p < 2)
		return -EBADMSG;
	n = (size_t)get_le(*p, 2);
	if ((size_t)(end - *p - 2) < n || n >= size || memchr(*p + 2, '\0', n))
		return -EBADMSG;
	memcpy(dst, *p + 2, n);
	dst[n] = '\0';
	*p += 2 + n;
	return 0;
}

/* True when s is NUL-terminated within size bytes. */
static bool str_fits(const char *s, size_t size)
{
	return strnlen(s, size) < size;
}

static bool mount_strings_ok(const struct db_mount *m)
{
	return m->mountpoint[0] && str_fits(m->mountpoint, sizeof(m->mountpoint)) &&
	       str_fits(m->repo_key, sizeof(m->repo_key)) &&
	       str_fits(m->revision, sizeof(m->revision)) &&
	       str_fits(m->commit, sizeof(m->commit)) && str_fits(m->endpoint, sizeof(m->endpoint));
}

size_t db_codec_mount_encode(const struct db_mount *m, uint8_t *p)
{
	uint8_t *start = p;

	*p++ = DB_REC_VERSION;
	p += put_str(p, m->mountpoint);
	p += put_str(p, m->repo_key);
	p += put_str(p, m->revision);
	p += put_str(p, m->commit);
	p += put_str(p, m->endpoint);
	put_le(p, (uint32_t)m->pid, 4);
	put_le(p + 4, m->started, 8);
	put_le(p + 12, m->flags, 4);
	return (size_t)(p + 16 - start);
}

int db_codec_mount_decode(const void *data, size_t len, struct db_mount *m)
{
	const uint8_t *p = data, *end = p + len;

	memset(m, 0, sizeof(*m));
	if (len < 1 || *p++ != DB_REC_VERSION)
		return -EBADMSG;
	if (get_str(&p, end, m->mountpoint, sizeof(m->mountpoint)) < 0 ||
	    get_str(&p, end, m->repo_key, sizeof(m->repo_key)) < 0 ||
	    get_str(&p, end, m->revision, sizeof(m->revision)) < 0 ||
	    get_str(&p, end, m->commit, sizeof(m->commit)) < 0 ||
	    get_str(&p, end, m->endpoint, sizeof(m->endpoint)) < 0 || end - p != 16 ||
	    !m->mountpoint[0])
		return -EBADMSG;
	m->pid = (int32_t)(uint32_t)get_le(p, 4);
	m->started = get_le(p + 4, 8);
	m->flags = (uint32_t)get_le(p + 12, 4);
	return 0;
}

static int mount_decode(const MDB_val *v, struct db_mount *m)
{
	return db_codec_mount_decode(v->mv_data, v->mv_size, m);
}

struct mount_ctx {
	const struct db_mount *in;
	const char *mountpoint;
	struct db_mount *out;
	int (*fn)(void *ud, const struct db_mount *m);
	void *ud;
};

static int mount_put_fn(struct cache_db *db, MDB_txn *txn, void *ud)
{
	struct mount_ctx *c = ud;
	uint8_t buf[DB_MOUNT_REC_MAX];
	MDB_val v = { .mv_size = db_codec_mount_encode(c->in, buf), .mv_data = buf };
	struct db_key k;
	int r = key_make(db, &k, c->in->mountpoint, NULL);

	return r ? r : mdb_put(txn, db->dbi[DBI_MOUNTS], &k.val, &v, 0);
}

static int mount_get_fn(struct cache_db *db, MDB_txn *txn, void *ud)
{
	struct mount_ctx *c = ud;
	struct db_key k;
	MDB_val v;
	int r = key_make(db, &k, c->mountpoint, NULL);

	if (r == 0)
		r = mdb_get(txn, db->dbi[DBI_MOUNTS], &k.val, &v);
	return r ? r : mount_decode(&v, c->out);
}

static int mount_del_fn(struct cache_db *db, MDB_txn *txn, void *ud)
{
	struct mount_ctx *c = ud;
	struct db_key k;
	int r = key_make(db, &k, c->mountpoint, NULL);

	return r ? r : mdb_del(txn, db->dbi[DBI_MOUNTS], &k.val, NULL);
}

static int mount_one(void *ud, const MDB_val *k, const MDB_val *v)
{
	struct mount_ctx *c = ud;
	struct db_mount m;
	int r;

	(void)k;
	r = mount_decode(v, &m);
	return r ? r : stop_if_negative(c->fn(c->ud, &m));
}

int db_mount_put(struct cache_db *db, const struct db_mount *m)
{
	struct mount_ctx c = { .in = m };

	if (!mount_strings_ok(m))
		return -EINVAL;
	return db_txn(db, true, mount_put_fn, &c);
}

int db_mount_del(struct cache_db *db, const char *mountpoint)
{
	struct mount_ctx c = { .mountpoint = mountpoint };

	return db_txn(db, true, mount_del_fn, &c);
}

int db_mount_get(struct cache_db *db, const char *mountpoint, struct db_mount *ret)
{
	struct mount_ctx c = { .mountpoint = mountpoint, .out = ret };

	return db_txn(db, false, mount_get_fn, &c);
}

int db_mount_foreach(struct cache_db *db, int (*fn)(void *ud, const struct db_mount *m), void *ud)
{
	struct mount_ctx c = { .fn = fn, .ud = ud };

	return db_walk(db, DBI_MOUNTS, mount_one, &c);
}
