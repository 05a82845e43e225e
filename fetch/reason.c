/* reason.c: the words and errnos of fetch failure reasons. Pure tables; any thread.
 * Knows nothing of HTTP: http.c maps statuses and transport errors onto these. */
#include "fetch/reason.h"

#include <errno.h>

static const char *const reason_words[FETCH_REASON_MAX] = {
	[FETCH_OK] = "ok",
	[FETCH_DNS] = "DNS failure: host name did not resolve",
	[FETCH_CONNECT] = "connection refused or host unreachable",
	[FETCH_TLS] = "TLS handshake or certificate failure",
	[FETCH_TOKEN] = "token missing or rejected",
	[FETCH_GATED] = "gated repo: access not approved",
	[FETCH_FORBIDDEN] = "access forbidden",
	[FETCH_NOT_FOUND] = "not found",
	[FETCH_NO_REVISION] = "revision not found",
	[FETCH_TIMEOUT] = "timed out",
	[FETCH_STALL] = "transfer stalled",
	[FETCH_RATE_LIMITED] = "rate limited by the server",
	[FETCH_SERVER] = "server error",
	[FETCH_PROTOCOL] = "malformed reply",
	[FETCH_DISK_FULL] = "cache disk full",
	[FETCH_OFFLINE] = "offline mode",
	[FETCH_CANCELED] = "canceled",
	[FETCH_BAD_HASH] = "content does not match its hash",
	[FETCH_IO] = "local I/O error",
	[FETCH_PROXY] = "proxy failure: the proxy cannot be resolved or reached",
};

const char *fetch_reason_str(enum fetch_reason r)
{
	if ((unsigned)r >= FETCH_REASON_MAX || !reason_words[r])
		return "unknown failure";
	return reason_words[r];
}

int fetch_reason_errno(enum fetch_reason r)
{
	switch (r) {
	case FETCH_OK:
		return 0;
	case FETCH_NOT_FOUND:
	case FETCH_NO_REVISION:
		return -ENOENT;
	case FETCH_TOKEN:
	case FETCH_GATED:
	case FETCH_FORBIDDEN:
		return -EACCES;
	case FETCH_RATE_LIMITED:
	case FETCH_SERVER:
		return -EAGAIN;
	case FETCH_TIMEOUT:
	case FETCH_STALL:
		return -ETIMEDOUT;
	case FETCH_DISK_FULL:
		return -ENOSPC;
	case FETCH_PROTOCOL:
		return -EBADMSG;
	case FETCH_CANCELED:
		return -ECANCELED;
	case FETCH_DNS:
	case FETCH_CONNECT:
	case FETCH_TLS:
	case FETCH_PROXY:
		return -EHOSTUNREACH;
	case FETCH_OFFLINE:
		return -ENETDOWN;
	case FETCH_BAD_HASH:
	case FETCH_IO:
	case FETCH_REASON_MAX:
		break;
	}
	return -EIO;
}

int fetch_reason_is_transient(enum fetch_reason r)
{
	switch (r) {
	case FETCH_DNS:
	case FETCH_CONNECT:
	case FETCH_PROXY:
	case FETCH_TIMEOUT:
	case FETCH_STALL:
	case FETCH_RATE_LIMITED:
	case FETCH_SERVER:
	case FETCH_PROTOCOL:
		return 1;
	default:
		return 0;
	}
}
