/* live.h: the live figures of a running mount (rate, ETA, connections, retries, stalls, the
 * last error in words, background completion's phase, bytes by origin, what reads met, the
 * cache's usage). A publisher thread samples the engine, the scheduler, the read counters and
 * background completion once a second and writes them to the cache index (db_live_put),
 * where `hffs status` reads them, daemon or not; with a metrics file, it also rewrites that
 * every LIVE_METRICS_S seconds in the Prometheus text format (prom.h). The record is "key=value"
 * lines, so readers ignore keys they do not know and old readers survive new keys.
 * `hffs status` asks for the truth now with LIVE_FLUSH_SIGNAL sent to the daemon: the
 * publisher then commits every landed block and verdict to the index (sched_flush) and
 * publishes at once; status waits for a record newer than its request. The daemon blocks the
 * signal in every thread (live_block_signal() before the first thread), so only the publisher
 * takes it, with sigtimedwait(). */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/db.h"
#include "fetch/xfer.h"
#include "fs/budget.h"
#include "fs/inode.h"
#include "fs/prefetch.h"
#include "fs/readstats.h"
#include "fs/sched.h"

#define LIVE_STALL_S 30
#define LIVE_RETRY_S 10
#define LIVE_FLUSH_SIGNAL SIGUSR1
#define LIVE_METRICS_S 5

/* Blocks LIVE_FLUSH_SIGNAL in the calling thread, and so in every thread it creates after.
 * Call once in the daemon before any thread exists. */
void live_block_signal(void);

struct live {
	uint64_t updated; /* realtime usec of the sample */
	uint64_t rate; /* bytes/s over the last 5 s */
	uint64_t bytes_fetched; /* since the mount began */
	uint64_t bytes_total; /* of the mount's distinct blobs */
	uint64_t bytes_cached;
	int64_t eta_s; /* seconds to complete what is wanted; -1: unknown */
	unsigned active; /* transfers on the wire */
	unsigned queued; /* waiting in the engine */
	uint64_t retries, stalls, failures, verify_failures;
	unsigned files_wanted, files_done;
	char phase[32]; /* background completion's phase, or "off" */
	bool stalled; /* work pending and no byte for LIVE_STALL_S */
	char last_error[256]; /* words; "" when none */
	uint64_t last_error_at; /* realtime usec */
	char paused[320]; /* why background completion is paused for space; "" if not */
	char retrying[256]; /* a failure being retried in the last LIVE_RETRY_S; "" if none */
	uint64_t cache_max_size; /* --cache-max-size; 0: none */
	uint64_t min_free; /* --min-free in bytes */
	uint64_t disk_free; /* estimated bytes free on the cache's file system */
	uint64_t space_needed; /* bytes completion still had to fetch when its pass began */
	uint64_t space_room; /* of which the cache's limits left room for then */
	uint64_t evicted_blobs, evicted_bytes; /* by this mount's budget */
	uint64_t cache_used; /* bytes of the cache's data files, as last measured */
	bool cache_used_known; /* cache_used was measured (else it is absent) */
	uint64_t bytes_hub, bytes_cdn; /* bytes_fetched by origin (xfer_source) */
	struct readstats_figs reads; /* what FUSE reads met since the mount began */
	char streaming[320]; /* why reads were streamed without caching in the last
			      * LIVE_RETRY_S (the cache had no room); "" if none */
	uint64_t streamed_reads, streamed_bytes; /* reads answered so since the mount */
	unsigned io_timeout_s; /* --io-timeout: a read waits this long without data (0: none) */
	unsigned xet_files; /* files found on Xet and read through it (--xet auto|on) */
	unsigned xet_resolve_files; /* LFS files probed and read through /resolve instead */
	uint64_t xet_bytes; /* file bytes that came from xorbs */
	uint64_t xet_plans; /* reconstructions asked */
};

/* Encodes into buf (4 KiB holds every field); returns the length. */
size_t live_encode(const struct live *l, char *buf, size_t len);
/* Decodes what live_encode() wrote (unknown keys ignored). -EBADMSG when no key is known. */
int live_decode(const char *buf, size_t len, struct live *ret);

struct live_pub;

/* What a publisher samples; pointers are borrowed and must outlive it, but the strings and
 * the record, which are copied. */
struct live_opts {
	struct cache_db *db; /* where the figures go */
	const struct db_mount *rec; /* the mount's record (its mountpoint is the key) */
	const char *cache_dir;
	struct xfer *x;
	struct sched *s;
	struct prefetch *p; /* NULL: none */
	struct budget *b; /* NULL: none; else the cache's usage is walked every 30 s */
	struct readstats *reads; /* NULL: none */
	const struct inode_table *t; /* the mount's files, for the metrics' coverage */
	/* NULL: none. Else rewritten atomically (0644) every LIVE_METRICS_S with the mount's
	 * metrics (prom.h), and removed by live_stop(). */
	const char *metrics_file;
};

/* Starts publishing. -ENOMEM, -EAGAIN (thread). */
int live_start(const struct live_opts *o, struct live_pub **ret);
/* Stops and joins; removes the record and the metrics file. Takes NULL; returns NULL. */
struct live_pub *live_stop(struct live_pub *lp);
