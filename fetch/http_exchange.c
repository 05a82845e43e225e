/* http_exchange.c: one blocking HTTP exchange for metadata (revision, tree pages, access
 * checks) over the calling thread's curl easy handle: relative redirects followed, the token
 * kept to its origin, the headers the Hub protocol uses collected, transport failures in
 * words. Any thread; one handle per thread, kept between calls for its connections. Knows
 * nothing of repos, trees or the cache. */
#include "fetch/http_exchange.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "fetch/http.h"
#include "fetch/http_env.h"
#include "util/cleanup.h"
#include "util/log.h"

#define HTTP_BODY_MAX (64u << 20)
#define HTTP_MAX_REDIRECTS 5
#define HTTP_CONNECT_TIMEOUT_MAX 10L
#define HTTP_DEFAULT_TIMEOUT 10L

/* Headers kept from the final reply; names compared case-insensitively. */
static const struct {
	const char *name;
	size_t off;
} kept_headers[] = {
	{ "location", offsetof(struct http_response, location) },
	{ "etag", offsetof(struct http_response, etag) },
	{ "x-repo-commit", offsetof(struct http_response, x_repo_commit) },
	{ "x-linked-etag", offsetof(struct http_response, x_linked_etag) },
	{ "x-linked-size", offsetof(struct http_response, x_linked_size) },
	{ "content-range", offsetof(struct http_response, content_range) },
	{ "content-length", offsetof(struct http_response, content_length) },
	{ "link", offsetof(struct http_response, link) },
	{ "x-error-code", offsetof(struct http_response, x_error_code) },
	{ "x-error-message", offsetof(struct http_response, x_error_message) },
	{ "retry-after", offsetof(struct http_response, retry_after) },
	{ "ratelimit", offsetof(struct http_response, ratelimit) },
	{ "x-request-id", offsetof(struct http_response, x_request_id) },
	{ "date", offsetof(struct http_response, date) },
	{ "content-type", offsetof(struct http_response, content_type) },
	{ "x-xet-hash", offsetof(struct http_response, x_xet_hash) },
};

/* The request id falls back to these, in order (HUB_PROTOCOL.md 5). */
static const char *const request_id_fallbacks[] = { "x-amzn-trace-id", "x-amz-cf-id" };

/* One exchange's collection state; lives on http_request()'s stack. */
struct exchange {
	struct http_response *resp;
	char *request_id_alt[ARRAY_SIZE(request_id_fallbacks)];
	size_t body_cap;
	const char *proxy_named; /* for describe_failure(), http:// URLs only; borrowed */
	bool too_big;
	bool oom;
};

static char **header_slot(struct http_response *r, size_t i)
{
	return (char **)((char *)r + kept_headers[i].off);
}

static void exchange_clear_headers(struct exchange *x)
{
	for (size_t i = 0; i < ARRAY_SIZE(kept_headers); i++) {
		char **slot = header_slot(x->resp, i);

		free(*slot);
		*slot = NULL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(x->request_id_alt); i++) {
		free(x->request_id_alt[i]);
		x->request_id_alt[i] = NULL;
	}
}

static void exchange_clear_body(struct exchange *x)
{
	free(x->resp->body);
	x->resp->body = NULL;
	x->resp->body_len = 0;
	x->body_cap = 0;
}

static bool store_header(char **slot, const char *v, size_t n)
{
	char *copy = strndup(v, n);

	if (!copy)
		return false;
	free(*slot);
	*slot = copy;
	return true;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct exchange *x = ud;
	size_t len = size * nitems, name_len, vlen;
	const char *colon, *v;

	/* A status line starts a new reply (1xx, a proxy's CONNECT reply): only the last
	 * reply's headers count. */
	if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
		exchange_clear_headers(x);
		return len;
	}
	colon = memchr(buf, ':', len);
	if (!colon)
		return len;
	name_len = (size_t)(colon - buf);
	v = colon + 1;
	vlen = len - name_len - 1;
	while (vlen && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ' ||
			v[vlen - 1] == '\t'))
		vlen--;
	for (size_t i = 0; i < ARRAY_SIZE(kept_headers); i++)
		if (strlen(kept_headers[i].name) == name_len &&
		    !strncasecmp(buf, kept_headers[i].name, name_len)) {
			if (!store_header(header_slot(x->resp, i), v, vlen))
				goto oom;
			return len;
		}
	for (size_t i = 0; i < ARRAY_SIZE(request_id_fallbacks); i++)
		if (strlen(request_id_fallbacks[i]) == name_len &&
		    !strncasecmp(buf, request_id_fallbacks[i], name_len)) {
			if (!store_header(&x->request_id_alt[i], v, vlen))
				goto oom;
			return len;
		}
	return len;
