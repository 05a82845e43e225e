/* xfer_queue.c: the request side of the transfer engine, which needs no network (its lists
 * and id table are xfer_list.c's): the retry policy (budgets by
 * priority, backoff, server-asked waits), and on the engine thread the life of a request:
 * intake, queues by priority, slots and preemption, one resolve per blob shared by its
 * waiters, retries, cancels, done(). Calls the network side only through xnet_*(). */
#include "fetch/xfer_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/log.h"
#include "util/timeutil.h"

void xpolicy_init(struct xpolicy *p, const struct xfer_opts *o)
{
	uint64_t cap = (o->backoff_max_s ? o->backoff_max_s : 8) * USEC_PER_SEC;

	p->max_retries = o->max_retries ? o->max_retries : 5;
	/* Python's http_backoff starts at 1 s (HUB_PROTOCOL.md 7); a smaller cap wins. */
	p->base_usec = MIN(USEC_PER_SEC, cap);
	p->cap_usec[XFER_PRIO_DEMAND] = cap;
	p->cap_usec[XFER_PRIO_READAHEAD] = cap;
	/* Background work scales the cap by 7.5: the default 8 s becomes 60 s. */
	p->cap_usec[XFER_PRIO_BACKGROUND] = cap * 15 / 2;
	p->give_up_usec = 3600 * USEC_PER_SEC;
	p->io_timeout_usec = (uint64_t)o->io_timeout_s * USEC_PER_SEC;
	/* A reader does not wait minutes for a quota window; background work waits up to one
	 * (the Hub's windows last 5 minutes). */
	p->server_wait_max_usec[XFER_PRIO_DEMAND] = 60 * USEC_PER_SEC;
	p->server_wait_max_usec[XFER_PRIO_READAHEAD] = 60 * USEC_PER_SEC;
	p->server_wait_max_usec[XFER_PRIO_BACKGROUND] = 3600 * USEC_PER_SEC;
}

static void why_append(struct xreq *r, const char *fmt, unsigned long long v)
{
	size_t n = strlen(r->why);

	if (n < sizeof(r->why) - 1)
		snprintf(r->why + n, sizeof(r->why) - n, fmt, v);
}

static bool budget_spent(const struct xpolicy *p, const struct xreq *r, uint64_t now)
{
	if (r->prio == XFER_PRIO_BACKGROUND)
		return now - r->streak_start >= p->give_up_usec;
	/* A reader waits --io-timeout for a byte; a server that trickles a byte per attempt is
	 * stopped by the total bound, which scales with it. */
	if (p->io_timeout_usec)
		return now - r->waiting_since >= p->io_timeout_usec ||
		       now - r->first_failure >= 4 * p->io_timeout_usec;
	/* The streak starts over whenever bytes arrive (as Python's resume does), so a server
	 * that breaks every connection still completes the range; the total bound stops one
	 * that trickles a byte per attempt. */
	return r->streak > p->max_retries || r->failures > 4 * (p->max_retries + 1);
}

