/* http.c: the parsers of the headers and URLs the Hub protocol uses (pure, any thread), and
 * one blocking HTTP exchange for metadata over a curl easy handle (any thread, one handle per
 * call). One of the two curl users; knows nothing of repos, trees or the cache. */
#include "fetch/http.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "fetch/http_priv.h"
#include "util/cleanup.h"
#include "util/log.h"

#define HTTP_BODY_MAX (64u << 20)
#define HTTP_MAX_REDIRECTS 5
#define HTTP_CONNECT_TIMEOUT_MAX 10L
#define HTTP_DEFAULT_TIMEOUT 10L

/* ---- small lexical helpers ---- */

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

/* ---- header parsers ---- */

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

/* True when the rel parameter value [v, v+n) (quotes stripped) lists "next". */
static bool rel_has_next(const char *v, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j;

		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		j = i;
		while (j < n && v[j] != ' ' && v[j] != '\t')
			j++;
		if (j - i == 4 && !strncasecmp(v + i, "next", 4))
			return true;
		i = j;
	}
	return false;
}

/* One link-value's parameters from p (just after '>') to the next ',' or end. Returns the end
 * and sets *ret_next when a rel parameter names "next". */
static const char *link_params(const char *p, bool *ret_next)
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
				*ret_next = *ret_next || rel_has_next(val + 1, n - 2);
			else
				*ret_next = *ret_next || rel_has_next(val, n);
		}
	}
	return p;
}

/* Finds the first link-value whose rel lists "next": its URL is [*ret_url, *ret_url + *ret_len).
 * False when there is none or the header is malformed before one is found. */
static bool link_find_next(const char *link, const char **ret_url, size_t *ret_len)
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
		p = link_params(end + 1, &next);
		if (next) {
			*ret_url = url;
			*ret_len = (size_t)(end - url);
			return true;
		}
		if (*p != ',')
			return false;
	}
}

