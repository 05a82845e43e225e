/* Unit tests of fs/tensors: the safetensors header parser (untrusted input) and the window a
 * read in a tensor plans. */
#include "fs/tensors.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"
#include "util/cleanup.h"

#define MiB (1ULL << 20)

static int parse(const char *json, uint64_t file_size, struct tensor_span **ret, size_t *ret_n)
{
	return tensors_parse_safetensors(json, strlen(json), 100, file_size, ret, ret_n);
}

static void test_parse_sorted_absolute(void)
{
	const char *json = "{\"__metadata__\":{\"format\":\"pt\"},"
			   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,24]},"
			   "\"a\" : { \"data_offsets\" : [ 0 , 8 ] , \"dtype\":\"F32\"},"
			   "\"empty\":{\"data_offsets\":[24,24]},"
			   "\"data_offsets\":{\"data_offsets\":[24,40]}}   ";
	struct tensor_span *v;
	size_t n;

	ASSERT_OK(parse(json, 140, &v, &n));
	ASSERT_EQ(n, 3);
	ASSERT_U64_EQ(v[0].begin, 100);
	ASSERT_U64_EQ(v[0].end, 108);
	ASSERT_U64_EQ(v[1].begin, 108);
	ASSERT_U64_EQ(v[1].end, 124);
	ASSERT_U64_EQ(v[2].begin, 124);
	ASSERT_U64_EQ(v[2].end, 140);
	free(v);
	/* Escaped quotes inside a name do not end it. */
	ASSERT_OK(parse("{\"x\\\"data_offsets\":{\"data_offsets\":[0,1]}}", 101, &v, &n));
	ASSERT_EQ(n, 1);
	free(v);
	ASSERT_OK(parse("{}", 100, &v, &n));
	ASSERT_EQ(n, 0);
	ASSERT_NULL(v);
}

static void test_parse_malformed(void)
{
	static const char *const bad[] = {
		"",
		"   ",
		"[]",
		"{\"a\":{\"data_offsets\":[0,8]}", /* not closed */
		"{\"a\":{\"data_offsets\":[8,0]}}", /* begin after end */
		"{\"a\":{\"data_offsets\":[0,41]}}", /* past the file */
		"{\"a\":{\"data_offsets\":[0]}}",
		"{\"a\":{\"data_offsets\":[-1,8]}}",
		"{\"a\":{\"data_offsets\":[0,8,16]}}",
		"{\"a\":{\"data_offsets\":[0,99999999999999999999999]}}",
		"{\"a\":{\"data_offsets\":[0,8}}",
		"{\"a\":{\"data_offsets\":[0,",
		"{\"unterminated}",
		"{\"a\":1}}",
		"{\"a\":1}{}",
		"{\"a\":[1}",
		"{\"a\\",
	};
	struct tensor_span *v;
	size_t n;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ASSERT_EQ(parse(bad[i], 140, &v, &n), -EBADMSG);
		ASSERT_NULL(v);
		ASSERT_EQ(n, 0);
	}
	/* Data that would start past the end of the file. */
	ASSERT_EQ(tensors_parse_safetensors("{}", 2, 200, 100, &v, &n), -EBADMSG);
}

static void test_window(void)
{
	const struct tensor_span v[] = {
		{ 1 * MiB, 91 * MiB }, /* a 90 MiB tensor */
		{ 91 * MiB, 92 * MiB },
		{ 92 * MiB, 100 * MiB },
		{ 100 * MiB, 140 * MiB },
	};
	uint64_t off, len;

	/* In the header: nothing. */
	ASSERT_FALSE(tensors_window(v, 4, 0, 4096, 32 * MiB, 512 * MiB, &off, &len));
	/* The first read of the big tensor: the rest of it at once. */
	ASSERT_TRUE(tensors_window(v, 4, 40 * MiB, MiB, 32 * MiB, 512 * MiB, &off, &len));
	ASSERT_U64_EQ(off, 41 * MiB);
	ASSERT_U64_EQ(len, 50 * MiB);
	/* Near its end: on into the next tensors, until min_ahead lies ahead (not to the end of
	 * a large one). */
	ASSERT_TRUE(tensors_window(v, 4, 89 * MiB, MiB, 32 * MiB, 512 * MiB, &off, &len));
	ASSERT_U64_EQ(off, 90 * MiB);
	ASSERT_U64_EQ(len, 32 * MiB);
	ASSERT_TRUE(tensors_window(v, 4, 120 * MiB, MiB, 32 * MiB, 512 * MiB, &off, &len));
	ASSERT_U64_EQ(off, 121 * MiB);
	ASSERT_U64_EQ(len, 19 * MiB); /* the last tensor ends the window */
	/* A read from the last bytes of one tensor into the next (the kernel's page-aligned read
	 * of a tensor that begins inside a page): the rest of the one it reaches. */
	ASSERT_TRUE(tensors_window(v, 4, 91 * MiB - 4096, MiB, 32 * MiB, 512 * MiB, &off, &len));
	ASSERT_U64_EQ(off, 92 * MiB - 4096);
	ASSERT_U64_EQ(len, 32 * MiB); /* 1 MiB tensor: on into the next ones, min_ahead */
	ASSERT_TRUE(tensors_window(v, 4, 100 * MiB - 4096, MiB, 8 * MiB, 512 * MiB, &off, &len));
	ASSERT_U64_EQ(off, 101 * MiB - 4096);
	ASSERT_U64_EQ(len, 39 * MiB + 4096); /* the rest of the 40 MiB tensor, not 8 MiB */
	/* Capped by max_ahead. */
	ASSERT_TRUE(tensors_window(v, 4, 1 * MiB, MiB, 32 * MiB, 16 * MiB, &off, &len));
	ASSERT_U64_EQ(off, 2 * MiB);
	ASSERT_U64_EQ(len, 16 * MiB);
	/* The last read of the last tensor, and past the tensors. */
	ASSERT_FALSE(tensors_window(v, 4, 139 * MiB, MiB, 32 * MiB, 512 * MiB, &off, &len));
	ASSERT_FALSE(tensors_window(v, 4, 140 * MiB, MiB, 32 * MiB, 512 * MiB, &off, &len));
	ASSERT_FALSE(tensors_window(v, 0, 0, MiB, 32 * MiB, 512 * MiB, &off, &len));
}

int main(void)
{
	RUN(test_parse_sorted_absolute);
	RUN(test_parse_malformed);
	RUN(test_window);
	return 0;
}
