/* xfer_hop.c: one HTTP exchange of a transfer on a curl easy handle: the request's headers
 * (Range, the token to the Hub's origin only), the handle's options, the callbacks that
 * collect the reply's headers and stream a usable body to the sink (through the rate
 * limiter), and what the end of the exchange means. Engine thread only. The callbacks never
 * end an exchange nor touch the request queues: they record, and the engine acts. */
#include "fetch/xfer_hop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fetch/http.h"
#include "util/cleanup.h"
#include "util/timeutil.h"

void xnet_hop_free(struct xhop *h)
{
	struct xnet *n = h->x->net;

	if (h->paused)
		xfer_limit_unpause(&n->limit, h->paused_demand);
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
		h->resolved = true;
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
	/* A widened range (range_align): the bytes before the request's are dropped like a
	 * 200's, and those after it in a 206 are drained (a 200 is cut at the request's end). */
	h->skip += h->lead;
	if (rep.status == 206)
		h->tail = h->last - (r->offset + r->len - 1);
	h->body_ok = true;
	if (h->is_resolve && r->blob->resolver == r) {
		/* The resolve URL serves the bytes itself (a small file): it is the target. */
		(void)resolve_set_target(r->blob, h->url, hop_server_date(h), now_realtime_usec());
		h->resolved = true;
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

void xnet_hop_stop(struct xhop *h, enum fetch_reason reason, int err, bool transient)
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
	if (xfer_limit_must_wait(&n->limit, r->prio)) {
		h->paused = true;
		h->paused_demand = r->prio == XFER_PRIO_DEMAND;
		xfer_limit_pause(&n->limit, h->paused_demand);
		return CURL_WRITEFUNC_PAUSE;
	}
	h->last_io = now_usec();
	xfer_limit_take(&n->limit, len);
	h->x->es.bytes += len;
	h->x->es.bytes_from[h->source] += len;
	off = (size_t)MIN(h->skip, (uint64_t)len);
	h->skip -= off;
	take = (size_t)MIN((uint64_t)(len - off), r->len - r->written);
	if (take) {
		e = r->sink.write(r->sink.ud, r->offset + r->written, data + off, take);
		if (e < 0) {
			char buf[64];

			xnet_hop_stop(h, e == -ENOSPC ? FETCH_DISK_FULL : FETCH_IO, e, false);
			xfailure_words(&h->stop_f, "cannot store bytes at %llu: %s",
				       (unsigned long long)(r->offset + r->written),
				       strerror_r(-e, buf, sizeof(buf)));
			return 0;
		}
		r->written += take;
		h->got += take;
	}
	if (r->written == r->len && off + take < len) {
		size_t extra = len - off - take;

		/* The aligned tail of our own range: read to its end, keeping the connection. */
		if (extra <= h->tail) {
			h->tail -= extra;
			return len;
		}
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
		goto out_free_headers;
	/* The token goes to the Hub's own origin only: a signed CDN URL must not carry it (S3
	 * answers 400), nor may it leak to another host (HUB_PROTOCOL.md 4.2). */
	if (n->token && n->endpoint[0] && http_same_origin(h->url, n->endpoint)) {
		size_t len = strlen(n->token) + sizeof("Authorization: Bearer ");
		_cleanup_free_ char *auth = malloc(len);
		bool ok;

		if (!auth)
			goto out_free_headers;
		snprintf(auth, len, "Authorization: Bearer %s", n->token);
		ok = curl_slist_append(l, auth) != NULL;
		explicit_bzero(auth, len);
		if (!ok)
			goto out_free_headers;
	}
	h->headers = l;
	return 0;
out_free_headers:
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
	(void)curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)xfer_limit_chunk(&n->limit));
	(void)curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	(void)curl_easy_setopt(e, CURLOPT_SHARE, n->share);
	/* After a stall the pooled connection may be the dead one. */
	(void)curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
	if (http_env_proxy_setopt(n->http_proxy, h->url, e) < 0)
		return -ENOMEM;
	return http_env_ca_setopt(&n->ca, e);
}

/* The bytes to ask for: the request's missing ones, widened to multiples of range_align but
 * not past EOF, so every range a mirror sees (a first try, a resume after a break, a cut)
 * covers whole slices of its cache and any two clients ask identical ranges. */
static void hop_range(const struct xnet *n, const struct xreq *r, struct xhop *h)
{
	uint64_t a = n->range_align, next = r->offset + r->written, end = r->offset + r->len;

	h->first = next;
	h->last = end - 1;
	if (!a)
		return;
	h->first = next - next % a;
	if (end % a)
		end = MIN(end - end % a + a, r->blob_size);
	h->last = end - 1;
	h->lead = next - h->first;
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
		goto out_free_hop;
	h->is_resolve = strcmp(url, r->url) == 0;
	h->from_target = !h->is_resolve;
	h->source = n->endpoint[0] && !http_same_origin(h->url, n->endpoint) ? XFER_SOURCE_CDN :
									       XFER_SOURCE_HUB;
	hop_range(n, r, h);
	h->last_io = now_usec();
	if (hop_headers(n, h) < 0 || hop_setup(n, h, r->fresh_connect) < 0 ||
	    curl_multi_add_handle(n->multi, h->easy) != CURLM_OK)
		goto out_free_hop;
	r->fresh_connect = false;
	x->es.resolves += h->is_resolve;
	return 0;
out_free_hop:
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

enum xverdict xnet_hop_verdict(struct xhop *h, CURLcode rc, struct xfailure *f, bool *ret_done)
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