bool xpolicy_after_failure(const struct xpolicy *p, struct xreq *r, const struct xfailure *f,
			   uint64_t now, struct backoff_rng *rng, uint64_t *ret_delay_usec)
{
	if (f->progressed) {
		r->streak = 0;
		r->waiting_since = now;
	}
	if (r->streak++ == 0)
		r->streak_start = now;
	if (!r->first_failure)
		r->first_failure = now;
	r->failures++;
	snprintf(r->why, sizeof(r->why), "%s", f->why);
	if (!f->transient)
		return false;
	if (budget_spent(p, r, now)) {
		why_append(r, " after %llu attempts", r->attempts);
		if (p->io_timeout_usec && r->prio != XFER_PRIO_BACKGROUND &&
		    !strstr(r->why, "--io-timeout"))
			why_append(r, " and %llu s without data (--io-timeout)",
				   (now - r->waiting_since) / USEC_PER_SEC);
		return false;
	}
	if (f->has_server_delay) {
		if (f->server_delay_usec > p->server_wait_max_usec[r->prio] ||
		    (p->io_timeout_usec && r->prio != XFER_PRIO_BACKGROUND &&
		     now + f->server_delay_usec > r->waiting_since + p->io_timeout_usec)) {
			why_append(r, "; the server asks to wait %llu s",
				   f->server_delay_usec / USEC_PER_SEC);
			return false;
		}
		r->server_wait = true;
		*ret_delay_usec = f->server_delay_usec;
		return true;
	}
	r->server_wait = false;
	*ret_delay_usec = backoff_delay(rng, r->streak, p->base_usec, p->cap_usec[r->prio]);
	/* The last try comes at the reader's deadline, not a backoff after it. */
	if (p->io_timeout_usec && r->prio != XFER_PRIO_BACKGROUND)
		*ret_delay_usec = MIN(*ret_delay_usec, r->waiting_since + p->io_timeout_usec - now);
	return true;
}

/* The request side of the engine thread ------------------------------------------------------- */

void xreq_free(struct xreq *r)
{
	free(r->url);
	free(r->key);
	free(r);
}

static void unlink_dirty_locked(struct xfer *x, struct xreq *r)
{
	struct xreq **pp = &x->dirty;

	while (*pp && *pp != r)
		pp = &(*pp)->dnext;
	if (*pp)
		*pp = r->dnext;
	r->dirty = false;
}

void xreq_resolved(struct xfer *x, struct resolve_entry *b)
{
	struct xreq *r, *prev;

	b->resolver = NULL;
	/* From the tail, each to the head: they keep their order, ahead of later arrivals. */
	for (r = x->wait.tail; r; r = prev) {
		prev = r->prev;
		if (r->blob != b)
			continue;
		xlist_remove(r);
		r->state = XREQ_READY;
		xlist_push_head(&x->ready[r->prio], r);
	}
}

/* Copies the engine's counters for xfer_get_stats(). Engine thread, x->lock held. */
static void publish_locked(struct xfer *x)
{
	unsigned running[XFER_PRIO_COUNT] = { 0 };

	for (struct xreq *r = x->running.head; r; r = r->next)
		running[r->prio]++;
	x->es.active = x->running.n;
	for (int p = 0; p < XFER_PRIO_COUNT; p++)
		x->es.queued[p] = x->live[p] - running[p];
	x->stats = x->es;
}

static void record_error(struct xfer *x, enum fetch_reason reason, const char *why)
{
	x->es.failures++;
	x->es.last_reason = reason;
	x->es.last_error_at = now_realtime_usec();
	snprintf(x->es.last_error, sizeof(x->es.last_error), "%s", why);
}

void xreq_finish(struct xfer *x, struct xreq *r, int err, enum fetch_reason reason, const char *why)
{
	xlist_remove(r);
	if (r->hop)
		xnet_hop_free(r->hop);
	if (r->blob) {
		if (r->blob->resolver == r)
			xreq_resolved(x, r->blob); /* the next waiter resolves */
		resolve_put(x->blobs, r->blob);
		r->blob = NULL;
		x->live[r->prio]--;
	}
	r->state = XREQ_DONE;
	if (!err)
		x->es.requests++;
	else if (err != -ECANCELED)
		record_error(x, reason, why);
	pthread_mutex_lock(&x->lock);
	xreq_table_remove(&x->ids, r);
	if (r->dirty)
		unlink_dirty_locked(x, r);
	publish_locked(x); /* a caller that sees done() finds it counted */
	pthread_mutex_unlock(&x->lock);
	log_debug("xfer: request %llu (%s bytes %llu+%llu) done: %d %s", (unsigned long long)r->id,
		  r->key, (unsigned long long)r->offset, (unsigned long long)r->len, err, why);
	r->sink.done(r->sink.ud, err, reason, why, r->written);
	xreq_free(r);
}

