/* test_xfer_limit.c: the engine's token bucket: unlimited never waits, an empty bucket pauses,
 * a waiting demand transfer keeps the others paused, refills are bounded by the burst and by
 * a second, and the wake-up time pays the debt exactly. */
#include "fetch/xfer_limit.h"

#include "tests/unit/check.h"
#include "util/timeutil.h"

static void test_unlimited(void)
{
	struct xfer_limit l = { 0 };

	xfer_limit_set(&l, 0, 1000);
	xfer_limit_take(&l, 1 << 30);
	ASSERT_FALSE(xfer_limit_must_wait(&l, XFER_PRIO_BACKGROUND));
	ASSERT_TRUE(xfer_limit_due(&l, 1000) == UINT64_MAX);
}

static void test_bucket(void)
{
	struct xfer_limit l = { 0 };
	uint64_t t = 5 * USEC_PER_SEC, rate = 10 * 1024 * 1024; /* 10 MiB/s: burst 1 MiB */

	xfer_limit_set(&l, rate, t);
	ASSERT_TRUE(l.tokens == (int64_t)(rate / 10));
	ASSERT_FALSE(xfer_limit_must_wait(&l, XFER_PRIO_BACKGROUND));
	xfer_limit_take(&l, rate / 10 + 4096); /* overdraws: a debt of 4 KiB */
	ASSERT_TRUE(xfer_limit_must_wait(&l, XFER_PRIO_DEMAND));
	xfer_limit_pause(&l, true);
	/* the debt and one byte, at the rate */
	ASSERT_TRUE(xfer_limit_due(&l, t) == t + 4097 * USEC_PER_SEC / rate);
	/* 100 ms later the bucket holds 1 MiB less the debt: demand goes first */
	xfer_limit_refill(&l, t + USEC_PER_SEC / 10);
	ASSERT_FALSE(xfer_limit_must_wait(&l, XFER_PRIO_DEMAND));
	ASSERT_TRUE(xfer_limit_must_wait(&l, XFER_PRIO_BACKGROUND));
	xfer_limit_unpause(&l, true);
	ASSERT_FALSE(xfer_limit_must_wait(&l, XFER_PRIO_BACKGROUND));
	ASSERT_TRUE(xfer_limit_due(&l, t) == UINT64_MAX);
	/* a long idle spell refills at most the burst */
	xfer_limit_refill(&l, t + 60 * USEC_PER_SEC);
	ASSERT_TRUE(l.tokens == (int64_t)(rate / 10));
}

static void test_small_rate_burst(void)
{
	struct xfer_limit l = { 0 };

	/* the burst is never below two receive buffers */
	xfer_limit_set(&l, 1000, 0);
	ASSERT_TRUE(l.tokens == (int64_t)(2 * XFER_RECV_BUFFER_CAPPED));
}

int main(void)
{
	RUN(test_unlimited);
	RUN(test_bucket);
	RUN(test_small_rate_burst);
	return 0;
}
