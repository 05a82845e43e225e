/* pins.h: the blobs the live mounts of a cache use, which eviction must leave alone. A mount
 * record counts while its daemon is an alive hffs process (cache_live_mounts()); its blobs
 * are those of its tree (the cache's record of its commit, cache/tree.h). Callers hold
 * evict_lock() exclusive from computing the pins until their last removal (cache/evict.h).
 * Blocking (LMDB, /proc); any thread. */
#pragma once

#include <stddef.h>

#include "cache/db.h"
#include "cache/evict.h"
#include "cache/tree.h"

/* Adds the cid of every file of tree that has bytes to cache (empty files have no data file).
 * -ENOMEM. */
int pins_add_tree(struct evict_pins *pins, const struct tree *tree);

/* Adds the blobs of every live mount of db. A live mount whose tree is missing or unreadable
 * makes it impossible to tell what it uses: -EBADMSG, with a sentence saying which in why
 * (when given), and the caller must remove nothing. Else 0, -ENOMEM, or db's -errno. */
int pins_live_mounts(struct cache_db *db, struct evict_pins *pins, char *why, size_t whylen);
