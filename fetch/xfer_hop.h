/* xfer_hop.h: the engine's curl side, shared by its files: the multi handle with the
 * configuration every transfer takes (struct xnet), and one HTTP exchange of a request on an
 * easy handle (struct xhop). Module-internal; the only xfer header that includes curl.
 * Engine thread only. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include "fetch/http_env.h"
#include "fetch/xfer_limit.h"
#include "fetch/xfer_priv.h"

/* The curl side of the engine. Engine thread, but for multi's curl_multi_wakeup(). */
struct xnet {
	/* Immutable after xfer_new(). */
	char *endpoint, *token, *user_agent;
	char *http_proxy; /* HTTP_PROXY, or NULL: route as http_env_proxy() says */
	struct http_env_ca
		ca; /* SSL_CERT_FILE, SSL_CERT_DIR: trust as the metadata exchange does */
	long connect_timeout_s;
	uint64_t stall_usec;
	uint64_t range_align; /* xfer_opts.range_align */
	CURLM *multi;
	CURLSH *share; /* TLS sessions: a new connection resumes rather than a full handshake */

	struct xfer_limit limit; /* --max-rate */
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
	enum xfer_source source; /* the endpoint's origin or another, for the byte counts */
	uint64_t gen; /* the blob entry's gen when this hop began */
	unsigned redirects; /* hops before this one in the attempt */
	uint64_t first, last; /* bytes asked for (widened to range_align) */
	uint64_t lead; /* of those, bytes before the request's next one: dropped */

	struct xreply_buf rep; /* the reply's headers, reset by each status line */
	bool final; /* the final reply's headers are complete */
	bool body_ok; /* a final 2xx whose bytes are ours; other bodies are drained */
	uint64_t skip; /* bytes still to drop before the request's next one */
	uint64_t tail; /* bytes of a 206 past the request's range still to come: drained, so
			* the connection stays open for the next range */
	char *next_url; /* a redirect's Location made absolute */
	char errbuf[CURL_ERROR_SIZE];

	uint64_t got; /* bytes this hop passed to write() */
	uint64_t last_io; /* monotonic usec of the last byte from the server, or of unpause */
	bool paused; /* by the rate limiter */
	bool paused_demand; /* counted in limit.demand_paused */
	bool range_done; /* every byte arrived; the callbacks cut off the rest */
	bool stopped; /* a callback or the engine stopped the transfer; stop_f says why */
	bool resolved; /* this hop learnt the blob's target: the engine tells the waiters
			* (xreq_resolved()) once curl's callbacks have returned */
	struct xfailure stop_f;
};

/* Stops h for reason (the caller adds the words to h->stop_f); the engine ends it. */
void xnet_hop_stop(struct xhop *h, enum fetch_reason reason, int err, bool transient);
/* What the end of h (curl's result rc) means. *ret_done: the range is complete; else f is
 * filled for XVERDICT_FAIL and XVERDICT_RERESOLVE. */
enum xverdict xnet_hop_verdict(struct xhop *h, CURLcode rc, struct xfailure *f, bool *ret_done);
