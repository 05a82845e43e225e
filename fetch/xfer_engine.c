/* xfer_engine.c: the engine thread's loop: it takes what other threads queued, refills the
 * rate limiter and resumes paused transfers, starts requests into free slots, drives the curl
 * multi handle, and acts on each exchange's end (redirect, re-resolve, retry, done) and on
 * stalls; and the multi handle's setup (pool, HTTP/2, TLS sessions, the proxy and CA
 * environment). Engine thread only, but for xnet_new(), xnet_free() and xnet_wakeup(). */
#include "fetch/xfer_engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "fetch/xfer_hop.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/timeutil.h"

#define XFER_CONNECT_TIMEOUT_DEFAULT 10
#define XFER_STALL_DEFAULT 30
#define XFER_MAX_REDIRECTS 5
#define XFER_POLL_MAX_USEC USEC_PER_SEC
#define XFER_H2_STREAMS 4 /* 16 slots: 4 connections (measured: TLS sessions resumed) */

static void hop_failed(struct xfer *x, struct xhop *h, const struct xfailure *f)
{
	struct xreq *r = h->r;

	/* The Hub's resolver quota is one for all blobs: none resolves before it refills. */
	if (h->is_resolve && h->rep.status == 429 && f->has_server_delay)
		x->resolve_hold = MAX(x->resolve_hold, now_usec() + f->server_delay_usec);
	xnet_hop_free(h);
	xreq_failed(x, r, f);
}

static void hop_redirect(struct xfer *x, struct xhop *h, struct xfailure *f)
{
	struct xreq *r = h->r;
	_cleanup_free_ char *next = TAKE_PTR(h->next_url);
	unsigned redirects = h->redirects + 1;
	char origin[128];

	if (!next || redirects > XFER_MAX_REDIRECTS) {
		f->reason = FETCH_PROTOCOL;
		f->transient = false;
		xfailure_words(f, "%s from %s",
			       next ? "too many redirects" : "unusable redirect Location",
			       xreply_origin(h->url, origin, sizeof(origin)));
		hop_failed(x, h, f);
		return;
	}
	xnet_hop_free(h);
	if (xnet_hop_start(x, r, next, redirects) < 0)
		xreq_finish(x, r, -ENOMEM, FETCH_IO, "cannot start a transfer: out of memory");
}

/* The blob's target refused (HUB_PROTOCOL.md 4.3): resolve again, once per request. */
static void hop_reresolve(struct xfer *x, struct xhop *h, const struct xfailure *f)
{
	struct xreq *r = h->r;
	struct resolve_entry *b = r->blob;

	if (h->gen == b->gen) {
		/* Not already replaced by another request's resolve: this target is dead. */
		if (r->reresolved) {
			hop_failed(x, h, f);
			return;
		}
		r->reresolved = true;
		resolve_drop_target(b);
	}
	log_debug("xfer: request %llu: %s; resolving again", (unsigned long long)r->id, f->why);
	xnet_hop_free(h);
	xreq_ready(x, r, true);
}

/* The end of h: reported by curl, or forced by the engine (a stall, a failed resume). */
static void hop_ended(struct xfer *x, struct xhop *h, CURLcode rc)
{
	struct xreq *r = h->r;
	struct xfailure f;
	bool done;

	switch (xnet_hop_verdict(h, rc, &f, &done)) {
	case XVERDICT_REDIRECT:
		hop_redirect(x, h, &f);
		return;
	case XVERDICT_RERESOLVE:
		hop_reresolve(x, h, &f);
		return;
	case XVERDICT_FAIL:
		break;
	}
	if (!done) {
		hop_failed(x, h, &f);
		return;
	}
	xnet_hop_free(h);
	xreq_finish(x, r, 0, FETCH_OK, "");
}