oom:
	x->oom = true;
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct exchange *x = ud;
	struct http_response *r = x->resp;
	size_t len = size * nmemb;

	if (len > HTTP_BODY_MAX - r->body_len) {
		x->too_big = true;
		return 0;
	}
	if (r->body_len + len + 1 > x->body_cap) {
		size_t cap = x->body_cap ? x->body_cap : 4096;
		char *nb;

		while (cap < r->body_len + len + 1)
			cap *= 2;
		nb = realloc(r->body, cap);
		if (!nb) {
			x->oom = true;
			return 0;
		}
		r->body = nb;
		x->body_cap = cap;
	}
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return len;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;
/* Each thread keeps one easy handle between its exchanges, and with it the handle's
 * connection cache: a mount's revision call, its tree pages and its checks reuse one
 * connection to the Hub or a mirror, where a handle per call opened one each (over TLS, a
 * handshake each). Per thread, not a share of the process: libcurl's shared connection
 * cache is not thread-safe (its known bug 11.11). Freed at the thread's exit. */
static pthread_key_t handle_key;
static bool handle_key_ok;

static void handle_free(void *h)
{
	curl_easy_cleanup(h);
}

static void curl_init_once(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (curl_init_result == CURLE_OK)
		handle_key_ok = pthread_key_create(&handle_key, handle_free) == 0;
}

/* The calling thread's handle, made on first use; *ret_own: the caller frees it (it could
 * not be kept). NULL on OOM. */
static CURL *thread_handle(bool *ret_own)
{
	CURL *h = handle_key_ok ? pthread_getspecific(handle_key) : NULL;

	*ret_own = false;
	if (h)
		return h;
	h = curl_easy_init();
	if (h && (!handle_key_ok || pthread_setspecific(handle_key, h) != 0))
		*ret_own = true;
	return h;
}

/* The proxy as HTTP_PROXY names it, "[scheme://][user:password@]host[:port][/]", reduced to
 * host[:port]: the credentials never reach a log. */
static void proxy_host_of(const char *proxy, char *buf, size_t len)
{
	const char *p = strstr(proxy, "://"), *end, *at;

	p = p ? p + 3 : proxy;
	end = p + strcspn(p, "/?#");
	at = memrchr(p, '@', (size_t)(end - p));
	if (at)
		p = at + 1;
	snprintf(buf, len, "%.*s", (int)(end - p), p);
}

/* proxy: the proxy the request went to for certain (HTTP_PROXY, set by http_env_proxy_setopt(),
 * with no NO_PROXY to send some hosts direct), else NULL. A proxy that cannot be reached is
 * named as the culprit: "cannot connect to <the Hub>" would send the user after the Hub, with
 * the proxy's address only in curl's words. curl 7.88 cannot say which address a failed
 * connect tried (CURLINFO_USED_PROXY is 8.7), so a proxy curl chose itself (http_proxy,
 * ALL_PROXY) is named only when curl's code says "proxy". */
static void describe_failure(struct http_response *r, const char *host,
			     const struct fetch_transport *t, const char *curl_msg,
			     const char *curl_words, const char *proxy)
{
	static const char *const what[FETCH_REASON_MAX] = {
		[FETCH_DNS] = "cannot resolve the host name of",
		[FETCH_CONNECT] = "cannot connect to",
		[FETCH_TLS] = "TLS failure with",
		[FETCH_TIMEOUT] = "timed out talking to",
		[FETCH_PROTOCOL] = "malformed or broken reply from",
		[FETCH_IO] = "transfer failed with",
	};
	bool refused = t->reason == FETCH_CONNECT && !t->broke_off;
	const char *words = t->broke_off ? "connection broke off with" : what[t->reason];
	const char *why = curl_msg[0] ? curl_msg : curl_words;

	if (t->reason == FETCH_PROXY || (proxy && refused)) {
		char ph[128] = "";

		/* A proxy error is raised, never taken for an unreachable Hub (HUB_PROTOCOL §6). */
		r->net_reason = FETCH_PROXY;
		if (proxy) {
			proxy_host_of(proxy, ph, sizeof(ph));
			why = curl_words; /* curl's message would repeat the address */
		}
		snprintf(r->error, sizeof(r->error), "%s the proxy %.50s%sfor %.80s (%.60s)",
			 refused ? "cannot connect to" : "cannot resolve the host name of", ph,
			 proxy ? " (HTTP_PROXY) " : "", host, why);
		return;
	}
	snprintf(r->error, sizeof(r->error), "%s %.100s (%.100s)",
		 words ? words : "transfer failed with", host, why);
}

