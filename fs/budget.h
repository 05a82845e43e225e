/* budget.h: a mount keeping the shared cache within --cache-max-size and --min-free. Every
 * fetch asks for room for its bytes before it is sent; the answer comes from an estimate
 * (usage and free space measured, plus what this mount was granted since), and only when the
 * estimate says short does it measure again and evict least recently used blobs that no live
 * mount uses (cache/evict under evict_lock, pins from fs/pins). When even that leaves no
 * room, the fetch is refused with a sentence saying why: a demand read fails with ENOSPC and
 * background completion pauses until room appears (a mount ends, the user frees space).
 * The estimate is conservative: granted bytes count as written until their fetch settles.
 * It joins cache/ only; any thread; eviction blocks the calling thread (disk, flock). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"
#include "cache/db.h"
#include "cache/evict.h"
#include "fs/inode.h"

struct budget_opts {
	struct evict_limits limits; /* max_size (EVICT_NO_LIMIT: none), min_free (bytes) */
	const struct inode_table *own; /* this mount's files: pinned even before its record */
};

struct budget;

/* Measures the cache once. cache and opts' pointers are borrowed for the budget's life.
 * -ENOMEM, or the -errno of statvfs on the cache dir. */
int budget_new(const struct budget_opts *o, struct cache *cache, struct budget **ret);
/* Takes NULL; returns NULL. */
struct budget *budget_free(struct budget *b);

/* Asks for room for n more bytes of blob data. 0: granted, counted until budget_settle();
 * -ENOSPC: the cache cannot take them within its limits even after evicting every blob no
 * live mount uses (budget_why() says so; a refusal is remembered for a second so a burst of
 * reads does not rescan the cache each). NULL b: always granted. */
int budget_admit(struct budget *b, uint64_t n);
/* A fetch granted `granted` bytes ended having written `written` (<= granted). */
void budget_settle(struct budget *b, uint64_t granted, uint64_t written);
/* The disk said no (a write failed with ENOSPC) although the estimate had room: measure
 * again at the next request. NULL b: nothing. */
void budget_disk_full(struct budget *b);
/* Whether n bytes would be granted now (evicting if needed), without taking them: background
 * completion asks before each range. NULL b: true. */
bool budget_room(struct budget *b, uint64_t n);
/* The last refusal in words ("" while nothing was refused since the last grant), into buf. */
void budget_why(struct budget *b, char *buf, size_t len);

/* Measures the bytes the cache's data files occupy now (a walk of the blob records and a
 * stat of each data file, under the budget's slow lock), which a budget without
 * --cache-max-size never needs for itself: for the figures of `hffs status` and metrics.
 * Blocking (disk); any thread but one that holds the budget. -errno of the walk. */
int budget_measure_usage(struct budget *b);

struct budget_stats {
	struct evict_limits limits;
	uint64_t usage; /* estimated bytes of the cache's data files (0: not measured) */
	uint64_t used; /* of which written (not merely granted); valid when used_known */
	bool used_known; /* usage was walked at least once (always with a max_size) */
	uint64_t avail; /* estimated bytes free on the cache's file system */
	uint64_t evicted_blobs; /* by this mount */
	uint64_t evicted_bytes;
};
void budget_get_stats(struct budget *b, struct budget_stats *ret);

/* How much of n more bytes the cache can take within its limits now, counting what eviction
 * of unpinned blobs would free (nothing is evicted). For the report before completion. */
uint64_t budget_capacity(struct budget *b, uint64_t n);
