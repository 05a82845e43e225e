/* prefetch.h: background completion. After the mount is up, one thread fetches every wanted
 * file to completion at background priority, in the order loaders need them: small files
 * first (config, tokenizer, *.json), then the header of every safetensors shard (loaders parse
 * every header before any tensor), then the shards in the order the index json lists them,
 * then everything else. Demand reads go first in the engine; background work resumes after.
 * Failed ranges are retried in later passes with growing pauses. Before each pass the bytes
 * still missing are compared with the room the cache's limits leave (logged, and in the
 * stats); when the budget has no room for a range, completion pauses and says why. It knows nothing of FUSE. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/budget.h"
#include "fs/inode.h"
#include "fs/sched.h"
#include "fs/tensors.h"

struct prefetch;

struct prefetch_opts {
	const char *const *
		include; /* fnmatch patterns (as the official client's allow_patterns); none: all */
	size_t ninclude;
	const char *const *exclude; /* ignore_patterns */
	size_t nexclude;
	unsigned max_inflight; /* background fetches in flight at once; 0 -> 16 */
	uint64_t chunk; /* bytes per background fetch; 0 -> 16 MiB */
	struct budget *budget; /* room is asked before each range; NULL: no limits */
	struct tensors *tensors; /* borrowed, outlives the thread; NULL: none */
};

enum prefetch_phase {
	PREFETCH_SMALL, /* small files */
	PREFETCH_HEADERS, /* safetensors headers */
	PREFETCH_SHARDS, /* shards in index order */
	PREFETCH_REST, /* everything else */
	PREFETCH_WAITING, /* some ranges failed: pausing before the next pass */
	PREFETCH_DONE, /* every wanted file complete */
	PREFETCH_PAUSED, /* the cache has no room within its limits (paused says why) */
};

struct prefetch_stats {
	enum prefetch_phase phase;
	unsigned files_wanted;
	unsigned files_done;
	uint64_t bytes_wanted;
	unsigned passes;
	unsigned retry_in_s; /* PREFETCH_WAITING: seconds until the next pass */
	uint64_t space_needed; /* bytes still to fetch when the pass began */
	uint64_t space_room; /* of which the cache could take within its limits then */
	char paused[320]; /* PREFETCH_PAUSED: why, in words */
};

/* True when path is wanted: it matches an include pattern (or there is none) and no exclude
 * pattern. A pattern ending in '/' matches everything below that folder. */
bool prefetch_wants(const struct prefetch_opts *o, const char *path);

/* Starts the thread. s and t are borrowed and must outlive it. -ENOMEM, -EAGAIN. */
int prefetch_start(struct sched *s, const struct inode_table *t, const struct prefetch_opts *o,
		   struct prefetch **ret);
/* Stops and joins the thread (within about a second). Takes NULL; returns NULL. */
struct prefetch *prefetch_stop(struct prefetch *p);
void prefetch_get_stats(struct prefetch *p, struct prefetch_stats *ret);
const char *prefetch_phase_str(enum prefetch_phase ph);
