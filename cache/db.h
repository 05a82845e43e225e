/* db.h: the cache index (cache/db*.c; of them only db.c includes lmdb.h). One LMDB
 * environment in <cache_dir>/index holds, under a schema version:
 *   blob records   cid -> size, block size, hash kind, state, present-block count, access time
 *   blob bitmaps   cid -> presence bitmap (bit i set: block i is in the data file)
 *   refs           "<repo_key>\0<revision>" -> 40-hex commit
 *   trees          "<repo_key>\0<commit>" -> the tree record (cache/tree.h gives its bytes
 *                  their meaning; db_tree_* store them as they come)
 *   mounts         mountpoint -> struct db_mount (active mounts, for `hffs status`)
 *   live           mountpoint -> opaque bytes a running mount publishes (rates, errors)
 * Several processes and threads share one environment (LMDB's lock file); every call is its
 * own short transaction unless it says otherwise; read transactions use MDB_NOTLS.
 * Crash safety: callers write and sync block data before db_blob_add_blocks() commits its bits,
 * so a bit never claims data the file does not hold. repo_key is e.g. "models/org/name". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/blob.h"
#include "cache/verify.h"

#define DB_SCHEMA_VERSION 1

struct cache_db;

enum blob_state {
	BLOB_PARTIAL, /* some blocks missing */
	BLOB_COMPLETE, /* every block present, not hashed yet */
	BLOB_VERIFIED, /* hashed and equal to its cid: never rehashed */
	BLOB_BAD, /* hashed and different: blocks dropped, to be refetched */
};

const char *db_blob_state_str(enum blob_state s); /* "partial", "complete", "verified", "bad" */

struct blob_rec {
	uint64_t size;
	uint32_t block_size;
	uint8_t hash; /* enum blob_hash */
	uint8_t state; /* enum blob_state */
	uint64_t blocks_present; /* == bitmap_count(bitmap, block_count(size, block_size)) */
	uint64_t last_access; /* realtime usec of the last read or fetch */
	uint64_t bad_count; /* times verification failed: the blob's generation */
};

/* One run of blocks whose data has been written (and synced) to the blob file. gen is the
 * blob's generation (its bad_count) when the blocks were fetched: blocks fetched before the
 * blob was last found bad (by this process or another) must never be claimed. */
struct db_block_run {
	const char *cid;
	uint64_t first;
	uint64_t count;
	uint64_t gen;
};

#define DB_MOUNT_STR 1024
struct db_mount {
	char mountpoint[DB_MOUNT_STR]; /* absolute, the key */
	char repo_key[256]; /* "models/org/name" */
	char revision[256]; /* as the user gave it */
	char commit[41];
	char endpoint[DB_MOUNT_STR];
	int32_t pid; /* the serving daemon */
	uint64_t started; /* realtime usec */
	uint32_t flags; /* DB_MOUNT_OFFLINE, ... */
};
#define DB_MOUNT_OFFLINE 1U /* mounted without network (ref from the cache) */
#define DB_MOUNT_FLUSHES 2U /* its daemon commits and publishes at once on SIGUSR1 */
#define DB_MOUNT_PULL 4U /* an `hffs pull`, not a mount: "pull:<destination> (pid N)" */

/* Opens (creating it and the directory if needed) the index of cache_dir. Clears reader
 * slots left by dead processes (mdb_reader_check). Grows the map when it fills.
 * -EPROTONOSUPPORT: the index has another schema version (it is not touched);
 * -EACCES, -ENOSPC, -EIO as LMDB reports. Logs (debug) what failed. Blocks while another
 * process compacts the index (db_compact()).
 * Opening an index this process has open already returns the same handle with one more
 * reference (LMDB allows one environment per process); each db_open() needs its db_close().
 * A handle does not survive fork(): the child opens its own. */
int db_open(const char *cache_dir, struct cache_db **ret);
/* Takes NULL. Returns NULL. */
struct cache_db *db_close(struct cache_db *db);

/* Rewrites the index without its free pages (LMDB never shrinks its file) and reopens db on
 * the new file; ret_before/ret_after (optional) receive the file's sizes. Only when db is the
 * one handle of this process and no other process has the index open: -EBUSY otherwise (a
 * mount, `hffs status`, ...), nothing changed. Every process holds a shared lock on
 * <cache_dir>/index/hffs.lock while the index is open, so db_open() elsewhere waits until
 * the compaction ends. No other thread may use db meanwhile. A failure after the new file is
 * in place (it cannot be opened) leaves db unusable (-EIO afterwards); the file is whole. */
int db_compact(struct cache_db *db, uint64_t *ret_before, uint64_t *ret_after);
/* The schema version stored in the index, for messages. */
uint32_t db_schema_version(struct cache_db *db);

/* Blob record of cid. ret_bitmap (optional) receives a malloc'd copy of the bitmap
 * (bitmap_bytes(block_count) bytes, at least 1 so never NULL; the caller frees).
 * -ENOENT when unknown, -EINVAL bad cid, -EBADMSG for a record this build cannot read. */