/* The request headers for url: identity encoding, the Accept asked, and the token when url is on its origin
 * (HUB_PROTOCOL.md 4.2, 5). -ENOMEM, -EINVAL for a token that would break the header. */
static int request_headers(const struct http_request *req, const char *url, struct curl_slist **ret)
{
	_cleanup_free_ char *auth = NULL;
	struct curl_slist *hdrs, *tmp;

	hdrs = curl_slist_append(NULL, "Accept-Encoding: identity");
	if (!hdrs)
		return -ENOMEM;
	if (req->accept) {
		_cleanup_free_ char *accept = NULL;

		if (strpbrk(req->accept, "\r\n") ||
		    asprintf(&accept, "Accept: %s", req->accept) < 0 ||
		    !(tmp = curl_slist_append(hdrs, accept))) {
			curl_slist_free_all(hdrs);
			return accept ? -ENOMEM : -EINVAL;
		}
		hdrs = tmp;
	}
	if (req->token && req->auth_origin && http_same_origin(url, req->auth_origin)) {
		for (const char *c = req->token; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f) {
				curl_slist_free_all(hdrs);
				return -EINVAL;
			}
		if (asprintf(&auth, "Authorization: Bearer %s", req->token) < 0)
			auth = NULL;
		tmp = auth ? curl_slist_append(hdrs, auth) : NULL;
		if (!tmp) {
			curl_slist_free_all(hdrs);
			return -ENOMEM;
		}
		hdrs = tmp;
	}
	*ret = hdrs;
	return 0;
}

static void set_options(CURL *h, const struct http_request *req, const char *url,
			struct exchange *x, struct curl_slist *hdrs, char *errbuf)
{
	long timeout = req->timeout_s > 0 ? req->timeout_s : HTTP_DEFAULT_TIMEOUT;

	(void)curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	(void)curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	(void)curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	(void)curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	(void)curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	(void)curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	(void)curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout);
	(void)curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, MIN(timeout, HTTP_CONNECT_TIMEOUT_MAX));
	(void)curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	(void)curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	(void)curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	(void)curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	if (req->user_agent)
		(void)curl_easy_setopt(h, CURLOPT_USERAGENT, req->user_agent);
	if (req->range)
		(void)curl_easy_setopt(h, CURLOPT_RANGE, req->range);
	if (req->method && !strcmp(req->method, "HEAD"))
		(void)curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
}

/* One hop: a single request to url, no redirect followed, through http_proxy if url is
 * http:// (NULL: curl's own choice), trusting ca. Returns 0 with a reply, or -errno with
 * x->resp->net_reason and x->resp->error set. */
static int exchange_once(CURL *h, const struct http_request *req, const char *http_proxy,
			 const struct http_env_ca *ca, const char *url, struct exchange *x)
{
	struct http_response *resp = x->resp;
	char curl_msg[CURL_ERROR_SIZE] = "", host[300];
	struct curl_slist *hdrs = NULL;
	CURLcode c;
	int r;

	exchange_clear_headers(x);
	exchange_clear_body(x);
	x->too_big = x->oom = false;
	/* keeps the connection cache: a relative redirect reuses the connection */
	curl_easy_reset(h);
	r = request_headers(req, url, &hdrs);
	if (r < 0) {
		resp->net_reason = FETCH_IO;
		snprintf(resp->error, sizeof(resp->error), "%s",
			 r == -EINVAL ? "the token holds a control character" : "out of memory");
		return r;
	}
	set_options(h, req, url, x, hdrs, curl_msg);
	if (http_env_proxy_setopt(http_proxy, url, h) < 0 || http_env_ca_setopt(ca, h) < 0) {
		resp->net_reason = FETCH_IO;
		snprintf(resp->error, sizeof(resp->error), "out of memory");
		r = -ENOMEM;
		goto out;
	}
	c = curl_easy_perform(h);
	http_url_host(url, host, sizeof(host));
	if (x->oom) {
		resp->net_reason = FETCH_IO;
		snprintf(resp->error, sizeof(resp->error), "out of memory");
		r = -ENOMEM;
	} else if (x->too_big) {
		resp->net_reason = FETCH_PROTOCOL;
		snprintf(resp->error, sizeof(resp->error), "reply body from %.200s exceeds %u MiB",
			 host, HTTP_BODY_MAX >> 20);
		r = -EBADMSG;
	} else if (c != CURLE_OK) {
		struct fetch_transport t = fetch_reason_from_curl(c);
		const char *proxy = strncasecmp(url, "http://", 7) == 0 ? x->proxy_named : NULL;

		resp->net_reason = t.reason;
		resp->net_transient = t.transient;
		describe_failure(resp, host, &t, curl_msg, curl_easy_strerror(c), proxy);
		r = t.err;
	} else {
		curl_off_t ttfb = 0, total = 0;

		(void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
		(void)curl_easy_getinfo(h, CURLINFO_STARTTRANSFER_TIME_T, &ttfb);
		(void)curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &total);
		resp->ttfb_us = ttfb;
		resp->total_us = total;
	}
out:
	(void)curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	(void)curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hdrs);
	return r;
}

