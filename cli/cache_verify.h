/* cache_verify.h: `hffs cache verify [REPO[@REV]]`. Single thread; blocking (reads every
 * complete data file; LMDB; the eviction lock). */
#pragma once

#include <stdbool.h>

#include "cli/cache_target.h"
#include "cli/cache_view.h"

/* Rehashes the complete blobs of v (loaded by cache_view_load()), or only those of t's trees
 * (t NULL: all); marks the bad ones no live mount uses bad and frees their blocks, taking the
 * eviction lock for that and loading v again under it; reports on stdout, as text or JSON.
 * Returns the exit status: 0, or 1 when a blob was bad or unreadable, t is not in the cache,
 * or on an error (logged). */
int cli_cache_verify(struct cache_view *v, const struct cache_target *t, bool json);