char *http_link_next(const char *link)
{
	const char *url;
	size_t n;

	if (!link_find_next(link, &url, &n))
		return NULL;
	/* The protocol gives an absolute URL (HUB_PROTOCOL.md 3); anything else is not
	 * followed. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f)
			return NULL;
	if (!is_absolute_http(url, n))
		return NULL;
	return strndup(url, n);
}

bool http_link_has_next(const char *link)
{
	const char *url;
	size_t n;

	return link_find_next(link, &url, &n);
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

/* ---- URLs ---- */

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

/* ---- the exchange ---- */

/* Headers kept from the final reply; names compared case-insensitively. */
static const struct {
	const char *name;
	size_t off;
} kept_headers[] = {
	{ "location", offsetof(struct http_response, location) },
	{ "etag", offsetof(struct http_response, etag) },
	{ "x-repo-commit", offsetof(struct http_response, x_repo_commit) },
	{ "x-linked-etag", offsetof(struct http_response, x_linked_etag) },
	{ "x-linked-size", offsetof(struct http_response, x_linked_size) },
	{ "content-range", offsetof(struct http_response, content_range) },
	{ "content-length", offsetof(struct http_response, content_length) },
	{ "link", offsetof(struct http_response, link) },
	{ "x-error-code", offsetof(struct http_response, x_error_code) },
	{ "x-error-message", offsetof(struct http_response, x_error_message) },
	{ "retry-after", offsetof(struct http_response, retry_after) },
	{ "ratelimit", offsetof(struct http_response, ratelimit) },
	{ "x-request-id", offsetof(struct http_response, x_request_id) },
};

/* The request id falls back to these, in order (HUB_PROTOCOL.md 5). */
static const char *const request_id_fallbacks[] = { "x-amzn-trace-id", "x-amz-cf-id" };

/* One exchange's collection state; lives on http_request()'s stack. */
struct exchange {
	struct http_response *resp;
	char *request_id_alt[ARRAY_SIZE(request_id_fallbacks)];
	size_t body_cap;
	const char *proxy_named; /* for describe_failure(), http:// URLs only; borrowed */
	bool too_big;
	bool oom;
};

static char **header_slot(struct http_response *r, size_t i)
{
	return (char **)((char *)r + kept_headers[i].off);
}

static void exchange_clear_headers(struct exchange *x)
{
	for (size_t i = 0; i < ARRAY_SIZE(kept_headers); i++) {
		char **slot = header_slot(x->resp, i);

		free(*slot);
		*slot = NULL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(x->request_id_alt); i++) {
		free(x->request_id_alt[i]);
		x->request_id_alt[i] = NULL;
	}
}

static void exchange_clear_body(struct exchange *x)
{
	free(x->resp->body);
	x->resp->body = NULL;
	x->resp->body_len = 0;
	x->body_cap = 0;
}

static bool store_header(char **slot, const char *v, size_t n)
{
	char *copy = strndup(v, n);

	if (!copy)
		return false;
	free(*slot);
	*slot = copy;
	return true;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct exchange *x = ud;
	size_t len = size * nitems, name_len, vlen;
	const char *colon, *v;

	/* A status line starts a new reply (1xx, a proxy's CONNECT reply): only the last
	 * reply's headers count. */
	if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
		exchange_clear_headers(x);
		return len;
	}
	colon = memchr(buf, ':', len);
	if (!colon)
		return len;
	name_len = (size_t)(colon - buf);
	v = colon + 1;
	vlen = len - name_len - 1;
	while (vlen && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ' ||
			v[vlen - 1] == '\t'))
		vlen--;
	for (size_t i = 0; i < ARRAY_SIZE(kept_headers); i++)
		if (strlen(kept_headers[i].name) == name_len &&
		    !strncasecmp(buf, kept_headers[i].name, name_len)) {
			if (!store_header(header_slot(x->resp, i), v, vlen))
				goto oom;
			return len;
		}
	for (size_t i = 0; i < ARRAY_SIZE(request_id_fallbacks); i++)
		if (strlen(request_id_fallbacks[i]) == name_len &&
		    !strncasecmp(buf, request_id_fallbacks[i], name_len)) {
			if (!store_header(&x->request_id_alt[i], v, vlen))
				goto oom;
			return len;
		}
	return len;
oom:
	x->oom = true;
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct exchange *x = ud;
	struct http_response *r = x->resp;
	size_t len = size * nmemb;

	if (len > HTTP_BODY_MAX - r->body_len) {
		x->too_big = true;
		return 0;
	}
	if (r->body_len + len + 1 > x->body_cap) {
		size_t cap = x->body_cap ? x->body_cap : 4096;
		char *nb;

		while (cap < r->body_len + len + 1)
			cap *= 2;
		nb = realloc(r->body, cap);
		if (!nb) {
			x->oom = true;
			return 0;
		}
		r->body = nb;
		x->body_cap = cap;
	}
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return len;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool env_is_set(const char *name)
{
	const char *v = getenv(name);

	return v && *v;
}

int http_proxy_from_env(char **ret)
{
	const char *v = getenv("HTTP_PROXY");

	*ret = NULL;
	if (!v || !*v || getenv("http_proxy") || getenv("REQUEST_METHOD"))
		return 0;
	*ret = strdup(v);
	return *ret ? 0 : -ENOMEM;
}

int http_proxy_setopt(const char *http_proxy, const char *url, void *curl)
{
	/* As for the CAs: a failure must not send the request direct, around the proxy. */
	if (http_proxy && strncasecmp(url, "http://", 7) == 0 &&
	    curl_easy_setopt(curl, CURLOPT_PROXY, http_proxy) != CURLE_OK)
		return -ENOMEM;
	return 0;
}

int http_ca_from_env(struct http_ca *ret)
{
	static const char *const names[] = { "SSL_CERT_FILE", "SSL_CERT_DIR" };
	char **fields[] = { &ret->file, &ret->dir };

	*ret = (struct http_ca){ 0 };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const char *v = getenv(names[i]);

		if (!v || !*v)
			continue;
		*fields[i] = strdup(v);
		if (!*fields[i])
			return -ENOMEM;
	}
	return 0;
}

