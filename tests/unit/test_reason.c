/* test_reason.c: every reason has words, the errno of STYLE.md's table, and the transient set
 * that retry loops rely on. */
#include "fetch/reason.h"

#include <errno.h>

#include "tests/unit/check.h"

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

int main(void)
{
	RUN(test_words);
	RUN(test_errno_table);
	RUN(test_transient);
	return 0;
}
