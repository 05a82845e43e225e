/* xet.h: the metadata side of Xet reads (XET_CLIENTS.md, HUB_PROTOCOL.md 4.1, 9): the resolve
 * probe that tells a Xet file from a plain one, the read token (kept and refreshed before it
 * expires), and the reconstruction query. Each call is one blocking exchange (no retry: the
 * caller's policy decides), so it never runs on a FUSE worker or the engine thread. Any
 * thread; struct xet_auth is shared under its own lock. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fetch/hub.h"
#include "fetch/xet_recon.h"

/* The content type a resolve answers a Xet file with when asked (XET_CLIENTS.md 1). */
#define XET_FILEINFO_TYPE "application/vnd.xet-fileinfo+json"
/* A token is renewed once it has less than this left (the JS client's margin). */
#define XET_TOKEN_MARGIN_S 60

/* What the probe learned of one file. */
struct xet_file {
	bool is_xet; /* false: a plain file, read by /resolve; the rest is empty */
	char hash[XET_HEX_LEN]; /* X-Xet-Hash: the file hash's text form */
	uint64_t size; /* X-Linked-Size */
	char *auth_url; /* Link rel="xet-auth": the read-token URL (on the Hub) */
	char *recon_url; /* Link rel="xet-reconstruction-info": .../v1/reconstructions/{hash} */
};

/* Frees f's strings and zeroes it. Takes NULL. */
void xet_file_done(struct xet_file *f);

/* Asks the resolve URL of path at commit with Range: bytes=0-0 and Accept:
 * "application/vnd.xet-fileinfo+json" then any type (the JS client's header), following relative redirects only, with the token to
 * the endpoint. A Xet file is a 2xx of that content type (the JS client's form) or a 3xx that
 * carries X-Xet-Hash (the Python client's): either must carry X-Xet-Hash (64 lowercase hex),
 * X-Linked-Size and both Link URLs, absolute. Any other 2xx or 3xx is a plain file (is_xet
 * false). -EBADMSG when a Xet reply lacks one of those (err says which); the errors of
 * hub_check_access() for an error reply or none; -ENETDOWN offline; -ENOMEM. */
int xet_probe(const struct hub_config *cfg, const struct hub_repo *repo, const char *commit,
	      const char *path, struct xet_file *ret, struct hub_error *err);

/* One GET of a read-token URL (rel="xet-auth", or {E}/api/{type}s/{repo}/xet-read-token/{rev})
 * with the Hub token when the URL is on the endpoint, into ret. Errors as xet_probe();
 * -EBADMSG for a body that is not {accessToken, casUrl, exp}. */
int xet_token_fetch(const struct hub_config *cfg, const char *auth_url, struct xet_token *ret,
		    struct hub_error *err);

/* The reconstruction of file_hash's bytes [first, last] (inclusive): GET {recon_url with /v1/
 * made /v2/} or {cas_url}/v2/reconstructions/{hash}, with Range and the Xet token only; a 404
 * or 501 from /v2 asks /v1 once (as hf_xet does). Errors as xet_probe(); -EACCES for a token
 * the CAS refuses (the caller renews it and asks again); -EBADMSG (err says what) for a reply
 * xet_recon refuses. */
int xet_reconstruct(const struct hub_config *cfg, const struct xet_token *tok,
		    const char *recon_url, const char *file_hash, uint64_t first, uint64_t last,
		    struct xet_recon *ret, struct hub_error *err);

/* What one fetch of a plan gave when made as one blocking exchange (xet_fetch_once()). */
struct xet_fetched {
	char host[128]; /* host:port that served the xorb bytes */
	uint64_t bytes; /* xorb bytes received */
	uint64_t chunks; /* chunks decoded */
	uint64_t raw_bytes; /* their decoded bytes */
	long long total_us; /* the exchange */
};

/* Fetch index `fetch` of plan r as one blocking GET of its signed URL with its Range and no
 * Authorization, decoded by a chunk stream that must end exactly at its chunk count: for
 * `hffs doctor`, which tries the path once (reads use xet_xfer.h's engine requests). Errors
 * as xet_probe(): -EACCES for a refused URL, -EBADMSG (err names the xorb and what was
 * malformed) for bytes that do not decode to the fetch's chunks. */
int xet_fetch_once(const struct hub_config *cfg, const struct xet_recon *r, size_t fetch,
		   struct xet_fetched *ret, struct hub_error *err);

/* A read token shared by the reads of one repo revision: fetched on first use, kept while it
 * has more than XET_TOKEN_MARGIN_S left, fetched again after, or at once after a refusal. */
struct xet_auth {
	pthread_mutex_t lock; /* innermost: held across no other module's lock */
	char *auth_url; /* immutable after init */
	struct xet_token tok; /* under lock; empty until the first fetch */
	uint64_t generation; /* under lock: raised by each fetch */
};

/* -ENOMEM. */
int xet_auth_init(struct xet_auth *a, const char *auth_url);
void xet_auth_done(struct xet_auth *a);
/* A copy of a token valid for more than the margin at now (unix seconds), fetched when the
 * kept one is not (outside the lock: concurrent callers may each fetch once), into ret
 * (freed by the caller with xet_token_done()), and the generation it belongs to. Errors as
 * xet_token_fetch(). */
int xet_auth_get(struct xet_auth *a, const struct hub_config *cfg, int64_t now,
		 struct xet_token *ret, uint64_t *ret_generation, struct hub_error *err);
/* Forgets the kept token if it is still the one of generation (the CAS refused it), so the
 * next xet_auth_get() fetches another. */
void xet_auth_refused(struct xet_auth *a, uint64_t generation);
