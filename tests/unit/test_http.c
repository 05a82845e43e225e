/* test_http.c: the header and URL parsers of http.h against the forms HUB_PROTOCOL.md quotes
 * (and hostile variants), the redirect statuses, and http_request() against a tiny HTTP server
 * forked from the test (tests/unit/minihttp.h): headers collected, relative redirects
 * followed with the token kept, the token withheld from other origins, transport failures,
 * the proxy and CA variables. */
#include "fetch/http.h"
#include "fetch/http_exchange.h"

#include <errno.h>
#include <stdlib.h>

#include "fetch/http_env.h"
#include "tests/unit/check.h"
#include "util/cleanup.h"
#include "tests/unit/minihttp.h"

static void test_is_redirect(void)
{
	static const long yes[] = { 301, 302, 303, 307, 308 };
	static const long no[] = { 0, 200, 206, 300, 304, 305, 306, 309, 400, 503 };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++)
		ASSERT_TRUE(http_status_is_redirect(yes[i]));
	for (size_t i = 0; i < ARRAY_SIZE(no); i++)
		ASSERT_FALSE(http_status_is_redirect(no[i]));
}

static void test_content_range(void)
{
	uint64_t a, b, t;

	ASSERT_OK(http_parse_content_range("bytes 0-99/1000", &a, &b, &t));
	ASSERT_U64_EQ(a, 0);
	ASSERT_U64_EQ(b, 99);
	ASSERT_U64_EQ(t, 1000);
	ASSERT_OK(http_parse_content_range("Bytes  5-5/6 ", &a, &b, &t));
	ASSERT_U64_EQ(a, 5);
	ASSERT_U64_EQ(b, 5);
	ASSERT_U64_EQ(t, 6);
	ASSERT_OK(http_parse_content_range("bytes 100-199/*", &a, &b, &t));
	ASSERT_U64_EQ(b, 199);
	ASSERT_U64_EQ(t, UINT64_MAX);
	ASSERT_OK(http_parse_content_range("bytes 0-18446744073709551614/18446744073709551615", &a,
					   &b, &t));
	ASSERT_U64_EQ(b, UINT64_MAX - 1);

	static const char *const bad[] = {
		NULL,
		"",
		"bytes",
		"bytes ",
		"bytes 0-99",
		"bytes 0-99/",
		"bytes */1000", /* the 416 form has no range */
		"bytes 10-5/100", /* first > last */
		"bytes 0-100/100", /* last past the end */
		"bytes -1-5/10",
		"bytes 0-5/10 junk",
		"bytes=0-5/10",
		"items 0-5/10",
		"bytes 0-18446744073709551616/*", /* overflow */
		"bytes 0-1/99999999999999999999999",
		"bytes 0x1-5/10",
		"bytes0-5/10",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (http_parse_content_range(bad[i], &a, &b, &t) != -EBADMSG)
			CHECK_FAIL("content-range \"%s\" accepted", bad[i] ? bad[i] : "(null)");
}

static void test_retry_after(void)
{
	uint64_t s;

	ASSERT_OK(http_parse_retry_after("120", &s));
	ASSERT_U64_EQ(s, 120);
	ASSERT_OK(http_parse_retry_after(" 0 ", &s));
	ASSERT_U64_EQ(s, 0);
	ASSERT_EQ(http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", &s), -EINVAL);
	ASSERT_EQ(http_parse_retry_after("", &s), -EINVAL);
	ASSERT_EQ(http_parse_retry_after("-5", &s), -EINVAL);
	ASSERT_EQ(http_parse_retry_after("1.5", &s), -EINVAL);
	ASSERT_EQ(http_parse_retry_after("99999999999999999999999", &s), -EINVAL);
	ASSERT_EQ(http_parse_retry_after(NULL, &s), -EINVAL);
}

static void test_ratelimit(void)
{
	uint64_t r, t;

	ASSERT_OK(http_parse_ratelimit("\"api\";r=0;t=55", &r, &t));
	ASSERT_U64_EQ(r, 0);
	ASSERT_U64_EQ(t, 55);
	ASSERT_OK(http_parse_ratelimit("\"resolvers\"; t=7 ; r=4999", &r, &t));
	ASSERT_U64_EQ(r, 4999);
	ASSERT_U64_EQ(t, 7);
	/* a quoted bucket may hold ';' and ','; an unknown parameter is skipped */
	ASSERT_OK(http_parse_ratelimit("\"a;b,c\";pk=:abc=:;r=3;t=9", &r, &t));
	ASSERT_U64_EQ(r, 3);
	ASSERT_U64_EQ(t, 9);
	/* only the first list member counts */
	ASSERT_OK(http_parse_ratelimit("\"api\";r=1;t=2, \"pages\";r=0;t=300", &r, &t));
	ASSERT_U64_EQ(r, 1);
	ASSERT_U64_EQ(t, 2);

	ASSERT_EQ(http_parse_ratelimit("\"api\";r=0", &r, &t), -EINVAL);
	ASSERT_EQ(http_parse_ratelimit("\"api\";t=5", &r, &t), -EINVAL);
	ASSERT_EQ(http_parse_ratelimit("\"api\";r=x;t=5", &r, &t), -EINVAL);
	ASSERT_EQ(http_parse_ratelimit("\"api\";r=-1;t=5", &r, &t), -EINVAL);
	ASSERT_EQ(http_parse_ratelimit("\"api\";r=1;t=99999999999999999999999", &r, &t), -EINVAL);
	ASSERT_EQ(http_parse_ratelimit("", &r, &t), -EINVAL);
	ASSERT_EQ(http_parse_ratelimit(NULL, &r, &t), -EINVAL);
}

static void link_case(const char *link, const char *want)
{
	char *got = http_link_next(link);

	if (want)
		ASSERT_STR_EQ(got, want);
	else if (got)
		CHECK_FAIL("Link \"%s\": got \"%s\", want none", link, got);
	free(got);
}

/* The Link of a Xet file's resolve reply (HUB_PROTOCOL.md 4.1): each rel found by name,
 * whatever its place; "xet-auth" is not a prefix match of anything else. */
static void test_link_rel(void)
{
	const char *link = "<https://hub.example.org/api/models/o/m/xet-read-token/c>; "
			   "rel=\"xet-auth\", <https://cas.example.org/v1/reconstructions/h>; "
			   "rel=\"xet-reconstruction-info\"";
	char *a = http_link_rel(link, "xet-auth"),
	     *r = http_link_rel(link, "xet-reconstruction-info");

	ASSERT_STR_EQ(a, "https://hub.example.org/api/models/o/m/xet-read-token/c");
	ASSERT_STR_EQ(r, "https://cas.example.org/v1/reconstructions/h");
	free(a);
	free(r);
	ASSERT_NULL(http_link_rel(link, "xet"));
	ASSERT_NULL(http_link_rel(link, "next"));
	ASSERT_NULL(http_link_rel("</relative>; rel=\"xet-auth\"", "xet-auth"));
	ASSERT_NULL(http_link_rel(NULL, "xet-auth"));
}

static void test_link_next(void)
{
	link_case("<https://hub.example.org/api/models/a/b/tree/main?recursive=true&cursor=abc>; "
		  "rel=\"next\"",
		  "https://hub.example.org/api/models/a/b/tree/main?recursive=true&cursor=abc");
	link_case("<http://h/p?x=1>; rel=\"prev\", <http://h/p?x=3>; rel=\"next\"",
		  "http://h/p?x=3");
	link_case("<http://h/a>;rel=next", "http://h/a");
	link_case("  <http://h/a>  ;  title=\"a, b; c\" ; REL = \"last next\"", "http://h/a");
	link_case("<http://h/a,b>; rel=\"next\"", "http://h/a,b");
	link_case("<{E}/api/xet-read-token/c>; rel=\"xet-auth\", <https://cas/v1/r/h>; "
		  "rel=\"xet-reconstruction-info\"",
		  NULL);
	link_case("</api/models/a/tree/main?cursor=x>; rel=\"next\"", NULL); /* relative */
	link_case("<ftp://h/x>; rel=\"next\"", NULL);
	link_case("<http://h/x>; rel=\"nextpage\"", NULL);
	link_case("<http://h/x; rel=\"next\"", NULL);
	link_case("http://h/x; rel=\"next\"", NULL);
	link_case("", NULL);
	link_case(NULL, NULL);
	ASSERT_TRUE(http_link_has_next("</api/x?cursor=y>; rel=\"next\""));
	ASSERT_TRUE(http_link_has_next("<http://h/a>; rel=next"));
	ASSERT_FALSE(http_link_has_next("<http://h/a>; rel=\"prev\""));
	ASSERT_FALSE(http_link_has_next(NULL));
}

static void test_etag_normalize(void)
{
	char buf[65];

	ASSERT_OK(http_etag_normalize("\"abc\"", buf, sizeof(buf)));
	ASSERT_STR_EQ(buf, "abc");
	ASSERT_OK(http_etag_normalize("W/\"abc\"", buf, sizeof(buf)));
	ASSERT_STR_EQ(buf, "abc");
	ASSERT_OK(http_etag_normalize("abc", buf, sizeof(buf)));
	ASSERT_STR_EQ(buf, "abc");
	ASSERT_OK(http_etag_normalize(" \"d41d8cd98f00b204e9800998ecf8427e-1\" ", buf, 65));
	ASSERT_STR_EQ(buf, "d41d8cd98f00b204e9800998ecf8427e-1");
	ASSERT_EQ(http_etag_normalize("\"\"", buf, sizeof(buf)), -EINVAL);
	ASSERT_EQ(http_etag_normalize("W/", buf, sizeof(buf)), -EINVAL);
	ASSERT_EQ(http_etag_normalize("", buf, sizeof(buf)), -EINVAL);
	ASSERT_EQ(http_etag_normalize(NULL, buf, sizeof(buf)), -EINVAL);
	ASSERT_EQ(http_etag_normalize("\"abcd\"", buf, 4), -EINVAL);
	ASSERT_OK(http_etag_normalize("\"abc\"", buf, 4));
}

static void test_same_origin(void)
{
	ASSERT_TRUE(http_same_origin("https://hub.example.org/api/x", "https://hub.example.org"));
	ASSERT_TRUE(http_same_origin("https://Hub.Example.ORG:443/a", "https://hub.example.org/b"));
	ASSERT_TRUE(http_same_origin("HTTP://h:80/a?b", "http://h"));
	ASSERT_TRUE(http_same_origin("http://127.0.0.1:8080/a", "http://127.0.0.1:8080"));
	ASSERT_TRUE(http_same_origin("http://user:pw@h/a", "http://h:80/"));
	ASSERT_TRUE(http_same_origin("http://[::1]:81/a", "http://[::1]:81"));
	ASSERT_FALSE(http_same_origin("http://h/a", "https://h/a"));
	ASSERT_FALSE(http_same_origin("http://h:8080/a", "http://h/a"));
	ASSERT_FALSE(http_same_origin("https://cdn.example.net/x", "https://hub.example.org"));
	ASSERT_FALSE(http_same_origin("https://hub.example.org.evil/x", "https://hub.example.org"));
	ASSERT_FALSE(http_same_origin("https://hub.example.org@evil/x", "https://hub.example.org"));
	ASSERT_FALSE(http_same_origin("http://127.0.0.1:8080", "http://127.0.0.2:8080"));
	ASSERT_FALSE(http_same_origin("/relative", "/relative"));
	ASSERT_FALSE(http_same_origin("http://h:99999/", "http://h:99999/"));
	ASSERT_TRUE(http_same_origin("http://h:/", "http://h")); /* empty port: default */
	ASSERT_FALSE(http_same_origin(NULL, "http://h"));
}

static void join_case(const char *base, const char *loc, const char *want)
{
	char *got = http_url_join(base, loc);

	if (want)
		ASSERT_STR_EQ(got, want);
	else if (got)
		CHECK_FAIL("join(\"%s\", \"%s\"): got \"%s\", want NULL", base, loc, got);
	free(got);
}

static void test_url_host_and_relative(void)
{
	char buf[64];

	http_url_host("https://hub.example.org/api/models/x", buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "hub.example.org");
	http_url_host("http://127.0.0.1:8080/x?y", buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "127.0.0.1:8080");
	http_url_host("http://Host.Example:80/", buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "host.example");
	http_url_host("not a url", buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "(malformed URL)");
	ASSERT_TRUE(http_url_is_relative("/api/resolve-cache/x"));
	ASSERT_TRUE(http_url_is_relative("other.json"));
	ASSERT_TRUE(http_url_is_relative("?q=1"));
	ASSERT_FALSE(http_url_is_relative("https://cdn.example/x"));
	ASSERT_FALSE(http_url_is_relative("//cdn.example/x"));
	ASSERT_FALSE(http_url_is_relative(""));
	ASSERT_FALSE(http_url_is_relative(NULL));
}

static void test_url_join(void)
{
	const char *b = "http://127.0.0.1:8080/org/model/resolve/main/config.json?x=1";

	join_case(b, "https://cdn.example/x?sig=1", "https://cdn.example/x?sig=1");
	join_case(
		b, "/api/resolve-cache/models/org/model/abc/config.json?etag=e",
		"http://127.0.0.1:8080/api/resolve-cache/models/org/model/abc/config.json?etag=e");
	join_case(b, "/new/name", "http://127.0.0.1:8080/new/name");
	join_case(b, "//cdn.example:9/p?q", "http://cdn.example:9/p?q");
	join_case(b, "other.json", "http://127.0.0.1:8080/org/model/resolve/main/other.json");
	join_case(b, "../../v2/a%20b", "http://127.0.0.1:8080/org/model/v2/a%20b");
	join_case(b, "/a/./b/../c", "http://127.0.0.1:8080/a/c");
	join_case(b, "/../../x", "http://127.0.0.1:8080/x");
	join_case(b, "?y=2", "http://127.0.0.1:8080/org/model/resolve/main/config.json?y=2");
	join_case("http://h", "a", "http://h/a");
	join_case("http://h?q", "/p", "http://h/p");
	join_case(b, "", NULL);
	join_case(b, "/a b", NULL);
	join_case(b, "/a\r\nX-Injected: 1", NULL);
	join_case(b, "mailto:x@y", NULL);
	join_case("/relative/base", "/x", NULL);
	join_case(NULL, "/x", NULL);
	join_case(b, NULL, NULL);
}

static void test_signed_url_expiry(void)
{
	uint64_t t;

	ASSERT_OK(http_signed_url_expiry("https://s3.amazonaws.com/b/k?X-Amz-Algorithm=AWS4-HMAC-"
					 "SHA256&X-Amz-Date=20240102T030405Z&X-Amz-Expires=3600&"
					 "X-Amz-Signature=ab",
					 &t));
	ASSERT_U64_EQ(t, 1704164645ULL + 3600);
	ASSERT_OK(http_signed_url_expiry("https://cdn.example.net/repos/x?response-content-"
					 "disposition=a&Expires=1735689600&Policy=eyJ&"
					 "Signature=s&Key-Pair-Id=K",
					 &t));
	ASSERT_U64_EQ(t, 1735689600ULL);
	ASSERT_OK(http_signed_url_expiry("http://h/x?x-amz-expires=60&x-amz-date=19700101T000100Z"
					 "#frag",
					 &t));
	ASSERT_U64_EQ(t, 120);
	ASSERT_EQ(http_signed_url_expiry("https://h/x?a=1&b=2", &t), -ENOENT);
	ASSERT_EQ(http_signed_url_expiry("https://h/x", &t), -ENOENT);
	ASSERT_EQ(http_signed_url_expiry("https://h/x#Expires=5", &t), -ENOENT);
	ASSERT_EQ(http_signed_url_expiry("https://h/x?NotExpires=5", &t), -ENOENT);
	ASSERT_EQ(http_signed_url_expiry("https://h/x?Expires=soon", &t), -EBADMSG);
	ASSERT_EQ(http_signed_url_expiry("https://h/x?X-Amz-Date=2024&X-Amz-Expires=1", &t),
		  -EBADMSG);
	ASSERT_EQ(http_signed_url_expiry("https://h/x?X-Amz-Date=20241302T000000Z&"
					 "X-Amz-Expires=1",
					 &t),
		  -EBADMSG);
	ASSERT_EQ(
		http_signed_url_expiry(
			"https://h/x?X-Amz-Date=20240101T000000Z&X-Amz-Expires=18446744073709551615",
			&t),
		-EBADMSG);
}

static void escape_case(char *(*fn)(const char *), const char *in, const char *want)
{
	char *got = fn(in);

	ASSERT_STR_EQ(got, want);
	free(got);
}

static void test_escape(void)
{
	escape_case(http_escape_path, "dir/a b#c?d%e+f.bin", "dir/a%20b%23c%3Fd%25e%2Bf.bin");
	escape_case(http_escape_path, "caf\xc3\xa9/\xe2\x9c\x93~_-.", "caf%C3%A9/%E2%9C%93~_-.");
	escape_case(http_escape_path, "a&b=c;d:e@f,g'h", "a%26b%3Dc%3Bd%3Ae%40f%2Cg%27h");
	escape_case(http_escape_path, "", "");
	escape_case(http_escape_segment, "refs/pr/1", "refs%2Fpr%2F1");
	escape_case(http_escape_segment, "main", "main");
	escape_case(http_escape_segment, "v1.0 b\xc3\xa9ta", "v1.0%20b%C3%A9ta");
	ASSERT_NULL(http_escape_path(NULL));
}

/* ---- http_request() against two local servers: A (the "Hub") and B (another origin) ---- */

#define TOKEN "hf_secret"
#define UA "hffs-test/1"

static struct minihttp srv_a, srv_b;
static char origin_a[64], origin_b[64], tmpdir[64];
static long req_timeout_s = 5;

static void handler_b(const struct mh_request *req, struct mh_reply *rep)
{
	(void)req;
	rep->body = "from b";
}

static void handler_a(const struct mh_request *req, struct mh_reply *rep)
{
	const char *t = req->target;

	if (!strcmp(t, "/headers")) {
		mh_header(rep, "ETag: W/\"abc\"");
		mh_header(rep, "x-repo-commit: 0123456789abcdef0123456789abcdef01234567");
		mh_header(rep, "X-LINKED-ETAG: \"sha\"");
		mh_header(rep, "X-Linked-Size: 42");
		mh_header(rep, "Content-Range: bytes 0-9/42");
		mh_header(rep, "Link: <http://h/x>; rel=\"next\"");
		mh_header(rep, "X-Error-Code: first");
		mh_header(rep, "X-Error-Code:   EntryNotFound  ");
		mh_header(rep, "X-Error-Message: gone");
		mh_header(rep, "Retry-After: 7");
		mh_header(rep, "RateLimit: \"api\";r=0;t=9");
		mh_header(rep, "X-Amzn-Trace-Id: trace-1");
		mh_header(rep, "X-Unrelated: 1");
		rep->body = "hello";
	} else if (!strcmp(t, "/rel")) {
		rep->status = 307;
		mh_header(rep, "Location: /target?q=1");
	} else if (!strcmp(t, "/target?q=1")) {
		mh_header(rep, "X-Request-Id: rid-9");
		mh_header(rep, "X-Amzn-Trace-Id: trace-2");
		rep->body = "arrived";
	} else if (!strcmp(t, "/abs")) {
		rep->status = 302;
		mh_header(rep, "Location: http://127.0.0.1:%d/cdn?sig=1", srv_b.port);
	} else if (!strcmp(t, "/loop")) {
		rep->status = 307;
		mh_header(rep, "Location: /loop");
	} else if (!strcmp(t, "/slow")) {
		rep->delay_ms = 2000;
	} else if (!strcmp(t, "/huge")) {
		rep->stream_zeros = (64u << 20) + 1;
	} else if (!strcmp(t, "/big")) {
		rep->stream_zeros = 1u << 20;
	} else if (!strcmp(t, "/err")) {
		rep->status = 503;
		rep->body = "{\"error\":\"busy\"}";
	} else {
		rep->status = 404;
	}
}

static int get(const char *origin, const char *path, const char *method, bool follow,
	       struct http_response *resp)
{
	char url[256];
	struct http_request req = {
		.method = method,
		.url = url,
		.token = TOKEN,
		.auth_origin = origin_a,
		.user_agent = UA,
		.timeout_s = req_timeout_s,
		.follow_relative = follow,
	};

	snprintf(url, sizeof(url), "%s%s", origin, path);
	return http_request(&req, resp);
}

static void test_request_headers(void)
{
	struct http_response r;

	minihttp_clear(&srv_a);
	ASSERT_OK(get(origin_a, "/headers", "GET", true, &r));
	ASSERT_EQ(r.status, 200);
	ASSERT_EQ(r.body_len, 5);
	ASSERT_STR_EQ(r.body, "hello");
	ASSERT_STR_EQ(r.etag, "W/\"abc\"");
	ASSERT_STR_EQ(r.x_repo_commit, "0123456789abcdef0123456789abcdef01234567");
	ASSERT_STR_EQ(r.x_linked_etag, "\"sha\"");
	ASSERT_STR_EQ(r.x_linked_size, "42");
	ASSERT_STR_EQ(r.content_range, "bytes 0-9/42");
	ASSERT_STR_EQ(r.content_length, "5");
	ASSERT_STR_EQ(r.link, "<http://h/x>; rel=\"next\"");
	ASSERT_STR_EQ(r.x_error_code, "EntryNotFound"); /* the last wins, trimmed */
	ASSERT_STR_EQ(r.x_error_message, "gone");
	ASSERT_STR_EQ(r.retry_after, "7");
	ASSERT_STR_EQ(r.ratelimit, "\"api\";r=0;t=9");
	ASSERT_STR_EQ(r.x_request_id, "trace-1"); /* X-Amzn-Trace-Id stands in */
	ASSERT_NULL(r.location);
	ASSERT_TRUE(strstr(r.effective_url, "/headers") != NULL);
	http_response_done(&r);
	ASSERT_EQ(
		minihttp_count(&srv_a, "GET /headers auth=Bearer " TOKEN " ua=" UA " ae=identity"),
		1);

	/* HEAD: headers, no body, yet a body string */
	ASSERT_OK(get(origin_a, "/headers", "HEAD", true, &r));
	ASSERT_EQ(r.status, 200);
	ASSERT_NOT_NULL(r.body);
	ASSERT_EQ(r.body_len, 0);
	ASSERT_STR_EQ(r.x_linked_size, "42");
	http_response_done(&r);

	ASSERT_OK(get(origin_a, "/big", "GET", true, &r));
	ASSERT_EQ(r.body_len, 1u << 20);
	http_response_done(&r);
}

static void test_request_redirects(void)
{
	struct http_response r;
	char want[128];

	/* a relative redirect is followed, the token kept, the redirect's own query kept */
	minihttp_clear(&srv_a);
	ASSERT_OK(get(origin_a, "/rel", "GET", true, &r));
	ASSERT_EQ(r.status, 200);
	ASSERT_STR_EQ(r.body, "arrived");
	snprintf(want, sizeof(want), "%s/target?q=1", origin_a);
	ASSERT_STR_EQ(r.effective_url, want);
	ASSERT_STR_EQ(r.x_request_id, "rid-9"); /* X-Request-Id beats the trace id */
	ASSERT_NULL(r.location); /* headers are the final reply's */
	http_response_done(&r);
	ASSERT_EQ(minihttp_count(&srv_a, "GET /rel auth=Bearer " TOKEN), 1);
	ASSERT_EQ(minihttp_count(&srv_a, "GET /target?q=1 auth=Bearer " TOKEN), 1);

	/* not asked to follow: the 307 itself */
	ASSERT_OK(get(origin_a, "/rel", "GET", false, &r));
	ASSERT_EQ(r.status, 307);
	ASSERT_STR_EQ(r.location, "/target?q=1");
	http_response_done(&r);

	/* an absolute redirect is never followed: its Location is the answer */
	minihttp_clear(&srv_b);
	ASSERT_OK(get(origin_a, "/abs", "GET", true, &r));
	ASSERT_EQ(r.status, 302);
	snprintf(want, sizeof(want), "%s/cdn?sig=1", origin_b);
	ASSERT_STR_EQ(r.location, want);
	http_response_done(&r);
	ASSERT_EQ(minihttp_count(&srv_b, "GET"), 0);

	/* another origin never sees the token */
	ASSERT_OK(get(origin_b, "/cdn?sig=1", "GET", true, &r));
	ASSERT_STR_EQ(r.body, "from b");
	http_response_done(&r);
	ASSERT_EQ(minihttp_count(&srv_b, "GET /cdn?sig=1 auth=- "), 1);

	/* a redirect loop ends */
	minihttp_clear(&srv_a);
	ASSERT_EQ(get(origin_a, "/loop", "GET", true, &r), -EBADMSG);
	ASSERT_EQ(r.status, 0);
	ASSERT_EQ(r.net_reason, FETCH_PROTOCOL);
	ASSERT_TRUE(strstr(r.error, "redirects") != NULL);
	http_response_done(&r);
	ASSERT_EQ(minihttp_count(&srv_a, "GET /loop"), 6);
}

/* A port on 127.0.0.1 that nothing listens on: bound, then released. */
static int unused_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_OK(getsockname(fd, (struct sockaddr *)&a, &alen));
	close(fd);
	return ntohs(a.sin_port);
}

static void test_request_errors(void)
{
	struct http_response r;
	char url[64];
	int port;

	/* a token that would split the header is never sent */
	{
		char u[96];
		struct http_request req = { .method = "GET",
					    .url = u,
					    .token = "hf_a\r\nX-Evil: 1",
					    .auth_origin = origin_a,
					    .timeout_s = 5 };

		snprintf(u, sizeof(u), "%s/headers", origin_a);
		minihttp_clear(&srv_a);
		ASSERT_EQ(http_request(&req, &r), -EINVAL);
		http_response_done(&r);
		ASSERT_EQ(minihttp_count(&srv_a, "GET"), 0);
	}

	/* an error status is a reply, not a failure */
	ASSERT_OK(get(origin_a, "/err", "GET", true, &r));
	ASSERT_EQ(r.status, 503);
	ASSERT_STR_EQ(r.body, "{\"error\":\"busy\"}");
	http_response_done(&r);

	ASSERT_EQ(get(origin_a, "/huge", "GET", true, &r), -EBADMSG);
	ASSERT_EQ(r.net_reason, FETCH_PROTOCOL);
	http_response_done(&r);

	/* a port nobody listens on */
	port = unused_port();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	ASSERT_EQ(get(url, "/x", "GET", true, &r), -EHOSTUNREACH);
	ASSERT_EQ(r.status, 0);
	ASSERT_EQ(r.net_reason, FETCH_CONNECT);
	snprintf(url, sizeof(url), "127.0.0.1:%d", port);
	if (!strstr(r.error, url))
		CHECK_FAIL("error \"%s\" does not name %s", r.error, url);
	http_response_done(&r);

	/* a server that answers too late */
	req_timeout_s = 1;
	ASSERT_EQ(get(origin_a, "/slow", "GET", true, &r), -ETIMEDOUT);
	req_timeout_s = 5;
	ASSERT_EQ(r.net_reason, FETCH_TIMEOUT);
	ASSERT_TRUE(strstr(r.error, "127.0.0.1") != NULL);
	http_response_done(&r);

	/* a name that does not resolve (a slow resolver may time out instead) */
	{
		struct http_request req = { .method = "GET",
					    .url = "http://hffs-test.invalid/x",
					    .timeout_s = 3 };
		int e = http_request(&req, &r);

		ASSERT_TRUE((e == -EHOSTUNREACH && r.net_reason == FETCH_DNS) ||
			    (e == -ETIMEDOUT && r.net_reason == FETCH_TIMEOUT));
		ASSERT_TRUE(strstr(r.error, "hffs-test.invalid") != NULL);
		http_response_done(&r);
	}
}

/* libcurl reads only lowercase http_proxy; HTTP_PROXY is passed on unless under CGI. */
static void test_request_proxy(void)
{
	struct http_response r;
	char proxy[64];
	int dead;

	snprintf(proxy, sizeof(proxy), "%s", origin_b);
	setenv("HTTP_PROXY", proxy, 1);
	minihttp_clear(&srv_a);
	minihttp_clear(&srv_b);
	ASSERT_OK(get(origin_a, "/headers", "GET", true, &r));
	ASSERT_STR_EQ(r.body, "from b");
	http_response_done(&r);
	{
		char want[128];

		snprintf(want, sizeof(want), "GET %s/headers ", origin_a);
		ASSERT_EQ(minihttp_count(&srv_b, want), 1);
	}
	ASSERT_EQ(minihttp_count(&srv_a, "GET"), 0);

	setenv("NO_PROXY", "127.0.0.1", 1);
	ASSERT_OK(get(origin_a, "/headers", "GET", true, &r));
	ASSERT_STR_EQ(r.body, "hello");
	http_response_done(&r);
	unsetenv("NO_PROXY");

	setenv("REQUEST_METHOD", "GET", 1);
	ASSERT_OK(get(origin_a, "/headers", "GET", true, &r));
	ASSERT_STR_EQ(r.body, "hello");
	http_response_done(&r);
	unsetenv("REQUEST_METHOD");
	unsetenv("HTTP_PROXY");
	ASSERT_EQ(minihttp_count(&srv_a, "GET /headers"), 2);

	/* A proxy that refuses is named, without its credentials; with a NO_PROXY that might
	 * have sent the request direct, only the host is (curl does not say which it tried). */
	dead = unused_port();
	snprintf(proxy, sizeof(proxy), "http://user:secret@127.0.0.1:%d/", dead);
	setenv("HTTP_PROXY", proxy, 1);
	ASSERT_EQ(get(origin_a, "/headers", "GET", true, &r), -EHOSTUNREACH);
	ASSERT_EQ(r.net_reason, FETCH_PROXY); /* never taken for an unreachable Hub */
	{
		char want[160];

		snprintf(want, sizeof(want),
			 "cannot connect to the proxy 127.0.0.1:%d (HTTP_PROXY) for %s (", dead,
			 origin_a + strlen("http://"));
		if (!strstr(r.error, want) || strstr(r.error, "secret"))
			CHECK_FAIL("error \"%s\" does not start \"%s\", or holds the password",
				   r.error, want);
	}
	http_response_done(&r);
	setenv("NO_PROXY", "hffs-test.invalid", 1);
	ASSERT_EQ(get(origin_a, "/headers", "GET", true, &r), -EHOSTUNREACH);
	if (strstr(r.error, "proxy") || !strstr(r.error, origin_a + strlen("http://")))
		CHECK_FAIL("error \"%s\" should name the host only", r.error);
	http_response_done(&r);
	unsetenv("NO_PROXY");
	unsetenv("HTTP_PROXY");
}

/* HTTP_PROXY, as xfer.c reads it too: empty is unset; a lowercase http_proxy (even empty)
 * wins, and libcurl reads that one itself; under CGI it is ignored. */
static void test_proxy_env(void)
{
	char *p;

	ASSERT_OK(http_env_proxy(&p));
	ASSERT_NULL(p);

	setenv("HTTP_PROXY", "http://proxy.invalid:3128", 1);
	ASSERT_OK(http_env_proxy(&p));
	ASSERT_STR_EQ(p, "http://proxy.invalid:3128");
	free(p);

	setenv("http_proxy", "", 1);
	ASSERT_OK(http_env_proxy(&p));
	ASSERT_NULL(p);
	unsetenv("http_proxy");

	setenv("REQUEST_METHOD", "GET", 1);
	ASSERT_OK(http_env_proxy(&p));
	ASSERT_NULL(p);
	unsetenv("REQUEST_METHOD");

	setenv("HTTP_PROXY", "", 1);
	ASSERT_OK(http_env_proxy(&p));
	ASSERT_NULL(p);
	unsetenv("HTTP_PROXY");
}

/* SSL_CERT_FILE and SSL_CERT_DIR, as xfer.c reads them too; empty is unset. */
static void test_ca_env(void)
{
	struct http_env_ca ca;

	unsetenv("SSL_CERT_FILE");
	unsetenv("SSL_CERT_DIR");
	ASSERT_OK(http_env_ca(&ca));
	ASSERT_NULL(ca.file);
	ASSERT_NULL(ca.dir);

	setenv("SSL_CERT_FILE", "/etc/hffs-test/ca.pem", 1);
	setenv("SSL_CERT_DIR", "", 1);
	ASSERT_OK(http_env_ca(&ca));
	ASSERT_STR_EQ(ca.file, "/etc/hffs-test/ca.pem");
	ASSERT_NULL(ca.dir);
	http_env_ca_done(&ca);
	ASSERT_NULL(ca.file);

	setenv("SSL_CERT_FILE", "", 1);
	setenv("SSL_CERT_DIR", "/etc/hffs-test/certs", 1);
	ASSERT_OK(http_env_ca(&ca));
	ASSERT_NULL(ca.file);
	ASSERT_STR_EQ(ca.dir, "/etc/hffs-test/certs");
	http_env_ca_done(&ca);
	http_env_ca_done(NULL);
	unsetenv("SSL_CERT_FILE");
	unsetenv("SSL_CERT_DIR");
}

/* http_request() hands SSL_CERT_FILE to curl: a bundle that is not there fails the TLS setup,
 * right after the TCP connect (no TLS server needed), in words that name it. */
static void test_request_ca(void)
{
	struct http_response r;
	char url[96], ca[128];
	struct http_request req = { .method = "GET", .url = url, .timeout_s = 5 };

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/headers", srv_a.port);
	snprintf(ca, sizeof(ca), "%s/no-such-ca.pem", tmpdir);
	setenv("SSL_CERT_FILE", ca, 1);
	minihttp_clear(&srv_a);
	ASSERT_EQ(http_request(&req, &r), fetch_reason_errno(FETCH_TLS));
	ASSERT_EQ(r.net_reason, FETCH_TLS);
	if (!strstr(r.error, "no-such-ca.pem"))
		CHECK_FAIL("the error does not name SSL_CERT_FILE: %s", r.error);
	http_response_done(&r);
	unsetenv("SSL_CERT_FILE");
	ASSERT_EQ(minihttp_count(&srv_a, "GET"), 0);
}

static void minihttp_tests(void)
{
	static const char *const proxy_vars[] = { "http_proxy",	 "HTTP_PROXY", "https_proxy",
						  "HTTPS_PROXY", "all_proxy",  "ALL_PROXY",
						  "no_proxy",	 "NO_PROXY",   "REQUEST_METHOD" };

	for (size_t i = 0; i < sizeof(proxy_vars) / sizeof(proxy_vars[0]); i++)
		unsetenv(proxy_vars[i]);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_http.XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(tmpdir));
	minihttp_start(&srv_b, handler_b, tmpdir);
	minihttp_start(&srv_a, handler_a, tmpdir);
	snprintf(origin_a, sizeof(origin_a), "http://127.0.0.1:%d", srv_a.port);
	snprintf(origin_b, sizeof(origin_b), "http://127.0.0.1:%d", srv_b.port);
	RUN(test_request_headers);
	RUN(test_request_redirects);
	RUN(test_request_errors);
	RUN(test_proxy_env);
	RUN(test_request_proxy);
	RUN(test_request_ca);
	minihttp_stop(&srv_a);
	minihttp_stop(&srv_b);
	ASSERT_OK(rmdir(tmpdir));
}

int main(void)
{
	RUN(test_is_redirect);
	RUN(test_content_range);
	RUN(test_retry_after);
	RUN(test_ratelimit);
	RUN(test_link_next);
	RUN(test_link_rel);
	RUN(test_etag_normalize);
	RUN(test_same_origin);
	RUN(test_url_host_and_relative);
	RUN(test_url_join);
	RUN(test_signed_url_expiry);
	RUN(test_escape);
	RUN(test_ca_env);
	minihttp_tests();
	return 0;
}
