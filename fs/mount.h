/* mount.h: one mount from start to end: open the cache, pin the snapshot, build the inodes,
 * start the transfer engine, the budget and the scheduler, record the mount for `hffs status`
 * (holding the eviction lock shared from registering its blobs until then), serve until
 * unmounted, and take everything down in order (engine, scheduler, record, index). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/xet_read.h"

struct mount_opts {
	const char *repo; /* "org/name", "datasets/org/name", ... */
	const char *revision; /* branch, tag, sha, refs/pr/N */
	const char *endpoint; /* NULL: HF_ENDPOINT or the default */
	const char *cache_dir; /* absolute */
	const char *mountpoint; /* absolute */
	unsigned connections; /* 0: the engine's default */
	uint64_t max_rate; /* bytes/s, 0: none */
	unsigned stall_timeout_s; /* 0: the engine's default */
	unsigned io_timeout_s; /* a read waits this long without a byte, then EIO; 0: the
				* engine's retry count decides */
	uint64_t range_align; /* ranges on multiples of it (a caching mirror's slice); 0: exact */
	unsigned page_limit; /* tree page size asked of the Hub; 0: the Hub's */
	uint64_t cache_max_size; /* bytes the cache's data may occupy; EVICT_NO_LIMIT: none */
	uint64_t min_free; /* bytes to keep free on the cache's file system */
	bool prefetch; /* background completion of every wanted file */
	bool verify_strict; /* no byte of a file is served before the whole file verified */
	enum xet_mode xet; /* how files on Xet are fetched (default off) */
	const char *const *include; /* fnmatch patterns of the files to complete (none: all) */
	size_t ninclude;
	const char *const *exclude; /* patterns of files not to complete */
	size_t nexclude;
	bool debug; /* FUSE request tracing and debug logs */
	bool allow_other; /* FUSE allow_other: users other than the mounter may read */
	bool hf_cache; /* show the commit in the Hugging Face hub cache (fs/hf_bridge.h) */
	const char *hf_root; /* that cache's root; NULL: hf_layout_root() */
	int ready_fd; /* >= 0: a byte 0 is written there once the mount answers */
	const char *log_path; /* after ready, stdout/stderr go there (NULL: unchanged) */
	const char *metrics_file; /* absolute; the mount's metrics, rewritten (NULL: none) */
};

/* Runs the mount to its end. 0 after a clean unmount; -errno when it could not start, after
 * a line saying why was logged (on stderr, before readiness). */
int mount_run(const struct mount_opts *o);
