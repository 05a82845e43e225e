/* http.c: the parsers of the headers and URLs the Hub protocol uses: Content-Range,
 * Retry-After, RateLimit, Link, ETag, redirect statuses, URL origins, joins, hosts, signed-URL
 * expiry and percent-encoding. Pure functions over strings; any thread. No curl: the fuzz
 * target tests/fuzz/fuzz_http.c runs every parser on hostile input. */
#include "fetch/http.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/cleanup.h"

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Parses one or more decimal digits at *p into ret, advancing *p. -ERANGE on overflow,
 * -EINVAL when no digit is there. */
static int parse_digits(const char **p, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*p = s;
	*ret = v;
	return 0;
}

int http_parse_content_range(const char *v, uint64_t *ret_first, uint64_t *ret_last,
			     uint64_t *ret_total)
{
	uint64_t first, last, total;
	const char *p;

	if (!v)
		return -EBADMSG;
	p = skip_ws(v);
	if (strncasecmp(p, "bytes", 5) != 0)
		return -EBADMSG;
	p += 5;
	if (*p != ' ' && *p != '\t')
		return -EBADMSG;
	p = skip_ws(p);
	if (parse_digits(&p, &first) < 0 || *p++ != '-' || parse_digits(&p, &last) < 0 ||
	    *p++ != '/')
		return -EBADMSG;
	if (*p == '*') {
		p++;
		total = UINT64_MAX;
	} else if (parse_digits(&p, &total) < 0 || last >= total) {
		return -EBADMSG;
	}
	if (*skip_ws(p) != '\0' || first > last)
		return -EBADMSG;
	*ret_first = first;
	*ret_last = last;
	*ret_total = total;
	return 0;
}

int http_parse_retry_after(const char *v, uint64_t *ret_seconds)
{
	uint64_t s;
	const char *p;

	if (!v)
		return -EINVAL;
	p = skip_ws(v);
	if (parse_digits(&p, &s) < 0 || *skip_ws(p) != '\0')
		return -EINVAL;
	*ret_seconds = s;
	return 0;
}

/* Skips a quoted-string (at '"') or a token up to one of stops; returns the end. */
static const char *skip_value(const char *p, const char *stops)
{
	if (*p == '"') {
		for (p++; *p && *p != '"'; p++)
			if (*p == '\\' && p[1])
				p++;
		return *p ? p + 1 : p;
	}
	while (*p && !strchr(stops, *p))
		p++;
	return p;
}

int http_parse_ratelimit(const char *v, uint64_t *ret_remaining, uint64_t *ret_reset_seconds)
{
	bool have_r = false, have_t = false;
	uint64_t r = 0, t = 0;
	const char *p;

	if (!v)
		return -EINVAL;
	/* The first list member only: "<bucket>";r=..;t=.. [, "<other>";...] */
	p = skip_value(skip_ws(v), ";,");
	while (*(p = skip_ws(p)) == ';') {
		char name = 0;
		const char *q;

		p = skip_ws(p + 1);
		q = p;
		while (*q && *q != '=' && *q != ';' && *q != ',' && *q != ' ' && *q != '\t')
			q++;
		if (q - p == 1)
			name = (char)tolower((unsigned char)*p);
		q = skip_ws(q);
		if (*q != '=') {
			p = q;
			continue;
		}
		q = skip_ws(q + 1);
		if (name == 'r' || name == 't') {
			uint64_t n;

			if (parse_digits(&q, &n) < 0)
				return -EINVAL;
			if (name == 'r') {
				r = n;
				have_r = true;
			} else {
				t = n;
				have_t = true;
			}
			p = q;
		} else {
			p = skip_value(q, ";,");
		}
	}
	if (*p && *p != ',')
		return -EINVAL;
	if (!have_r || !have_t)
		return -EINVAL;
	*ret_remaining = r;
	*ret_reset_seconds = t;
	return 0;
}

static bool is_absolute_http(const char *url, size_t len)
{
	return (len > 7 && !strncasecmp(url, "http://", 7)) ||
	       (len > 8 && !strncasecmp(url, "https://", 8));
}

/* True when the rel parameter value [v, v+n) (quotes stripped) lists rel. */
static bool rel_has(const char *v, size_t n, const char *rel)
{
	size_t rel_len = strlen(rel);
	size_t i = 0;

	while (i < n) {
		size_t j;

		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		j = i;
		while (j < n && v[j] != ' ' && v[j] != '\t')
			j++;
		if (j - i == rel_len && !strncasecmp(v + i, rel, rel_len))
			return true;
		i = j;
	}
	return false;
}

