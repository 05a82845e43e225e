/* xfer_reply.c: what an HTTP reply means for a ranged read of a blob (HUB_PROTOCOL.md 4.2, 5,
 * 7): the headers we read, kept in bounded buffers as they arrive; whether a 2xx body holds our
 * bytes and where; which statuses redirect, refuse a signed URL, or fail (and whether retrying
 * helps), with words for a person. No curl, no state beyond the caller's; any thread. */
#include "fetch/xfer_priv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch/http.h"
#include "util/cleanup.h"
#include "util/parse.h"

const char *xreply_origin(const char *url, char *buf, size_t len)
{
	const char *p = strstr(url, "://");
	const char *host, *end, *at;
	bool tls = strncasecmp(url, "https:", 6) == 0;

	if (!p) {
		snprintf(buf, len, "?");
		return buf;
	}
	host = p + 3;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	if (at)
		host = at + 1;
	/* A port follows the last ':' unless it sits inside an IPv6 literal's brackets. */
	p = end;
	while (p > host && p[-1] != ':' && p[-1] != ']')
		p--;
	if (p > host && p[-1] == ':')
		snprintf(buf, len, "%.*s", (int)(end - host), host);
	else
		snprintf(buf, len, "%.*s:%s", (int)(end - host), host, tls ? "443" : "80");
	return buf;
}

#define XREPLY_LOCATION_MAX 16384

static void buf_reset(struct xreply_buf *rb, long status)
{
	free(rb->location);
	*rb = (struct xreply_buf){ .status = status };
}

void xreply_buf_done(struct xreply_buf *rb)
{
	buf_reset(rb, 0);
}

static void field_copy(char *dst, size_t size, const char *v, size_t len)
{
	/* A value too long for its field is malformed for our purposes: keep a marker that no
	 * parser accepts rather than a truncated number. */
	if (len >= size) {
		snprintf(dst, size, "!");
		return;
	}
	memcpy(dst, v, len);
	dst[len] = '\0';
}

static void header_store(struct xreply_buf *rb, const char *name, size_t nlen, const char *v,
			 size_t vlen)
{
	static const struct {
		const char *name;
		size_t off, size;
	} fields[] = {
#define F(n, f) { n, offsetof(struct xreply_buf, f), sizeof(((struct xreply_buf *)0)->f) }
		F("content-range", content_range),
		F("content-length", content_length),
		F("content-encoding", content_encoding),
		F("retry-after", retry_after),
		F("ratelimit", ratelimit),
		F("x-error-code", x_error_code),
		F("x-error-message", x_error_message),
		F("date", date),
#undef F
	};

	if (nlen == 8 && strncasecmp(name, "location", 8) == 0) {
		free(rb->location);
		rb->location = vlen < XREPLY_LOCATION_MAX ? strndup(v, vlen) : NULL;
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		if (strlen(fields[i].name) == nlen && strncasecmp(name, fields[i].name, nlen) == 0)
			field_copy((char *)rb + fields[i].off, fields[i].size, v, vlen);
}

enum xreply_line xreply_feed(struct xreply_buf *rb, const char *line, size_t len)
{
	const char *end = line + len, *colon, *v;

	while (end > line && (end[-1] == '\r' || end[-1] == '\n'))
		end--;
	if (end == line)
		return XREPLY_END;
	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		const char *sp = memchr(line, ' ', (size_t)(end - line));
		uint64_t status = 0;
		char code[4] = "";

		if (sp && end - sp > 3)
			memcpy(code, sp + 1, 3);
		buf_reset(rb, parse_uint(code, 999, &status) == 0 ? (long)status : 0);
		return XREPLY_STATUS;
	}
	colon = memchr(line, ':', (size_t)(end - line));
	if (!colon)
		return XREPLY_HEADER;
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	header_store(rb, line, (size_t)(colon - line), v, (size_t)(end - v));
	return XREPLY_HEADER;
}

static const char *nonempty(const char *s)
{
	return *s ? s : NULL;
}

struct xreply xreply_view(const struct xreply_buf *rb)
{
	return (struct xreply){
		.status = rb->status,
		.content_range = nonempty(rb->content_range),
		.content_length = nonempty(rb->content_length),
		.content_encoding = nonempty(rb->content_encoding),
		.location = rb->location,
		.retry_after = nonempty(rb->retry_after),
		.ratelimit = nonempty(rb->ratelimit),
		.x_error_code = nonempty(rb->x_error_code),
		.x_error_message = nonempty(rb->x_error_message),
		.date = nonempty(rb->date),
	};
}