void http_ca_done(struct http_ca *ca)
{
	if (!ca)
		return;
	free(ca->file);
	free(ca->dir);
	*ca = (struct http_ca){ 0 };
}

int http_ca_setopt(const struct http_ca *ca, void *curl)
{
	/* A failure here must not pass silently: the handle would trust curl's default CAs
	 * instead of the ones asked for. */
	if ((ca->file && curl_easy_setopt(curl, CURLOPT_CAINFO, ca->file) != CURLE_OK) ||
	    (ca->dir && curl_easy_setopt(curl, CURLOPT_CAPATH, ca->dir) != CURLE_OK))
		return -ENOMEM;
	return 0;
}

static void host_of(const char *url, char *buf, size_t len)
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

/* The proxy as HTTP_PROXY names it, "[scheme://][user:password@]host[:port][/]", reduced to
 * host[:port]: the credentials never reach a log. */
static void proxy_host_of(const char *proxy, char *buf, size_t len)
{
	const char *p = strstr(proxy, "://"), *end, *at;

	p = p ? p + 3 : proxy;
	end = p + strcspn(p, "/?#");
	at = memrchr(p, '@', (size_t)(end - p));
	if (at)
		p = at + 1;
	snprintf(buf, len, "%.*s", (int)(end - p), p);
}

/* proxy: the proxy the request went to for certain (HTTP_PROXY, set by http_proxy_setopt(),
 * with no NO_PROXY to send some hosts direct), else NULL. A proxy that cannot be reached is
 * named as the culprit: "cannot connect to <the Hub>" would send the user after the Hub, with
 * the proxy's address only in curl's words. curl 7.88 cannot say which address a failed
 * connect tried (CURLINFO_USED_PROXY is 8.7), so a proxy curl chose itself (http_proxy,
 * ALL_PROXY) is named only when curl's code says "proxy". */
static void describe_failure(struct http_response *r, const char *host,
			     const struct fetch_transport *t, const char *curl_msg,
			     const char *curl_words, const char *proxy)
{
	static const char *const what[FETCH_REASON_MAX] = {
		[FETCH_DNS] = "cannot resolve the host name of",
		[FETCH_CONNECT] = "cannot connect to",
		[FETCH_TLS] = "TLS failure with",
		[FETCH_TIMEOUT] = "timed out talking to",
		[FETCH_PROTOCOL] = "malformed or broken reply from",
		[FETCH_IO] = "transfer failed with",
	};
	bool refused = t->reason == FETCH_CONNECT && !t->broke_off;
	const char *words = t->broke_off ? "connection broke off with" : what[t->reason];
	const char *why = curl_msg[0] ? curl_msg : curl_words;

	if (t->reason == FETCH_PROXY || (proxy && refused)) {
		char ph[128] = "";

		/* A proxy error is raised, never taken for an unreachable Hub (HUB_PROTOCOL §6). */
		r->net_reason = FETCH_PROXY;
		if (proxy) {
			proxy_host_of(proxy, ph, sizeof(ph));
			why = curl_words; /* curl's message would repeat the address */
		}
		snprintf(r->error, sizeof(r->error), "%s the proxy %.50s%sfor %.80s (%.60s)",
			 refused ? "cannot connect to" : "cannot resolve the host name of", ph,
			 proxy ? " (HTTP_PROXY) " : "", host, why);
		return;
	}
	snprintf(r->error, sizeof(r->error), "%s %.100s (%.100s)",
		 words ? words : "transfer failed with", host, why);
}

/* The request headers for url: identity encoding, and the token when url is on its origin
 * (HUB_PROTOCOL.md 4.2, 5). -ENOMEM, -EINVAL for a token that would break the header. */
