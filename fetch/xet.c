/* xet.c: the Xet read client's metadata exchanges (xet.h): the resolve probe, the read token
 * and its refresh, the reconstruction query with the v2-then-v1 choice. Blocking, on the
 * caller's thread, through http_exchange.c; the JSON is hub_json.c's. The Hub token goes to
 * the endpoint only; the CAS gets the Xet token only; xorb URLs get nothing (not here). */
#include "fetch/xet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/http.h"
#include "fetch/http_exchange.h"
#include "fetch/hub_json.h"
#include "fetch/xet_chunk.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/parse.h"

void xet_file_done(struct xet_file *f)
{
	if (!f)
		return;
	free(f->auth_url);
	free(f->recon_url);
	memset(f, 0, sizeof(*f));
}

static bool is_lower_hex64(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* A Xet reply's headers into ret; -EBADMSG with words naming what is missing. */
static int probe_xet_headers(const struct http_response *resp, const char *object,
			     struct xet_file *ret, struct hub_error *err)
{
	const char *missing = NULL;

	if (!is_lower_hex64(resp->x_xet_hash))
		missing = "an X-Xet-Hash of 64 lowercase hex digits";
	else if (!resp->x_linked_size ||
		 parse_uint(resp->x_linked_size, UINT64_MAX, &ret->size) < 0)
		missing = "a decimal X-Linked-Size";
	else if (!(ret->auth_url = http_link_rel(resp->link, "xet-auth")) ||
		 !(ret->recon_url = http_link_rel(resp->link, "xet-reconstruction-info")))
		missing = "absolute Link URLs rel=\"xet-auth\" and rel=\"xet-reconstruction-info\"";
	if (missing) {
		xet_file_done(ret);
		hub_error_set(err, FETCH_PROTOCOL, resp->status,
			      "the Hub says %s is stored on Xet but its reply lacks %s", object,
			      missing);
		return -EBADMSG;
	}
	memcpy(ret->hash, resp->x_xet_hash, XET_HEX_LEN);
	ret->is_xet = true;
	return 0;
}

int xet_probe(const struct hub_config *cfg, const struct hub_repo *repo, const char *commit,
	      const char *path, struct xet_file *ret, struct hub_error *err)
{
	_cleanup_free_ char *url = hub_resolve_url(cfg, repo, commit, path);
	struct hub_reply_ctx ctx = { .cfg = cfg };
	struct http_response resp;
	char object[600];
	int r;

	memset(ret, 0, sizeof(*ret));
	snprintf(object, sizeof(object), "'%.300s' of repo '%s'", path, repo->id);
	r = hub_check_online(cfg, object, err);
	if (r < 0)
		return r;
	if (!url)
		return -ENOMEM;
	struct http_request req = hub_metadata_request(cfg, url);

	req.range = "0-0";
	req.accept = XET_FILEINFO_TYPE ", */*";
	r = http_request(&req, &resp);
	if (r >= 0 && resp.status >= 200 && resp.status < 400) {
		bool xet = resp.status < 300 ? resp.content_type && strstr(resp.content_type,
									   XET_FILEINFO_TYPE) :
					       resp.x_xet_hash != NULL;

		r = xet ? probe_xet_headers(&resp, object, ret, err) : 0;
		if (r == 0)
			log_debug("xet: %s is %s%s", object, xet ? "on Xet as " : "a plain file",
				  xet ? ret->hash : "");
	} else {
		r = hub_reply_failure(&resp, r, object, &ctx, err);
	}
	http_response_done(&resp);
	return r;
}

int xet_token_fetch(const struct hub_config *cfg, const char *auth_url, struct xet_token *ret,
		    struct hub_error *err)
{
	struct hub_reply_ctx ctx = { .cfg = cfg };
	struct http_response resp;
	const char *object = "the Xet read token";
	int r = hub_check_online(cfg, object, err);

	if (r < 0)
		return r;
	/* The Hub token goes to the Hub's origin alone (http_request() checks). */
	struct http_request req = hub_metadata_request(cfg, auth_url);
	r = http_request(&req, &resp);
	if (r < 0 || resp.status < 200 || resp.status >= 300) {
		r = hub_reply_failure(&resp, r, object, &ctx, err);
	} else {
		r = hub_json_xet_token(resp.body, resp.body_len, ret);
		if (r == -EBADMSG)
			hub_error_set(err, FETCH_PROTOCOL, resp.status,
				      "malformed Xet read token from %.200s: not {accessToken, "
				      "casUrl, exp}",
				      auth_url);
	}
	http_response_done(&resp);
	return r;
}

/* The /v2 URL of a reconstruction (the JS client's rewrite of the Link's /v1/), or /v1 when
 * v1; malloc'd. */
static char *recon_url_for(const struct xet_token *tok, const char *recon_url,
			   const char *file_hash, bool v1)
{
	const char *at = recon_url ? strstr(recon_url, "/v1/reconstructions/") : NULL;
	char *url = NULL;

	if (at) {
		if (asprintf(&url, "%.*s/%s/reconstructions/%s", (int)(at - recon_url), recon_url,
			     v1 ? "v1" : "v2", at + strlen("/v1/reconstructions/")) < 0)
			url = NULL;
	} else if (recon_url) {
		url = strdup(recon_url);
	} else if (asprintf(&url, "%s/%s/reconstructions/%s", tok->cas_url, v1 ? "v1" : "v2",
			    file_hash) < 0) {
		url = NULL;
	}
	return url;
}

int xet_reconstruct(const struct hub_config *cfg, const struct xet_token *tok,
		    const char *recon_url, const char *file_hash, uint64_t first, uint64_t last,
		    struct xet_recon *ret, struct hub_error *err)
{
	struct hub_reply_ctx ctx = { .cfg = NULL };
	struct http_response resp = { .status = 0 };
	char object[120], range[48];
	int r = 0;

	snprintf(object, sizeof(object), "the reconstruction of Xet file %.64s", file_hash);
	snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)first,
		 (unsigned long long)last);
	r = hub_check_online(cfg, object, err);
	if (r < 0)
		return r;
	for (int v1 = 0;; v1 = 1) {
		_cleanup_free_ char *url = recon_url_for(tok, recon_url, file_hash, v1);

		if (!url)
			return -ENOMEM;
		struct http_request req = {
			.method = "GET",
			.url = url,
			/* The CAS gets the Xet token, on its own origin, and never the Hub's. */
			.token = tok->access_token,
			.auth_origin = url,
			.user_agent = cfg->user_agent,
			.timeout_s = cfg->timeout_s,
			.range = range,
		};
		http_response_done(&resp);
		r = http_request(&req, &resp);
		/* A CAS without /v2 says so with 404 or 501: ask /v1 once (hf_xet does), unless
		 * the Link named a URL without /v1/ in it (then there is no other to ask). */
		if (v1 || r < 0 || (resp.status != 404 && resp.status != 501) ||
		    (recon_url && !strstr(recon_url, "/v1/reconstructions/")))
			break;
		log_debug("xet: %s: /v2 answered %ld, asking /v1", object, resp.status);
	}
	if (r < 0 || resp.status < 200 || resp.status >= 300) {
		r = hub_reply_failure(&resp, r, object, &ctx, err);
	} else {
		const char *why = NULL;

		r = hub_json_xet_recon(resp.body, resp.body_len, ret, &why);
		if (r == -EBADMSG)
			hub_error_set(err, FETCH_PROTOCOL, resp.status, "malformed %s: %s", object,
				      why ? why : "not JSON");
	}
	http_response_done(&resp);
	return r;
}