void xfailure_words(struct xfailure *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->why, sizeof(f->why), fmt, ap);
	va_end(ap);
}

static int fail(struct xfailure *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A reply whose body is unusable: a protocol error that retrying does not mend. */
static int fail(struct xfailure *f, const char *fmt, ...)
{
	va_list ap;

	*f = (struct xfailure){ .reason = FETCH_PROTOCOL };
	va_start(ap, fmt);
	vsnprintf(f->why, sizeof(f->why), fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

int xreply_check_body(const struct xreply *rep, const char *url, uint64_t first, uint64_t last,
		      uint64_t blob_size, uint64_t *ret_skip, struct xfailure *f)
{
	const char *ce = rep->content_encoding;
	uint64_t a, b, total, cl;
	char origin[128];

	xreply_origin(url, origin, sizeof(origin));
	/* With any encoding the bytes are not the blob's, and a range of them means nothing. */
	if (ce && *ce && strcasecmp(ce, "identity") != 0)
		return fail(f, "%s sent a '%s'-encoded body despite Accept-Encoding: identity",
			    origin, ce);
	if (rep->status == 206) {
		if (!rep->content_range ||
		    http_parse_content_range(rep->content_range, &a, &b, &total) < 0)
			return fail(f, "HTTP 206 from %s without a valid Content-Range", origin);
		if (total != UINT64_MAX && blob_size != XFER_SIZE_UNKNOWN && total != blob_size)
			return fail(f, "%s says the file has %llu bytes, the tree says %llu",
				    origin, (unsigned long long)total,
				    (unsigned long long)blob_size);
		if (a != first || b < a)
			return fail(f, "%s sent bytes %llu-%llu for %llu-%llu", origin,
				    (unsigned long long)a, (unsigned long long)b,
				    (unsigned long long)first, (unsigned long long)last);
		*ret_skip = 0;
		return 0;
	}
	if (rep->status == 200) {
		if (rep->content_length && blob_size != XFER_SIZE_UNKNOWN &&
		    parse_uint(rep->content_length, UINT64_MAX, &cl) == 0 && cl != blob_size)
			return fail(f, "%s sent a whole file of %llu bytes, the tree says %llu",
				    origin, (unsigned long long)cl, (unsigned long long)blob_size);
		*ret_skip = first;
		return 0;
	}
	return fail(f, "HTTP %ld from %s has no body for a range", rep->status, origin);
}

static void status_words(const struct xreply *rep, const char *origin, struct xfailure *f)
{
	const char *code = rep->x_error_code, *msg = rep->x_error_message;

	if (code && msg)
		xfailure_words(f, "HTTP %ld from %s (%s: %s)", rep->status, origin, code, msg);
	else if (code || msg)
		xfailure_words(f, "HTTP %ld from %s (%s)", rep->status, origin, code ? code : msg);
	else
		xfailure_words(f, "HTTP %ld from %s", rep->status, origin);
}

enum xverdict xreply_classify(const struct xreply *rep, const char *url, bool from_target,
			      struct xfailure *f)
{
	long s = rep->status;
	char origin[128];

	xreply_origin(url, origin, sizeof(origin));
	*f = (struct xfailure){ .reason = fetch_reason_from_status(s, rep->x_error_code) };
	status_words(rep, origin, f);
	if (http_status_is_redirect(s)) {
		if (rep->location && *rep->location)
			return XVERDICT_REDIRECT;
		f->reason = FETCH_PROTOCOL;
		xfailure_words(f, "HTTP %ld from %s without a Location", s, origin);
		return XVERDICT_FAIL;
	}
	/* A signed URL past its expiry, or refused for any other reason, answers 400/401/403
	 * (HUB_PROTOCOL.md 4.3): the resolve URL hands out a fresh one. */
	if (from_target && (s == 400 || s == 401 || s == 403))
		return XVERDICT_RERESOLVE;
	if (s == 416) {
		/* Our ranges end inside blob_size, so the server's file is not the tree's. */
		f->reason = FETCH_PROTOCOL;
		return XVERDICT_FAIL;
	}
	if (s >= 200 && s < 300)
		f->reason = FETCH_PROTOCOL;
	f->transient = fetch_status_is_transient(s);
	f->has_server_delay = backoff_server_delay(s, rep->retry_after, rep->ratelimit,
						   &f->server_delay_usec) == 1;
	return XVERDICT_FAIL;
}