void xreq_ready(struct xfer *x, struct xreq *r, bool first)
{
	xlist_remove(r);
	r->state = XREQ_READY;
	if (first)
		xlist_push_head(&x->ready[r->prio], r);
	else
		xlist_push_tail(&x->ready[r->prio], r);
}

static void req_backoff(struct xfer *x, struct xreq *r, uint64_t not_before)
{
	xlist_remove(r);
	r->state = XREQ_BACKOFF;
	r->not_before = not_before;
	xlist_push_tail(&x->backoff, r);
}

static void req_retry_or_end(struct xfer *x, struct xreq *r, const struct xfailure *f)
{
	uint64_t now = now_usec(), delay;

	if (xpolicy_after_failure(&x->policy, r, f, now, &x->rng, &delay)) {
		x->es.retries++;
		x->es.last_retry_reason = f->reason;
		x->es.last_retry_at = now_realtime_usec();
		snprintf(x->es.last_retry, sizeof(x->es.last_retry), "%s", r->why);
		r->fresh_connect = f->reason == FETCH_STALL;
		log_debug("xfer: request %llu: %s; retrying in %llu ms", (unsigned long long)r->id,
			  r->why, (unsigned long long)(delay / USEC_PER_MSEC));
		req_backoff(x, r, now + delay);
		return;
	}
	xreq_finish(x, r, f->err ? f->err : fetch_reason_errno(f->reason), f->reason, r->why);
}

void xreq_failed(struct xfer *x, struct xreq *r, const struct xfailure *f)
{
	struct resolve_entry *b = r->blob;

	if (b->resolver == r) {
		/* The waiters would have made this same request: they share its outcome, each
		 * within its own budget. r keeps its reference, so b outlives the walk; a waiter
		 * ends only itself, so next stays valid. */
		struct xfailure wf = *f;
		struct xreq *w, *next;

		b->resolver = NULL;
		wf.progressed = false;
		for (w = x->wait.head; w; w = next) {
			next = w->next;
			if (w->blob != b)
				continue;
			xlist_remove(w);
			w->attempts++;
			req_retry_or_end(x, w, &wf);
		}
	}
	req_retry_or_end(x, r, f);
}

/* Scheduling ------------------------------------------------------------------------------ */

/* Keeps r off the wire when its blob has no target and cannot be resolved now: another
 * request's resolve is in flight (r waits for it), or the Hub asked us to hold resolves. */
static bool attempt_deferred(struct xfer *x, struct xreq *r, uint64_t now)
{
	struct resolve_entry *b = r->blob;

	if (resolve_target(b, now_realtime_usec()))
		return false;
	if (b->resolver) {
		xlist_remove(r);
		r->state = XREQ_WAIT;
		xlist_push_tail(&x->wait, r);
		return true;
	}
	if (now < x->resolve_hold) {
		req_backoff(x, r, x->resolve_hold);
		return true;
	}
	return false;
}

/* Starts an attempt of r (not deferred): on its blob's target when known, else as the one
 * resolve of the blob. */
static void attempt_start(struct xfer *x, struct xreq *r)
{
	struct resolve_entry *b = r->blob;
	const char *target = resolve_target(b, now_realtime_usec());

	if (!target)
		b->resolver = r;
	xlist_remove(r);
	r->state = XREQ_RUNNING;
	xlist_push_tail(&x->running, r);
	r->attempts++;
	if (xnet_hop_start(x, r, target ? target : r->url, 0) < 0)
		xreq_finish(x, r, -ENOMEM, FETCH_IO, "cannot start a transfer: out of memory");
}