/* One link-value's parameters from p (just after '>') to the next ',' or end. Returns the end
 * and sets *ret_next when a rel parameter names rel. */
static const char *link_params(const char *p, const char *rel, bool *ret_next)
{
	*ret_next = false;
	while (*(p = skip_ws(p)) == ';') {
		const char *name, *val;
		size_t name_len;

		p = skip_ws(p + 1);
		name = p;
		while (*p && *p != '=' && *p != ';' && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		name_len = (size_t)(p - name);
		p = skip_ws(p);
		if (*p != '=')
			continue;
		p = skip_ws(p + 1);
		val = p;
		p = skip_value(p, ";, \t");
		if (name_len == 3 && !strncasecmp(name, "rel", 3)) {
			size_t n = (size_t)(p - val);

			if (n >= 2 && val[0] == '"' && val[n - 1] == '"')
				*ret_next = *ret_next || rel_has(val + 1, n - 2, rel);
			else
				*ret_next = *ret_next || rel_has(val, n, rel);
		}
	}
	return p;
}

/* Finds the first link-value whose rel lists rel: its URL is [*ret_url, *ret_url + *ret_len).
 * False when there is none or the header is malformed before one is found. */
static bool link_find(const char *link, const char *rel, const char **ret_url, size_t *ret_len)
{
	const char *p = link;

	if (!link)
		return false;
	for (;;) {
		const char *url, *end;
		bool next;

		p = skip_ws(p);
		while (*p == ',')
			p = skip_ws(p + 1);
		if (*p != '<')
			return false;
		url = p + 1;
		end = strchr(url, '>');
		if (!end)
			return false;
		p = link_params(end + 1, rel, &next);
		if (next) {
			*ret_url = url;
			*ret_len = (size_t)(end - url);
			return true;
		}
		if (*p != ',')
			return false;
	}
}

char *http_link_rel(const char *link, const char *rel)
{
	const char *url;
	size_t n;

	if (!link_find(link, rel, &url, &n))
		return NULL;
	/* The protocol gives absolute URLs (HUB_PROTOCOL.md 3, XET_CLIENTS.md 1); anything else
	 * is not followed. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f)
			return NULL;
	if (!is_absolute_http(url, n))
		return NULL;
	return strndup(url, n);
}

char *http_link_next(const char *link)
{
	return http_link_rel(link, "next");
}

bool http_link_has_next(const char *link)
{
	const char *url;
	size_t n;

	return link_find(link, "next", &url, &n);
}

int http_etag_normalize(const char *etag, char *buf, size_t len)
{
	const char *s, *e;
	size_t n;

	if (!etag)
		return -EINVAL;
	s = skip_ws(etag);
	if (!strncmp(s, "W/", 2))
		s += 2;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	if (s < e && *s == '"')
		s++;
	if (e > s && e[-1] == '"')
		e--;
	n = (size_t)(e - s);
	if (n == 0 || n >= len)
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return 0;
}

bool http_status_is_redirect(long status)
{
	return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* The parts of an absolute URL this file needs. */
struct url_parts {
	char scheme[16]; /* lowercase */
	char host[256]; /* lowercase; IPv6 keeps its brackets */
	unsigned port; /* explicit, or the scheme's default (0 when unknown) */
	size_t path_off; /* offset of what follows the authority ('/', '?', '#' or end) */
};

static int url_parse(const char *url, struct url_parts *ret)
{
	const char *p = url, *auth, *end, *at, *host, *host_end, *port = NULL;
	size_t n;

	if (!url || !isalpha((unsigned char)*p))
		return -EINVAL;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	n = (size_t)(p - url);
	if (strncmp(p, "://", 3) != 0 || n >= sizeof(ret->scheme))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		ret->scheme[i] = (char)tolower((unsigned char)url[i]);
	ret->scheme[n] = '\0';
	auth = p + 3;
	end = auth + strcspn(auth, "/?#");
	/* userinfo@ is not part of the origin */
	at = memrchr(auth, '@', (size_t)(end - auth));
	host = at ? at + 1 : auth;
	if (*host == '[') {
		host_end = memchr(host, ']', (size_t)(end - host));
		if (!host_end)
			return -EINVAL;
		host_end++;
		if (host_end < end) {
			if (*host_end != ':')
				return -EINVAL;
			port = host_end + 1;
		}
	} else {
		host_end = memchr(host, ':', (size_t)(end - host));
		if (host_end)
			port = host_end + 1;
		else
			host_end = end;
	}
	n = (size_t)(host_end - host);
	if (n == 0 || n >= sizeof(ret->host))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)host[i];

		if (c <= ' ' || c == 0x7f)
			return -EINVAL;
		ret->host[i] = (char)tolower(c);
	}
	ret->host[n] = '\0';
	if (port && port < end) {
		uint64_t v;
		const char *q = port;

		if (parse_digits(&q, &v) < 0 || q != end || v == 0 || v > 65535)
			return -EINVAL;
		ret->port = (unsigned)v;
	} else if (!strcmp(ret->scheme, "http")) {
		ret->port = 80;
	} else if (!strcmp(ret->scheme, "https")) {
		ret->port = 443;
	} else {
		ret->port = 0;
	}
	ret->path_off = (size_t)(end - url);
	return 0;
}

