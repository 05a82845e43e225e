/* hub_reply.h: a failed Hub exchange (no reply, or an error reply) in words a person can act
 * on, into a struct hub_error (HUB_PROTOCOL.md 5). Pure; any thread. */
#pragma once

#include "fetch/http_exchange.h"
#include "fetch/hub_error.h"

struct http_response;
struct hub_config;

/* What the caller knows about an exchange beyond the reply (NULL members: unknown). */
struct hub_reply_ctx {
	const char *revision; /* asked revision, for RevisionNotFound */
	const char *repo_object; /* "repo 'org/name'", for RevisionNotFound */
	const struct hub_config *cfg; /* token sent or not, and its source */
	/* The revision call, a mount's first: a 401, 403 or 404 without any of the Hub's error
	 * words (X-Error-Code, X-Error-Message, a JSON error) says the endpoint is no Hub API,
	 * with reason FETCH_PROTOCOL (HUB_PROTOCOL.md 5: every Hub refusal carries one). */
	bool first_call;
};

/* Words for a reply that is an error (status, X-Error-Code, X-Error-Message, JSON body) about
 * object (e.g. "repo 'org/name'"), into err, with the reason: one line, e.g. "repo 'org/name'
 * is gated: request access on its page, then use a token of an approved account (HTTP 403
 * GatedRepo)" or "HTTP 503 from 127.0.0.1:8080 for ... (X-Request-Id abc)". */
void hub_reply_words(const struct http_response *r, const char *object, struct hub_error *err);
/* Words for a failed exchange about object: r < 0, no reply (resp->error says why), or an
 * error reply, with ctx (may be NULL) naming the revision and the token. Returns the errno
 * of the reason (-EBADMSG for a reply that maps to none). */
int hub_reply_failure(const struct http_response *resp, int r, const char *object,
		      const struct hub_reply_ctx *ctx, struct hub_error *err);
/* A 3xx that http_request() did not follow (an absolute Location) is not a metadata reply:
 * err says so with the Location. Returns -EBADMSG. */
int hub_reply_unexpected(const struct http_response *resp, const char *object,
			 struct hub_error *err);

/* 0 when cfg is online; else -ENETDOWN with err saying that object is not asked of the Hub
 * (HF_HUB_OFFLINE). Every Hub call asks this before its first byte. */
int hub_check_online(const struct hub_config *cfg, const char *object, struct hub_error *err);
/* A GET of url on the Hub's API: the Hub token (sent to the endpoint's origin alone), the
 * user agent and timeout of cfg, relative redirects followed (renamed repos, HUB_PROTOCOL.md
 * 4.1). Callers add range, accept and the like. */
struct http_request hub_metadata_request(const struct hub_config *cfg, const char *url);
