/* xfer.c: the transfer engine's network side and its public calls. One engine thread owns the
 * curl multi handle and every easy handle (and, through xfer_queue.c, the request lists and
 * the signed-URL cache); other threads only queue work under x->lock and wake it with
 * curl_multi_wakeup(). Sink callbacks run on the engine thread, never under x->lock.
 * Knows nothing of FUSE or the cache.
 *
 * Lock order: x->lock is innermost. A caller may hold its own lock while calling in (fs/sched.c
 * does); no lock is held while the engine calls out. The one call made under x->lock is
 * curl_multi_wakeup(), a non-blocking write to a socketpair, so that no thread can wake a multi
 * handle that xfer_free() is destroying. */
#include "fetch/xfer.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "fetch/http.h"
#include "fetch/http_env.h"
#include "fetch/xfer_priv.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/timeutil.h"

#define XFER_CONNECTIONS_DEFAULT 16
#define XFER_CONNECT_TIMEOUT_DEFAULT 10
#define XFER_STALL_DEFAULT 30
#define XFER_MAX_REDIRECTS 5
#define XFER_RECV_BUFFER (128UL * 1024) /* 8x fewer callbacks and pwrite()s than curl's 16 KiB */
#define XFER_POLL_MAX_USEC USEC_PER_SEC
#define XFER_H2_STREAMS 4 /* 16 slots: 4 connections (measured: TLS sessions resumed) */

/* The curl side of the engine. Engine thread, but for multi's curl_multi_wakeup(). */
struct xnet {
	/* Immutable after xfer_new(). */
	char *endpoint, *token, *user_agent;
	char *http_proxy; /* HTTP_PROXY, or NULL: route as http.c does (http_env_proxy()) */
	struct http_env_ca ca; /* SSL_CERT_FILE, SSL_CERT_DIR: trust as http.c does */
	long connect_timeout_s;
	uint64_t stall_usec;
	CURLM *multi;
	CURLSH *share; /* TLS sessions: a new connection resumes rather than a full handshake */

	/* The rate limiter (see limiter_must_wait()). */
	uint64_t rate; /* bytes/s, 0: unlimited */
	int64_t tokens; /* token bucket; negative: the debt of the last chunk taken */
	uint64_t tokens_at; /* monotonic usec of the last refill */
	unsigned paused; /* hops paused by the limiter */
	unsigned demand_paused; /* of those, demand ones */
};

/* One HTTP exchange of a request: a GET of the bytes it still lacks, from one URL. Engine
 * thread. The callbacks never end an exchange themselves: they stop curl and record why
 * (stopped with stop_f, or range_done), and the engine acts when curl reports the end. */
struct xhop {
	struct xfer *x;
	struct xreq *r;
	CURL *easy;
	struct curl_slist *headers;
	char *url;
	bool is_resolve; /* url is r's resolve URL */
	bool from_target; /* url was learnt from a redirect (a CDN or the resolve-cache) */
	uint64_t gen; /* the blob entry's gen when this hop began */
	unsigned redirects; /* hops before this one in the attempt */
	uint64_t first, last; /* bytes asked for */

	struct xreply_buf rep; /* the reply's headers, reset by each status line */
	bool final; /* the final reply's headers are complete */
	bool body_ok; /* a final 2xx whose bytes are ours; other bodies are drained */
	uint64_t skip; /* bytes of a 200 still to drop before first */
	char *next_url; /* a redirect's Location made absolute */
	char errbuf[CURL_ERROR_SIZE];

	uint64_t got; /* bytes this hop passed to write() */
	uint64_t last_io; /* monotonic usec of the last byte from the server, or of unpause */
	bool paused; /* by the rate limiter */
	bool paused_demand; /* counted in demand_paused */
	bool range_done; /* every byte arrived; the callbacks cut off the rest */
	bool stopped; /* a callback or the engine stopped the transfer; stop_f says why */
	struct xfailure stop_f;
};

/* Exchanges ------------------------------------------------------------------------------ */

