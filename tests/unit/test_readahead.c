/* Unit tests of fs/readahead: the window grows on sequential reads and resets on seeks. */
#include "fs/readahead.h"
#include "tests/unit/check.h"

#define MiB (1ULL << 20)

static const struct readahead_limits lim = { .min_window = 4 * MiB,
					     .max_window = 32 * MiB,
					     .slack = 2 * MiB };

static void test_sequential_growth(void)
{
	struct readahead ra = { 0 };
	uint64_t off, len, size = 1024 * MiB, asked = 0;

	readahead_update(&ra, &lim, 0, MiB, size, &off, &len);
	ASSERT_EQ(len, 0); /* one read is not a stream yet */
	readahead_update(&ra, &lim, MiB, MiB, size, &off, &len);
	ASSERT_U64_EQ(off, 2 * MiB);
	ASSERT_U64_EQ(len, 4 * MiB);
	asked = off + len;
	/* Reads inside the asked range do not ask again until half is consumed. */
	readahead_update(&ra, &lim, 2 * MiB, MiB, size, &off, &len);
	ASSERT_EQ(len, 0);
	readahead_update(&ra, &lim, 3 * MiB, MiB, size, &off, &len);
	ASSERT_U64_EQ(off, asked); /* continues where the last window ended */
	ASSERT_U64_EQ(len, 8 * MiB - 2 * MiB); /* window doubled to 8 MiB past next (4 MiB) */
	for (uint64_t o = 4 * MiB; o < 200 * MiB; o += MiB)
		readahead_update(&ra, &lim, o, MiB, size, &off, &len);
	ASSERT_U64_EQ(ra.window, 32 * MiB); /* capped */
}

static void test_seek_resets_and_eof_clips(void)
{
	struct readahead ra = { 0 };
	uint64_t off, len, size = 10 * MiB;

	readahead_update(&ra, &lim, 0, MiB, size, &off, &len);
	readahead_update(&ra, &lim, MiB, MiB, size, &off, &len);
	ASSERT_TRUE(len > 0);
	readahead_update(&ra, &lim, 9 * MiB, 4096, size, &off, &len); /* a seek */
	ASSERT_EQ(len, 0);
	ASSERT_EQ(ra.window, 0);
	readahead_update(&ra, &lim, 9 * MiB + 4096, 4096, size, &off, &len);
	ASSERT_U64_EQ(off + len, size); /* never past EOF */
	readahead_update(&ra, &lim, 9 * MiB + 8192, 4096, size, &off, &len);
	ASSERT_EQ(len, 0); /* nothing left to ask */
}

static void test_out_of_order_within_slack(void)
{
	struct readahead ra = { 0 };
	uint64_t off, len, size = 100 * MiB;

	readahead_update(&ra, &lim, 0, MiB, size, &off, &len);
	readahead_update(&ra, &lim, 2 * MiB, MiB, size, &off, &len); /* 1 MiB skipped: async */
	ASSERT_TRUE(len > 0);
	readahead_update(&ra, &lim, MiB, MiB, size, &off, &len); /* the late one */
	ASSERT_TRUE(ra.window > 0);
}

/* With a step, the window is topped up a step at a time instead of by halves. */
static void test_topped_up_in_steps(void)
{
	struct readahead_limits steps = lim;
	struct readahead ra = { 0 };
	uint64_t off, len, size = 1024 * MiB, o;

	steps.step = 2 * MiB;
	for (o = 0; o < 100 * MiB; o += MiB)
		readahead_update(&ra, &steps, o, MiB, size, &off, &len);
	ASSERT_U64_EQ(ra.window, 32 * MiB);
	ASSERT_U64_EQ(ra.issued, 100 * MiB + 32 * MiB); /* topped up by the last read */
	readahead_update(&ra, &steps, o, MiB, size, &off, &len);
	ASSERT_EQ(len, 0); /* one MiB consumed: less than a step */
	readahead_update(&ra, &steps, o + MiB, MiB, size, &off, &len);
	ASSERT_U64_EQ(off, 132 * MiB); /* a step consumed: a step more */
	ASSERT_U64_EQ(len, 2 * MiB);
}

int main(void)
{
	RUN(test_sequential_growth);
	RUN(test_seek_resets_and_eof_clips);
	RUN(test_out_of_order_within_slack);
	RUN(test_topped_up_in_steps);
	return 0;
}
