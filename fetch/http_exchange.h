/* http_exchange.h: one blocking HTTP exchange for metadata (revision, tree pages, access
 * checks). Any thread; http_request() blocks for up to its timeout. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "fetch/reason.h"

struct http_request {
	const char *method; /* "GET" or "HEAD" */
	const char *url;
	const char *token; /* Authorization: Bearer, sent only when auth_origin matches url */
	const char *auth_origin; /* URL whose scheme://host:port may receive the token */
	const char *user_agent;
	const char *range; /* "a-b" or NULL */
	const char *accept; /* Accept header value, or NULL for none */
	long timeout_s; /* whole exchange; connect timeout is min(timeout_s, 10) */
	bool follow_relative; /* follow redirects whose Location has no host (token kept) */
};

struct http_response {
	long status; /* 0 when no reply arrived */
	char *body; /* NUL-terminated, malloc'd (may be empty, never NULL on 0) */
	size_t body_len;
	char *effective_url; /* after relative redirects */
	/* Headers (malloc'd, NULL when absent), quotes and W/ kept as sent. */
	char *location, *etag, *x_repo_commit, *x_linked_etag, *x_linked_size, *content_range,
		*content_length, *link, *x_error_code, *x_error_message, *retry_after, *ratelimit,
		*x_request_id, *date, *content_type, *x_xet_hash;
	long long date_s; /* the reply's Date as unix seconds, 0 when absent or unreadable */
	long long ttfb_us, total_us; /* the final hop: request sent to first byte, and to the end */
	enum fetch_reason net_reason; /* transport failure reason when status == 0 */
	bool net_transient; /* that failure may pass: another attempt is worth it */
	char error[256]; /* words for a transport failure */
};

/* Performs req on the calling thread's curl easy handle (kept between calls, so the thread's
 * exchanges reuse their connections), with Accept-Encoding: identity, and the proxy and
 * CA variables as the official client reads them, read at each call (HUB_PROTOCOL.md 6:
 * HTTP_PROXY too, unless REQUEST_METHOD is set; SSL_CERT_FILE and SSL_CERT_DIR), by the
 * helpers of http_env.h that xfer uses too. Follows at most 5 relative redirects when asked
 * (more: -EBADMSG); ret's headers are the final reply's, names matched case-insensitively,
 * the last value of a repeated header kept; x_request_id falls back to X-Amzn-Trace-Id, then
 * X-Amz-Cf-Id. Returns 0 when a reply arrived (any status), else -errno of net_reason
 * (-EHOSTUNREACH, -ETIMEDOUT, -EBADMSG, -EIO) with ret->error set (words naming the host,
 * and the proxy when it is HTTP_PROXY's and could not be reached), or -ENOMEM, -EINVAL (no
 * URL, or a token with control characters, which is never sent). Bodies above 64 MiB are
 * -EBADMSG. ret must be released with http_response_done() either way. */
int http_request(const struct http_request *req, struct http_response *ret);
/* Frees r's strings; r may then be reused. Takes NULL. */
void http_response_done(struct http_response *r);
/* libcurl's version ("7.88.1"), for user agents. Never NULL. */
const char *http_curl_version(void);