/* Demand work must not starve when every slot carries lower priority work. Two measures:
 * (1) reserve: read-ahead and background use at most slots - reserve (1/8 of them, at least
 * one from 4 slots up), so a demand read normally finds a free slot at once without costing
 * the background real throughput (14 of 16 connections still fill a link); (2) preemption:
 * when demand still finds no slot (few slots, or a burst of demand), the lowest-priority
 * transfer with the fewest bytes is cut and queued again at the head of its queue, to resume
 * after its last byte. Cutting rather than pausing it (curl_easy_pause) frees the connection:
 * a paused transfer keeps its slot and socket, and over HTTP/1.1 the demand read needs a
 * connection now. The price is the bytes in flight on the cut connection (socket buffers)
 * and a new connection later (a TLS resumption, thanks to the shared session cache).
 * Bandwidth, as opposed to slots, is shared by TCP unless a rate cap is set; then the token
 * bucket serves demand first (xfer_limit.h); see also background_yield(). */
static void cut(struct xfer *x, struct xreq *r)
{
	if (r->blob->resolver == r)
		xreq_resolved(x, r->blob); /* a waiter takes the resolve over */
	xnet_hop_free(r->hop);
	xreq_ready(x, r, true);
}

static struct xreq *preempt_victim(struct xfer *x)
{
	struct xreq *best = NULL;

	for (struct xreq *r = x->running.head; r; r = r->next) {
		if (r->prio == XFER_PRIO_DEMAND)
			continue;
		if (!best || r->prio > best->prio ||
		    (r->prio == best->prio && xnet_hop_got(r->hop) < xnet_hop_got(best->hop)))
			best = r;
	}
	return best;
}

static bool preempt(struct xfer *x)
{
	struct xreq *r = preempt_victim(x);

	if (!r)
		return false;
	log_debug("xfer: request %llu yields its connection to a demand read",
		  (unsigned long long)r->id);
	cut(x, r);
	return true;
}

/* A reader waits while demand requests are live (a read-ahead fetch a read waits on is raised
 * to demand; a reader that read-ahead keeps ahead of does not wait, and the background's
 * bytes then add to its own: the bench's model load ran at 0.76x when read-ahead made the
 * background yield too); background work yields the link to it until XFER_YIELD_HOLD_USEC
 * after the last one ended (a reader's next read
 * usually comes sooner, so the background is not cut and restarted between its reads).
 * Slots alone do not give a reader the link: TCP shares a capped link per connection, and
 * background transfers already on the wire keep their share until their ranges end (16 of
 * 16 MiB at mount, ~2.5 s of an 800 Mbit/s link). So when a reader appears, every background
 * transfer is cut at once (within the engine's turn, not a round trip later) and none starts,
 * but XFER_YIELD_KEEP that fetch the blob the reader waits on at or after where it waits
 * (completion following the reader, fs/prefetch.c: what it reads next); they resume, after
 * their last byte, once the reader is gone. One with at most x->yield_min_left bytes left is
 * not cut: it ends soon anyway, and a cut costs a request and the bytes in flight. Any two
 * kept beside the reader (completion's share, as before) took 10-20% of the link from it:
 * the bench's first tensor came 0.4-0.8 s later (docs/benchmarks.md); none kept, the model
 * load (a reader through every shard) took 3-4% longer. */
#define XFER_YIELD_HOLD_USEC (300 * USEC_PER_MSEC)
#define XFER_YIELD_KEEP 2

static bool reader_waits(struct xfer *x, uint64_t now)
{
	if (x->live[XFER_PRIO_DEMAND])
		x->reader_until = now + XFER_YIELD_HOLD_USEC;
	else if (now >= x->reader_until)
		x->reader_until = 0; /* xq_next_due() no longer wakes for it */
	return x->reader_until != 0;
}

/* Whether r fetches the blob a demand request is for, at or after that request's start. */
static bool ahead_of_reader(const struct xfer *x, const struct xreq *r)
{
	const struct xlist *lists[] = { &x->running, &x->ready[XFER_PRIO_DEMAND] };

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++)
		for (const struct xreq *d = lists[i]->head; d; d = d->next)
			if (d->prio == XFER_PRIO_DEMAND && d->offset <= r->offset &&
			    !strcmp(d->key, r->key))
				return true;
	return false;
}

