/* reason.c: fetch/'s failure policy: the words and errnos of failure reasons, and the one map
 * of each foreign code space onto them (HTTP status, libcurl's CURLcode) with whether a
 * failure is worth another attempt. Pure tables; any thread. The only file that names
 * CURLE_ codes; it uses curl's header for them and never calls curl. */
#include "fetch/reason.h"

#include <errno.h>
#include <string.h>

#include <curl/curl.h>

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

bool fetch_reason_is_transient(enum fetch_reason r)
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
		return true;
	default:
		return false;
	}
}

enum fetch_reason fetch_reason_from_status(long status, const char *x_error_code)
{
	bool gated = x_error_code && !strcmp(x_error_code, "GatedRepo");

	if (status >= 200 && status < 400)
		return FETCH_OK;
	switch (status) {
	case 401:
		if (gated)
			return FETCH_GATED;
		/* Anonymous requests for a missing or private repo get 401 RepoNotFound. */
		if (x_error_code && !strcmp(x_error_code, "RepoNotFound"))
			return FETCH_NOT_FOUND;
		return FETCH_TOKEN;
	case 403:
		return gated ? FETCH_GATED : FETCH_FORBIDDEN;
	case 404:
		if (x_error_code && !strcmp(x_error_code, "RevisionNotFound"))
			return FETCH_NO_REVISION;
		return FETCH_NOT_FOUND;
	case 408:
		return FETCH_SERVER;
	case 429:
		return FETCH_RATE_LIMITED;
	default:
		break;
	}
	if (status >= 500 && status < 600)
		return FETCH_SERVER;
	return FETCH_PROTOCOL;
}

bool fetch_status_is_transient(long status)
{
	switch (status) {
	case 408:
	case 429:
	case 500:
	case 502:
	case 503:
	case 504:
		return true;
	default:
		return false;
	}
}

struct fetch_transport fetch_reason_from_curl(int curl_code)
{
	struct fetch_transport t = { .reason = FETCH_CONNECT, .transient = true };

	switch ((CURLcode)curl_code) {
	case CURLE_COULDNT_RESOLVE_HOST:
		t.reason = FETCH_DNS;
		break;
	case CURLE_COULDNT_RESOLVE_PROXY:
		t.reason = FETCH_PROXY;
		break;
	case CURLE_COULDNT_CONNECT:
		break;
	case CURLE_OPERATION_TIMEDOUT:
		t.reason = FETCH_TIMEOUT;
		break;
	case CURLE_SSL_CONNECT_ERROR:
		t.reason = FETCH_TLS; /* the handshake broke off: worth another try */
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_USE_SSL_FAILED:
		/* a certificate or setup problem does not heal by itself */
		t.reason = FETCH_TLS;
		t.transient = false;
		break;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
		/* a transport failure mid-exchange: a network error, not a malformed reply */
		t.broke_off = true;
		break;
	case CURLE_PARTIAL_FILE:
		t.reason = FETCH_PROTOCOL; /* a short body: the next attempt resumes after it */
		break;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
		t.reason = FETCH_PROTOCOL;
		break;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_TOO_MANY_REDIRECTS:
		t.reason = FETCH_PROTOCOL; /* ours: the same request fails the same way */
		t.transient = false;
		break;
	case CURLE_OUT_OF_MEMORY:
		t.reason = FETCH_IO;
		t.err = -ENOMEM;
		t.transient = false;
		return t;
	case CURLE_FAILED_INIT:
	case CURLE_WRITE_ERROR:
	case CURLE_READ_ERROR:
	case CURLE_ABORTED_BY_CALLBACK:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		t.reason = FETCH_IO; /* local: a callback or the setup failed */
		t.transient = false;
		break;
	default:
		break; /* unnamed: a network failure, retried as Python retries network errors */
	}
	t.err = fetch_reason_errno(t.reason);
	return t;
}
