/* cache_gc.h: `hffs cache gc`. Single thread; blocking (LMDB, unlink, the eviction lock). */
#pragma once

#include <stdbool.h>

#include "cli/cache_view.h"

/* Collects the cache of v (loaded by cache_view_load()): orphans, then least recently used
 * data until the data files fit max_size and the file system keeps min_free (the flags'
 * values, NULL for the defaults), then the index's free pages; reports on stdout, as text or
 * JSON. Takes the eviction lock itself and loads v again under it. Returns the exit status:
 * 0 (also when only live mounts stand in the way of the budget), 1 on an error (logged), 2
 * for a bad size (said why). */
int cli_cache_gc(struct cache_view *v, const char *max_size, const char *min_free, bool json);