int db_blob_get(struct cache_db *db, const char *cid, struct blob_rec *ret, uint8_t **ret_bitmap);
/* Creates the record of cid (state partial, no blocks) unless it exists; either way fills ret.
 * An empty blob (size 0) has nothing to fetch: it is created verified if cid is the hash of
 * no bytes, else bad. An existing record of another size or block size: -EBADMSG (a cid
 * names one content). -EINVAL: bad cid, block size 0, unknown hash. */
int db_blob_ensure(struct cache_db *db, const char *cid, uint64_t size, enum blob_hash hash,
		   uint32_t block_size, struct blob_rec *ret);
/* Sets the bits of every run in one write transaction; a blob whose last block arrives moves
 * from partial (or bad, being refetched) to complete; a bad blob that gets a block becomes
 * partial. Bits already set are not counted twice. A run whose gen is not the record's
 * bad_count is skipped (its blocks predate a failed hash; nothing is set, it completes
 * nothing). Runs of unknown cids are -ENOENT for the
 * whole batch (nothing written), a run past the blob's last block -EINVAL likewise.
 * ret_completed (optional, n entries, filled on success) says which runs completed their
 * blob. */
int db_blob_add_blocks(struct cache_db *db, const struct db_block_run *runs, size_t n,
		       bool *ret_completed);
/* Sets the state (e.g. verified after a matching hash). BLOB_BAD also clears every bit and
 * bumps bad_count. -ENOENT; -EINVAL when the state contradicts the bits (complete or verified
 * with blocks missing, partial with none missing). */
int db_blob_set_state(struct cache_db *db, const char *cid, enum blob_state state);
/* Records an access time. -ENOENT. */
int db_blob_touch(struct cache_db *db, const char *cid, uint64_t when);
/* Drops the record and bitmap of cid (the caller removes the data file). -ENOENT. */
int db_blob_delete(struct cache_db *db, const char *cid);
/* Calls fn for every blob record, in cid order, inside one read transaction (fn must not call
 * back into db). fn returns < 0 to stop; that value is returned. */
int db_blob_foreach(struct cache_db *db,
		    int (*fn)(void *ud, const char *cid, const struct blob_rec *rec), void *ud);

/* Keys (repo_key + revision, repo_key + commit, mountpoint) of any length: those beyond
 * LMDB's 511-byte key limit are stored under their sha256 (and so sort before the others). */

/* commit: 40 lowercase hex digits, else -EINVAL. */
int db_ref_put(struct cache_db *db, const char *repo_key, const char *revision, const char *commit);
/* -ENOENT when the revision was never resolved. ret_commit: 41 bytes. */
int db_ref_get(struct cache_db *db, const char *repo_key, const char *revision, char *ret_commit);

int db_tree_put(struct cache_db *db, const char *repo_key, const char *commit, const void *data,
		size_t len);
/* *ret is malloc'd (the caller frees), NUL-terminated past *ret_len. -ENOENT. */
int db_tree_get(struct cache_db *db, const char *repo_key, const char *commit, char **ret,
		size_t *ret_len);

/* Drop one ref, or one tree. -ENOENT when absent, -EINVAL for an empty revision or commit. */
int db_ref_del(struct cache_db *db, const char *repo_key, const char *revision);
int db_tree_del(struct cache_db *db, const char *repo_key, const char *commit);
/* Call fn for every ref, or every tree, in key order (repo_key, then revision or commit),
 * inside one read transaction: fn must not call db, and a tree's data (LMDB's memory, not
 * NUL-terminated) is valid only during its call. Entries stored under a hashed key (beyond
 * LMDB's key limit) cannot give their names back and are skipped. fn returns < 0 to stop;
 * that value is returned. -EBADMSG for a record this build cannot read. */
int db_ref_foreach(struct cache_db *db,
		   int (*fn)(void *ud, const char *repo_key, const char *revision,
			     const char *commit),
		   void *ud);
int db_tree_foreach(struct cache_db *db,
		    int (*fn)(void *ud, const char *repo_key, const char *commit, const void *data,
			      size_t len),
		    void *ud);

/* -EINVAL: empty mountpoint, or a string field without its NUL. */
int db_mount_put(struct cache_db *db, const struct db_mount *m);
int db_mount_del(struct cache_db *db, const char *mountpoint); /* -ENOENT */
int db_mount_get(struct cache_db *db, const char *mountpoint, struct db_mount *ret);
/* Calls fn for each mount record (a copy) in mountpoint order; fn may not call db. */
int db_mount_foreach(struct cache_db *db, int (*fn)(void *ud, const struct db_mount *m), void *ud);

/* Opaque live figures of a running mount (written about once a second). db_live_get's *ret
 * is malloc'd and NUL-terminated past *ret_len; get and del return -ENOENT when absent. */
int db_live_put(struct cache_db *db, const char *mountpoint, const void *data, size_t len);
int db_live_get(struct cache_db *db, const char *mountpoint, void **ret, size_t *ret_len);
int db_live_del(struct cache_db *db, const char *mountpoint);
