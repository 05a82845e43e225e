/* hub_reply.c: a failed Hub exchange in words a person can act on (HUB_PROTOCOL.md 5): who
 * refused and why (token, gated, missing repo or revision), rate limits and server errors
 * with what to quote. Pure over a reply already received; any thread. */
#include "fetch/hub_reply.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fetch/http_exchange.h"
#include "fetch/hub_config.h"
#include "fetch/hub_json.h"
#include "util/cleanup.h"

/* Copies v into buf as one printable line (control characters as spaces), bounded. */
static void one_line(char *buf, size_t len, const char *v)
{
	size_t i = 0;

	for (; v && v[i] && i + 1 < len; i++)
		buf[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? ' ' : v[i];
	buf[i] = '\0';
}

/* "host[:port]" of url, for words. */
static void url_host(const char *url, char *buf, size_t len)
{
	const char *p = url ? strstr(url, "://") : NULL;
	size_t n;

	if (!p) {
		snprintf(buf, len, "the Hub");
		return;
	}
	p += 3;
	n = strcspn(p, "/?#");
	if (memchr(p, '@', n)) { /* never print credentials */
		const char *at = memrchr(p, '@', n);

		n -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	snprintf(buf, len, "%.*s", (int)MIN(n, len - 1), p);
}

/* The parts of an error reply that words are made of, each one printable line. */
struct reply_words {
	char paren[320]; /* "HTTP 404 RevisionNotFound: Invalid rev id" */
	bool hub_like; /* an X-Error-Code or an error message came with it */
	char code[64]; /* X-Error-Code or "" */
	char host[128]; /* "127.0.0.1:8080" */
	char rid[96]; /* X-Request-Id (or a trace id) or "" */
	char retry[32]; /* Retry-After or "" */
};

static void reply_words_init(struct reply_words *w, const struct http_response *r)
{
	char detail[200] = "";

	/* HEAD replies carry the message in a header only; GET replies also in the body. */
	if (r->x_error_message && *r->x_error_message)
		one_line(detail, sizeof(detail), r->x_error_message);
	else if (r->body && r->body_len)
		(void)hub_json_error_message(r->body, r->body_len, detail, sizeof(detail));
	one_line(w->code, sizeof(w->code), r->x_error_code);
	one_line(w->rid, sizeof(w->rid), r->x_request_id);
	one_line(w->retry, sizeof(w->retry), r->retry_after);
	url_host(r->effective_url, w->host, sizeof(w->host));
	snprintf(w->paren, sizeof(w->paren), "HTTP %ld%s%s%s%s", r->status, w->code[0] ? " " : "",
		 w->code, detail[0] ? ": " : "", detail);
	w->hub_like = w->code[0] || detail[0];
}

/* 401, 403 and 404: the Hub refused, and why decides what the person does next. */
static void describe_refusal(enum fetch_reason reason, long status, const struct reply_words *w,
			     const char *object, const struct hub_reply_ctx *ctx,
			     struct hub_error *err)
{
	const char *source = ctx && ctx->cfg && ctx->cfg->token ? ctx->cfg->token_source : NULL;
	bool token_known = ctx && ctx->cfg;

	if (reason == FETCH_NOT_FOUND && status == 401 && !source)
		/* the anonymous form of "missing or private" (HUB_PROTOCOL.md 5) */
		hub_error_set(
			err, reason, status,
			"%s not found, or private and no token was sent (%s); set HF_TOKEN or log "
			"in",
			object, w->paren);
	else if (reason == FETCH_NOT_FOUND && source && !strcmp(w->code, "RepoNotFound"))
		hub_error_set(
			err, reason, status,
			"%s not found, or private and not readable with the token from %s (%s)",
			object, source, w->paren);
	else if (reason == FETCH_NOT_FOUND)
		hub_error_set(err, reason, status, "%s not found (%s)", object, w->paren);
	else if (reason == FETCH_NO_REVISION && ctx && ctx->revision)
		hub_error_set(err, reason, status, "revision '%s' not found in %s (%s)",
			      ctx->revision, ctx->repo_object ? ctx->repo_object : object,
			      w->paren);
	else if (reason == FETCH_NO_REVISION)
		hub_error_set(err, reason, status, "revision of %s not found (%s)", object,
			      w->paren);
	else if (reason == FETCH_GATED)
		hub_error_set(
			err, reason, status,
			"%s is gated: request access on its page, then use a token of an approved "
			"account (%s)",
			object, w->paren);
	else if (reason == FETCH_TOKEN && source)
		hub_error_set(err, reason, status, "the token from %s was rejected (%s)", source,
			      w->paren);
	else if (reason == FETCH_TOKEN && token_known)
		hub_error_set(err, reason, status,
			      "%s needs a token and none was sent (%s); set HF_TOKEN or log in",
			      object, w->paren);
	else if (reason == FETCH_TOKEN)
		hub_error_set(err, reason, status, "%s: the token is missing or was rejected (%s)",
			      object, w->paren);
	else
		hub_error_set(err, reason, status, "access to %s is forbidden (%s)", object,
			      w->paren);
}

static void describe_reply(const struct http_response *r, const char *object,
			   const struct hub_reply_ctx *ctx, struct hub_error *err)
{
	enum fetch_reason reason = fetch_reason_from_status(r->status, r->x_error_code);
	struct reply_words w;

	reply_words_init(&w, r);
	switch (reason) {
	case FETCH_NOT_FOUND:
	case FETCH_NO_REVISION:
	case FETCH_GATED:
	case FETCH_TOKEN:
	case FETCH_FORBIDDEN:
		if (ctx && ctx->first_call && !w.hub_like && ctx->cfg)
			hub_error_set(
				err, FETCH_PROTOCOL, r->status,
				"'%s' does not answer like a Hugging Face Hub API (HTTP %ld for %s, "
				"without the Hub's X-Error-Code or message): check --endpoint or "
				"HF_ENDPOINT",
				ctx->cfg->endpoint, r->status, object);
		else
			describe_refusal(reason, r->status, &w, object, ctx, err);
		break;
	case FETCH_RATE_LIMITED:
		hub_error_set(err, reason, r->status, "rate limited by %s for %s (%s%s%s%s%s)",
			      w.host, object, w.paren, w.retry[0] ? ", Retry-After " : "", w.retry,
			      w.rid[0] ? ", X-Request-Id " : "", w.rid);
		break;
	default:
		/* 5xx and odd statuses: what to quote when reporting it to the host */
		hub_error_set(err, reason, r->status, "%s from %s for %s%s%s%s", w.paren, w.host,
			      object, w.rid[0] ? " (X-Request-Id " : "", w.rid,
			      w.rid[0] ? ")" : "");
		break;
	}
}

void hub_reply_words(const struct http_response *r, const char *object, struct hub_error *err)
{
	describe_reply(r, object ? object : "the request", NULL, err);
}

int hub_reply_failure(const struct http_response *resp, int r, const char *object,
		      const struct hub_reply_ctx *ctx, struct hub_error *err)
{
	if (r < 0) {
		hub_error_set(err, resp->net_reason, 0, "cannot get %s: %s", object,
			      resp->error[0] ? resp->error : strerror(-r));
		return r;
	}
	describe_reply(resp, object, ctx, err);
	if (err)
		return fetch_reason_errno(err->reason) ?: -EBADMSG;
	return fetch_reason_errno(fetch_reason_from_status(resp->status, resp->x_error_code)) ?:
		       -EBADMSG;
}

int hub_reply_unexpected(const struct http_response *resp, const char *object,
			 struct hub_error *err)
{
	char loc[200];

	one_line(loc, sizeof(loc), resp->location ? resp->location : "(none)");
	hub_error_set(err, FETCH_PROTOCOL, resp->status, "unexpected HTTP %ld for %s (Location %s)",
		      resp->status, object, loc);
	return -EBADMSG;
}

int hub_check_online(const struct hub_config *cfg, const char *object, struct hub_error *err)
{
	if (!cfg->offline)
		return 0;
	hub_error_set(err, FETCH_OFFLINE, 0,
		      "offline mode (HF_HUB_OFFLINE): %s is not asked of the Hub", object);
	return -ENETDOWN;
}

struct http_request hub_metadata_request(const struct hub_config *cfg, const char *url)
{
	return (struct http_request){
		.method = "GET",
		.url = url,
		.token = cfg->token,
		.auth_origin = cfg->endpoint,
		.user_agent = cfg->user_agent,
		.timeout_s = cfg->timeout_s,
		.follow_relative = true,
	};
}
