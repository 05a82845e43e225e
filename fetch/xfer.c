/* xfer.c: the transfer engine's public calls (xfer.h): start and stop the engine, submit,
 * cancel, raise, cap the rate, read the counters. One engine thread (xfer_engine.c) owns the
 * curl multi handle and every easy handle (xfer_hop.c), the request lists and the signed-URL
 * cache (xfer_queue.c); other threads only queue work under x->lock and wake it with
 * xnet_wakeup(). Sink callbacks run on the engine thread, never under x->lock.
 * Knows nothing of FUSE or the cache.
 *
 * Lock order: x->lock is innermost. A caller may hold its own lock while calling in (fs/sched.c
 * does); no lock is held while the engine calls out. The one call made under x->lock is
 * xnet_wakeup(), a non-blocking write to a socketpair, so that no thread can wake a multi
 * handle that xfer_free() is destroying. */
#include "fetch/xfer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/xfer_engine.h"
#include "fetch/xfer_priv.h"
#include "util/cleanup.h"
#include "util/timeutil.h"

#define XFER_CONNECTIONS_DEFAULT 16

static int mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int e;

	pthread_mutexattr_init(&a);
#ifndef NDEBUG
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
#endif
	e = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return -e;
}

int xfer_new(const struct hub_config *cfg, const struct xfer_opts *opts, struct xfer **ret)
{
	static const struct xfer_opts defaults;
	struct xfer *x;
	int e;

	*ret = NULL;
	if (!opts)
		opts = &defaults;
	x = calloc(1, sizeof(*x));
	if (!x || mutex_init(&x->lock) < 0) {
		free(x);
		return -ENOMEM;
	}
	xpolicy_init(&x->policy, opts);
	x->slots = opts->connections ? opts->connections : XFER_CONNECTIONS_DEFAULT;
	x->reserve = x->slots >= 4 ? MAX(1, x->slots / 8) : 0;
	x->yield_min_left = opts->yield_min_left ? opts->yield_min_left : 4ULL << 20;
	/* HF_HUB_OFFLINE means no HTTP at all, whoever filled in the options. */
	x->offline = opts->offline || cfg->offline;
	x->next_id = 1;
	x->blobs = resolve_cache_new(0);
	backoff_rng_init(&x->rng, 0);
	e = xnet_new(cfg, opts, x->slots, &x->net);
	if (e < 0 || !x->blobs) {
		xfer_free(x);
		return -ENOMEM;
	}
	e = pthread_create(&x->thread, NULL, xnet_engine_main, x);
	if (e) {
		xfer_free(x);
		return -EAGAIN;
	}
	x->thread_started = true;
	*ret = x;
	return 0;
}

struct xfer *xfer_free(struct xfer *x)
{
	if (!x)
		return NULL;
	if (x->thread_started) {
		pthread_mutex_lock(&x->lock);
		x->stopping = true;
		xnet_wakeup(x->net);
		pthread_mutex_unlock(&x->lock);
		pthread_join(x->thread, NULL);
	}
	x->net = xnet_free(x->net);
	x->blobs = resolve_cache_free(x->blobs);
	xreq_table_done(&x->ids);
	pthread_mutex_destroy(&x->lock);
	free(x);
	return NULL;
}

static bool req_is_valid(const struct xfer_req *req)
{
	return req && req->url && req->blob_key && req->sink.write && req->sink.done &&
	       (unsigned)req->prio < XFER_PRIO_COUNT && req->len > 0 &&
	       req->offset <= req->blob_size && req->len <= req->blob_size - req->offset;
}

int xfer_submit(struct xfer *x, const struct xfer_req *req, uint64_t *ret_id)
{
	struct xreq *r;
	bool stopping;
	uint64_t id;

	if (!req_is_valid(req))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->url = strdup(req->url);
	r->key = strdup(req->blob_key);
	if (!r->url || !r->key) {
		xreq_free(r);
		return -ENOMEM;
	}
	r->blob_size = req->blob_size;
	r->offset = req->offset;
	r->len = req->len;
	r->sink = req->sink;
	r->prio = r->prio_asked = req->prio;
	r->state = XREQ_INBOX;
	r->waiting_since = now_usec();

	pthread_mutex_lock(&x->lock);
	stopping = x->stopping;
	r->id = id = x->next_id;
	if (stopping || xreq_table_insert(&x->ids, r) < 0) {
		pthread_mutex_unlock(&x->lock);
		xreq_free(r);
		return stopping ? -ECANCELED : -ENOMEM;
	}
	x->next_id++;
	if (x->inbox_tail)
		x->inbox_tail->inext = r;
	else
		x->inbox_head = r;
	x->inbox_tail = r;
	xnet_wakeup(x->net);
	pthread_mutex_unlock(&x->lock);
	if (ret_id)
		*ret_id = id;
	return 0;
}

/* Asks the engine to cancel request id, or to raise it to prio. -ENOENT when it is done. */
static int ask(struct xfer *x, uint64_t id, bool cancel, enum xfer_prio prio)
{
	struct xreq *r;
	int e = 0;

	pthread_mutex_lock(&x->lock);
	r = xreq_table_find(&x->ids, id);
	if (!r) {
		e = -ENOENT;
	} else if (cancel || prio < r->prio_asked) {
		if (cancel)
			r->cancel_asked = true;
		else
			r->prio_asked = prio;
		if (!r->dirty) {
			r->dirty = true;
			r->dnext = x->dirty;
			x->dirty = r;
		}
		xnet_wakeup(x->net);
	}
	pthread_mutex_unlock(&x->lock);
	return e;
}

int xfer_set_prio(struct xfer *x, uint64_t id, enum xfer_prio prio)
{
	if ((unsigned)prio >= XFER_PRIO_COUNT)
		return -EINVAL;
	return ask(x, id, false, prio);
}

int xfer_cancel(struct xfer *x, uint64_t id)
{
	return ask(x, id, true, XFER_PRIO_DEMAND);
}

void xfer_set_max_rate(struct xfer *x, uint64_t bytes_per_s)
{
	pthread_mutex_lock(&x->lock);
	x->rate_asked = bytes_per_s;
	x->rate_changed = true;
	xnet_wakeup(x->net);
	pthread_mutex_unlock(&x->lock);
}

void xfer_get_stats(struct xfer *x, struct xfer_stats *ret)
{
	pthread_mutex_lock(&x->lock);
	*ret = x->stats;
	pthread_mutex_unlock(&x->lock);
	ret->io_timeout_s = (unsigned)(x->policy.io_timeout_usec / USEC_PER_SEC);
}

const char *xfer_source_str(enum xfer_source s)
{
	return s == XFER_SOURCE_CDN ? "cdn" : "hub";
}
