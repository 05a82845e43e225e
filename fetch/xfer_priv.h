/* xfer_priv.h: the transfer engine's internals, shared by its files: xfer.c (the public
 * calls), xfer_engine.c (the engine thread's loop), xfer_hop.c (one exchange on a curl easy
 * handle), xfer_limit.c (the rate limiter), xfer_queue.c (the request side: queues by
 * priority, slots and preemption, one resolve per blob, retries, cancels) and xfer_reply.c
 * (what an HTTP reply means for a ranged read). Calls go one way: xfer -> engine -> queue ->
 * hop -> limit, reply. Module-internal; no curl here (only xfer_hop.h carries it). */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch/backoff.h"
#include "fetch/resolve.h"
#include "fetch/xfer.h"

struct xhop; /* xfer_hop.h: one HTTP exchange on a curl easy handle */
struct xnet; /* xfer_hop.h: the curl multi handle and what goes with it */

enum xreq_state {
	XREQ_INBOX, /* submitted; on x->inbox until the engine takes it */
	XREQ_READY, /* on ready[prio]: starts when a slot is free */
	XREQ_WAIT, /* on wait: another request is resolving its blob */
	XREQ_BACKOFF, /* on backoff: not before not_before */
	XREQ_RUNNING, /* on running: an exchange (hop) is on the wire */
	XREQ_DONE, /* done() is being called; on no list */
};

/* An intrusive doubly linked list of requests (engine thread only). */
struct xlist {
	struct xreq *head, *tail;
	unsigned n;
};

/* One submitted request, from xfer_submit() to its done() (then freed by the engine). */
struct xreq {
	/* Immutable after xfer_submit(). */
	uint64_t id;
	char *url; /* the blob's resolve URL */
	char *key; /* blob key (content id) */
	uint64_t blob_size, offset, len;
	struct xfer_sink sink;

	/* x->lock. */
	struct xreq *hnext; /* id table chain: in it from submit until just before done() */
	struct xreq *inext; /* next on x->inbox */
	struct xreq *dnext; /* next on x->dirty */
	bool dirty; /* on x->dirty: a cancel or a raise to apply */
	bool cancel_asked;
	enum xfer_prio prio_asked; /* the highest priority asked for (lowest value) */

	/* Engine thread. */
	enum xreq_state state;
	enum xfer_prio prio;
	struct xreq *prev, *next; /* on the list of its state */
	struct xlist *list; /* that list, or NULL */
	struct xreq *enext; /* scratch chain while the engine applies x->dirty */
	bool apply_cancel; /* cancel_asked, as the engine copied it */
	enum xfer_prio apply_prio; /* prio_asked, as the engine copied it */
	struct resolve_entry *blob; /* a reference from intake to done */
	uint64_t written; /* bytes taken by sink.write(): [offset, offset + written) */
	unsigned attempts; /* attempts started (redirect hops are not attempts) */
	unsigned streak; /* failed attempts since the last one that brought bytes */
	unsigned failures; /* failed attempts in all (bounds a trickling server) */
	uint64_t streak_start; /* monotonic usec of the streak's first failure */
	uint64_t first_failure; /* monotonic usec of its first failed attempt (0: none) */
	uint64_t waiting_since; /* monotonic usec since which no byte came: submitted, raised
				 * to a reader's priority, or the last attempt that brought bytes */
	uint64_t not_before; /* XREQ_BACKOFF: monotonic usec */
	bool server_wait; /* not_before was asked by the server (Retry-After/RateLimit) */
	bool reresolved; /* a refusal of its target was already answered by a resolve */
	bool fresh_connect; /* the last attempt stalled: the next one opens a connection */
	struct xhop *hop; /* XREQ_RUNNING */
	char why[256]; /* words of the last failed attempt */
};

/* Live requests by id (x->lock). Chained hash that doubles with its load. */
struct xreq_table {
	struct xreq **buckets;
	size_t nbuckets; /* power of two, or 0 before the first insert */
	size_t count;
};