static int count_chunk(void *ud, uint64_t index, const uint8_t *raw, size_t len)
{
	struct xet_fetched *f = ud;

	(void)index;
	(void)raw;
	f->chunks++;
	f->raw_bytes += len;
	return 0;
}

int xet_fetch_once(const struct hub_config *cfg, const struct xet_recon *r, size_t fetch,
		   struct xet_fetched *ret, struct hub_error *err)
{
	const struct xet_fetch *f = &r->fetches[fetch];
	struct xet_chunk_stream *st = NULL;
	struct http_response resp;
	char object[120], range[48];
	const char *why = NULL;
	int rc;

	memset(ret, 0, sizeof(*ret));
	snprintf(object, sizeof(object), "xorb %.64s", f->xorb);
	snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)f->byte_first,
		 (unsigned long long)f->byte_last);
	rc = hub_check_online(cfg, object, err);
	if (rc < 0)
		return rc;
	struct http_request req = {
		.method = "GET",
		.url = r->urls[f->url],
		/* No token at all: the URL is signed, and not the Hub's. */
		.user_agent = cfg->user_agent,
		.timeout_s = 60,
		.range = range,
	};
	rc = http_request(&req, &resp);
	if (rc < 0 || resp.status < 200 || resp.status >= 300) {
		rc = hub_reply_failure(&resp, rc, object, NULL, err);
	} else if (resp.status != 206) {
		hub_error_set(err, FETCH_PROTOCOL, resp.status,
			      "%s: HTTP %ld where 206 was asked for bytes %s", object, resp.status,
			      range);
		rc = -EBADMSG;
	}
	if (rc < 0) {
		http_response_done(&resp);
		return rc;
	}
	http_url_host(r->urls[f->url], ret->host, sizeof(ret->host));
	ret->bytes = resp.body_len;
	ret->total_us = resp.total_us;
	rc = xet_chunk_stream_new(f->chunk_end - f->chunk_start, count_chunk, ret, &st);
	if (rc == 0)
		rc = xet_chunk_stream_feed(st, resp.body, resp.body_len, &why);
	if (rc == 0)
		rc = xet_chunk_stream_end(st, &why);
	if (rc == -EBADMSG)
		hub_error_set(err, FETCH_PROTOCOL, resp.status, "%s sent %s", object, why);
	xet_chunk_stream_free(st);
	http_response_done(&resp);
	return rc;
}

