/* test_readstats.c: the read counters: a latency falls in the first bucket whose bound it
 * does not pass; hits, misses and errors are counted apart, each once in the histogram. */
#include "fs/readstats.h"

#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"
#include "util/timeutil.h"

static void test_buckets(void)
{
	ASSERT_EQ(readstats_bucket(0), 0);
	ASSERT_EQ(readstats_bucket(50), 0); /* le: a bound is inclusive */
	ASSERT_EQ(readstats_bucket(51), 1);
	ASSERT_EQ(readstats_bucket(1000000), 13);
	ASSERT_EQ(readstats_bucket(60000000), READSTATS_BOUNDS - 1);
	ASSERT_EQ(readstats_bucket(60000001), READSTATS_BOUNDS); /* +Inf */
	for (unsigned i = 1; i < READSTATS_BOUNDS; i++)
		ASSERT_TRUE(readstats_bound_usec[i - 1] < readstats_bound_usec[i]);
	/* The labels say the bounds. */
	for (unsigned i = 0; i < READSTATS_BOUNDS; i++)
		ASSERT_U64_EQ((uint64_t)(strtod(readstats_bound_le[i], NULL) * 1e6 + 0.5),
			      readstats_bound_usec[i]);
}

static void test_count(void)
{
	struct readstats rs;
	struct readstats_figs f;
	uint64_t total = 0;

	memset(&rs, 0, sizeof(rs));
	readstats_count(&rs, now_usec(), READSTATS_HIT, 100, 0);
	readstats_count(&rs, now_usec(), READSTATS_HIT, 50, 0);
	readstats_count(&rs, now_usec() - 2 * USEC_PER_SEC, READSTATS_MISS, 4096, 0);
	readstats_count(&rs, now_usec(), READSTATS_MISS, 4096, -5);
	readstats_count(NULL, now_usec(), READSTATS_HIT, 1, 0); /* nothing */
	readstats_get(&rs, &f);
	ASSERT_U64_EQ(f.reads[READSTATS_HIT], 2);
	ASSERT_U64_EQ(f.bytes[READSTATS_HIT], 150);
	ASSERT_U64_EQ(f.reads[READSTATS_MISS], 1);
	ASSERT_U64_EQ(f.bytes[READSTATS_MISS], 4096);
	ASSERT_U64_EQ(f.errors, 1);
	for (unsigned i = 0; i < READSTATS_BUCKETS; i++)
		total += f.buckets[i];
	ASSERT_U64_EQ(total, 4);
	ASSERT_TRUE(f.usec_sum >= 2 * USEC_PER_SEC);
	/* The slow one is in the bucket of 2 s (up to 2.5 s) or above. */
	total = 0;
	for (unsigned i = readstats_bucket(2 * USEC_PER_SEC); i < READSTATS_BUCKETS; i++)
		total += f.buckets[i];
	ASSERT_U64_EQ(total, 1);
}

int main(void)
{
	RUN(test_buckets);
	RUN(test_count);
	return 0;
}
