/* cache_rm.h: `hffs cache rm REPO[@REV]`. Single thread; blocking (LMDB, unlink). */
#pragma once

#include <stdbool.h>

#include "cli/cache_target.h"
#include "cli/cache_view.h"

/* Removes t from the index of v, then the data no remaining revision of any repo uses, and
 * reports on stdout, as text or JSON. The caller holds evict_lock() exclusive from loading v
 * (cache_view_load()) until this returns: the pins and the removals must see one state.
 * Returns the exit status: 0, or 1 (said why) when t is not in the cache, a live mount uses
 * what would go, the index could not be changed, or memory ran out. */
int cli_cache_rm(struct cache_view *v, const struct cache_target *t, bool json);
