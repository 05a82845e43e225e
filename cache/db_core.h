/* db_core.h: what the record files of the index (cache/db_blob.c, cache/db_ref.c) use of its
 * LMDB core (cache/db.c): transactions, get/put/del on one database, walks, keys. No LMDB
 * type crosses it: values are (data, len) pairs and every error is already a -errno (db.c
 * maps MDB_ codes in one place). Not for use outside cache/db*.c. Any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cache/db.h"
#include "cache/db_codec.h"

enum db_dbi {
	DB_DBI_META, /* "schema_version" -> u32 */
	DB_DBI_BLOBS, /* cid -> blob record */
	DB_DBI_BITMAPS, /* cid -> bitmap_bytes(block_count) bytes */
	DB_DBI_REFS, /* repo_key \0 revision -> 40 hex */
	DB_DBI_TREES, /* repo_key \0 commit -> tree record (cache/tree.h) */
	DB_DBI_MOUNTS, /* mountpoint -> mount record */
	DB_DBI_LIVE, /* mountpoint -> opaque */
	DB_DBI_COUNT,
};

/* One transaction, valid inside the db_txn_run() body it is given to. */
struct db_txn;

/* Bytes in the index: LMDB's memory, valid until the next write in the transaction or its
 * end (copy before keeping). */
struct db_val {
	void *data;
	size_t len;
};

/* A key as stored: the bytes themselves, or for a key beyond LMDB's limit its hash. */
struct db_key {
	struct db_val val;
	char buf[DB_KEY_BUF];
};

/* A transaction body: returns 0 or a -errno. It may run more than once (after the map
 * grows), so it must only write through ud what it overwrites each time. */
typedef int (*db_txn_fn)(struct cache_db *db, struct db_txn *txn, void *ud);

/* Runs fn in one transaction (read-only unless write), committing a write when fn returns 0;
 * grows the map and runs fn again when it fills, adopts a map another process grew. fn's
 * -errno, or the commit's; -ENOSPC when the map cannot grow. */
int db_txn_run(struct cache_db *db, bool write, db_txn_fn fn, void *ud);

/* The value of k in dbi. -ENOENT when absent. */
int db_get(struct db_txn *txn, enum db_dbi dbi, const struct db_key *k, struct db_val *ret);
/* Stores len bytes of data as the value of k (write transactions). */
int db_put(struct db_txn *txn, enum db_dbi dbi, const struct db_key *k, const void *data,
	   size_t len);
/* Stores a value of len bytes for k and returns where to write them (*ret, valid until the
 * next write in txn). */
int db_reserve(struct db_txn *txn, enum db_dbi dbi, const struct db_key *k, size_t len, void **ret);
/* Drops k. -ENOENT when absent. */
int db_del(struct db_txn *txn, enum db_dbi dbi, const struct db_key *k);

/* Walks dbi in one read transaction: one(ud, key, value) for each record in key order, the
 * values LMDB's memory (valid during the call only). 0 at its end, one's first result < 0,
 * or the index's -errno. one must not call db. */
int db_walk(struct cache_db *db, enum db_dbi dbi,
	    int (*one)(void *ud, const struct db_val *k, const struct db_val *v), void *ud);

/* The key a, or "a\0b" when b is given; stored under its hash beyond LMDB's key limit.
 * -EINVAL for an empty a, -ENOMEM. */
int db_key_make(struct cache_db *db, struct db_key *k, const char *a, const char *b);
/* The key of a content id. -EINVAL for an invalid cid. */
int db_key_cid(struct db_key *k, const char *cid);
