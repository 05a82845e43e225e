/* test_xet_recon.c: Xet reconstruction replies, /v1 (fetch_info) and /v2 (xorbs with several
 * ranges per URL), into one plan: terms matched to the first fetch that covers them (chunks
 * shared by two terms fetched once), range queries, and every malformed plan refused with
 * words; the read token and its casUrl. */
#include "fetch/xet_recon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/hub_json.h"
#include "tests/unit/check.h"

#define XA "a1b2c3d4e5f6789012345678901234567890abcdef1234567890abcdef123456"
#define XB "fedcba0987654321098765432109876543210fedcba09876543210fedcba0987"
#define URL_A "https://cas.example.org/xorb/default/" XA "?X-Amz-Expires=3600"
#define URL_B "https://cas.example.org/xorb/default/" XB "?Expires=1"

/* The spec's multi-xorb example (download_protocol.md): chunk 3 of XA serves two terms. */
static const char v1[] =
	"{\"offset_into_first_range\":0,\"terms\":["
	"{\"hash\":\"" XA "\",\"unpacked_length\":263873,\"range\":{\"start\":1,\"end\":4}},"
	"{\"hash\":\"" XB "\",\"unpacked_length\":143890,\"range\":{\"start\":0,\"end\":3}},"
	"{\"hash\":\"" XA "\",\"unpacked_length\":3063572,\"range\":{\"start\":3,\"end\":43}}],"
	"\"fetch_info\":{"
	"\"" XA "\":[{\"range\":{\"start\":1,\"end\":43},\"url\":\"" URL_A "\","
	"\"url_range\":{\"start\":57980,\"end\":1433008}}],"
	"\"" XB "\":[{\"range\":{\"start\":0,\"end\":3},\"url\":\"" URL_B "\","
	"\"url_range\":{\"start\":0,\"end\":65670}}]}}";

/* The JS client's form: one URL, two ranges of it; the second term is in the second range. */
static const char v2[] =
	"{\"offset_into_first_range\":100,\"terms\":["
	"{\"hash\":\"" XA "\",\"unpacked_length\":200000,\"range\":{\"start\":0,\"end\":4}},"
	"{\"hash\":\"" XA "\",\"unpacked_length\":60000,\"range\":{\"start\":10,\"end\":12}}],"
	"\"xorbs\":{\"" XA "\":[{\"url\":\"" URL_A "\",\"ranges\":["
	"{\"chunks\":{\"start\":0,\"end\":4},\"bytes\":{\"start\":0,\"end\":131071}},"
	"{\"chunks\":{\"start\":10,\"end\":12},\"bytes\":{\"start\":400000,\"end\":450000}}]}]}}";

static int parse(const char *json, struct xet_recon *r, const char **why)
{
	return hub_json_xet_recon(json, strlen(json), r, why);
}

static void test_v1(void)
{
	struct xet_recon r;
	const char *why = NULL;

	ASSERT_OK(parse(v1, &r, &why));
	ASSERT_EQ(r.n_terms, 3);
	ASSERT_EQ(r.n_fetches, 2);
	ASSERT_EQ(r.n_urls, 2);
	ASSERT_STR_EQ(r.terms[1].xorb, XB);
	ASSERT_U64_EQ(r.terms[2].chunk_start, 3);
	ASSERT_U64_EQ(r.terms[2].chunk_end, 43);
	ASSERT_U64_EQ(r.terms[1].unpacked_len, 143890);
	/* Terms 0 and 2 share XA's one fetch. */
	ASSERT_EQ(r.terms[0].fetch, r.terms[2].fetch);
	ASSERT_STR_EQ(r.fetches[r.terms[0].fetch].xorb, XA);
	ASSERT_U64_EQ(r.fetches[r.terms[0].fetch].byte_first, 57980);
	ASSERT_U64_EQ(r.fetches[r.terms[0].fetch].byte_last, 1433008);
	ASSERT_STR_EQ(r.urls[r.fetches[r.terms[1].fetch].url], URL_B);
	ASSERT_U64_EQ(xet_recon_len(&r), 263873 + 143890 + 3063572);
	xet_recon_done(&r);
	ASSERT_EQ(r.n_terms, 0);
}

static void test_v2(void)
{
	struct xet_recon r;
	const char *why = NULL;

	ASSERT_OK(parse(v2, &r, &why));
	ASSERT_EQ(r.n_terms, 2);
	ASSERT_EQ(r.n_fetches, 2);
	/* One URL for both ranges: one request may carry both. */
	ASSERT_EQ(r.n_urls, 1);
	ASSERT_EQ(r.fetches[0].url, r.fetches[1].url);
	ASSERT_EQ(r.terms[0].fetch, 0);
	ASSERT_EQ(r.terms[1].fetch, 1);
	ASSERT_U64_EQ(r.fetches[1].byte_first, 400000);
	ASSERT_U64_EQ(r.offset_into_first_range, 100);
	ASSERT_U64_EQ(xet_recon_len(&r), 260000 - 100);
	xet_recon_done(&r);
}

/* v2 with its first term's fields replaced: term is the JSON of the first term. */
static void expect_bad(const char *json, const char *words)
{
	struct xet_recon r = { .n_terms = 0 };
	const char *why = NULL;

	if (parse(json, &r, &why) != -EBADMSG)
		CHECK_FAIL("accepted: %s", json);
	ASSERT_NOT_NULL(why);
	if (words && !strstr(why, words))
		CHECK_FAIL("words \"%s\" lack \"%s\" for %s", why, words, json);
	ASSERT_EQ(r.n_terms, 0);
}