void xnet_hop_free(struct xhop *h)
{
	struct xnet *n = h->x->net;

	if (h->paused) {
		n->paused--;
		n->demand_paused -= h->paused_demand;
	}
	if (h->easy) {
		/* Never blocks: QUICK_EXIT lets a pending DNS lookup go on alone. */
		curl_multi_remove_handle(n->multi, h->easy);
		curl_easy_cleanup(h->easy);
	}
	curl_slist_free_all(h->headers);
	xreply_buf_done(&h->rep);
	free(h->url);
	free(h->next_url);
	h->r->hop = NULL;
	free(h);
}

uint64_t xnet_hop_got(const struct xhop *h)
{
	return h->got;
}

static uint64_t hop_server_date(const struct xhop *h)
{
	time_t t = h->rep.date[0] ? curl_getdate(h->rep.date, NULL) : -1;

	return t > 0 ? (uint64_t)t : 0;
}

/* A redirect's target becomes the blob's (HUB_PROTOCOL.md 4.1: a relative Location keeps our
 * scheme, host and port, and its own query); requests waiting for the resolve go on. */
static void hop_learn_redirect(struct xhop *h)
{
	struct resolve_entry *b = h->r->blob;

	h->next_url = http_url_join(h->url, h->rep.location);
	if (h->next_url && strncasecmp(h->next_url, "http://", 7) != 0 &&
	    strncasecmp(h->next_url, "https://", 8) != 0) {
		free(h->next_url);
		h->next_url = NULL;
	}
	if (!h->next_url)
		return;
	(void)resolve_set_target(b, h->next_url, hop_server_date(h), now_realtime_usec());
	if (b->resolver == h->r)
		xreq_resolved(h->x, b);
}

/* The final reply's headers are in. Returns false to stop the transfer. */
static bool hop_final_headers(struct xhop *h)
{
	struct xreq *r = h->r;
	struct xreply rep = xreply_view(&h->rep);

	h->final = true;
	if (http_status_is_redirect(rep.status) && rep.location) {
		hop_learn_redirect(h);
		return true;
	}
	if (rep.status < 200 || rep.status >= 300)
		return true; /* drained; classified when it ends */
	if (xreply_check_body(&rep, h->url, h->first, h->last, r->blob_size, &h->skip, &h->stop_f) <
	    0) {
		h->stopped = true;
		return false;
	}
	h->body_ok = true;
	if (h->is_resolve && r->blob->resolver == r) {
		/* The resolve URL serves the bytes itself (a small file): it is the target. */
		(void)resolve_set_target(r->blob, h->url, hop_server_date(h), now_realtime_usec());
		xreq_resolved(h->x, r->blob);
	}
	return true;
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
	struct xhop *h = ud;
	size_t len = size * n;

	h->last_io = now_usec();
	switch (xreply_feed(&h->rep, buf, len)) {
	case XREPLY_STATUS:
		h->final = false;
		break;
	case XREPLY_END:
		if (h->rep.status >= 200 && !h->final && !hop_final_headers(h))
			return 0;
		break;
	case XREPLY_HEADER:
		break;
	}
	return len;
}

/* Rate limiting: one token bucket for all transfers. A write callback that finds it empty
 * pauses its transfer (CURL_WRITEFUNC_PAUSE: curl keeps the chunk and stops reading that
 * socket, so the server's sending stalls on TCP flow control); the engine refills the bucket
 * and resumes paused transfers demand first. While a demand transfer waits for tokens the
 * others take none, so demand gets the whole cap. Splitting CURLOPT_MAX_RECV_SPEED_LARGE over
 * the active handles instead would waste the share of a slow transfer and could not favour
 * demand. The bucket holds 100 ms of the rate (at least two receive buffers); a chunk may
 * overdraw it, and that debt is paid before the next, so the long-run rate is exact. */
static uint64_t limiter_burst(const struct xnet *n)
{
	return MAX(n->rate / 10, 2 * XFER_RECV_BUFFER);
}

static bool limiter_must_wait(const struct xnet *n, enum xfer_prio p)
{
	if (!n->rate)
		return false;
	return n->tokens <= 0 || (p != XFER_PRIO_DEMAND && n->demand_paused > 0);
}

