/* hub.h: the Hub's metadata API (HUB_PROTOCOL.md 1-3, 5, 6): repo ids, configuration from the
 * environment (endpoint, token discovery, offline), resolving a revision to a commit, listing
 * the whole tree at a commit across pages, and turning error replies into words.
 * Any thread; the calls that talk to the Hub block (never call them on a FUSE worker). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch/reason.h"

/* The endpoints the official client uses without HF_ENDPOINT (HUB_PROTOCOL.md 6), and with
 * HUGGINGFACE_CO_STAGING=1. */
#define HUB_DEFAULT_ENDPOINT \
	"https://"           \
	"huggingface.co"
#define HUB_STAGING_ENDPOINT \
	"https://"           \
	"hub-ci.huggingface.co"

enum hub_repo_type {
	HUB_REPO_MODEL,
	HUB_REPO_DATASET,
	HUB_REPO_SPACE,
};

struct hub_repo {
	enum hub_repo_type type;
	char id[128]; /* "org/name" or "name" */
};

/* Filled once by hub_config_init(), read-only afterwards: any thread may read it. */
struct hub_config {
	char *endpoint; /* HF_ENDPOINT or the override, no trailing '/' */
	char *token; /* NULL: anonymous */
	char *token_source; /* "HF_TOKEN", "/root/.cache/huggingface/token", ... for messages */
	char *user_agent; /* "hffs/<version>; curl/<v>" */
	bool offline; /* HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE */
	long timeout_s; /* metadata requests (HF_HUB_ETAG_TIMEOUT, default 10) */
};

struct hub_error {
	enum fetch_reason reason;
	long status; /* HTTP status, 0 without a reply */
	char message[512]; /* one line for a person: what, which object, why */
};

struct hub_entry {
	char *path; /* full path from the repo root, validated by hub_tree_validate() */
	uint64_t size;
	bool is_dir;
	bool is_lfs;
	char oid[41]; /* git oid (for LFS: of the pointer); "" for a directory listed without */
	char sha256[65]; /* lfs.oid, when is_lfs */
};

struct hub_tree {
	struct hub_entry *v;
	size_t n, cap;
};

/* "org/name", "name", "datasets/org/name", "spaces/org/name" (HUB_PROTOCOL.md 1 rules).
 * -EINVAL with words in err. */
int hub_repo_parse(const char *spec, struct hub_repo *ret, struct hub_error *err);
/* "models/org/name": the cache key and API path segment. -ENAMETOOLONG when buf is short. */
int hub_repo_key(const struct hub_repo *repo, char *buf, size_t len);
/* "models", "datasets", "spaces" */
const char *hub_repo_type_plural(enum hub_repo_type t);

/* Fills cfg from the environment (HUB_PROTOCOL.md 5-6): HF_ENDPOINT (endpoint_override wins
 * when non-NULL; HUGGINGFACE_CO_STAGING picks the staging Hub), HF_TOKEN, HUGGING_FACE_HUB_TOKEN,
 * HF_TOKEN_PATH, HF_HOME/token (HF_HOME from XDG_CACHE_HOME or ~/.cache/huggingface; ~ and
 * $VAR expanded), HF_HUB_DISABLE_IMPLICIT_TOKEN, HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE,
 * HF_HUB_ETAG_TIMEOUT. The first token source whose value is non-empty once CR/LF are removed
 * and it is trimmed wins; a missing or unreadable token file means none. -ENOMEM only (cfg is
 * then empty). Reads the environment: call before starting threads that change it. */
int hub_config_init(struct hub_config *cfg, const char *endpoint_override);
/* Frees cfg's strings (the token wiped first). */
void hub_config_done(struct hub_config *cfg);

/* Resolves rev (branch, tag, sha, refs/pr/N; NULL or "" is "main") to a 40-hex commit with
 * GET /api/{type}s/{repo}/revision/{rev}, rev escaped as one segment, relative redirects (a
 * renamed repo) followed with the token. No retry. -ENOENT (repo or revision), -EACCES,
 * -EAGAIN, -EHOSTUNREACH, -ETIMEDOUT, -EBADMSG, -ENETDOWN when cfg->offline (nothing sent),
 * -ENOMEM; err filled on each but -ENOMEM. Blocks up to cfg->timeout_s per exchange. */
int hub_resolve_revision(const struct hub_config *cfg, const struct hub_repo *repo, const char *rev,
			 char ret_commit[41], struct hub_error *err);

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
 * Errors and err as hub_resolve_revision(). */
int hub_check_access(const struct hub_config *cfg, const struct hub_repo *repo, const char *commit,
		     const char *path, struct hub_error *err);

/* Rejects hostile trees (HUB_PROTOCOL.md 10): empty, absolute, '\\'-containing, ".." or "."
 * or empty segments (so no trailing '/'), control characters (0x01-0x1f, 0x7f), a segment over
 * 255 bytes or a path over 4095, duplicate paths (a file and a directory of one path too), a
 * file whose parent is a file, an LFS entry without a valid sha256, a file oid that is not 40
 * lowercase hex (a directory's may be ""). An empty tree is valid. -EBADMSG with the offending
 * path, quoted and escaped to one line, in err; -ENOMEM. O(n log n). */
int hub_tree_validate(const struct hub_tree *tree, struct hub_error *err);
/* Content id of an entry: sha256 for LFS, else the git oid. */
const char *hub_entry_cid(const struct hub_entry *e);
/* Whether e is a file with bytes to cache (directories and empty files have no data file). */
bool hub_entry_has_data(const struct hub_entry *e);
/* Appends *e, taking e->path on success. -ENOMEM (then e->path is still the caller's). */
int hub_tree_push(struct hub_tree *tree, const struct hub_entry *e);
/* Frees the entries from index n on (n <= tree->n): undoes pushes after a failure. */
void hub_tree_truncate(struct hub_tree *tree, size_t n);
/* Frees every entry and the array; tree is empty afterwards. */
void hub_tree_done(struct hub_tree *tree);

/* Words for a reply that is an error (status, X-Error-Code, X-Error-Message, JSON body) about
 * object (e.g. "repo 'org/name'"), into err, with the reason: one line, e.g. "repo 'org/name'
 * is gated: request access on its page, then use a token of an approved account (HTTP 403
 * GatedRepo)" or "HTTP 503 from 127.0.0.1:8080 for ... (X-Request-Id abc)". Used by hub.c
 * and fs/. */
struct http_response;
void hub_error_from_response(const struct http_response *r, const char *object,
			     struct hub_error *err);