/* Background transfers on the wire that a reader lets run: those ahead of it, up to
 * XFER_YIELD_KEEP. */
static unsigned running_kept(const struct xfer *x)
{
	unsigned n = 0;

	for (const struct xreq *r = x->running.head; r; r = r->next)
		n += r->prio == XFER_PRIO_BACKGROUND && ahead_of_reader(x, r);
	return n;
}

static void background_yield(struct xfer *x)
{
	unsigned kept = 0;
	struct xreq *r, *next;

	/* Oldest first: those kept are the ones that started first. cut() takes r off the list
	 * and puts it at the head of its queue (so the cut ones start again newest first). */
	for (r = x->running.head; r; r = next) {
		next = r->next;
		if (r->prio != XFER_PRIO_BACKGROUND || r->len - r->written <= x->yield_min_left)
			continue;
		if (kept < XFER_YIELD_KEEP && ahead_of_reader(x, r)) {
			kept++;
			continue;
		}
		log_debug("xfer: request %llu yields the link to a reader",
			  (unsigned long long)r->id);
		x->es.yields++;
		cut(x, r);
	}
}

/* While a reader waits: the first queued background request ahead of it, if fewer than
 * XFER_YIELD_KEEP of those run; else NULL. */
static struct xreq *kept_to_start(struct xfer *x, uint64_t now)
{
	struct xreq *r, *next;

	if (running_kept(x) >= XFER_YIELD_KEEP)
		return NULL;
	for (r = x->ready[XFER_PRIO_BACKGROUND].head; r; r = next) {
		next = r->next;
		if (ahead_of_reader(x, r) && !attempt_deferred(x, r, now))
			return r;
	}
	return NULL;
}

static struct xreq *next_to_start(struct xfer *x, uint64_t now, bool yielding)
{
	for (int p = 0; p < XFER_PRIO_COUNT; p++) {
		unsigned limit = p == XFER_PRIO_DEMAND ? x->slots : x->slots - x->reserve;
		struct xreq *r;

		while ((r = x->ready[p].head) && attempt_deferred(x, r, now))
			;
		if (!r)
			continue;
		if (p == XFER_PRIO_BACKGROUND && yielding && !(r = kept_to_start(x, now)))
			return NULL;
		if (x->running.n < limit)
			return r;
		if (p == XFER_PRIO_DEMAND && preempt(x)) {
			/* A slot is free; look at demand again: the cut may have handed its resolve
			 * to waiters now at the head. */
			p--;
			continue;
		}
		return NULL; /* strict priority: nothing lower jumps ahead */
	}
	return NULL;
}

void xq_start(struct xfer *x)
{
	uint64_t now = now_usec();
	bool yielding = reader_waits(x, now);
	struct xreq *r;

	/* Only while a demand request is live: in the hold after it, none is ahead of a reader
	 * any more, and what was kept beside it goes on. */
	if (yielding && x->live[XFER_PRIO_DEMAND])
		background_yield(x);
	while ((r = next_to_start(x, now, yielding)))
		attempt_start(x, r);
}

void xq_backoff_due(struct xfer *x, uint64_t now)
{
	struct xreq *r, *next;

	for (r = x->backoff.head; r; r = next) {
		next = r->next;
		if (now >= r->not_before)
			xreq_ready(x, r, false);
	}
}

uint64_t xq_next_due(const struct xfer *x, uint64_t limit)
{
	for (const struct xreq *r = x->backoff.head; r; r = r->next)
		limit = MIN(limit, r->not_before);
	/* Background work queued behind a reader starts when the reader's hold ends. */
	if (x->ready[XFER_PRIO_BACKGROUND].n && x->reader_until)
		limit = MIN(limit, x->reader_until);
	return limit;
}

/* Intake ------------------------------------------------------------------------------------ */

