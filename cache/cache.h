/* cache.h: a cache directory as a whole: the mounts it serves. Blocking (LMDB, /proc); any
 * thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cache/db.h"

/* The mount records of db whose daemon is an alive hffs process, in mountpoint order, into
 * *ret (malloc'd, *ret_n entries; NULL when none; the caller frees). With drop_stale, the
 * records (and live figures) of mounts whose daemon is gone are deleted on the way.
 * -ENOMEM or db's -errno (then *ret is NULL). */
int cache_live_mounts(struct cache_db *db, bool drop_stale, struct db_mount **ret, size_t *ret_n);