static void limiter_resume(struct xfer *x, uint64_t now)
{
	struct xnet *n = x->net;

	for (int p = 0; p < XFER_PRIO_COUNT && n->limit.paused; p++) {
		struct xreq *r, *next;

		/* A hop ended here takes only its own request off the running list. */
		for (r = x->running.head; r && (n->limit.tokens > 0 || !n->limit.rate); r = next) {
			struct xhop *h = r->hop;
			CURLcode rc;

			next = r->next;
			if ((int)r->prio != p || !h->paused)
				continue;
			h->paused = false;
			xfer_limit_unpause(&n->limit, h->paused_demand);
			h->paused_demand = false;
			h->last_io = now;
			/* Delivers the held chunk now, through on_body(), which may pause again. */
			rc = curl_easy_pause(h->easy, CURLPAUSE_CONT);
			if (rc != CURLE_OK)
				hop_ended(x, h, rc);
		}
	}
}

static void stalls_check(struct xfer *x, uint64_t now)
{
	struct xnet *n = x->net;
	struct xreq *r, *next;
	char origin[128];

	for (r = x->running.head; r; r = next) {
		struct xhop *h = r->hop;
		uint64_t io = x->policy.io_timeout_usec;

		next = r->next;
		if (h->paused)
			continue;
		/* A reader's request that has had no byte for --io-timeout fails now, even in
		 * the middle of an attempt (a connect or a stall may take longer). */
		if (io && r->prio != XFER_PRIO_BACKGROUND &&
		    now - MAX(r->waiting_since, h->last_io) >= io) {
			xnet_hop_stop(h, FETCH_TIMEOUT, 0, true);
			xfailure_words(&h->stop_f, "no data from %s within --io-timeout %llu s",
				       xreply_origin(h->url, origin, sizeof(origin)),
				       (unsigned long long)(io / USEC_PER_SEC));
			hop_ended(x, h, CURLE_OK);
			continue;
		}
		if (now - h->last_io < n->stall_usec)
			continue;
		x->es.stalls++;
		xnet_hop_stop(h, FETCH_STALL, 0, true);
		xfailure_words(&h->stop_f, "no data from %s for %llu s",
			       xreply_origin(h->url, origin, sizeof(origin)),
			       (unsigned long long)(n->stall_usec / USEC_PER_SEC));
		hop_ended(x, h, CURLE_OK); /* h->stopped says why it ended */
	}
}

/* Hops whose callbacks learnt their blob's target: the requests waiting for that resolve go
 * on. Runs after curl's callbacks and before reap(), which may end those hops. */
static void hops_resolved(struct xfer *x)
{
	for (struct xreq *r = x->running.head; r; r = r->next) {
		struct xhop *h = r->hop;

		if (!h || !h->resolved)
			continue;
		h->resolved = false;
		if (r->blob->resolver == r)
			xreq_resolved(x, r->blob);
	}
}

static void reap(struct xfer *x)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(x->net->multi, &left))) {
		CURLcode rc = m->data.result;
		struct xhop *h = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		(void)curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&h);
		hop_ended(x, h, rc);
	}
}

static int poll_timeout_ms(struct xfer *x, uint64_t now)
{
	struct xnet *n = x->net;
	uint64_t wake = xq_next_due(x, now + XFER_POLL_MAX_USEC);
	long curl_ms = -1;
	int ms;

	for (struct xreq *r = x->running.head; r; r = r->next) {
		if (r->hop->paused)
			continue;
		wake = MIN(wake, r->hop->last_io + n->stall_usec);
		if (x->policy.io_timeout_usec && r->prio != XFER_PRIO_BACKGROUND)
			wake = MIN(wake, MAX(r->waiting_since, r->hop->last_io) +
						 x->policy.io_timeout_usec);
	}
	wake = MIN(wake, xfer_limit_due(&n->limit, now));
	ms = wake > now ? (int)DIV_ROUND_UP(wake - now, USEC_PER_MSEC) : 0;
	if (curl_multi_timeout(n->multi, &curl_ms) == CURLM_OK && curl_ms >= 0 && curl_ms < ms)
		ms = (int)curl_ms;
	return ms;
}

