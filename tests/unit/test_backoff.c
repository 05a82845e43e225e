/* test_backoff.c: jittered exponential delays stay within their bounds and are spread out;
 * server-directed delays follow HUB_PROTOCOL.md 7. */
#include "fetch/backoff.h"

#include "tests/unit/check.h"
#include "util/timeutil.h"

#define SAMPLES 4000

static void test_bounds_and_spread(void)
{
	const uint64_t base = 1000000, cap = 8000000;
	struct backoff_rng rng;

	backoff_rng_init(&rng, 42);
	for (unsigned attempt = 1; attempt <= 8; attempt++) {
		uint64_t ceiling = base << (attempt - 1);
		uint64_t lo = UINT64_MAX, hi = 0, sum = 0;

		if (ceiling > cap)
			ceiling = cap;
		for (int i = 0; i < SAMPLES; i++) {
			uint64_t d = backoff_delay(&rng, attempt, base, cap);

			ASSERT_TRUE(d <= ceiling);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
			sum += d;
		}
		/* Full jitter: the whole interval is used, the mean sits near its middle. */
		ASSERT_TRUE(lo < ceiling / 20);
		ASSERT_TRUE(hi > ceiling - ceiling / 20);
		ASSERT_TRUE(sum / SAMPLES > ceiling * 4 / 10);
		ASSERT_TRUE(sum / SAMPLES < ceiling * 6 / 10);
	}
}

static void test_cap_and_overflow(void)
{
	struct backoff_rng rng;

	backoff_rng_init(&rng, 7);
	for (int i = 0; i < 1000; i++) {
		ASSERT_TRUE(backoff_delay(&rng, 5000, 1000000, 60000000) <= 60000000);
		ASSERT_TRUE(backoff_delay(&rng, 200, UINT64_MAX / 3, UINT64_MAX - 1) <=
			    UINT64_MAX - 1);
	}
	/* attempt 0 behaves as the first retry; a zero cap means no wait. */
	for (int i = 0; i < 1000; i++)
		ASSERT_TRUE(backoff_delay(&rng, 0, 500, 8000000) <= 500);
	ASSERT_U64_EQ(backoff_delay(&rng, 3, 1000000, 0), 0);
}

static void test_seeded_is_reproducible(void)
{
	struct backoff_rng a, b, c;
	int same = 0;

	backoff_rng_init(&a, 1234);
	backoff_rng_init(&b, 1234);
	backoff_rng_init(&c, 1235);
	for (int i = 0; i < 100; i++) {
		uint64_t va = backoff_rng_below(&a, 1000000), vb = backoff_rng_below(&b, 1000000);

		ASSERT_U64_EQ(va, vb);
		same += va == backoff_rng_below(&c, 1000000);
	}
	ASSERT_TRUE(same < 5);
	/* Unseeded states differ from each other. */
	backoff_rng_init(&a, 0);
	backoff_rng_init(&b, 0);
	ASSERT_TRUE(a.s != 0 && b.s != 0);
	ASSERT_TRUE(backoff_rng_below(&a, UINT64_MAX) != backoff_rng_below(&b, UINT64_MAX));
	ASSERT_U64_EQ(backoff_rng_below(&a, 0), 0);
}

static void test_server_delay(void)
{
	uint64_t d = 0;

	/* 429 with RateLimit r=0: t + 1 s, and it wins over Retry-After. */
	ASSERT_EQ(backoff_server_delay(429, "30", "\"resolvers\";r=0;t=5", &d), 1);
	ASSERT_U64_EQ(d, 6 * USEC_PER_SEC);
	ASSERT_EQ(backoff_server_delay(429, NULL, "\"api\";r=0;t=0", &d), 1);
	ASSERT_U64_EQ(d, 1 * USEC_PER_SEC);
	/* Quota left: RateLimit says nothing; Retry-After + 1 s applies. */
	ASSERT_EQ(backoff_server_delay(429, "3", "\"resolvers\";r=12;t=5", &d), 1);
	ASSERT_U64_EQ(d, 4 * USEC_PER_SEC);
	ASSERT_EQ(backoff_server_delay(503, "7", NULL, &d), 1);
	ASSERT_U64_EQ(d, 8 * USEC_PER_SEC);
	ASSERT_EQ(backoff_server_delay(500, "0", NULL, &d), 1);
	ASSERT_U64_EQ(d, 1 * USEC_PER_SEC);
	/* RateLimit is read on 429 only, as the official client does: a 503 waits for its
	 * Retry-After, and without one backs off as it would anyway. */
	d = 99;
	ASSERT_EQ(backoff_server_delay(500, NULL, "\"api\";r=0;t=9", &d), 0);
	ASSERT_EQ(backoff_server_delay(503, NULL, "\"api\";r=0;t=9", &d), 0);
	ASSERT_U64_EQ(d, 99);
	ASSERT_EQ(backoff_server_delay(503, "2", "\"api\";r=0;t=9", &d), 1);
	ASSERT_U64_EQ(d, 3 * USEC_PER_SEC);
	/* Only a retried status asks for a delay: a 501 or a 404 is not retried. */
	d = 99;
	ASSERT_EQ(backoff_server_delay(501, "5", NULL, &d), 0);
	ASSERT_EQ(backoff_server_delay(404, "5", "\"api\";r=0;t=9", &d), 0);
	ASSERT_EQ(backoff_server_delay(0, "5", NULL, &d), 0);
	ASSERT_U64_EQ(d, 99);
	/* The HTTP-date form and junk are ignored, as the official client does. */
	ASSERT_EQ(backoff_server_delay(503, "Wed, 21 Oct 2015 07:28:00 GMT", NULL, &d), 0);
	ASSERT_EQ(backoff_server_delay(429, "soon", "garbage", &d), 0);
	ASSERT_EQ(backoff_server_delay(429, NULL, NULL, &d), 0);
	/* Absurd values are clamped to a day. */
	ASSERT_EQ(backoff_server_delay(503, "99999999999", NULL, &d), 1);
	ASSERT_U64_EQ(d, 86401 * USEC_PER_SEC);
}

int main(void)
{
	RUN(test_bounds_and_spread);
	RUN(test_cap_and_overflow);
	RUN(test_seeded_is_reproducible);
	RUN(test_server_delay);
	return 0;
}
