/* test_reason.c: every reason has words, the errno of STYLE.md's table, the transient set
 * that fallbacks rely on, and fetch/'s one failure policy: the status and CURLcode maps and the
 * retried statuses (HUB_PROTOCOL.md 7). */
#include "fetch/reason.h"

#include <errno.h>

#include <curl/curl.h>

#include "tests/unit/check.h"
#include "util/cleanup.h"

static void test_words(void)
{
	for (int r = 0; r < FETCH_REASON_MAX; r++) {
		const char *s = fetch_reason_str((enum fetch_reason)r);

		ASSERT_NOT_NULL(s);
		ASSERT_TRUE(strlen(s) > 1);
		for (int o = 0; o < r; o++)
			ASSERT_TRUE(strcmp(s, fetch_reason_str((enum fetch_reason)o)) != 0);
	}
	ASSERT_STR_EQ(fetch_reason_str(FETCH_REASON_MAX), "unknown failure");
	ASSERT_STR_EQ(fetch_reason_str((enum fetch_reason)(-1)), "unknown failure");
	ASSERT_TRUE(strstr(fetch_reason_str(FETCH_GATED), "gated") != NULL);
	ASSERT_TRUE(strstr(fetch_reason_str(FETCH_DNS), "DNS") != NULL);
}

static void test_errno_table(void)
{
	static const struct {
		enum fetch_reason r;
		int err;
	} table[] = {
		{ FETCH_OK, 0 },
		{ FETCH_DNS, -EHOSTUNREACH },
		{ FETCH_CONNECT, -EHOSTUNREACH },
		{ FETCH_TLS, -EHOSTUNREACH },
		{ FETCH_TOKEN, -EACCES },
		{ FETCH_GATED, -EACCES },
		{ FETCH_FORBIDDEN, -EACCES },
		{ FETCH_NOT_FOUND, -ENOENT },
		{ FETCH_NO_REVISION, -ENOENT },
		{ FETCH_TIMEOUT, -ETIMEDOUT },
		{ FETCH_STALL, -ETIMEDOUT },
		{ FETCH_RATE_LIMITED, -EAGAIN },
		{ FETCH_SERVER, -EAGAIN },
		{ FETCH_PROTOCOL, -EBADMSG },
		{ FETCH_DISK_FULL, -ENOSPC },
		{ FETCH_OFFLINE, -ENETDOWN },
		{ FETCH_CANCELED, -ECANCELED },
		{ FETCH_BAD_HASH, -EIO },
		{ FETCH_IO, -EIO },
		{ FETCH_PROXY, -EHOSTUNREACH },
	};

	ASSERT_EQ((sizeof(table) / sizeof(table[0])), FETCH_REASON_MAX);
	for (size_t i = 0; i < (sizeof(table) / sizeof(table[0])); i++)
		ASSERT_EQ(fetch_reason_errno(table[i].r), table[i].err);
	ASSERT_EQ(fetch_reason_errno(FETCH_REASON_MAX), -EIO);
}

static void test_transient(void)
{
	static const enum fetch_reason yes[] = {
		FETCH_DNS,    FETCH_CONNECT,  FETCH_TIMEOUT,	  FETCH_STALL,
		FETCH_SERVER, FETCH_PROTOCOL, FETCH_RATE_LIMITED, FETCH_PROXY,
	};
	static const enum fetch_reason no[] = {
		FETCH_OK,	 FETCH_TLS,	  FETCH_TOKEN,	     FETCH_GATED,
		FETCH_FORBIDDEN, FETCH_NOT_FOUND, FETCH_NO_REVISION, FETCH_DISK_FULL,
		FETCH_OFFLINE,	 FETCH_CANCELED,  FETCH_BAD_HASH,    FETCH_IO,
	};

	ASSERT_EQ((sizeof(yes) / sizeof(yes[0])) + (sizeof(no) / sizeof(no[0])), FETCH_REASON_MAX);
	for (size_t i = 0; i < (sizeof(yes) / sizeof(yes[0])); i++)
		ASSERT_TRUE(fetch_reason_is_transient(yes[i]));
	for (size_t i = 0; i < (sizeof(no) / sizeof(no[0])); i++)
		ASSERT_FALSE(fetch_reason_is_transient(no[i]));
}

