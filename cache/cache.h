/* cache.h: a cache directory as one handle: its path and its open index, so that callers
 * pass one value where they passed (db, cache_dir) pairs, and paths under the directory are
 * composed in one place (cache/blob.c); and the mounts the cache serves. The handle may give
 * out its index for db_* calls. Blocking (LMDB, /proc); any thread; a handle does not
 * survive fork() (its index does not). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cache/db.h"

struct cache;

/* Opens the cache at dir (copied), creating the directory and its index if needed: errors as
 * db_open() (-EPROTONOSUPPORT for another version's index), -ENOMEM. */
int cache_open(const char *dir, struct cache **ret);
/* Closes the index and frees c. Takes NULL; returns NULL. */
struct cache *cache_close(struct cache *c);
/* The directory, as given to cache_open(); valid while c is. */
const char *cache_dir(const struct cache *c);
/* The open index; valid while c is (the caller does not close it). */
struct cache_db *cache_index(const struct cache *c);
/* blob_path() of cid in c: "<dir>/blobs/<cid[0..1]>/<cid>". -EINVAL bad cid, -ENAMETOOLONG. */
int cache_blob_path(const struct cache *c, const char *cid, char *buf, size_t len);

/* The mount records of db whose daemon is an alive hffs process, in mountpoint order, into
 * *ret (malloc'd, *ret_n entries; NULL when none; the caller frees). With drop_stale, the
 * records (and live figures) of mounts whose daemon is gone are deleted on the way.
 * -ENOMEM or db's -errno (then *ret is NULL). */
int cache_live_mounts(struct cache_db *db, bool drop_stale, struct db_mount **ret, size_t *ret_n);