static void limiter_refill(struct xnet *n, uint64_t now)
{
	uint64_t dt = MIN(now - n->tokens_at, USEC_PER_SEC);

	n->tokens_at = now;
	if (!n->rate)
		return;
	n->tokens += (int64_t)(n->rate * dt / USEC_PER_SEC);
	n->tokens = MIN(n->tokens, (int64_t)limiter_burst(n));
}

static void limiter_set(struct xnet *n, uint64_t rate)
{
	n->rate = rate;
	n->tokens = (int64_t)limiter_burst(n);
	n->tokens_at = now_usec();
}

/* Records that h is being stopped, for reason (the caller adds the words to h->stop_f). */
static void hop_stop(struct xhop *h, enum fetch_reason reason, int err, bool transient)
{
	h->stopped = true;
	h->stop_f = (struct xfailure){
		.reason = reason, .err = err, .transient = transient, .progressed = h->got > 0
	};
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xhop *h = ud;
	struct xnet *n = h->x->net;
	struct xreq *r = h->r;
	size_t len = size * nmemb, off, take;
	int e;

	if (!h->body_ok)
		return len;
	if (limiter_must_wait(n, r->prio)) {
		h->paused = true;
		h->paused_demand = r->prio == XFER_PRIO_DEMAND;
		n->paused++;
		n->demand_paused += h->paused_demand;
		return CURL_WRITEFUNC_PAUSE;
	}
	h->last_io = now_usec();
	if (n->rate)
		n->tokens -= (int64_t)len;
	h->x->es.bytes += len;
	off = (size_t)MIN(h->skip, (uint64_t)len);
	h->skip -= off;
	take = (size_t)MIN((uint64_t)(len - off), r->len - r->written);
	if (take) {
		e = r->sink.write(r->sink.ud, r->offset + r->written, data + off, take);
		if (e < 0) {
			char buf[64];

			hop_stop(h, e == -ENOSPC ? FETCH_DISK_FULL : FETCH_IO, e, false);
			xfailure_words(&h->stop_f, "cannot store bytes at %llu: %s",
				       (unsigned long long)(r->offset + r->written),
				       strerror_r(-e, buf, sizeof(buf)));
			return 0;
		}
		r->written += take;
		h->got += take;
	}
	if (r->written == r->len && off + take < len) {
		/* A 200 with the whole file, or a longer range: the rest is not needed. */
		h->range_done = true;
		return 0;
	}
	return len;
}

static int hop_headers(struct xnet *n, struct xhop *h)
{
	struct curl_slist *l;
	char range[64];

	snprintf(range, sizeof(range), "Range: bytes=%llu-%llu", (unsigned long long)h->first,
		 (unsigned long long)h->last);
	l = curl_slist_append(NULL, range);
	if (!l || !curl_slist_append(l, "Accept-Encoding: identity"))
		goto fail;
	/* The token goes to the Hub's own origin only: a signed CDN URL must not carry it (S3
	 * answers 400), nor may it leak to another host (HUB_PROTOCOL.md 4.2). */
	if (n->token && n->endpoint[0] && http_same_origin(h->url, n->endpoint)) {
		size_t len = strlen(n->token) + sizeof("Authorization: Bearer ");
		_cleanup_free_ char *auth = malloc(len);
		bool ok;

		if (!auth)
			goto fail;
		snprintf(auth, len, "Authorization: Bearer %s", n->token);
		ok = curl_slist_append(l, auth) != NULL;
		explicit_bzero(auth, len);
		if (!ok)
			goto fail;
	}
	h->headers = l;
	return 0;
fail:
	curl_slist_free_all(l);
	return -ENOMEM;
}

