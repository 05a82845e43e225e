/* reason.h: why a fetch failed, in words a person understands. The errno says what the
 * caller does next; the reason travels beside it to logs and `hffs status`. Pure. */
#pragma once

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
/* True for failures worth retrying (network, proxy, 5xx, 429, timeouts, stalls, short
 * bodies). */
int fetch_reason_is_transient(enum fetch_reason r);