static void test_status_reason(void)
{
	static const struct {
		long status;
		const char *code;
		enum fetch_reason want;
	} table[] = {
		{ 200, NULL, FETCH_OK },
		{ 206, NULL, FETCH_OK },
		{ 302, NULL, FETCH_OK },
		{ 307, NULL, FETCH_OK },
		{ 401, NULL, FETCH_TOKEN },
		{ 401, "RepoNotFound", FETCH_NOT_FOUND },
		{ 401, "GatedRepo", FETCH_GATED },
		{ 403, NULL, FETCH_FORBIDDEN },
		{ 403, "GatedRepo", FETCH_GATED },
		{ 404, NULL, FETCH_NOT_FOUND },
		{ 404, "RepoNotFound", FETCH_NOT_FOUND },
		{ 404, "EntryNotFound", FETCH_NOT_FOUND },
		{ 404, "RevisionNotFound", FETCH_NO_REVISION },
		{ 408, NULL, FETCH_SERVER },
		{ 429, NULL, FETCH_RATE_LIMITED },
		{ 500, NULL, FETCH_SERVER },
		{ 503, NULL, FETCH_SERVER },
		{ 599, NULL, FETCH_SERVER },
		{ 400, NULL, FETCH_PROTOCOL },
		{ 416, NULL, FETCH_PROTOCOL },
		{ 0, NULL, FETCH_PROTOCOL },
		{ 600, NULL, FETCH_PROTOCOL },
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (fetch_reason_from_status(table[i].status, table[i].code) != table[i].want)
			CHECK_FAIL("status %ld code %s: got %d want %d", table[i].status,
				   table[i].code ? table[i].code : "-",
				   fetch_reason_from_status(table[i].status, table[i].code),
				   table[i].want);
}

/* The official client's http_backoff set, and nothing else. */
static void test_status_transient(void)
{
	static const long yes[] = { 408, 429, 500, 502, 503, 504 };
	static const long no[] = { 0, 200, 206, 302, 400, 401, 403, 404, 416, 501, 505, 599 };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++)
		ASSERT_TRUE(fetch_status_is_transient(yes[i]));
	for (size_t i = 0; i < ARRAY_SIZE(no); i++)
		ASSERT_FALSE(fetch_status_is_transient(no[i]));
}

static void test_curl_map(void)
{
	static const struct {
		CURLcode c;
		enum fetch_reason reason;
		int err;
		bool transient, broke_off;
	} table[] = {
		{ CURLE_COULDNT_RESOLVE_HOST, FETCH_DNS, -EHOSTUNREACH, true, false },
		{ CURLE_COULDNT_RESOLVE_PROXY, FETCH_PROXY, -EHOSTUNREACH, true, false },
		{ CURLE_COULDNT_CONNECT, FETCH_CONNECT, -EHOSTUNREACH, true, false },
		{ CURLE_OPERATION_TIMEDOUT, FETCH_TIMEOUT, -ETIMEDOUT, true, false },
		/* a transport failure mid-transfer, not a malformed reply */
		{ CURLE_RECV_ERROR, FETCH_CONNECT, -EHOSTUNREACH, true, true },
		{ CURLE_SEND_ERROR, FETCH_CONNECT, -EHOSTUNREACH, true, true },
		{ CURLE_GOT_NOTHING, FETCH_CONNECT, -EHOSTUNREACH, true, true },
		{ CURLE_HTTP2_STREAM, FETCH_CONNECT, -EHOSTUNREACH, true, true },
		{ CURLE_PARTIAL_FILE, FETCH_PROTOCOL, -EBADMSG, true, false },
		{ CURLE_WEIRD_SERVER_REPLY, FETCH_PROTOCOL, -EBADMSG, true, false },
		{ CURLE_SSL_CONNECT_ERROR, FETCH_TLS, -EHOSTUNREACH, true, false },
		{ CURLE_PEER_FAILED_VERIFICATION, FETCH_TLS, -EHOSTUNREACH, false, false },
		{ CURLE_SSL_CACERT_BADFILE, FETCH_TLS, -EHOSTUNREACH, false, false },
		{ CURLE_URL_MALFORMAT, FETCH_PROTOCOL, -EBADMSG, false, false },
		{ CURLE_TOO_MANY_REDIRECTS, FETCH_PROTOCOL, -EBADMSG, false, false },
		{ CURLE_OUT_OF_MEMORY, FETCH_IO, -ENOMEM, false, false },
		{ CURLE_WRITE_ERROR, FETCH_IO, -EIO, false, false },
		/* unnamed: a network failure, retried */
		{ CURLE_SSH, FETCH_CONNECT, -EHOSTUNREACH, true, false },
	};

	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		struct fetch_transport t = fetch_reason_from_curl(table[i].c);

		if (t.reason != table[i].reason || t.err != table[i].err ||
		    t.transient != table[i].transient || t.broke_off != table[i].broke_off)
			CHECK_FAIL("CURLcode %d: got reason %d err %d transient %d broke_off %d",
				   (int)table[i].c, t.reason, t.err, t.transient, t.broke_off);
	}
}

int main(void)
{
	RUN(test_words);
	RUN(test_errno_table);
	RUN(test_transient);
	RUN(test_status_reason);
	RUN(test_status_transient);
	RUN(test_curl_map);
	return 0;
}