static int hop_setup(struct xnet *n, struct xhop *h, bool fresh)
{
	CURL *e = h->easy;

	if (curl_easy_setopt(e, CURLOPT_URL, h->url) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_USERAGENT, n->user_agent) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
		return -ENOMEM;
	/* No FOLLOWLOCATION: redirects are ours, to keep each blob's target. */
	(void)curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
	(void)curl_easy_setopt(e, CURLOPT_PRIVATE, h);
	(void)curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	(void)curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
	(void)curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	(void)curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
	(void)curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
	(void)curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	/* Removing a handle mid-DNS must not wait for the resolver thread (xfer_free). */
	(void)curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
	(void)curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, n->connect_timeout_s);
	/* HTTP/2 where TLS offers it. No PIPEWAIT: it holds every new transfer to a host until
	 * its first connection shows whether it multiplexes, which over HTTP/1.1 means until
	 * that transfer ends (measured: 3 of 4 ranges waited behind a stalled one). */
	(void)curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	(void)curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)XFER_RECV_BUFFER);
	(void)curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	(void)curl_easy_setopt(e, CURLOPT_SHARE, n->share);
	/* After a stall the pooled connection may be the dead one. */
	(void)curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
	if (http_env_proxy_setopt(n->http_proxy, h->url, e) < 0)
		return -ENOMEM;
	return http_env_ca_setopt(&n->ca, e);
}

int xnet_hop_start(struct xfer *x, struct xreq *r, const char *url, unsigned redirects)
{
	struct xnet *n = x->net;
	struct xhop *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->x = x;
	h->r = r;
	h->redirects = redirects;
	h->gen = r->blob->gen;
	r->hop = h;
	h->url = strdup(url);
	h->easy = curl_easy_init();
	if (!h->url || !h->easy)
		goto fail;
	h->is_resolve = strcmp(url, r->url) == 0;
	h->from_target = !h->is_resolve;
	h->first = r->offset + r->written;
	h->last = r->offset + r->len - 1;
	h->last_io = now_usec();
	if (hop_headers(n, h) < 0 || hop_setup(n, h, r->fresh_connect) < 0 ||
	    curl_multi_add_handle(n->multi, h->easy) != CURLM_OK)
		goto fail;
	r->fresh_connect = false;
	x->es.resolves += h->is_resolve;
	return 0;
fail:
	curl_easy_cleanup(h->easy);
	h->easy = NULL;
	xnet_hop_free(h);
	return -ENOMEM;
}

