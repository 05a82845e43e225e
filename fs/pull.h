/* pull.h: a download without a mount (`hffs pull`): the mount's own engine (snapshot,
 * transfer engine, budget, scheduler with its verification, background completion) run over
 * the same cache until every wanted file is verified there or has failed for good. Each file
 * is handed to the caller once verified, to be placed where it belongs; nothing here writes
 * outside the cache. No FUSE: a pull needs no /dev/fuse.
 * While it runs, a record in the index ("pull:<destination> (pid N)", DB_MOUNT_PULL) pins its
 * blobs against eviction as a mount's record does, and shows it in `hffs status` with live
 * figures (rate, ETA, retries); a pull killed leaves a stale record, dropped by the next
 * reader of the records. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch/hub.h"
#include "fetch/reason.h"

enum pull_state {
	PULL_QUEUED, /* nothing of it in the cache yet */
	PULL_FETCHING, /* some bytes in the cache */
	PULL_VERIFYING, /* every byte in the cache; its hash is being checked */
	PULL_PLACING, /* verified in the cache; the caller's place() has not succeeded yet */
	PULL_DONE, /* verified and placed */
	PULL_FAILED, /* given up: reason and error say why */
};

/* One wanted file. The pull owns it; the callbacks may read it while they run. */
struct pull_file {
	const char *path; /* in the repo */
	const char *cid; /* LFS sha256, else the git blob oid: the official clients' etag */
	uint64_t size;
	bool is_lfs;
	uint64_t done; /* bytes of it in the cache */
	uint64_t rate; /* bytes/s it gained lately */
	enum pull_state state;
	unsigned errors; /* fetches that failed after retries, plus hashes that failed */
	enum fetch_reason reason; /* PULL_FAILED: why (FETCH_BAD_HASH: corrupt; FETCH_IO:
				   * placing it failed); else that of the last error */
	char error[320]; /* the last error in words ("" none) */
};

/* The pinned snapshot, given to begin() before any file is fetched. */
struct pull_info {
	const struct hub_repo *repo;
	const char *revision; /* as asked */
	const char *commit; /* 40 hex */
	bool offline; /* HF_HUB_OFFLINE: only what the cache holds is placed */
};

struct pull_progress {
	const struct pull_file *files;
	size_t nfiles;
	size_t ndone, nfailed;
	uint64_t bytes_total, bytes_done; /* over the wanted files */
	uint64_t fetched; /* bytes received from the network by this pull */
	uint64_t rate; /* bytes/s received lately */
	char retrying[256]; /* a failure the engine is retrying now, in words ("" none) */
};

struct pull_opts {
	const char *repo; /* "org/name", "datasets/org/name", ... */
	const char *revision; /* NULL: main */
	const char *endpoint; /* NULL: HF_ENDPOINT or the default */
	const char *cache_dir; /* absolute; created by the caller */
	const char *destination; /* names the pull's record (`hffs status`) */
	unsigned connections; /* 0: the engine's default */
	uint64_t max_rate; /* bytes/s, 0: none */
	uint64_t range_align; /* ranges on multiples of it (a caching mirror's slice); 0: exact */
	uint64_t min_free; /* bytes to keep free on the cache's file system */
	const char *const *include; /* fnmatch patterns as `hffs mount --include`; none: all */
	size_t ninclude;
	const char *const *exclude;
	size_t nexclude;
	unsigned tick_ms; /* progress() period; 0 -> 200 */
	/* Caller's thread, once, after the snapshot is pinned and before anything is fetched.
	 * A non-zero return ends the pull at once (pull_run() returns it). */
	int (*begin)(void *ud, const struct pull_info *i, const struct pull_progress *p);
	/* Caller's thread, once per file whose content is verified in the cache: fd is its
	 * data file, read-only (-1 for an empty file), valid during the call. Returns 0 when the
	 * file is at its final place, else -errno after writing the words into f->error. */
	int (*place)(void *ud, const struct pull_info *i, struct pull_file *f, int fd);
	/* Caller's thread, every tick and once at the end (final). */
	void (*progress)(void *ud, const struct pull_progress *p, bool final);
	void *ud;
	const volatile int *stop; /* non-zero: stop soon, as after a failure (a signal's flag) */
};

/* Runs the pull to its end. Returns 0 when it ran (every file DONE or FAILED: the caller reads
 * the final progress), -ECANCELED when *stop ended it, the begin() value, or -errno when it
 * could not start: the snapshot's (-ENOENT repo or revision, -EACCES token or gated, ... with
 * err filled), -EPROTONOSUPPORT (another version's index), -ENOMEM; err says it in words. */
int pull_run(const struct pull_opts *o, struct hub_error *err);
