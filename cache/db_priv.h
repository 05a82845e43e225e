/* db_priv.h: cache/db internals that tests need and product code must not call. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "cache/db.h"

/* db_open() with an initial map of mapsize bytes instead of the default (256 MiB), so a test
 * can make the map fill and grow with little data. Same errors as db_open(). */
int db_open_with_mapsize(const char *cache_dir, size_t mapsize, struct cache_db **ret);

/* Overwrites the schema version stored in the index, to stand for an index written by another
 * release of hffs (the only way to produce one without a second LMDB user in the tree).
 * The handle must be closed afterwards: its own version check is already done. */
int db_priv_set_schema_version(struct cache_db *db, uint32_t version);

/* The current map size in bytes (it grows when the map fills). */
size_t db_priv_mapsize(struct cache_db *db);
