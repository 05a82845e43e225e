/* check.h: the assertions of the C unit tests. A failed check prints the expression, both
 * values and file:line, and exits 1; a test binary that returns 0 passed.
 * Tests are functions registered in main() with RUN(fn). */
#pragma once

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_FAIL(...)                                         \
	do {                                                    \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                   \
		fputc('\n', stderr);                            \
		exit(1);                                        \
	} while (0)

#define ASSERT_TRUE(e)                                       \
	do {                                                 \
		if (!(e))                                    \
			CHECK_FAIL("expected true: %s", #e); \
	} while (0)

#define ASSERT_FALSE(e) ASSERT_TRUE(!(e))

/* Passes for r >= 0 (the project's success convention). */
#define ASSERT_OK(e)                                                                    \
	do {                                                                            \
		long long _r = (long long)(e);                                          \
		if (_r < 0)                                                             \
			CHECK_FAIL("%s failed: %lld (%s)", #e, _r, strerror((int)-_r)); \
	} while (0)

#define ASSERT_EQ(a, b)                                                       \
	do {                                                                  \
		long long _a = (long long)(a), _b = (long long)(b);           \
		if (_a != _b)                                                 \
			CHECK_FAIL("%s == %s: %lld != %lld", #a, #b, _a, _b); \
	} while (0)

#define ASSERT_U64_EQ(a, b)                                                              \
	do {                                                                             \
		uint64_t _a = (uint64_t)(a), _b = (uint64_t)(b);                         \
		if (_a != _b)                                                            \
			CHECK_FAIL("%s == %s: %" PRIu64 " != %" PRIu64, #a, #b, _a, _b); \
	} while (0)

#define ASSERT_STR_EQ(a, b)                                                                  \
	do {                                                                                 \
		const char *_a = (a), *_b = (b);                                             \
		if (!_a || !_b || strcmp(_a, _b) != 0)                                       \
			CHECK_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, _a ? _a : "(null)", \
				   _b ? _b : "(null)");                                      \
	} while (0)

#define ASSERT_NULL(p) ASSERT_TRUE((p) == NULL)
#define ASSERT_NOT_NULL(p) ASSERT_TRUE((p) != NULL)

#define RUN(fn)                                 \
	do {                                    \
		fprintf(stderr, "  %s\n", #fn); \
		fn();                           \
	} while (0)