/* Words and a reason for a transfer that ended without a usable reply. */
static void transport_failure(const struct xhop *h, CURLcode rc, struct xfailure *f)
{
	struct fetch_transport t = fetch_reason_from_curl(rc);
	char origin[128];

	*f = (struct xfailure){
		.reason = t.reason, .err = t.err, .transient = t.transient, .progressed = h->got > 0
	};
	xfailure_words(f, "%s: %s", xreply_origin(h->url, origin, sizeof(origin)),
		       h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
}

/* What the end of h (curl's result rc) means. *ret_done: the range is complete; else f is
 * filled for XVERDICT_FAIL and XVERDICT_RERESOLVE. */
static enum xverdict hop_verdict(struct xhop *h, CURLcode rc, struct xfailure *f, bool *ret_done)
{
	struct xreq *r = h->r;
	struct xreply rep;
	char origin[128];

	*ret_done = h->range_done || (rc == CURLE_OK && h->body_ok && r->written == r->len);
	if (*ret_done)
		return XVERDICT_FAIL;
	if (h->stopped) {
		*f = h->stop_f;
		return XVERDICT_FAIL;
	}
	if (rc != CURLE_OK) {
		transport_failure(h, rc, f);
		return XVERDICT_FAIL;
	}
	if (h->body_ok) {
		*f = (struct xfailure){ .reason = FETCH_PROTOCOL,
					.transient = true,
					.progressed = h->got > 0 };
		xfailure_words(f, "short body from %s: %llu of %llu bytes",
			       xreply_origin(h->url, origin, sizeof(origin)),
			       (unsigned long long)h->got,
			       (unsigned long long)(h->last - h->first + 1));
		return XVERDICT_FAIL;
	}
	rep = xreply_view(&h->rep);
	return xreply_classify(&rep, h->url, h->from_target, f);
}

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

	switch (hop_verdict(h, rc, &f, &done)) {
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

/* The engine thread ------------------------------------------------------------------------ */

static void limiter_resume(struct xfer *x, uint64_t now)
{
	struct xnet *n = x->net;

	for (int p = 0; p < XFER_PRIO_COUNT && n->paused; p++) {
		struct xreq *r, *next;

		/* A hop ended here takes only its own request off the running list. */
		for (r = x->running.head; r && (n->tokens > 0 || !n->rate); r = next) {
			struct xhop *h = r->hop;
			CURLcode rc;

			next = r->next;
			if ((int)r->prio != p || !h->paused)
				continue;
			h->paused = false;
			n->paused--;
			n->demand_paused -= h->paused_demand;
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

		next = r->next;
		if (h->paused || now - h->last_io < n->stall_usec)
			continue;
		x->es.stalls++;
		hop_stop(h, FETCH_STALL, 0, true);
		xfailure_words(&h->stop_f, "no data from %s for %llu s",
			       xreply_origin(h->url, origin, sizeof(origin)),
			       (unsigned long long)(n->stall_usec / USEC_PER_SEC));
		hop_ended(x, h, CURLE_OK); /* h->stopped says why it ended */
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

	for (struct xreq *r = x->running.head; r; r = r->next)
		if (!r->hop->paused)
			wake = MIN(wake, r->hop->last_io + n->stall_usec);
	if (n->paused && n->rate && n->tokens <= 0)
		wake = MIN(wake, now + (uint64_t)(1 - n->tokens) * USEC_PER_SEC / n->rate);
	ms = wake > now ? (int)DIV_ROUND_UP(wake - now, USEC_PER_MSEC) : 0;
	if (curl_multi_timeout(n->multi, &curl_ms) == CURLM_OK && curl_ms >= 0 && curl_ms < ms)
		ms = (int)curl_ms;
	return ms;
}

static void *engine_main(void *arg)
{
	struct xfer *x = arg;
	struct xnet *n = x->net;
	bool rate_changed;
	uint64_t rate;
	int running;

	while (!xq_intake(x, &rate_changed, &rate)) {
		uint64_t now = now_usec();

		if (rate_changed)
			limiter_set(n, rate);
		xq_backoff_due(x, now);
		limiter_refill(n, now);
		limiter_resume(x, now);
		xq_start(x);
		(void)curl_multi_perform(n->multi, &running);
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

/* Setup ------------------------------------------------------------------------------------- */

static struct xnet *xnet_free(struct xnet *n)
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
	return NULL;
}

static int xnet_new(const struct hub_config *cfg, const struct xfer_opts *o, unsigned slots,
		    struct xnet **ret)
{
	struct xnet *n = calloc(1, sizeof(*n));

	*ret = n;
	if (!n)
		return -ENOMEM;
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
	limiter_set(n, o->max_rate);
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

/* Public calls ------------------------------------------------------------------------------ */

int xfer_new(const struct hub_config *cfg, const struct xfer_opts *opts, struct xfer **ret)
{
	static const struct xfer_opts defaults;
	struct xfer *x;
	int e;

	*ret = NULL;
	if (!opts)
		opts = &defaults;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	x = calloc(1, sizeof(*x));
	if (!x || mutex_init(&x->lock) < 0) {
		free(x);
		curl_global_cleanup();
		return -ENOMEM;
	}
	xpolicy_init(&x->policy, opts);
	x->slots = opts->connections ? opts->connections : XFER_CONNECTIONS_DEFAULT;
	x->reserve = x->slots >= 4 ? MAX(1, x->slots / 8) : 0;
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
	e = pthread_create(&x->thread, NULL, engine_main, x);
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
		(void)curl_multi_wakeup(x->net->multi);
		pthread_mutex_unlock(&x->lock);
		pthread_join(x->thread, NULL);
	}
	x->net = xnet_free(x->net);
	x->blobs = resolve_cache_free(x->blobs);
	xreq_table_done(&x->ids);
	pthread_mutex_destroy(&x->lock);
	free(x);
	curl_global_cleanup();
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
	(void)curl_multi_wakeup(x->net->multi);
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
		(void)curl_multi_wakeup(x->net->multi);
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
	(void)curl_multi_wakeup(x->net->multi);
	pthread_mutex_unlock(&x->lock);
}

void xfer_get_stats(struct xfer *x, struct xfer_stats *ret)
{
	pthread_mutex_lock(&x->lock);
	*ret = x->stats;
	pthread_mutex_unlock(&x->lock);
}
