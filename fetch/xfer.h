/* xfer.h: the transfer engine. One engine thread owns a libcurl multi handle and every easy
 * handle; any thread submits ranged reads of a blob and is called back on the engine thread.
 * It resolves a blob's URL once (HUB_PROTOCOL.md 4): follows a relative 307 with the token,
 * keeps an absolute 302 target (the signed CDN URL) per blob and uses it, without the token,
 * for every later range until it nears expiry or answers 400/401/403, then resolves again.
 * It retries transient failures with backoff and jitter (Retry-After and RateLimit honoured),
 * detects stalls, short bodies and a 200 where 206 was asked (of which only the range's bytes
 * are taken), and streams bytes to the sink (never buffers a whole range). Demand requests go
 * before read-ahead before background, and while demand requests are live (a reader waits)
 * background work keeps two transfers on the wire: the rest, unless nearly done, are cut and
 * resume after the reader.
 * It knows nothing of FUSE or the cache. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch/hub.h"
#include "fetch/reason.h"

struct xfer;

enum xfer_prio {
	XFER_PRIO_DEMAND, /* a read() is waiting */
	XFER_PRIO_READAHEAD, /* a sequential reader will want it soon */
	XFER_PRIO_BACKGROUND, /* completion of the whole repo */
	XFER_PRIO_COUNT,
};

struct xfer_opts {
	unsigned connections; /* parallel transfers (and pool size); 0 -> 16. From 4 up,
				     * max(1, connections / 8) are kept for demand, which may also
				     * cut a lower-priority transfer (it resumes later) */
	uint64_t max_rate; /* bytes/s over all transfers; 0: unlimited */
	uint64_t yield_min_left; /* while a reader waits, background transfers with more bytes
				  * left than this are cut (all but two); 0 -> 4 MiB */
	unsigned connect_timeout_s; /* 0 -> 10 */
	unsigned stall_timeout_s; /* no byte for this long: abort and retry; 0 -> 30 */
	unsigned max_retries; /* retries of a demand/read-ahead request; an attempt that
				     * brings bytes resets the count (4 x (max_retries + 1) failed
				     * attempts at most); background retries for an hour; 0 -> 5 */
	unsigned backoff_max_s; /* cap of one backoff sleep; 0 -> 8 (background: 7.5 times
				     * that, 60). A server's Retry-After/RateLimit wait is kept as
				     * asked, up to 60 s (background: an hour), else the request fails */
	unsigned io_timeout_s; /* a demand or read-ahead request that gets no byte for this long,
				* through failures, retries and silent attempts, fails (a reader
				* then gets EIO); bytes start the wait over. 0: max_retries
				* decides instead (about 28 s with the defaults) */
	bool offline; /* fail every request at once with FETCH_OFFLINE */
	uint64_t range_align; /* > 0: every range asked of a server starts and ends on a
			       * multiple of it (or at EOF), so a caching mirror's slices line up;
			       * the bytes beyond the request's are dropped. 0: exact ranges */
};

struct xfer_sink {
	/* Engine thread. The range's bytes in order, at their absolute offset in the blob; a
	 * retry resumes after the last byte written, so no byte is written twice. Returns 0, or
	 * -errno (e.g. -ENOSPC) to fail the request with that errno: done() follows. Must not
	 * block on anything but the local disk. */
	int (*write)(void *ud, uint64_t offset, const void *data, size_t len);
	/* Engine thread, exactly once per submitted request. err 0: every byte of the range was
	 * passed to write(). Else -errno with its reason and a line of words (e.g. "HTTP 503
	 * from 127.0.0.2:4711 after 6 attempts"); written says how many bytes write() took. */
	void (*done)(void *ud, int err, enum fetch_reason reason, const char *why,
		     uint64_t written);
	void *ud;
};

#define XFER_SIZE_UNKNOWN UINT64_MAX

struct xfer_req {
	const char *url; /* resolve URL of the blob (copied) */
	const char *blob_key; /* content id: key of the signed-URL cache (copied) */
	uint64_t blob_size; /* the blob's size; a Content-Range total that differs fails it;
			     * XFER_SIZE_UNKNOWN for a xorb, whose size no plan states */
	uint64_t offset; /* first byte */
	uint64_t len; /* > 0; offset + len <= blob_size */
	enum xfer_prio prio;
	struct xfer_sink sink;
};

/* Where a transfer's bytes came from, as the engine tells origins apart. */
enum xfer_source {
	XFER_SOURCE_HUB, /* the endpoint's origin (the Hub, or the mirror HF_ENDPOINT names) */
	XFER_SOURCE_CDN, /* any other origin a redirect led to (the Hub's CDN) */
	XFER_SOURCE_COUNT,
};

/* The label of a source in metrics: "hub", "cdn". */
const char *xfer_source_str(enum xfer_source s);

struct xfer_stats {
	uint64_t bytes; /* body bytes received since start */
	uint64_t bytes_from[XFER_SOURCE_COUNT]; /* the same bytes by origin (they sum to it) */
	uint64_t requests; /* ranges completed */
	uint64_t resolves; /* resolve-URL exchanges */
	uint64_t retries;
	uint64_t stalls;
	uint64_t yields; /* background transfers cut to give a reader the link */
	uint64_t failures; /* requests that failed after their retries */
	unsigned active; /* transfers on the wire now */
	unsigned queued[XFER_PRIO_COUNT];
	enum fetch_reason last_reason; /* FETCH_OK when none yet */
	uint64_t last_error_at; /* realtime usec */
	char last_error[256];
	/* The last failure that is being retried: what a waiting read waits out. */
	enum fetch_reason last_retry_reason; /* FETCH_OK when none yet */
	uint64_t last_retry_at; /* realtime usec */
	char last_retry[256];
	unsigned io_timeout_s; /* as configured (0: none) */
};

/* Starts the engine thread. cfg is copied. -ENOMEM, -EAGAIN (thread). */
int xfer_new(const struct hub_config *cfg, const struct xfer_opts *opts, struct xfer **ret);
/* Fails every pending request with -ECANCELED (their done() runs), stops and joins the
 * thread. Takes NULL; returns NULL. Never blocks on the network. Not from a sink callback
 * (the engine thread cannot join itself); the other calls may be made from one. */
struct xfer *xfer_free(struct xfer *x);
/* Queues req (strings copied); any thread; never blocks on the network. ret_id (optional)
 * names it for xfer_cancel(). -ECANCELED after xfer_free began, -EINVAL bad range. */
int xfer_submit(struct xfer *x, const struct xfer_req *req, uint64_t *ret_id);
/* Raises a queued or running request's priority (a background range a reader now waits on). */
int xfer_set_prio(struct xfer *x, uint64_t id, enum xfer_prio prio);
/* Cancels a request: done(-ECANCELED) unless it already finished. -ENOENT when unknown. */
int xfer_cancel(struct xfer *x, uint64_t id);
/* Changes the global rate cap (0: none). */
void xfer_set_max_rate(struct xfer *x, uint64_t bytes_per_s);
/* A consistent copy of the counters; any thread. */
void xfer_get_stats(struct xfer *x, struct xfer_stats *ret);
