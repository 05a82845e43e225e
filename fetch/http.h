/* http.h: the parsers of the headers and URLs the Hub protocol uses, for the metadata exchange
 * (http_exchange.h) and the transfer engine (xfer) alike. Pure; any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* The absolute URL of the first link whose rel lists rel (rel="xet-auth", ...), malloc'd, or
 * NULL as for http_link_next(). */
char *http_link_rel(const char *link, const char *rel);
/* True when the Link header names a rel="next", whether or not its URL is usable: a pager
 * can tell "last page" from "a next page it cannot follow". */
bool http_link_has_next(const char *link);
/* Strips W/ and quotes from an ETag into buf. -EINVAL when empty or too long. */
int http_etag_normalize(const char *etag, char *buf, size_t len);

/* True when both URLs have the same scheme, host and port (default ports filled in). */
bool http_same_origin(const char *a, const char *b);
/* "host", or "host:port" when the port is not the scheme's default, of an absolute URL into
 * buf (for words); "(malformed URL)" when url cannot be parsed. */
void http_url_host(const char *url, char *buf, size_t len);
/* True for a Location with neither a scheme nor a host ("/path", "path", "?q"): a redirect
 * on the same origin. False for NULL or "". */
bool http_url_is_relative(const char *location);
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
