/* hub.h: the Hub's metadata API (HUB_PROTOCOL.md 1-3, 7): repo ids, resolving a revision to a
 * commit, the access check, listing the whole tree at a commit across pages, resolve URLs; and
 * for `hffs doctor` the token's account and one timed ranged GET through the redirect.
 * It includes the configuration, error, reply-words and tree headers its calls use, so a
 * user of the API needs this header alone. Any thread; the calls that talk to the Hub block (never call them
 * on a FUSE worker). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch/hub_config.h"
#include "fetch/hub_error.h"
#include "fetch/hub_reply.h"
#include "fetch/hub_tree.h"
#include "fetch/reason.h"

enum hub_repo_type {
	HUB_REPO_MODEL,
	HUB_REPO_DATASET,
	HUB_REPO_SPACE,
};

struct hub_repo {
	enum hub_repo_type type;
	char id[128]; /* "org/name" or "name" */
};

/* "org/name", "name", "datasets/org/name", "spaces/org/name" (HUB_PROTOCOL.md 1 rules).
 * -EINVAL with words in err. */
int hub_repo_parse(const char *spec, struct hub_repo *ret, struct hub_error *err);
/* "models/org/name": the cache key and API path segment. -ENAMETOOLONG when buf is short. */
int hub_repo_key(const struct hub_repo *repo, char *buf, size_t len);
/* "models", "datasets", "spaces" */
const char *hub_repo_type_plural(enum hub_repo_type t);

/* What the revision reply says. */
struct hub_repo_info {
	char commit[41];
	uint64_t last_modified; /* the revision's "lastModified" (its commit's date), unix
				 * seconds; 0: not given */
	bool is_private;
	bool is_gated; /* "auto" or "manual": files need an approved account */
};

/* Resolves rev (branch, tag, sha, refs/pr/N; NULL or "" is "main") to a 40-hex commit with
 * GET /api/{type}s/{repo}/revision/{rev}, rev escaped as one segment, relative redirects (a
 * renamed repo) followed with the token, and takes the repo's flags and the commit's date
 * from the same reply. No retry. -ENOENT (repo or revision), -EACCES, -EAGAIN,
 * -EHOSTUNREACH, -ETIMEDOUT, -EBADMSG, -ENETDOWN when cfg->offline (nothing sent), -ENOMEM;
 * err filled on each but -ENOMEM. Blocks up to cfg->timeout_s per exchange. The words name
 * the type given ("dataset 'org/x'"), and a 404 asks each other type's /api/{type}s/{id}
 * once and, when one answers, ends err's line with "; a model 'org/x' exists: did you mean
 * 'org/x'?". */
int hub_repo_info(const struct hub_config *cfg, const struct hub_repo *repo, const char *rev,
		  struct hub_repo_info *ret, struct hub_error *err);

/* Lists every entry (files and directories) at commit with recursive tree pages, following
 * Link rel="next" verbatim until none remains (HUB_PROTOCOL.md 3); the token goes only to pages
 * on the endpoint's origin. Appends to tree; on failure tree is left as it was. page_limit > 0
 * adds limit=N. The first page is not retried; later ones are, up to 5 times, 1 s doubling to
 * 8 s or as the server asks (HUB_PROTOCOL.md 7), sleeping in the caller's thread. Errors as
 * above; -EBADMSG for a malformed page, a next page that is not an absolute URL, a cursor that
 * loops, or more than 100000 pages. */
int hub_list_tree(const struct hub_config *cfg, const struct hub_repo *repo, const char *commit,
		  unsigned page_limit, struct hub_tree *tree, struct hub_error *err);

/* {E}/{prefix}{repo}/resolve/{commit}/{escaped path}, malloc'd; NULL on OOM. */
char *hub_resolve_url(const struct hub_config *cfg, const struct hub_repo *repo, const char *commit,
		      const char *path);

/* Whether the files of repo at commit may be read with cfg's token: one HEAD of path's resolve
 * URL (HUB_PROTOCOL.md 4.1), relative redirects followed; a 2xx or 3xx reply is 0. A gated
 * repo lists its tree to anyone but refuses its files, so a mount asks this once up front.
 * Errors and err as hub_repo_info(). */
int hub_check_access(const struct hub_config *cfg, const struct hub_repo *repo, const char *commit,
		     const char *path, struct hub_error *err);

/* Who cfg's token belongs to: GET {E}/api/whoami-v2 (anonymous without a token: the Hub then
 * answers 401). ret->server_date_s is the reply's Date (0: none), filled whenever a reply
 * arrived, error or not. Errors and err as hub_repo_info(); -EACCES for a token the
 * Hub refuses. */
struct hub_whoami {
	char name[96];
	long long server_date_s;
};
int hub_whoami(const struct hub_config *cfg, struct hub_whoami *ret, struct hub_error *err);

/* One timed ranged GET of the first len bytes of path at commit, as a transfer would start:
 * the resolve URL first, then the redirect target (the CDN) when the Hub sends one, without
 * the token there. A reply other than 2xx is an error (err says which host answered what).
 * Errors and err as hub_repo_info(). Blocks up to twice cfg->timeout_s. */
struct hub_probe {
	char host[128]; /* host:port that served the bytes */
	bool redirected; /* the bytes came from the redirect target */
	unsigned long long bytes; /* body bytes received */
	long long ttfb_us, total_us; /* of the exchange that served the bytes */
};
int hub_probe_range(const struct hub_config *cfg, const struct hub_repo *repo, const char *commit,
		    const char *path, unsigned long long len, struct hub_probe *ret,
		    struct hub_error *err);
