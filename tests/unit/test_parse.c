/* Unit tests of util/parse and util/jsonw. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/unit/check.h"
#include "util/jsonw.h"
#include "util/parse.h"

static void test_parse_size(void)
{
	uint64_t v;

	ASSERT_OK(parse_size("4096", &v));
	ASSERT_U64_EQ(v, 4096);
	ASSERT_OK(parse_size("200G", &v));
	ASSERT_U64_EQ(v, 200ULL << 30);
	ASSERT_OK(parse_size("1.5GiB", &v));
	ASSERT_U64_EQ(v, 3ULL << 29);
	ASSERT_OK(parse_size("64m", &v));
	ASSERT_U64_EQ(v, 64ULL << 20);
	ASSERT_OK(parse_size("10KB", &v));
	ASSERT_U64_EQ(v, 10240);
	ASSERT_OK(parse_size("0", &v));
	ASSERT_U64_EQ(v, 0);
	ASSERT_EQ(parse_size("", &v), -EINVAL);
	ASSERT_EQ(parse_size("G", &v), -EINVAL);
	ASSERT_EQ(parse_size("-5", &v), -EINVAL);
	ASSERT_EQ(parse_size("5X", &v), -EINVAL);
	ASSERT_EQ(parse_size("5GG", &v), -EINVAL);
	ASSERT_EQ(parse_size("99999999P", &v), -EINVAL);
}

static void test_parse_uint(void)
{
	uint64_t v;

	ASSERT_OK(parse_uint("16", 256, &v));
	ASSERT_U64_EQ(v, 16);
	ASSERT_EQ(parse_uint("257", 256, &v), -ERANGE);
	ASSERT_EQ(parse_uint("1x", 256, &v), -EINVAL);
	ASSERT_EQ(parse_uint("-1", 256, &v), -EINVAL);
	ASSERT_EQ(parse_uint("", 256, &v), -EINVAL);
}

static void test_parse_duration(void)
{
	uint64_t v;

	ASSERT_OK(parse_duration("30", 86400, &v));
	ASSERT_U64_EQ(v, 30);
	ASSERT_OK(parse_duration("45s", 86400, &v));
	ASSERT_U64_EQ(v, 45);
	ASSERT_OK(parse_duration("5m", 86400, &v));
	ASSERT_U64_EQ(v, 300);
	ASSERT_OK(parse_duration("2h", 86400, &v));
	ASSERT_U64_EQ(v, 7200);
	ASSERT_EQ(parse_duration("25h", 86400, &v), -ERANGE);
	ASSERT_EQ(parse_duration("99999999999999999999h", 86400, &v), -EINVAL);
	ASSERT_EQ(parse_duration("1d", 86400, &v), -EINVAL);
	ASSERT_EQ(parse_duration("1ms", 86400, &v), -EINVAL);
	ASSERT_EQ(parse_duration("s", 86400, &v), -EINVAL);
	ASSERT_EQ(parse_duration("", 86400, &v), -EINVAL);
}

static void test_parse_percent_and_bool(void)
{
	unsigned p;

	ASSERT_OK(parse_percent("10%", &p));
	ASSERT_EQ(p, 10);
	ASSERT_EQ(parse_percent("101%", &p), -EINVAL);
	ASSERT_EQ(parse_percent("10", &p), -EINVAL);
	ASSERT_TRUE(parse_env_bool("1"));
	ASSERT_TRUE(parse_env_bool("ON"));
	ASSERT_TRUE(parse_env_bool("yes"));
	ASSERT_TRUE(parse_env_bool("True"));
	ASSERT_FALSE(parse_env_bool("0"));
	ASSERT_FALSE(parse_env_bool(""));
	ASSERT_FALSE(parse_env_bool(NULL));
}

static void test_format_size(void)
{
	char b[32];

	ASSERT_STR_EQ(format_size(512, b, sizeof(b)), "512 B");
	ASSERT_STR_EQ(format_size(1536, b, sizeof(b)), "1.5 KiB");
	ASSERT_STR_EQ(format_size(3ULL << 30, b, sizeof(b)), "3.0 GiB");
	ASSERT_STR_EQ(format_eta(-1, b, sizeof(b)), "unknown");
	ASSERT_STR_EQ(format_eta(0, b, sizeof(b)), "0:00");
	ASSERT_STR_EQ(format_eta(245, b, sizeof(b)), "4:05");
	ASSERT_STR_EQ(format_eta(3723, b, sizeof(b)), "1:02:03");
}

static void test_jsonw(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct jsonw w;

	jsonw_init(&w, f);
	jsonw_begin_object(&w, NULL);
	jsonw_string(&w, "s", "a\"b\\c\n\x01é");
	jsonw_uint(&w, "n", 18446744073709551615ULL);
	jsonw_begin_array(&w, "a");
	jsonw_bool(&w, NULL, true);
	jsonw_null(&w, NULL);
	jsonw_begin_object(&w, NULL);
	jsonw_end_object(&w);
	jsonw_end_array(&w);
	jsonw_end_object(&w);
	fclose(f);
	ASSERT_STR_EQ(buf, "{\"s\":\"a\\\"b\\\\c\\n\\u0001é\",\"n\":18446744073709551615,"
			   "\"a\":[true,null,{}]}\n");
	free(buf);
}

int main(void)
{
	RUN(test_parse_size);
	RUN(test_parse_uint);
	RUN(test_parse_duration);
	RUN(test_parse_percent_and_bool);
	RUN(test_format_size);
	RUN(test_jsonw);
	return 0;
}
