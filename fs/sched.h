/* sched.h: turns reads into block fetches, and answers a read only with the file's bytes at
 * the pinned commit, or -EIO. For every blob of the mounted tree it keeps the presence bitmap
 * in memory (the one authority while the mount runs; see sched_priv.h), parks reads whose
 * blocks are missing, submits one fetch per missing run (a block in flight is never asked
 * twice: later readers join it), writes arriving bytes into the blob file, and answers parked
 * reads as their blocks land. A committer thread syncs the data files and then commits the
 * new bits to the index in batches, so a bit never claims data the file lacks; a failed sync
 * commits nothing and the blocks are fetched again. A verifier thread hashes each blob as its
 * prefix lands; the hash decides the blob at its last byte.
 * What a reader is promised (docs/design.md, "Correct bytes or an error"):
 * - a read that needs a blob's last block, any read of a small (git) file, and with
 *   verify_strict any read at all, is answered only once the whole blob hashed right;
 * - a failed hash drops the blob's blocks, answers its parked reads -EIO, has the kernel's
 *   page cache of its inodes invalidated (on_drop), and fails with -EIO every later read of a
 *   handle opened before (sched_open() gave it the generation that failed);
 * - after a second failed hash in one mount the blob is given up: reads fail with -EIO at
 *   once and nothing is fetched for it until the next mount.
 * LFS blobs of files on Xet are fetched through fs/xet_read.c when opts->xet is not off: the
 * same ranges, sinks and checks, other sources of bytes.
 * It joins cache/ and fetch/; it knows nothing of FUSE (ops.c replies). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cache/cache.h"
#include "cache/db.h"
#include "fetch/hub.h"
#include "fetch/xfer.h"
#include "fs/budget.h"
#include "fs/inode.h"
#include "fs/xet_read.h"

struct sched;

struct sched_opts {
	struct cache *cache; /* borrowed for the life of the sched: its blobs and index */
	uint32_t block_size; /* 0 -> CACHE_BLOCK_SIZE_DEFAULT */
	const struct hub_config *cfg; /* borrowed for the life of the sched */
	const struct hub_repo *repo;
	const char *commit;
	struct budget *budget; /* room for every fetch is asked of it; NULL: no limits */
	bool verify_strict; /* no byte of a blob is served before the whole blob verified */
	/* --xet: how LFS blobs are fetched (XET_MODE_OFF: by /resolve; else fs/xet_read.h,
	 * with cfg, repo and commit). */
	enum xet_mode xet;
	/* Verifier thread, after a blob's blocks were dropped (bad hash): for each inode with
	 * that content, so the kernel's page cache of it is invalidated. May block; NULL: none. */
	void (*on_drop)(void *ud, uint64_t ino);
	void *drop_ud;
	const struct sched_hooks *hooks; /* tests only; NULL in the product */
	/* Data files kept open when unused, at most; 0: blob_fds_limit(256) (RLIMIT_NOFILE less
	 * what the rest of the daemon may open). */
	unsigned max_open_files;
};

/* Hooks that let unit tests reach the scheduler's races deterministically. */
struct sched_hooks {
	int (*sync)(void *ud, int fd); /* instead of blob_sync() (fault injection) */
	/* Verifier thread, after a bad hash dropped the blob's blocks in memory and answered its
	 * reads, before the index hears of it (the window a read may race). */
	void (*after_drop)(void *ud, const char *cid);
	void *ud;
};

/* Called once when a parked read can be answered (err 0: every byte is in the file behind fd)
 * or cannot (-EIO, the reason is logged; -ENOSPC when the cache has no room for its blocks:
 * the read may be streamed with sched_stream()).
 * net: the read waited for bytes from the network (false: every byte it needed was in the
 * cache when it was parked, and it waited only for the file's hash). fd is open for the
 * length of the call only: reply from it before returning. Runs on the engine, committer,
 * verifier or a Xet worker thread; must not block beyond a local read. */
typedef void (*sched_ready_fn)(void *ud, int err, int fd, bool net);

/* Registers every file blob of t in the cache's index (creating records) and loads their
 * bitmaps; data files are opened (and created) when used, at most max_open_files at once
 * beyond those in use. x and t are borrowed and must outlive the sched. Starts the committer
 * thread. -ENOMEM, -ENOSPC/-EACCES (cache dir), -EBADMSG (a cid known with another size). */
int sched_new(const struct sched_opts *opts, struct xfer *x, const struct inode_table *t,
	      struct sched **ret);
/* Stops the threads that start fetches on the engine besides the callers' (the Xet workers):
 * call before the engine is freed. Fetches they still held fail with -ECANCELED. */
void sched_stop_fetching(struct sched *s);
/* Cancels parked reads (-EIO), waits for in-flight fetches to end (xfer must be freed first
 * or be cancelling), commits what landed, stops the committer. Takes NULL, returns NULL. */
struct sched *sched_free(struct sched *s);

/* An open of file inode f: waits while the page cache of a blob just dropped is being
 * invalidated (never on the network), then gives the generation the handle reads at. */
uint64_t sched_open(struct sched *s, const struct inode *f);

/* Asks for bytes [offset, offset+len) of file inode f (clipped to its size by the caller) for
 * a handle opened at generation gen. Returns 1 with *ret_fd set when they can be served now
 * (ready is not called; *ret_fd is -1 for no bytes, else an fd of the data file that stays
 * open until sched_read_done()), 0 when the read is parked (ready is called later, exactly
 * once), or -errno: -EIO when the handle was served a generation that failed, the blob was
 * given up or its data file cannot be opened, -ENOMEM. An offline miss parks and fails
 * through ready. Any thread; never blocks on the network. */