void *xnet_engine_main(void *arg)
{
	struct xfer *x = arg;
	struct xnet *n = x->net;
	bool rate_changed;
	uint64_t rate;
	int running;

	while (!xq_intake(x, &rate_changed, &rate)) {
		uint64_t now = now_usec();

		if (rate_changed)
			xfer_limit_set(&n->limit, rate, now);
		xq_backoff_due(x, now);
		xfer_limit_refill(&n->limit, now);
		limiter_resume(x, now);
		xq_start(x);
		(void)curl_multi_perform(n->multi, &running);
		hops_resolved(x);
		reap(x);
		stalls_check(x, now_usec());
		xq_start(x); /* into the slots reap() freed; curl drives them after the poll */
		xq_publish(x);
		(void)curl_multi_poll(n->multi, NULL, 0, poll_timeout_ms(x, now_usec()), NULL);
	}
	xq_cancel_all(x);
	xq_publish(x);
	return NULL;
}

struct xnet *xnet_free(struct xnet *n)
{
	if (!n)
		return NULL;
	if (n->multi)
		curl_multi_cleanup(n->multi);
	if (n->share)
		curl_share_cleanup(n->share);
	if (n->token)
		explicit_bzero(n->token, strlen(n->token));
	free(n->token);
	free(n->endpoint);
	free(n->user_agent);
	free(n->http_proxy);
	http_env_ca_done(&n->ca);
	free(n);
	curl_global_cleanup();
	return NULL;
}

int xnet_new(const struct hub_config *cfg, const struct xfer_opts *o, unsigned slots,
	     struct xnet **ret)
{
	struct xnet *n;

	*ret = NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	n = calloc(1, sizeof(*n));
	*ret = n;
	if (!n) {
		curl_global_cleanup();
		return -ENOMEM;
	}
	/* The environment as the official client reads it (HUB_PROTOCOL.md 6; http_env.h):
	 * read once, on the caller's thread, as getenv() is not safe against a setenv(). */
	if (http_env_proxy(&n->http_proxy) < 0 || http_env_ca(&n->ca) < 0)
		return -ENOMEM;
	n->endpoint = strdup(cfg->endpoint ? cfg->endpoint : "");
	n->token = cfg->token && *cfg->token ? strdup(cfg->token) : NULL;
	n->user_agent = strdup(cfg->user_agent ? cfg->user_agent : "hffs/" HFFS_VERSION);
	n->connect_timeout_s =
		o->connect_timeout_s ? (long)o->connect_timeout_s : XFER_CONNECT_TIMEOUT_DEFAULT;
	n->stall_usec =
		(o->stall_timeout_s ? o->stall_timeout_s : XFER_STALL_DEFAULT) * USEC_PER_SEC;
	n->range_align = o->range_align;
	xfer_limit_set(&n->limit, o->max_rate, now_usec());
	n->multi = curl_multi_init();
	n->share = curl_share_init();
	if (!n->endpoint || (cfg->token && *cfg->token && !n->token) || !n->user_agent ||
	    !n->multi || !n->share)
		return -ENOMEM;
	/* The pool: keep-alive connections for reuse, never more than the slots. */
	(void)curl_multi_setopt(n->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)slots);
	(void)curl_multi_setopt(n->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)slots);
	(void)curl_multi_setopt(n->multi, CURLMOPT_MAXCONNECTS, (long)slots);
	/* HTTP/2 multiplexes, but no more than XFER_H2_STREAMS ranges share a connection: one
	 * TCP connection's window (tcp_rmem's 6 MiB by default) caps it near 60 MB/s at 100 ms
	 * of RTT, so a few connections keep a long link full where one would not. */
	(void)curl_multi_setopt(n->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	(void)curl_multi_setopt(n->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, (long)XFER_H2_STREAMS);
	/* Only the engine thread uses the share: it needs no lock callbacks. */
	(void)curl_share_setopt(n->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	return 0;
}

void xnet_wakeup(struct xnet *n)
{
	(void)curl_multi_wakeup(n->multi);
}
