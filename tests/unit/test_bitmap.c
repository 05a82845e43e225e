/* test_bitmap.c: block math and bitmap edges (0, 1, 8, 9, 63, 64, 65 bits, ranges across
 * bytes, scans, spans at and past the end), plus a randomized comparison with a bool array. */
#include "cache/bitmap.h"

#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"

#define MiB (1ULL << 20)

static void test_block_count(void)
{
	ASSERT_U64_EQ(block_count(0, MiB), 0);
	ASSERT_U64_EQ(block_count(1, MiB), 1);
	ASSERT_U64_EQ(block_count(MiB - 1, MiB), 1);
	ASSERT_U64_EQ(block_count(MiB, MiB), 1);
	ASSERT_U64_EQ(block_count(MiB + 1, MiB), 2);
	ASSERT_U64_EQ(block_count(100ULL << 30, MiB), 102400);
	ASSERT_U64_EQ(block_count(UINT64_MAX, 1U << 31), (UINT64_MAX >> 31) + 1);
}

static void test_block_len(void)
{
	/* 2.5 blocks: the last one is half a block. */
	uint64_t size = 2 * MiB + MiB / 2;

	ASSERT_U64_EQ(block_len(size, MiB, 0), MiB);
	ASSERT_U64_EQ(block_len(size, MiB, 1), MiB);
	ASSERT_U64_EQ(block_len(size, MiB, 2), MiB / 2);
	ASSERT_U64_EQ(block_len(size, MiB, 3), 0);
	ASSERT_U64_EQ(block_len(2 * MiB, MiB, 1), MiB);
	ASSERT_U64_EQ(block_len(1, MiB, 0), 1);
	ASSERT_U64_EQ(block_len(0, MiB, 0), 0);
}

static void test_block_span(void)
{
	uint64_t size = 2 * MiB + 10, first = 99, last = 99;

	/* Aligned, one block. */
	ASSERT_TRUE(block_span(size, MiB, 0, MiB, &first, &last));
	ASSERT_U64_EQ(first, 0);
	ASSERT_U64_EQ(last, 0);
	/* Unaligned across a boundary. */
	ASSERT_TRUE(block_span(size, MiB, MiB - 1, 2, &first, &last));
	ASSERT_U64_EQ(first, 0);
	ASSERT_U64_EQ(last, 1);
	/* A read past EOF is clipped to the last block. */
	ASSERT_TRUE(block_span(size, MiB, MiB + 5, 10 * MiB, &first, &last));
	ASSERT_U64_EQ(first, 1);
	ASSERT_U64_EQ(last, 2);
	/* The last byte. */
	ASSERT_TRUE(block_span(size, MiB, size - 1, 1, &first, &last));
	ASSERT_U64_EQ(first, 2);
	ASSERT_U64_EQ(last, 2);
	/* A huge length does not overflow. */
	ASSERT_TRUE(block_span(size, MiB, 1, UINT64_MAX, &first, &last));
	ASSERT_U64_EQ(first, 0);
	ASSERT_U64_EQ(last, 2);

	/* Empty ranges leave the outputs alone. */
	first = last = 77;
	ASSERT_FALSE(block_span(size, MiB, size, 1, &first, &last));
	ASSERT_FALSE(block_span(size, MiB, size + 5, 1, &first, &last));
	ASSERT_FALSE(block_span(size, MiB, 0, 0, &first, &last));
	ASSERT_FALSE(block_span(0, MiB, 0, 100, &first, &last));
	ASSERT_U64_EQ(first, 77);
	ASSERT_U64_EQ(last, 77);
}

static void test_bytes(void)
{
	ASSERT_EQ(bitmap_bytes(0), 0);
	ASSERT_EQ(bitmap_bytes(1), 1);
	ASSERT_EQ(bitmap_bytes(8), 1);
	ASSERT_EQ(bitmap_bytes(9), 2);
	ASSERT_EQ(bitmap_bytes(63), 8);
	ASSERT_EQ(bitmap_bytes(64), 8);
	ASSERT_EQ(bitmap_bytes(65), 9);
}

/* Every bit count of the edge list, filled one bit at a time and with one range. */
static void test_sizes(void)
{
	static const uint64_t sizes[] = { 0, 1, 8, 9, 63, 64, 65 };

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint64_t n = sizes[k];
		uint8_t a[16], b[16];

		memset(a, 0, sizeof(a));
		memset(b, 0, sizeof(b));
		ASSERT_U64_EQ(bitmap_count(a, n), 0);
		ASSERT_U64_EQ(bitmap_next_set(a, 0, n), n);
		ASSERT_U64_EQ(bitmap_next_clear(a, 0, n), 0);
		ASSERT_TRUE(bitmap_all_set(a, 0, 0));
		for (uint64_t i = 0; i < n; i++) {
			ASSERT_FALSE(bitmap_all_set(a, 0, n));
			bitmap_set(a, i);
			ASSERT_TRUE(bitmap_test(a, i));
			ASSERT_U64_EQ(bitmap_count(a, n), i + 1);
			ASSERT_TRUE(bitmap_is_sane(a, n));
		}
		ASSERT_TRUE(bitmap_all_set(a, 0, n));
		ASSERT_U64_EQ(bitmap_next_clear(a, 0, n), n);
		bitmap_set_range(b, 0, n);
		ASSERT_EQ(memcmp(a, b, sizeof(a)), 0);
		/* Nothing past the last bit was touched. */
		ASSERT_EQ(a[bitmap_bytes(n)], 0);
		if (n) {
			bitmap_clear(a, n - 1);
			ASSERT_U64_EQ(bitmap_count(a, n), n - 1);
			ASSERT_U64_EQ(bitmap_next_clear(a, 0, n), n - 1);
			ASSERT_FALSE(bitmap_all_set(a, 0, n));
			ASSERT_TRUE(bitmap_all_set(a, 0, n - 1));
		}
	}
}