static void req_intake(struct xfer *x, struct xreq *r)
{
	if (x->offline) {
		xreq_finish(x, r, -ENETDOWN, FETCH_OFFLINE, "not fetched: the mount is offline");
		return;
	}
	r->blob = resolve_get(x->blobs, r->key);
	if (!r->blob) {
		xreq_finish(x, r, -ENOMEM, FETCH_IO, "out of memory");
		return;
	}
	x->live[r->prio]++;
	r->state = XREQ_READY;
	xlist_push_tail(&x->ready[r->prio], r);
}

static void req_raise(struct xfer *x, struct xreq *r, enum xfer_prio p)
{
	if (p >= r->prio)
		return;
	x->live[r->prio]--;
	x->live[p]++;
	/* A reader now waits on it: its wait starts now (background failures do not count). */
	if (r->prio == XFER_PRIO_BACKGROUND)
		r->waiting_since = now_usec();
	r->prio = p;
	if (r->state == XREQ_READY)
		xreq_ready(x, r, false);
	else if (r->state == XREQ_BACKOFF && !r->server_wait)
		r->not_before = MIN(r->not_before, now_usec() + x->policy.cap_usec[p]);
}

bool xq_intake(struct xfer *x, bool *ret_rate_changed, uint64_t *ret_rate)
{
	struct xreq *in, *todo = NULL, *r;
	bool stop;

	pthread_mutex_lock(&x->lock);
	stop = x->stopping;
	in = x->inbox_head;
	x->inbox_head = x->inbox_tail = NULL;
	*ret_rate_changed = x->rate_changed;
	*ret_rate = x->rate_asked;
	x->rate_changed = false;
	pthread_mutex_unlock(&x->lock);
	/* Submissions first: intake may end one (offline, OOM), and xreq_finish() takes an ended
	 * request off x->dirty, so x->dirty must still hold it then. */
	while ((r = in)) {
		in = r->inext;
		req_intake(x, r);
	}

	pthread_mutex_lock(&x->lock);
	/* Copy what was asked while the lock is held: another thread may ask again. A request
	 * submitted since the inbox was taken stays on x->dirty (and the inbox) for the next
	 * turn, which its submission's wakeup brings. */
	for (struct xreq **pp = &x->dirty; (r = *pp);) {
		if (r->state == XREQ_INBOX) {
			pp = &r->dnext;
			continue;
		}
		*pp = r->dnext;
		r->dirty = false;
		r->apply_cancel = r->cancel_asked;
		r->apply_prio = r->prio_asked;
		r->enext = todo;
		todo = r;
	}
	pthread_mutex_unlock(&x->lock);
	/* Applying a change ends at most its own request (what its done() asks for lands on
	 * x->dirty, not here), so the rest of todo stays valid. */
	while ((r = todo)) {
		todo = r->enext;
		if (r->apply_cancel)
			xreq_finish(x, r, -ECANCELED, FETCH_CANCELED, "canceled");
		else
			req_raise(x, r, r->apply_prio);
	}
	return stop;
}

void xq_publish(struct xfer *x)
{
	pthread_mutex_lock(&x->lock);
	publish_locked(x);
	pthread_mutex_unlock(&x->lock);
}

void xq_cancel_all(struct xfer *x)
{
	struct xlist *lists[] = { &x->running,	&x->wait,     &x->backoff,
				  &x->ready[0], &x->ready[1], &x->ready[2] };
	const char *why = "the transfer engine is stopping";
	bool rate_changed;
	uint64_t rate;
	struct xreq *r;

	/* stopping is set, so this takes the last submissions; a request ended here may free
	 * its resolver role and queue its waiters on a later list of this walk. */
	(void)xq_intake(x, &rate_changed, &rate);
	for (size_t i = 0; i < ARRAY_SIZE(lists); i++)
		while ((r = lists[i]->head))
			xreq_finish(x, r, -ECANCELED, FETCH_CANCELED, why);
}
