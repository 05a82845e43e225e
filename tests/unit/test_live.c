/* test_live.c: the live record's text form: every field survives encode then decode, a
 * string's newline cannot split the record, unknown keys are ignored, junk is refused. */
#include "fs/live.h"

#include <errno.h>
#include <string.h>

#include "tests/unit/check.h"

static void test_round_trip(void)
{
	struct live in = {
		.updated = 1, .rate = 2, .bytes_fetched = 3, .bytes_total = 4, .bytes_cached = 5,
		.eta_s = -1, .active = 6, .queued = 7, .retries = 8, .stalls = 9, .failures = 10,
		.verify_failures = 11, .files_wanted = 12, .files_done = 13, .stalled = true,
		.last_error_at = 14, .cache_max_size = 15, .min_free = 16, .disk_free = 17,
		.space_needed = 18, .space_room = 19, .evicted_blobs = 20, .evicted_bytes = 21,
		.cache_used = 22, .cache_used_known = true, .bytes_hub = 23, .bytes_cdn = 24,
		.reads = { .reads = { 25, 26 }, .bytes = { 27, 28 }, .errors = 29, .usec_sum = 30 },
	}, out;
	char buf[4096];
	size_t n;

	for (unsigned i = 0; i < READSTATS_BUCKETS; i++)
		in.reads.buckets[i] = 100 + i;
	strcpy(in.phase, "paused");
	strcpy(in.last_error, "HTTP 503\nfrom the CDN");
	strcpy(in.paused, "the cache's disk is full: 1 MiB free");
	n = live_encode(&in, buf, sizeof(buf));
	ASSERT_TRUE(n > 0 && n < sizeof(buf) && buf[n] == '\0');
	ASSERT_OK(live_decode(buf, n, &out));
	ASSERT_STR_EQ(out.last_error, "HTTP 503 from the CDN");
	ASSERT_U64_EQ(out.updated, 1);
	ASSERT_U64_EQ(out.bytes_cached, 5);
	ASSERT_U64_EQ(out.verify_failures, 11);
	ASSERT_U64_EQ(out.last_error_at, 14);
	ASSERT_U64_EQ(out.cache_max_size, 15);
	ASSERT_U64_EQ(out.min_free, 16);
	ASSERT_U64_EQ(out.disk_free, 17);
	ASSERT_U64_EQ(out.space_needed, 18);
	ASSERT_U64_EQ(out.evicted_blobs, 20);
	ASSERT_U64_EQ(out.evicted_bytes, 21);
	ASSERT_U64_EQ(out.space_room, 19);
	ASSERT_EQ(out.eta_s, -1);
	ASSERT_TRUE(out.stalled);
	ASSERT_STR_EQ(out.phase, "paused");
	ASSERT_STR_EQ(out.paused, in.paused);
	ASSERT_EQ(out.files_done, 13);
	ASSERT_U64_EQ(out.cache_used, 22);
	ASSERT_TRUE(out.cache_used_known);
	ASSERT_U64_EQ(out.bytes_hub, 23);
	ASSERT_U64_EQ(out.bytes_cdn, 24);
	ASSERT_TRUE(memcmp(&out.reads, &in.reads, sizeof(in.reads)) == 0);
}

/* An array given short keeps zeros after what it gives; junk in it ends it there. */
static void test_array_short(void)
{
	static const char rec[] = "read_buckets=1 2 x 4\nreads=5\n";
	struct live out;

	ASSERT_OK(live_decode(rec, strlen(rec), &out));
	ASSERT_U64_EQ(out.reads.buckets[0], 1);
	ASSERT_U64_EQ(out.reads.buckets[1], 2);
	ASSERT_U64_EQ(out.reads.buckets[2], 0);
	ASSERT_U64_EQ(out.reads.buckets[3], 0);
	ASSERT_U64_EQ(out.reads.reads[READSTATS_HIT], 5);
	ASSERT_U64_EQ(out.reads.reads[READSTATS_MISS], 0);
}

static void test_unknown_and_junk(void)
{
	static const char rec[] = "rate=5\nfrom_the_future=1\nno equals sign\n";
	struct live out;

	ASSERT_OK(live_decode(rec, strlen(rec), &out));
	ASSERT_U64_EQ(out.rate, 5);
	ASSERT_EQ(live_decode("junk", 4, &out), -EBADMSG);
}

/* A buffer too small for the record: cut, still terminated, length within it. */
static void test_small_buffer(void)
{
	struct live in = { .rate = 1 };
	char buf[40];
	size_t n = live_encode(&in, buf, sizeof(buf));

	ASSERT_TRUE(n < sizeof(buf) && buf[n] == '\0' && strlen(buf) == n);
}

int main(void)
{
	RUN(test_round_trip);
	RUN(test_unknown_and_junk);
	RUN(test_array_short);
	RUN(test_small_buffer);
	return 0;
}
