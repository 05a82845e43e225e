/* reason.h: why a fetch failed, in words a person understands, and fetch/'s one failure
 * policy: the only map of libcurl's CURLcode and of HTTP statuses onto reasons, and the one
 * answer to "is this worth another attempt". The errno says what the caller does next; the
 * reason travels beside it to logs and `hffs status`. Pure; any thread. */
#pragma once

#include <stdbool.h>

enum fetch_reason {
	FETCH_OK,
	FETCH_DNS, /* host name did not resolve */
	FETCH_CONNECT, /* connection refused or unreachable */
	FETCH_TLS, /* TLS handshake or certificate */
	FETCH_TOKEN, /* 401: no token, or an invalid one */
	FETCH_GATED, /* 401/403 GatedRepo: access not approved */
	FETCH_FORBIDDEN, /* 403 otherwise (disabled repo, expired signed URL at the end) */
	FETCH_NOT_FOUND, /* 404 RepoNotFound / EntryNotFound */
	FETCH_NO_REVISION, /* 404 RevisionNotFound */
	FETCH_TIMEOUT, /* connect or request timeout */
	FETCH_STALL, /* no bytes for the stall timeout */
	FETCH_RATE_LIMITED, /* 429 */
	FETCH_SERVER, /* 5xx */
	FETCH_PROTOCOL, /* malformed reply: short body, wrong range, bad JSON */
	FETCH_DISK_FULL, /* the cache disk is full */
	FETCH_OFFLINE, /* offline mode: the network is not used */
	FETCH_CANCELED, /* shutdown */
	FETCH_BAD_HASH, /* content differs from its content id */
	FETCH_IO, /* local I/O error */
	FETCH_PROXY, /* the proxy (HTTP_PROXY, ...) cannot be resolved or reached */
	FETCH_REASON_MAX,
};

/* Short words: "DNS failure", "gated repo: access not approved", ... Never NULL. */
const char *fetch_reason_str(enum fetch_reason r);
/* The errno of STYLE.md's table: NOT_FOUND/NO_REVISION -ENOENT, TOKEN/GATED/FORBIDDEN -EACCES,
 * RATE_LIMITED/SERVER -EAGAIN, TIMEOUT/STALL -ETIMEDOUT, DISK_FULL -ENOSPC, PROTOCOL -EBADMSG,
 * CANCELED -ECANCELED, DNS/CONNECT/TLS/PROXY -EHOSTUNREACH, OFFLINE -ENETDOWN, else -EIO. */
int fetch_reason_errno(enum fetch_reason r);
/* True for kinds of failure that pass (network, proxy, 5xx, 429, timeouts, stalls, short
 * bodies): a caller may fall back to what it has (fs/snapshot.c serves the cached commit)
 * or try later. Whether one reply or one transfer error is retried is the finer answer of
 * fetch_status_is_transient() and fetch_reason_from_curl(). */
bool fetch_reason_is_transient(enum fetch_reason r);

/* Maps a reply to a reason: 401 + X-Error-Code GatedRepo -> GATED, 404 RevisionNotFound ->
 * NO_REVISION, 404 -> NOT_FOUND, 401 -> TOKEN (or NOT_FOUND for RepoNotFound), 403 GatedRepo
 * -> GATED, 403 -> FORBIDDEN, 429 -> RATE_LIMITED, 408/5xx -> SERVER, 2xx/3xx -> OK,
 * other 4xx -> PROTOCOL. x_error_code may be NULL. */
enum fetch_reason fetch_reason_from_status(long status, const char *x_error_code);
/* Whether a reply with this status is retried: 408, 429, 500, 502, 503 and 504, the set of
 * the official client's http_backoff (HUB_PROTOCOL.md 7). Other 5xx (501, 505, ...) say the
 * server cannot do what was asked: retrying does not help. */
bool fetch_status_is_transient(long status);

/* What a libcurl transfer error means (the one CURLcode map; reason.c is the only file that
 * names CURLE_ codes). */
struct fetch_transport {
	enum fetch_reason reason;
	int err; /* the -errno to report: fetch_reason_errno(reason), -ENOMEM for curl's OOM */
	bool transient; /* another attempt may succeed */
	bool broke_off; /* a connection was up and broke off: reset, closed, stream error */
};

/* Maps curl_code, a CURLcode other than CURLE_OK, as the official client retries
 * (HUB_PROTOCOL.md 7: timeouts, network errors, protocol errors): DNS, proxy name, connect
 * refusal, timeout, a connection that broke off (reset, closed without a reply, HTTP/2 stream
 * error: CONNECT), a short body or a malformed reply (PROTOCOL) and a TLS handshake that
 * broke off (TLS) are transient; a certificate or TLS setup problem (TLS), a bad URL or
 * scheme, too many redirects (PROTOCOL) and local failures (IO) are not. A code not named
 * here is taken for a transient network failure (CONNECT). */
struct fetch_transport fetch_reason_from_curl(int curl_code);