static int request_headers(const struct http_request *req, const char *url, struct curl_slist **ret)
{
	_cleanup_free_ char *auth = NULL;
	struct curl_slist *hdrs, *tmp;

	hdrs = curl_slist_append(NULL, "Accept-Encoding: identity");
	if (!hdrs)
		return -ENOMEM;
	if (req->token && req->auth_origin && http_same_origin(url, req->auth_origin)) {
		for (const char *c = req->token; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f) {
				curl_slist_free_all(hdrs);
				return -EINVAL;
			}
		if (asprintf(&auth, "Authorization: Bearer %s", req->token) < 0)
			auth = NULL;
		tmp = auth ? curl_slist_append(hdrs, auth) : NULL;
		if (!tmp) {
			curl_slist_free_all(hdrs);
			return -ENOMEM;
		}
		hdrs = tmp;
	}
	*ret = hdrs;
	return 0;
}

static void set_options(CURL *h, const struct http_request *req, const char *url,
			struct exchange *x, struct curl_slist *hdrs, char *errbuf)
{
	long timeout = req->timeout_s > 0 ? req->timeout_s : HTTP_DEFAULT_TIMEOUT;

	(void)curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	(void)curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	(void)curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	(void)curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	(void)curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	(void)curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	(void)curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout);
	(void)curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, MIN(timeout, HTTP_CONNECT_TIMEOUT_MAX));
	(void)curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	(void)curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	(void)curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	(void)curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	if (req->user_agent)
		(void)curl_easy_setopt(h, CURLOPT_USERAGENT, req->user_agent);
	if (req->range)
		(void)curl_easy_setopt(h, CURLOPT_RANGE, req->range);
	if (req->method && !strcmp(req->method, "HEAD"))
		(void)curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
}

/* One hop: a single request to url, no redirect followed, through http_proxy if url is
 * http:// (NULL: curl's own choice), trusting ca. Returns 0 with a reply, or -errno with
 * x->resp->net_reason and x->resp->error set. */
static int exchange_once(CURL *h, const struct http_request *req, const char *http_proxy,
			 const struct http_ca *ca, const char *url, struct exchange *x)
{
	struct http_response *resp = x->resp;
	char curl_msg[CURL_ERROR_SIZE] = "", host[300];
	struct curl_slist *hdrs = NULL;
	CURLcode c;
	int r;

	exchange_clear_headers(x);
	exchange_clear_body(x);
	x->too_big = x->oom = false;
	/* keeps the connection cache: a relative redirect reuses the connection */
	curl_easy_reset(h);
	r = request_headers(req, url, &hdrs);
	if (r < 0) {
		resp->net_reason = FETCH_IO;
		snprintf(resp->error, sizeof(resp->error), "%s",
			 r == -EINVAL ? "the token holds a control character" : "out of memory");
		return r;
	}
	set_options(h, req, url, x, hdrs, curl_msg);
	if (http_proxy_setopt(http_proxy, url, h) < 0 || http_ca_setopt(ca, h) < 0) {
		resp->net_reason = FETCH_IO;
		snprintf(resp->error, sizeof(resp->error), "out of memory");
		r = -ENOMEM;
		goto out;
	}
	c = curl_easy_perform(h);
	host_of(url, host, sizeof(host));
	if (x->oom) {
		resp->net_reason = FETCH_IO;
		snprintf(resp->error, sizeof(resp->error), "out of memory");
		r = -ENOMEM;
	} else if (x->too_big) {
		resp->net_reason = FETCH_PROTOCOL;
		snprintf(resp->error, sizeof(resp->error), "reply body from %.200s exceeds %u MiB",
			 host, HTTP_BODY_MAX >> 20);
		r = -EBADMSG;
	} else if (c != CURLE_OK) {
		struct fetch_transport t = fetch_reason_from_curl(c);
		const char *proxy = strncasecmp(url, "http://", 7) == 0 ? x->proxy_named : NULL;

		resp->net_reason = t.reason;
		resp->net_transient = t.transient;
		describe_failure(resp, host, &t, curl_msg, curl_easy_strerror(c), proxy);
		r = t.err;
	} else {
		(void)curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	}
out:
	(void)curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	(void)curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(hdrs);
	return r;
}