static bool env_is_set(const char *name)
{
	const char *v = getenv(name);

	return v && *v;
}

static void exchange_finish(struct exchange *x)
{
	struct http_response *r = x->resp;

	for (size_t i = 0; i < ARRAY_SIZE(x->request_id_alt) && !r->x_request_id; i++)
		r->x_request_id = TAKE_PTR(x->request_id_alt[i]);
	for (size_t i = 0; i < ARRAY_SIZE(x->request_id_alt); i++) {
		free(x->request_id_alt[i]);
		x->request_id_alt[i] = NULL;
	}
	if (r->date) {
		time_t t = curl_getdate(r->date, NULL);

		r->date_s = t > 0 ? (long long)t : 0;
	}
	if (!r->body) {
		r->body = calloc(1, 1);
		r->body_len = 0;
	}
}

int http_request(const struct http_request *req, struct http_response *ret)
{
	struct exchange x = { .resp = ret };
	_cleanup_free_ char *url = NULL, *http_proxy = NULL;
	_cleanup_(http_env_ca_done) struct http_env_ca ca = { 0 };
	bool own;
	CURL *h;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!req->url) {
		ret->net_reason = FETCH_PROTOCOL;
		snprintf(ret->error, sizeof(ret->error), "no URL");
		return -EINVAL;
	}
	(void)pthread_once(&curl_once, curl_init_once);
	if (curl_init_result != CURLE_OK) {
		ret->net_reason = FETCH_IO;
		snprintf(ret->error, sizeof(ret->error), "libcurl failed to initialize");
		return -EIO;
	}
	url = strdup(req->url);
	if (!url)
		return -ENOMEM;
	/* Per call: a few getenv()s are nothing beside an exchange. */
	r = http_env_proxy(&http_proxy);
	if (r < 0)
		return r;
	if (!env_is_set("NO_PROXY") && !env_is_set("no_proxy"))
		x.proxy_named = http_proxy;
	r = http_env_ca(&ca);
	if (r < 0)
		return r;
	h = thread_handle(&own);
	if (!h)
		return -ENOMEM;
	for (unsigned hop = 0;; hop++) {
		char *next;

		log_debug("http: %s %s", req->method ? req->method : "GET", url);
		r = exchange_once(h, req, http_proxy, &ca, url, &x);
		if (r < 0)
			break;
		if (!req->follow_relative || !http_status_is_redirect(ret->status) ||
		    !http_url_is_relative(ret->location))
			break;
		if (hop == HTTP_MAX_REDIRECTS) {
			ret->net_reason = FETCH_PROTOCOL;
			snprintf(ret->error, sizeof(ret->error),
				 "more than %d redirects, the last to %s", HTTP_MAX_REDIRECTS,
				 ret->location);
			ret->status = 0;
			r = -EBADMSG;
			break;
		}
		next = http_url_join(url, ret->location);
		if (!next) {
			ret->net_reason = FETCH_PROTOCOL;
			snprintf(ret->error, sizeof(ret->error), "malformed redirect Location '%s'",
				 ret->location);
			ret->status = 0;
			r = -EBADMSG;
			break;
		}
		free(url);
		url = next;
	}
	if (own)
		curl_easy_cleanup(h);
	ret->effective_url = TAKE_PTR(url);
	exchange_finish(&x);
	if (r >= 0 && !ret->body)
		return -ENOMEM;
	if (r < 0)
		ret->status = 0;
	return r;
}

void http_response_done(struct http_response *r)
{
	struct exchange x = { .resp = r };

	if (!r)
		return;
	exchange_clear_headers(&x);
	free(r->body);
	free(r->effective_url);
	r->body = NULL;
	r->effective_url = NULL;
	r->body_len = 0;
}

const char *http_curl_version(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

	return v && v->version ? v->version : LIBCURL_VERSION;
}