/* Retry budgets by priority (HUB_PROTOCOL.md 7; the rules). */
struct xpolicy {
	unsigned max_retries; /* demand and read-ahead */
	uint64_t base_usec; /* first backoff ceiling */
	uint64_t cap_usec[XFER_PRIO_COUNT]; /* one backoff sleep at most */
	uint64_t give_up_usec; /* background: a failing streak this long */
	uint64_t io_timeout_usec; /* demand, read-ahead: no byte for this long fails it (the
				   * attempt on the wire too); 0: max_retries decides */
	uint64_t server_wait_max_usec[XFER_PRIO_COUNT]; /* a longer server-asked wait fails now */
};

struct xfer {
	/* Immutable after xfer_new(). */
	struct xpolicy policy;
	unsigned slots; /* exchanges on the wire at most (and the connection pool's size) */
	unsigned reserve; /* of the slots, kept for demand requests */
	uint64_t yield_min_left; /* background transfers with more left yield to a reader */
	bool offline;
	struct xnet *net;
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock; /* innermost lock; guards the fields down to the next blank line */
	struct xreq *inbox_head, *inbox_tail; /* submitted, not yet taken by the engine */
	struct xreq *dirty; /* requests with a cancel or a raise to apply */
	struct xreq_table ids; /* every request between submit and done() */
	uint64_t next_id;
	bool stopping;
	bool rate_changed;
	uint64_t rate_asked;
	struct xfer_stats stats; /* the engine's counters as of its last loop turn */

	/* Engine thread. */
	struct resolve_cache *blobs;
	struct xlist ready[XFER_PRIO_COUNT], wait, backoff, running;
	unsigned live[XFER_PRIO_COUNT]; /* taken in and not done, by priority */
	struct backoff_rng rng;
	uint64_t resolve_hold; /* monotonic usec: no resolve starts before (a 429 of the Hub) */
	uint64_t reader_until; /* monotonic usec: background work yields to a reader until then
				* (0: no reader) */
	struct xfer_stats es; /* the engine's counters */
};

/* What a failed attempt leads to. */
struct xfailure {
	enum fetch_reason reason;
	int err; /* the errno to report; 0: fetch_reason_errno(reason) */
	bool transient; /* worth another attempt */
	bool progressed; /* the attempt brought bytes (the streak starts over) */
	bool has_server_delay;
	uint64_t server_delay_usec;
	char why[256];
};

/* xfer_queue.c: lists, the id table, the policy. */
void xlist_push_tail(struct xlist *l, struct xreq *r);
void xlist_push_head(struct xlist *l, struct xreq *r);
void xlist_remove(struct xreq *r); /* no-op when r is on no list */
struct xreq *xlist_pop(struct xlist *l);

/* -ENOMEM only when not even the first bucket array can be had. */
int xreq_table_insert(struct xreq_table *t, struct xreq *r);
struct xreq *xreq_table_find(const struct xreq_table *t, uint64_t id);
void xreq_table_remove(struct xreq_table *t, struct xreq *r);
void xreq_table_done(struct xreq_table *t);

void xpolicy_init(struct xpolicy *p, const struct xfer_opts *o);
/* Counts the failure f of r's last attempt at monotonic time now. Returns true with
 * *ret_delay_usec (the backoff) when r should try again, false when it is spent; then r->why
 * holds the final words ("... after N attempts"). */
bool xpolicy_after_failure(const struct xpolicy *p, struct xreq *r, const struct xfailure *f,
			   uint64_t now, struct backoff_rng *rng, uint64_t *ret_delay_usec);

/* xfer_queue.c: the request side of the engine thread. x->lock is taken inside, never held
 * across a call out. */
void xreq_free(struct xreq *r);
/* Ends r: off its list and the wire, done() runs, r is freed. */
void xreq_finish(struct xfer *x, struct xreq *r, int err, enum fetch_reason reason,
		 const char *why);
/* Puts r back in its queue, at the head (first: a cut or a re-resolve) or the tail. */
void xreq_ready(struct xfer *x, struct xreq *r, bool first);
/* r's attempt ended with f (its hop is already freed): the requests waiting for r's resolve
 * share the outcome; r backs off or ends. */
void xreq_failed(struct xfer *x, struct xreq *r, const struct xfailure *f);
/* The blob's target is known now: requests waiting for b's resolve are queued again. Lists
 * only, so callable inside curl callbacks. */