int sched_read(struct sched *s, const struct inode *f, uint64_t offset, uint64_t len, uint64_t gen,
	       sched_ready_fn ready, void *ud, int *ret_fd);

/* Called once when a streamed read ends: err 0 and the read's len bytes in buf (valid only
 * during the call), or -EIO (the reason is logged). Engine thread, or the caller's. */
typedef void (*sched_stream_fn)(void *ud, int err, const void *buf, size_t len);

/* For a read that sched_read() answered -ENOSPC (the cache has no room for its blocks):
 * fetches bytes [offset, offset+len) of f at demand priority into memory, without caching
 * them, and calls done. Promised as for cached bytes: a read that needs the whole blob
 * verified (sched_read()'s rule: a small file, an LFS file's last block, verify_strict)
 * streams the whole blob through its hash, keeping only the read's bytes, and is answered
 * only if it matches; other reads of an LFS file are served as they arrive, as cached
 * partial reads are, before any hash. At most 64 MiB of buffers at once. Returns 0 (done
 * is called exactly once, maybe before this returns), or -EIO (given up, too many streams
 * in memory), -ENOMEM: done is not called. Any thread; never blocks on the network. */
int sched_stream(struct sched *s, const struct inode *f, uint64_t offset, uint64_t len,
		 sched_stream_fn done, void *ud);
/* After the reply sched_read() allowed (it returned 1): releases its fd (-1: nothing). */
void sched_read_done(struct sched *s, const struct inode *f, int fd);

/* Submits fetches at prio for the blocks of [offset, offset+len) of f that are neither
 * present nor in flight, in runs of at most max_fetch bytes (rounded up to a block). Returns
 * the number of fetches submitted (0: nothing missing there), or -errno. Any thread; never
 * blocks on the network. Read-ahead and background completion are built on it. */
int sched_prefetch(struct sched *s, const struct inode *f, uint64_t offset, uint64_t len,
		   uint64_t max_fetch, enum xfer_prio prio);

/* Blocks until fewer than max background fetches are in flight (returns 1), until timeout_ms
 * passed (0), or until the sched stops (-ECANCELED). */
int sched_wait_background(struct sched *s, unsigned max, unsigned timeout_ms);

/* True when bytes [offset, offset+len) (len > 0) of f are all in the cache; false when some
 * are not, or the range is not in the file. Any thread; never blocks on the network. */
bool sched_is_present(struct sched *s, const struct inode *f, uint64_t offset, uint64_t len);

/* Copies bytes [offset, offset+len) of f into buf when they are all present: 0, or -EAGAIN
 * when some are not, -EIO on a read error. Any thread; local disk only. */
int sched_pread(struct sched *s, const struct inode *f, void *buf, size_t len, uint64_t offset);

/* Microseconds since a read last had to wait for the network (UINT64_MAX: never). Background
 * completion yields bandwidth while it is small: on a capped link TCP shares bytes per
 * connection, so priority alone does not give a reader the link. */
uint64_t sched_demand_age_usec(struct sched *s);

/* Bytes of the blocks of [offset, offset+len) of f that are neither present nor in flight
 * (whole blocks: what fetching that range would write). */
uint64_t sched_missing(struct sched *s, const struct inode *f, uint64_t offset, uint64_t len);

/* The file a read last had to wait for, and where that read ended: true when it waited less
 * than max_age_usec ago. Background completion follows that reader. */
bool sched_hot(struct sched *s, uint64_t max_age_usec, uint64_t *ret_ino, uint64_t *ret_off);

/* True when nothing is left to fetch for f in this mount: every block present (an empty file
 * always is), or its blob was given up after failing twice. */
bool sched_is_complete(struct sched *s, const struct inode *f);

/* What this mount knows of f's bytes now (an empty file: complete... verified). state is
 * "missing", "partial", "complete", "verified" or "bad", the words of `hffs status`. A fetch
 * of f's blob that failed after the engine's retries counts in fetch_failures, the last one's
 * reason and words kept; a hash that failed counts in hash_failures. */
struct sched_file_info {
	uint64_t bytes_cached;
	const char *state;
	unsigned fetch_failures;
	unsigned hash_failures;
	enum fetch_reason fetch_reason; /* of the last failed fetch; FETCH_OK: none */
	char fetch_error[200]; /* its words ("" none) */
};
void sched_file_info(struct sched *s, const struct inode *f, struct sched_file_info *ret);

struct sched_stats {
	uint64_t bytes_total; /* over distinct blobs */
	uint64_t bytes_present;
	unsigned blobs;
	unsigned blobs_complete; /* every block present (verified or not) */
	unsigned blobs_verified;
	unsigned background; /* background fetches in flight */
	uint64_t verify_failures; /* blobs that hashed wrong since the mount */
	unsigned blobs_given_up; /* failed twice: not fetched again in this mount */
	char last_error[256]; /* the last failed hash or streamed read, in words ("" none) */
	uint64_t last_error_at; /* realtime usec of it */
	unsigned streams_active; /* reads being streamed without caching */
	uint64_t streamed_reads, streamed_bytes; /* answered so, since the mount */
	uint64_t stream_age_usec; /* since a stream last began (UINT64_MAX: never) */
	char stream_why[320]; /* why the cache had no room then ("" never) */
	struct xet_read_stats xet; /* zero with --xet off */
};
void sched_get_stats(struct sched *s, struct sched_stats *ret);

/* Commits every landed block now (used at unmount and by tests). */
void sched_flush(struct sched *s);
