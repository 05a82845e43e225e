/* http.h: one blocking HTTP exchange for metadata (revision, tree pages), and the parsers of
 * the headers the Hub protocol uses. The transfer engine (xfer) uses the parsers too.
 * Any thread; http_request() blocks for up to its timeout. One of two curl users. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch/reason.h"

struct http_request {
	const char *method; /* "GET" or "HEAD" */
	const char *url;
	const char *token; /* Authorization: Bearer, sent only when auth_origin matches url */
	const char *auth_origin; /* URL whose scheme://host:port may receive the token */
	const char *user_agent;
	const char *range; /* "a-b" or NULL */
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
		*x_request_id;
	enum fetch_reason net_reason; /* transport failure reason when status == 0 */
	bool net_transient; /* that failure may pass: another attempt is worth it */
	char error[256]; /* words for a transport failure */
};

/* Performs req on its own curl easy handle, with Accept-Encoding: identity, and the proxy and
 * CA variables as the official client reads them, read at each call (HUB_PROTOCOL.md 6:
 * HTTP_PROXY too, unless REQUEST_METHOD is set; SSL_CERT_FILE and SSL_CERT_DIR), by the
 * helpers of http_priv.h that xfer uses too. Follows at most 5 relative redirects when asked
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

/* 301, 302, 303, 307 and 308: the statuses whose Location is followed. */
bool http_status_is_redirect(long status);

/* "bytes a-b/total" (total may be "*"; then *ret_total = UINT64_MAX). -EBADMSG. */
int http_parse_content_range(const char *v, uint64_t *ret_first, uint64_t *ret_last,
			     uint64_t *ret_total);
/* Numeric Retry-After seconds; the HTTP-date form is -EINVAL (ignored, as the official
 * client does). */
int http_parse_retry_after(const char *v, uint64_t *ret_seconds);
/* RateLimit: "<bucket>";r=<remaining>;t=<seconds>. -EINVAL. */
int http_parse_ratelimit(const char *v, uint64_t *ret_remaining, uint64_t *ret_reset_seconds);
/* The absolute URL of rel="next" in a Link header, malloc'd, or NULL (none, a relative or
 * malformed URL, OOM). */
char *http_link_next(const char *link);
/* True when the Link header names a rel="next", whether or not its URL is usable: a pager
 * can tell "last page" from "a next page it cannot follow". */
bool http_link_has_next(const char *link);
/* Strips W/ and quotes from an ETag into buf. -EINVAL when empty or too long. */
int http_etag_normalize(const char *etag, char *buf, size_t len);

/* True when both URLs have the same scheme, host and port (default ports filled in). */
bool http_same_origin(const char *a, const char *b);
/* Resolves a Location against base: an absolute Location is copied, a path-only one keeps
 * base's scheme://host:port and (as the official client does, HUB_PROTOCOL.md 4.1) its own
 * query; "//host/p" takes base's scheme; "p", "../p" and "?q" resolve as RFC 3986 5.2 (dot
 * segments removed). malloc'd, or NULL on a malformed input (whitespace or control characters
 * in the Location, a non-http(s)-shaped URL) or OOM. */
char *http_url_join(const char *base, const char *location);
/* Expiry (unix seconds) of a signed URL: X-Amz-Date + X-Amz-Expires (S3) or Expires=
 * (CloudFront). -ENOENT when the URL carries neither, -EBADMSG when its value is malformed. */
int http_signed_url_expiry(const char *url, uint64_t *ret_unix);
/* Percent-encodes a repo file path as Python quote(path): unreserved and '/' kept; every
 * other byte (UTF-8 included) as %XX, uppercase. malloc'd; NULL on OOM or a NULL path. */
char *http_escape_path(const char *path);
/* Percent-encodes one segment ('/' encoded too), for revisions: "refs/pr/1" -> "refs%2Fpr%2F1". */
char *http_escape_segment(const char *s);