static char *with(const char *from, const char *to)
{
	const char *at = strstr(v2, from);
	char *s;

	ASSERT_NOT_NULL(at);
	ASSERT_TRUE(asprintf(&s, "%.*s%s%s", (int)(at - v2), v2, to, at + strlen(from)) > 0);
	return s;
}

static void bad_with(const char *from, const char *to, const char *words)
{
	char *s = with(from, to);

	expect_bad(s, words);
	free(s);
}

static void test_malformed(void)
{
	/* No fetch covers chunks 10..13 (the range holds 10..12). */
	bad_with("\"range\":{\"start\":10,\"end\":12}", "\"range\":{\"start\":10,\"end\":13}",
		 "no fetch entry covers");
	bad_with("\"offset_into_first_range\":100", "\"offset_into_first_range\":200000",
		 "offset_into_first_range");
	/* 4 chunks cannot fit in 21 bytes (9 each at least), nor 2 in 2 MiB. */
	bad_with("\"bytes\":{\"start\":0,\"end\":131071}", "\"bytes\":{\"start\":0,\"end\":20}",
		 "cannot hold its chunks");
	bad_with("\"bytes\":{\"start\":400000,\"end\":450000}",
		 "\"bytes\":{\"start\":400000,\"end\":2497152}", "cannot hold its chunks");
	bad_with("\"bytes\":{\"start\":0,\"end\":131071}", "\"bytes\":{\"start\":9,\"end\":8}",
		 "reversed byte range");
	bad_with("\"range\":{\"start\":0,\"end\":4}", "\"range\":{\"start\":4,\"end\":4}",
		 "empty or reversed");
	bad_with("\"chunks\":{\"start\":10,\"end\":12}", "\"chunks\":{\"start\":10,\"end\":8193}",
		 "8192");
	bad_with("\"unpacked_length\":60000", "\"unpacked_length\":0", "unpacked length");
	/* 2 chunks cannot decode to more than 256 KiB. */
	bad_with("\"unpacked_length\":60000", "\"unpacked_length\":262145", "unpacked length");
	/* Shapes: a hash not 64 lowercase hex, a URL that is not absolute http(s), missing or
	 * mistyped fields, a document that is not JSON. */
	bad_with("{\"hash\":\"" XA "\",\"unpacked_length\":200000",
		 "{\"hash\":\"A1b2c3d4e5f6789012345678901234567890abcdef1234567890abcdef123456\","
		 "\"unpacked_length\":200000",
		 NULL);
	bad_with("\"xorbs\":{\"" XA "\"", "\"xorbs\":{\"a1b2\"", NULL);
	bad_with("\"url\":\"https://", "\"url\":\"file://", NULL);
	bad_with("\"url\":\"https://cas", "\"url\":\"https://c as", NULL);
	bad_with("\"offset_into_first_range\":100,", "", NULL);
	bad_with("\"unpacked_length\":60000", "\"unpacked_length\":\"60000\"", NULL);
	bad_with("\"unpacked_length\":60000", "\"unpacked_length\":-1", NULL);
	bad_with("\"unpacked_length\":60000", "\"unpacked_length\":1.5", NULL);
	bad_with("\"ranges\":[", "\"ranges\":[],\"x\":[", NULL);
	bad_with("\"xorbs\"", "\"xorbz\"", NULL);
	expect_bad("[]", NULL);
	expect_bad("{\"offset_into_first_range\":0,\"terms\":[],\"fetch_info\":{}} x", NULL);
}

static void test_empty_plan(void)
{
	struct xet_recon r;
	const char *why = NULL;

	ASSERT_OK(
		parse("{\"offset_into_first_range\":0,\"terms\":[],\"fetch_info\":{}}", &r, &why));
	ASSERT_EQ(r.n_terms, 0);
	ASSERT_U64_EQ(xet_recon_len(&r), 0);
	xet_recon_done(&r);
	expect_bad("{\"offset_into_first_range\":1,\"terms\":[],\"fetch_info\":{}}",
		   "offset_into_first_range");
}

static void test_token(void)
{
	struct xet_token t;
	const char *ok = "{\"accessToken\":\"xet_abc\",\"casUrl\":\"https://cas.example.org//\","
			 "\"exp\":1765000000}";

	ASSERT_OK(hub_json_xet_token(ok, strlen(ok), &t));
	ASSERT_STR_EQ(t.access_token, "xet_abc");
	ASSERT_STR_EQ(t.cas_url, "https://cas.example.org");
	ASSERT_EQ(t.exp, 1765000000);
	xet_token_done(&t);
	ASSERT_NULL(t.access_token);

	const char *bad[] = {
		"{\"accessToken\":\"\",\"casUrl\":\"https://cas.example.org\",\"exp\":1}",
		"{\"accessToken\":\"t\",\"casUrl\":\"ftp://cas.example.org\",\"exp\":1}",
		"{\"accessToken\":\"t\",\"casUrl\":\"http://\",\"exp\":1}",
		"{\"accessToken\":\"t\",\"casUrl\":\"https:///x\",\"exp\":1}",
		"{\"accessToken\":\"t\",\"casUrl\":\"https://cas.example.org\"}",
		"{\"accessToken\":\"t\",\"casUrl\":\"https://cas.example.org\",\"exp\":\"1\"}",
		"{\"accessToken\":7,\"casUrl\":\"https://cas.example.org\",\"exp\":1}",
		"{\"accessToken\":\"t\\u0000x\",\"casUrl\":\"https://cas.example.org\",\"exp\":1}",
		"not json",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ASSERT_EQ(hub_json_xet_token(bad[i], strlen(bad[i]), &t), -EBADMSG);
}

int main(void)
{
	RUN(test_v1);
	RUN(test_v2);
	RUN(test_malformed);
	RUN(test_empty_plan);
	RUN(test_token);
	return 0;
}