/* A Location with neither a scheme nor a host ("/path", "path", "?q"). */
static bool is_relative_location(const char *loc)
{
	return loc && *loc && !has_scheme(loc) && strncmp(loc, "//", 2) != 0;
}

static void exchange_finish(struct exchange *x)
{
	struct http_response *r = x->resp;

	for (size_t i = 0; i < ARRAY_SIZE(x->request_id_alt) && !r->x_request_id; i++)
		r->x_request_id = TAKE_PTR(x->request_id_alt[i]);
	for (size_t i = 0; i < ARRAY_SIZE(x->request_id_alt); i++) {
		free(x->request_id_alt[i]);
		x->request_id_alt[i] = NULL;
	}
	if (!r->body) {
		r->body = calloc(1, 1);
		r->body_len = 0;
	}
}

int http_request(const struct http_request *req, struct http_response *ret)
{
	struct exchange x = { .resp = ret };
	_cleanup_free_ char *url = NULL, *http_proxy = NULL;
	_cleanup_(http_ca_done) struct http_ca ca = { 0 };
	CURL *h;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!req->url) {
		ret->net_reason = FETCH_PROTOCOL;
		snprintf(ret->error, sizeof(ret->error), "no URL");
		return -EINVAL;
	}
	(void)pthread_once(&curl_once, curl_init_once);
	if (curl_init_result != CURLE_OK) {
		ret->net_reason = FETCH_IO;
		snprintf(ret->error, sizeof(ret->error), "libcurl failed to initialize");
		return -EIO;
	}
	url = strdup(req->url);
	if (!url)
		return -ENOMEM;
	/* Per call: a few getenv()s are nothing beside an exchange. */
	r = http_proxy_from_env(&http_proxy);
	if (r < 0)
		return r;
	if (!env_is_set("NO_PROXY") && !env_is_set("no_proxy"))
		x.proxy_named = http_proxy;
	r = http_ca_from_env(&ca);
	if (r < 0)
		return r;
	h = curl_easy_init();
	if (!h)
		return -ENOMEM;
	for (unsigned hop = 0;; hop++) {
		char *next;

		log_debug("http: %s %s", req->method ? req->method : "GET", url);
		r = exchange_once(h, req, http_proxy, &ca, url, &x);
		if (r < 0)
			break;
		if (!req->follow_relative || !http_status_is_redirect(ret->status) ||
		    !is_relative_location(ret->location))
			break;
		if (hop == HTTP_MAX_REDIRECTS) {
			ret->net_reason = FETCH_PROTOCOL;
			snprintf(ret->error, sizeof(ret->error),
				 "more than %d redirects, the last to %s", HTTP_MAX_REDIRECTS,
				 ret->location);
			ret->status = 0;
			r = -EBADMSG;
			break;
		}
		next = http_url_join(url, ret->location);
		if (!next) {
			ret->net_reason = FETCH_PROTOCOL;
			snprintf(ret->error, sizeof(ret->error), "malformed redirect Location '%s'",
				 ret->location);
			ret->status = 0;
			r = -EBADMSG;
			break;
		}
		free(url);
		url = next;
	}
	curl_easy_cleanup(h);
	ret->effective_url = TAKE_PTR(url);
	exchange_finish(&x);
	if (r >= 0 && !ret->body)
		return -ENOMEM;
	if (r < 0)
		ret->status = 0;
	return r;
}

void http_response_done(struct http_response *r)
{
	struct exchange x = { .resp = r };

	if (!r)
		return;
	exchange_clear_headers(&x);
	free(r->body);
	free(r->effective_url);
	r->body = NULL;
	r->effective_url = NULL;
	r->body_len = 0;
}

const char *http_curl_version(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

	return v && v->version ? v->version : LIBCURL_VERSION;
}
