/* evict.h: keeping the cache within its budget. Chooses the least recently used blobs that no
 * live mount pins until the data files fit max_size and the file system keeps min_free free,
 * and removes them (index record first, then data file); finds orphans both ways. Works over
 * a cache handle (cache/cache.h: its index and blob files) only: which blobs the live mounts
 * use is the caller's to say (cache/pins.h, from the live mount records and their trees).
 *
 * Protocol: whoever removes blobs holds evict_lock() exclusive from computing its pins until
 * its last removal; a mount holds it shared from registering its blobs (db_blob_ensure) until
 * its mount record is written, so a blob of a mount that is starting (not pinned yet) is never
 * taken from under it.
 *
 * A daemon staying within budget during background completion calls, every so often:
 *     fd = evict_lock(cache_dir, true); <pins: every live mount's cids, its own included>;
 *     evict_to_budget(cache, &budget, &pins, &plan, &res); close(fd);
 * and pauses completion while plan.met is false (its own blobs are what fills the budget).
 * Blocking (stat, statvfs, unlink); any thread; no state of its own. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/blob.h"

struct cache;

/* No max_size. */
#define EVICT_NO_LIMIT UINT64_MAX
/* The default free-space floor: 5% of the file system, at most 5 GiB. */
#define EVICT_MIN_FREE_PCT_DEFAULT 5U
#define EVICT_MIN_FREE_CAP_DEFAULT ((uint64_t)5 << 30)

struct evict_limits {
	uint64_t max_size; /* bytes the data files may occupy on disk; EVICT_NO_LIMIT */
	uint64_t min_free; /* bytes to keep available on the cache's file system; 0: none */
};

/* A set of content ids that must not be removed. Invariant: v[0..n) are valid cids; when
 * sorted, they are in strcmp order without duplicates. The caller locks. */
struct evict_pins {
	char (*v)[CID_MAX];
	size_t n, cap;
	bool sorted;
};

/* Adds cid (a copy). -EINVAL for an invalid cid, -ENOMEM. */
int evict_pins_add(struct evict_pins *p, const char *cid);
/* Whether cid is in the set (sorting it first if needed, hence not const). NULL p: none. */
bool evict_pins_has(struct evict_pins *p, const char *cid);
/* Frees the set; it is empty afterwards. */
void evict_pins_done(struct evict_pins *p);

/* The file system holding the cache: total size and bytes available to us (statvfs f_bavail).
 * -errno of statvfs. */
int evict_fs_space(const char *cache_dir, uint64_t *ret_total, uint64_t *ret_avail);
/* The default floor for a file system of total bytes: EVICT_MIN_FREE_PCT_DEFAULT percent of
 * it, at most EVICT_MIN_FREE_CAP_DEFAULT. */
uint64_t evict_default_min_free(uint64_t fs_total);
/* Bytes to free so that usage <= max_size and avail >= min_free, where freeing a byte of blob
 * data lowers usage and raises avail by one each: the larger of the two shortfalls. Pure. */
uint64_t evict_need(const struct evict_limits *b, uint64_t usage, uint64_t avail);

struct evict_victim {
	char cid[CID_MAX];
	uint64_t disk; /* bytes its data file occupied when planned */
	uint64_t last_access; /* realtime usec, from its record */
};

/* What a budget asks of the cache now. v is ordered as it is to be removed: least recently
 * used first (ties by cid), and holds just enough blobs to meet the budget, or every unpinned
 * blob with data when that is not enough. */
struct evict_plan {
	struct evict_victim *v; /* malloc'd, n entries (NULL when n == 0) */
	size_t n;
	uint64_t usage; /* disk bytes of the data files of every blob record */
	uint64_t blobs; /* blob records */
	uint64_t fs_total, avail; /* the file system's size and bytes available */
	uint64_t need; /* evict_need() of the budget */
	uint64_t freed; /* sum of v[].disk */
	uint64_t pinned; /* disk bytes of pinned blobs, never chosen */
	size_t npinned; /* pinned blobs with data on disk */
	bool met; /* freed >= need: removing v meets the budget */
};

/* Plans: one walk of the blob records (db_blob_foreach), a stat of each data file and a
 * statvfs of the cache. pins may be NULL. Fills ret (evict_plan_done() frees it, also after a
 * failure). -ENOMEM, -EBADMSG (an unreadable record), -errno of statvfs. */
int evict_plan(struct cache *cache, const struct evict_limits *b, struct evict_pins *pins,
	       struct evict_plan *ret);
void evict_plan_done(struct evict_plan *p);

struct evict_result {
	size_t removed; /* blobs whose record or data file this call removed */
	uint64_t freed; /* disk bytes their data files held when removed */
};

/* Removes one blob: its record and bitmap first, then its data file, so a crash between the
 * two leaves an orphan file (evict_orphans() removes it), never a bit that claims data that
 * is gone. *ret_freed (optional) receives the bytes the file held. -ENOENT when there was
 * neither record nor file, -EINVAL bad cid, else the -errno of the step that failed. */
int evict_remove(struct cache *cache, const char *cid, uint64_t *ret_freed);
/* Removes plan's victims in order with evict_remove(), stopping at the first failure other
 * than -ENOENT (a victim someone else removed meanwhile), which it returns; ret (optional)
 * counts what was done either way. */
int evict_run(struct cache *cache, const struct evict_plan *plan, struct evict_result *ret);
/* evict_plan() then evict_run(): the one call for a cache that must fit b. ret_plan
 * (optional; else freed here) describes the cache before; ret_res what was removed. */
int evict_to_budget(struct cache *cache, const struct evict_limits *b, struct evict_pins *pins,
		    struct evict_plan *ret_plan, struct evict_result *ret_res);

struct evict_orphans {
	size_t files; /* data files with no record, removed */
	uint64_t file_bytes; /* disk bytes they held */
	size_t records; /* records claiming blocks whose data file is gone, dropped */
};

/* Removes data files under <cache_dir>/blobs named by a cid that has no record, and drops
 * the records that claim blocks (blocks_present > 0) while their data file is missing.
 * Pinned cids are left alone both ways; files whose names are not cids, and records of blobs
 * with no blocks and no file yet, are not orphans. Counts into ret even on failure.
 * -ENOMEM, -EBADMSG, or the -errno of the first removal that failed. */
int evict_orphans(struct cache *cache, struct evict_pins *pins, struct evict_orphans *ret);

/* Takes the eviction lock of cache_dir (the flock of <cache_dir>/evict.lock, created if
 * missing): exclusive or shared, waiting for it. Returns the fd whose close() releases it
 * (O_CLOEXEC), or -errno (-ENOENT when cache_dir does not exist). */
int evict_lock(const char *cache_dir, bool exclusive);
