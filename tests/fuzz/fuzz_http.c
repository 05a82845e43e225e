/* fuzz_http.c: untrusted header values and URLs into http.h's parsers (Content-Range,
 * Retry-After, RateLimit, Link, ETag, origins, hosts, URL joins, signed-URL expiry, escaping)
 * and the status map of reason.h, with a server's X-Error-Code. The
 * input is split at its first newline into two strings where a parser takes two (base and
 * Location, two origins). Invariants abort; memory errors are the sanitizers'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch/http.h"
#include "fetch/reason.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_escaped_char(char c, bool slash)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       strchr("_.-~%", c) || (slash && c == '/');
}

static void check_escape(const char *in, bool slash)
{
	char *out = slash ? http_escape_path(in) : http_escape_segment(in);

	if (!out)
		return;
	for (const char *p = out; *p; p++)
		if (!is_escaped_char(*p, slash))
			abort();
	free(out);
}

static void one(const char *v)
{
	uint64_t a, b, c;
	char etag[65], host[64], *s;

	if (http_parse_content_range(v, &a, &b, &c) == 0 && (a > b || (c != UINT64_MAX && b >= c)))
		abort();
	(void)http_parse_retry_after(v, &a);
	(void)http_parse_ratelimit(v, &a, &b);
	s = http_link_next(v);
	if (s && (strncasecmp(s, "http", 4) || !http_link_has_next(v)))
		abort();
	free(s);
	if (http_etag_normalize(v, etag, sizeof(etag)) == 0 && !etag[0])
		abort();
	(void)http_signed_url_expiry(v, &a);
	http_url_host(v, host, sizeof(host));
	if (strlen(host) >= sizeof(host))
		abort();
	if (http_url_is_relative(v) && !strncmp(v, "//", 2))
		abort();
	check_escape(v, true);
	check_escape(v, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *second;
	char *joined;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	second = strchr(buf, '\n');
	if (second)
		*second++ = '\0';
	one(buf);
	if (second) {
		one(second);
		if (http_same_origin(buf, second) != http_same_origin(second, buf))
			abort();
		joined = http_url_join(buf, second);
		/* a path-only Location stays on base's origin */
		if (joined && second[0] == '/' && second[1] != '/' &&
		    !http_same_origin(buf, joined))
			abort();
		free(joined);
	}
	(void)fetch_reason_from_status((long)size, buf);
	free(buf);
	return 0;
}