void xreq_resolved(struct xfer *x, struct resolve_entry *b);

/* Takes what other threads queued: submissions, cancels, raises, a new rate
 * (*ret_rate_changed, *ret_rate). Returns true when the engine must stop. */
bool xq_intake(struct xfer *x, bool *ret_rate_changed, uint64_t *ret_rate);
void xq_backoff_due(struct xfer *x, uint64_t now);
/* Starts what the slots allow, highest priority first (may cut a transfer for demand; while
 * a reader waits, cuts background transfers down to two). */
void xq_start(struct xfer *x);
/* Earliest backoff end, or limit. */
uint64_t xq_next_due(const struct xfer *x, uint64_t limit);
/* Copies the counters for xfer_get_stats(). */
void xq_publish(struct xfer *x);
/* Ends every request with -ECANCELED (x->stopping is set). */
void xq_cancel_all(struct xfer *x);

/* xfer_hop.c: what the request side asks of the network side. */
/* Starts the exchange of r's missing bytes with url (copied); r is XREQ_RUNNING. -ENOMEM. */
int xnet_hop_start(struct xfer *x, struct xreq *r, const char *url, unsigned redirects);
/* Takes h off the wire and frees it; r->hop becomes NULL. */
void xnet_hop_free(struct xhop *h);
/* Bytes h passed to write(): the cost of cutting it. */
uint64_t xnet_hop_got(const struct xhop *h);

/* xfer_reply.c: the headers of one reply as they arrive, in bounded buffers. */
struct xreply_buf {
	long status;
	char content_range[96], content_length[32], content_encoding[32], retry_after[64],
		ratelimit[128], x_error_code[64], x_error_message[160], date[64];
	char *location; /* malloc'd; NULL when absent or longer than 16 KiB */
};

enum xreply_line {
	XREPLY_STATUS, /* "HTTP/..." starts a reply (1xx ones precede the final one): reset */
	XREPLY_HEADER, /* stored when it is one we read */
	XREPLY_END, /* the blank line after the headers */
};

/* Feeds one header line as curl hands it over (CRLF included). */
enum xreply_line xreply_feed(struct xreply_buf *rb, const char *line, size_t len);
void xreply_buf_done(struct xreply_buf *rb);

/* A reply's headers, NULL when absent. */
struct xreply {
	long status;
	const char *content_range, *content_length, *content_encoding, *location;
	const char *retry_after, *ratelimit, *x_error_code, *x_error_message, *date;
};

struct xreply xreply_view(const struct xreply_buf *rb);

/* The final reply to a GET of bytes [first, last] of a blob of blob_size arrived with a 2xx
 * status: do its bytes belong in the blob there? 206: Content-Range must start at first and
 * name blob_size (a shorter range is taken, the rest is fetched again; a longer one is cut).
 * 200 (a server that ignored Range, or a small file served whole): its body is the blob from
 * byte 0, so *ret_skip = first bytes are dropped before ours. Any Content-Encoding but identity,
 * any other 2xx, or a size that is not the blob's: f filled, -EBADMSG. */
int xreply_check_body(const struct xreply *rep, const char *url, uint64_t first, uint64_t last,
		      uint64_t blob_size, uint64_t *ret_skip, struct xfailure *f);

enum xverdict {
	XVERDICT_REDIRECT, /* 301/302/303/307/308 with a Location */
	XVERDICT_RERESOLVE, /* the blob's target refused (400/401/403): resolve again, once */
	XVERDICT_FAIL, /* f filled: transient or not */
};

/* What a final reply from url that is neither a usable 2xx nor complete means. from_target:
 * url is not the resolve URL but a target learnt from a redirect (a CDN, or the Hub's
 * resolve-cache). f is filled in every case (a re-resolve may be refused later). */
enum xverdict xreply_classify(const struct xreply *rep, const char *url, bool from_target,
			      struct xfailure *f);

/* Sets f->why from a format (truncated to fit). */
void xfailure_words(struct xfailure *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "host:port" of url into buf (for words); "?" when it has none. Returns buf. */
const char *xreply_origin(const char *url, char *buf, size_t len);