bool http_same_origin(const char *a, const char *b)
{
	struct url_parts pa, pb;

	if (url_parse(a, &pa) < 0 || url_parse(b, &pb) < 0)
		return false;
	return !strcmp(pa.scheme, pb.scheme) && !strcmp(pa.host, pb.host) && pa.port == pb.port;
}

/* True when s starts with "scheme:" (RFC 3986 3.1). */
static bool has_scheme(const char *s)
{
	const char *p = s;

	if (!isalpha((unsigned char)*p))
		return false;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	return *p == ':';
}

/* RFC 3986 5.2.4 on the path part of buf (a NUL-terminated path starting with '/', query and
 * fragment already split off), in place. */
static void remove_dot_segments(char *path)
{
	char *in = path, *out = path;

	while (*in) {
		if (!strncmp(in, "/./", 3)) {
			in += 2;
		} else if (!strcmp(in, "/.")) {
			in[1] = '\0';
		} else if (!strncmp(in, "/../", 4) || !strcmp(in, "/..")) {
			in += 3;
			if (*in == '\0') {
				in--;
				*in = '/';
			}
			while (out > path && *--out != '/')
				;
		} else {
			do
				*out++ = *in++;
			while (*in && *in != '/');
		}
	}
	*out = '\0';
}

void http_url_host(const char *url, char *buf, size_t len)
{
	struct url_parts p;

	if (url_parse(url, &p) < 0)
		snprintf(buf, len, "%s", "(malformed URL)");
	else if ((!strcmp(p.scheme, "http") && p.port == 80) ||
		 (!strcmp(p.scheme, "https") && p.port == 443))
		snprintf(buf, len, "%s", p.host);
	else
		snprintf(buf, len, "%s:%u", p.host, p.port);
}

bool http_url_is_relative(const char *location)
{
	return location && *location && !has_scheme(location) && strncmp(location, "//", 2) != 0;
}