int xet_auth_init(struct xet_auth *a, const char *auth_url)
{
	memset(a, 0, sizeof(*a));
	a->auth_url = strdup(auth_url);
	if (!a->auth_url)
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	return 0;
}

void xet_auth_done(struct xet_auth *a)
{
	if (!a || !a->auth_url)
		return;
	pthread_mutex_destroy(&a->lock);
	xet_token_done(&a->tok);
	free(a->auth_url);
	a->auth_url = NULL;
}

/* A copy of the kept token when it has more than the margin left; under a->lock. */
static int kept_copy(struct xet_auth *a, int64_t now, struct xet_token *ret)
{
	if (!a->tok.access_token || a->tok.exp - now <= XET_TOKEN_MARGIN_S)
		return -ENOENT;
	ret->access_token = strdup(a->tok.access_token);
	ret->cas_url = strdup(a->tok.cas_url);
	ret->exp = a->tok.exp;
	if (!ret->access_token || !ret->cas_url) {
		xet_token_done(ret);
		return -ENOMEM;
	}
	return 0;
}

int xet_auth_get(struct xet_auth *a, const struct hub_config *cfg, int64_t now,
		 struct xet_token *ret, uint64_t *ret_generation, struct hub_error *err)
{
	struct xet_token fresh = { .exp = 0 };
	int r;

	pthread_mutex_lock(&a->lock);
	r = kept_copy(a, now, ret);
	*ret_generation = a->generation;
	pthread_mutex_unlock(&a->lock);
	if (r != -ENOENT)
		return r;
	/* The exchange runs unlocked: a slow Hub must not hold the others' lock. */
	r = xet_token_fetch(cfg, a->auth_url, &fresh, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&a->lock);
	xet_token_done(&a->tok);
	a->tok = fresh;
	*ret_generation = ++a->generation;
	/* A token that expires within the margin is still used once: refusing it would only
	 * fetch the same one again. */
	r = kept_copy(a, a->tok.exp - XET_TOKEN_MARGIN_S - 1, ret);
	pthread_mutex_unlock(&a->lock);
	return r;
}

void xet_auth_refused(struct xet_auth *a, uint64_t generation)
{
	pthread_mutex_lock(&a->lock);
	if (a->generation == generation)
		xet_token_done(&a->tok);
	pthread_mutex_unlock(&a->lock);
}