static void test_count_ignores_tail(void)
{
	uint8_t m[2] = { 0xff, 0xff };

	/* Bits past nbits are not counted, and they make the map insane. */
	ASSERT_U64_EQ(bitmap_count(m, 9), 9);
	ASSERT_U64_EQ(bitmap_count(m, 16), 16);
	ASSERT_U64_EQ(bitmap_count(m, 3), 3);
	ASSERT_FALSE(bitmap_is_sane(m, 9));
	ASSERT_TRUE(bitmap_is_sane(m, 16));
	m[1] = 0x01;
	ASSERT_TRUE(bitmap_is_sane(m, 9));
}

static void test_ranges(void)
{
	uint8_t m[8];

	memset(m, 0, sizeof(m));
	bitmap_set_range(m, 3, 2); /* inside one byte */
	ASSERT_EQ(m[0], 0x18);
	ASSERT_EQ(m[1], 0);
	memset(m, 0, sizeof(m));
	bitmap_set_range(m, 6, 4); /* across one boundary */
	ASSERT_EQ(m[0], 0xc0);
	ASSERT_EQ(m[1], 0x03);
	ASSERT_EQ(m[2], 0);
	memset(m, 0, sizeof(m));
	bitmap_set_range(m, 7, 25); /* head bit, two full bytes, tail to a byte end */
	ASSERT_EQ(m[0], 0x80);
	ASSERT_EQ(m[1], 0xff);
	ASSERT_EQ(m[2], 0xff);
	ASSERT_EQ(m[3], 0xff);
	ASSERT_EQ(m[4], 0);
	ASSERT_U64_EQ(bitmap_count(m, 64), 25);
	memset(m, 0, sizeof(m));
	bitmap_set_range(m, 5, 0); /* empty */
	ASSERT_U64_EQ(bitmap_count(m, 64), 0);
	bitmap_set_range(m, 8, 8); /* exactly one byte */
	ASSERT_EQ(m[0], 0);
	ASSERT_EQ(m[1], 0xff);
	ASSERT_EQ(m[2], 0);
}

static void test_scans(void)
{
	uint8_t m[16];

	memset(m, 0, sizeof(m));
	bitmap_set(m, 70);
	bitmap_set(m, 3);
	ASSERT_U64_EQ(bitmap_next_set(m, 0, 128), 3);
	ASSERT_U64_EQ(bitmap_next_set(m, 3, 128), 3);
	ASSERT_U64_EQ(bitmap_next_set(m, 4, 128), 70);
	ASSERT_U64_EQ(bitmap_next_set(m, 4, 70), 70); /* to is exclusive */
	ASSERT_U64_EQ(bitmap_next_set(m, 4, 71), 70);
	ASSERT_U64_EQ(bitmap_next_set(m, 71, 128), 128);
	ASSERT_U64_EQ(bitmap_next_set(m, 10, 10), 10);

	memset(m, 0xff, sizeof(m));
	bitmap_clear(m, 65);
	ASSERT_U64_EQ(bitmap_next_clear(m, 0, 128), 65);
	ASSERT_U64_EQ(bitmap_next_clear(m, 66, 128), 128);
	ASSERT_U64_EQ(bitmap_next_clear(m, 1, 65), 65);
	ASSERT_TRUE(bitmap_all_set(m, 0, 65));
	ASSERT_FALSE(bitmap_all_set(m, 60, 10));
	ASSERT_TRUE(bitmap_all_set(m, 66, 62));
}

/* Random operations against a bool array; a fixed seed keeps failures reproducible. */
static void test_random(void)
{
	enum { N = 203 };
	uint8_t m[(N + 7) / 8];
	bool ref[N];

	srand(1234);
	memset(m, 0, sizeof(m));
	memset(ref, 0, sizeof(ref));
	for (int round = 0; round < 3000; round++) {
		uint64_t a = (uint64_t)rand() % N, b = (uint64_t)rand() % (N + 1);
		uint64_t lo = a < b ? a : b, hi = a < b ? b : a, want, n = 0;
		bool all = true;

		switch (rand() % 3) {
		case 0:
			bitmap_set_range(m, lo, hi - lo);
			for (uint64_t i = lo; i < hi; i++)
				ref[i] = true;
			break;
		case 1:
			bitmap_clear(m, a);
			ref[a] = false;
			break;
		default:
			bitmap_set(m, a);
			ref[a] = true;
			break;
		}
		for (want = lo; want < hi && ref[want]; want++)
			;
		ASSERT_U64_EQ(bitmap_next_clear(m, lo, hi), want);
		for (want = lo; want < hi && !ref[want]; want++)
			;
		ASSERT_U64_EQ(bitmap_next_set(m, lo, hi), want);
		for (uint64_t i = 0; i < N; i++) {
			ASSERT_EQ(bitmap_test(m, i), ref[i]);
			n += ref[i];
		}
		for (uint64_t i = lo; i < hi; i++)
			all = all && ref[i];
		ASSERT_EQ(bitmap_all_set(m, lo, hi - lo), all);
		ASSERT_U64_EQ(bitmap_count(m, N), n);
		ASSERT_TRUE(bitmap_is_sane(m, N));
	}
}

int main(void)
{
	RUN(test_block_count);
	RUN(test_block_len);
	RUN(test_block_span);
	RUN(test_bytes);
	RUN(test_sizes);
	RUN(test_count_ignores_tail);
	RUN(test_ranges);
	RUN(test_scans);
	RUN(test_random);
	return 0;
}