char *http_url_join(const char *base, const char *location)
{
	_cleanup_free_ char *path = NULL;
	struct url_parts bp;
	const char *loc, *rest, *base_path;
	size_t plen;
	char *out;

	if (!base || !location || url_parse(base, &bp) < 0)
		return NULL;
	loc = location;
	if (*loc == '\0')
		return NULL;
	for (const char *c = loc; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return NULL;
	if (has_scheme(loc)) {
		struct url_parts lp;

		return url_parse(loc, &lp) < 0 ? NULL : strdup(loc);
	}
	if (loc[0] == '/' && loc[1] == '/') {
		struct url_parts lp;

		if (asprintf(&out, "%s:%s", bp.scheme, loc) < 0)
			return NULL;
		if (url_parse(out, &lp) < 0) {
			free(out);
			return NULL;
		}
		return out;
	}
	base_path = base + bp.path_off;
	rest = loc + strcspn(loc, "?#");
	if (loc[0] == '/') {
		path = strndup(loc, (size_t)(rest - loc));
	} else if (rest == loc) {
		/* "?query" or "#fragment" keeps base's path */
		plen = strcspn(base_path, "?#");
		path = plen ? strndup(base_path, plen) : strdup("/");
	} else {
		/* A relative path replaces base's last segment (RFC 3986 5.2.3); base's path,
		 * when present, starts with '/'. */
		const char *slash = base_path + strcspn(base_path, "?#");

		while (slash > base_path && slash[-1] != '/')
			slash--;
		plen = (size_t)(slash - base_path);
		if (asprintf(&path, "%s%.*s%.*s", plen ? "" : "/", (int)plen, base_path,
			     (int)(rest - loc), loc) < 0)
			path = NULL;
	}
	if (!path)
		return NULL;
	remove_dot_segments(path);
	if (asprintf(&out, "%.*s%s%s", (int)bp.path_off, base, path, rest) < 0)
		return NULL;
	return out;
}

/* The value of query parameter name (case-insensitive) in url, or NULL; *ret_len its length. */
static const char *query_param(const char *url, const char *name, size_t *ret_len)
{
	size_t nlen = strlen(name);
	const char *q = strchr(url, '?');
	const char *end;

	if (!q)
		return NULL;
	end = q + strcspn(q, "#");
	for (const char *p = q + 1; p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pe = amp ? amp : end;

		if ((size_t)(pe - p) > nlen && p[nlen] == '=' && !strncasecmp(p, name, nlen)) {
			*ret_len = (size_t)(pe - p - (ptrdiff_t)nlen - 1);
			return p + nlen + 1;
		}
		p = pe + 1;
	}
	return NULL;
}

/* A bounded decimal from [v, v+n). */
static int parse_digits_n(const char *v, size_t n, uint64_t *ret)
{
	char tmp[24];
	const char *p = tmp;

	if (n == 0 || n >= sizeof(tmp))
		return -EBADMSG;
	memcpy(tmp, v, n);
	tmp[n] = '\0';
	if (parse_digits(&p, ret) < 0 || *p)
		return -EBADMSG;
	return 0;
}

/* "YYYYMMDDTHHMMSSZ" (ISO 8601 basic, UTC) to unix seconds. */
static int parse_amz_date(const char *v, size_t n, uint64_t *ret)
{
	struct tm tm = { 0 };
	char tmp[17];
	const char *end;
	time_t t;

	if (n != 16)
		return -EBADMSG;
	memcpy(tmp, v, n);
	tmp[n] = '\0';
	/* strptime() alone would accept signs and short fields */
	for (size_t i = 0; i < 16; i++) {
		if (i == 8 || i == 15) {
			if (tmp[i] != (i == 8 ? 'T' : 'Z'))
				return -EBADMSG;
		} else if (!isdigit((unsigned char)tmp[i])) {
			return -EBADMSG;
		}
	}
	end = strptime(tmp, "%Y%m%dT%H%M%SZ", &tm);
	if (!end || *end)
		return -EBADMSG;
	t = timegm(&tm);
	if (t < 0)
		return -EBADMSG;
	*ret = (uint64_t)t;
	return 0;
}

int http_signed_url_expiry(const char *url, uint64_t *ret_unix)
{
	const char *date, *expires;
	size_t date_len, expires_len;
	uint64_t a, b;

	if (!url)
		return -ENOENT;
	date = query_param(url, "X-Amz-Date", &date_len);
	expires = query_param(url, "X-Amz-Expires", &expires_len);
	if (date && expires) {
		if (parse_amz_date(date, date_len, &a) < 0 ||
		    parse_digits_n(expires, expires_len, &b) < 0 || b > UINT64_MAX - a)
			return -EBADMSG;
		*ret_unix = a + b;
		return 0;
	}
	expires = query_param(url, "Expires", &expires_len);
	if (expires) {
		if (parse_digits_n(expires, expires_len, &a) < 0)
			return -EBADMSG;
		*ret_unix = a;
		return 0;
	}
	return -ENOENT;
}

/* Python quote(): unreserved characters (and '/' for paths) stay; every other byte, UTF-8
 * included, becomes %XX in uppercase hex. */
static bool is_kept(unsigned char c, bool keep_slash)
{
	return (c < 0x80 && isalnum(c)) || c == '_' || c == '.' || c == '-' || c == '~' ||
	       (keep_slash && c == '/');
}

static char *escape(const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	char *out, *o;

	if (!s)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		n += is_kept(*p, keep_slash) ? 1 : 3;
	out = malloc(n + 1);
	if (!out)
		return NULL;
	o = out;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (is_kept(*p, keep_slash)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

char *http_escape_path(const char *path)
{
	return escape(path, true);
}

char *http_escape_segment(const char *s)
{
	return escape(s, false);
}
