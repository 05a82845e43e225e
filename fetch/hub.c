/* hub.c: the Hub's metadata API (HUB_PROTOCOL.md 1-3, 7): repo ids, resolving a revision,
 * the access check, the token's account, a timed ranged probe, listing the tree across pages
 * (retried as the official client does, through reason.h's and backoff.h's policy) and
 * resolve URLs. Any thread; the calls that talk to the Hub block, sleeping between retries
 * (mount or doctor time only, never a FUSE worker). HTTP through http_exchange.h, JSON
 * through hub_json.h, words through hub_reply.h. */
#include "fetch/hub.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fetch/backoff.h"
#include "fetch/http.h"
#include "fetch/http_exchange.h"
#include "fetch/hub_json.h"
#include "fetch/hub_reply.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/timeutil.h"

#define HUB_REPO_PART_MAX 96
/* A recursive listing holds 1000 entries a page: 100000 pages is 10^8 entries, far beyond any
 * repo, and still ends a server that never stops handing out cursors. */
#define HUB_TREE_MAX_PAGES 100000
/* Later tree pages: first try + 5 retries, 1 s doubling to 8 s (HUB_PROTOCOL.md 7). */
#define HUB_PAGE_RETRIES 5
#define HUB_RETRY_BASE_S 1
#define HUB_RETRY_CAP_S 8
/* A server-asked delay (Retry-After, RateLimit t) is honoured up to this. */
#define HUB_SERVER_DELAY_CAP_S 60

const char *hub_repo_type_plural(enum hub_repo_type t)
{
	switch (t) {
	case HUB_REPO_DATASET:
		return "datasets";
	case HUB_REPO_SPACE:
		return "spaces";
	case HUB_REPO_MODEL:
		break;
	}
	return "models";
}

int hub_repo_key(const struct hub_repo *repo, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", hub_repo_type_plural(repo->type), repo->id);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static bool is_repo_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

/* Checks one part of a repo id (namespace or name). NULL when valid, else why, in words. */
static const char *repo_part_problem(const char *s, size_t n)
{
	if (n == 0)
		return "an empty part";
	if (n > HUB_REPO_PART_MAX)
		return "a part longer than 96 characters";
	for (size_t i = 0; i < n; i++)
		if (!is_repo_char(s[i]))
			return "a character other than letters, digits, '_', '-' and '.'";
	if (s[0] == '-' || s[0] == '.' || s[n - 1] == '-' || s[n - 1] == '.')
		return "a part starting or ending with '-' or '.'";
	for (size_t i = 1; i < n; i++)
		if ((s[i] == '-' || s[i] == '.') && s[i] == s[i - 1])
			return "'--' or '..'";
	return NULL;
}

int hub_repo_parse(const char *spec, struct hub_repo *ret, struct hub_error *err)
{
	static const struct {
		const char *prefix;
		enum hub_repo_type type;
	} prefixes[] = {
		{ "datasets/", HUB_REPO_DATASET },
		{ "spaces/", HUB_REPO_SPACE },
		{ "models/", HUB_REPO_MODEL },
	};
	const char *id, *slash, *why = NULL;
	size_t n;

	memset(ret, 0, sizeof(*ret));
	if (!spec || !*spec) {
		hub_error_set(err, FETCH_OK, 0,
			      "the repo id is empty; give 'namespace/name' or 'name'");
		return -EINVAL;
	}
	id = spec;
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (!strncmp(spec, prefixes[i].prefix, strlen(prefixes[i].prefix))) {
			ret->type = prefixes[i].type;
			id = spec + strlen(prefixes[i].prefix);
			break;
		}
	n = strlen(id);
	slash = strchr(id, '/');
	if (slash && strchr(slash + 1, '/'))
		why = "more than one '/' (use 'namespace/name' or 'name')";
	else if (slash)
		why = repo_part_problem(id, (size_t)(slash - id)) ?:
			      repo_part_problem(slash + 1, n - (size_t)(slash + 1 - id));
	else
		why = repo_part_problem(id, n);
	if (!why && n >= 4 && !strcmp(id + n - 4, ".git"))
		why = "a '.git' suffix";
	if (!why && n >= sizeof(ret->id))
		why = "more than 127 characters";
	if (why) {
		hub_error_set(err, FETCH_OK, 0, "invalid repo id '%.200s': %s", spec, why);
		return -EINVAL;
	}
	memcpy(ret->id, id, n + 1);
	return 0;
}

static bool is_success(long status)
{
	return status >= 200 && status < 300;
}

/* "repo 'org/name'" for a model, "dataset 'org/name'", "space 'org/name'": the type a person
 * gave stays in the words. */
static void repo_object(const struct hub_repo *repo, char *buf, size_t len)
{
	snprintf(buf, len, "%s '%s'",
		 repo->type == HUB_REPO_DATASET ? "dataset" :
		 repo->type == HUB_REPO_SPACE	? "space" :
						  "repo",
		 repo->id);
}

/* After a 404 for repo: whether a repo of another type has its id (one GET of its default
 * branch each, no retry), to say so in err: "datasets/org/model" is a common slip for a
 * model. Nothing is changed when none answers 2xx. */
static void suggest_other_type(const struct hub_config *cfg, const struct hub_repo *repo,
			       struct hub_error *err)
{
	static const enum hub_repo_type types[] = { HUB_REPO_MODEL, HUB_REPO_DATASET,
						    HUB_REPO_SPACE };
	static const char *const words[] = { "model", "dataset", "space" };
	static const char *const prefixes[] = { "", "datasets/", "spaces/" };

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		_cleanup_free_ char *url = NULL;
		struct http_response resp;
		struct http_request req;
		bool found;
		size_t n;

		if (types[i] == repo->type)
			continue;
		if (asprintf(&url, "%s/api/%s/%s", cfg->endpoint, hub_repo_type_plural(types[i]),
			     repo->id) < 0)
			return;
		req = hub_metadata_request(cfg, url);
		found = http_request(&req, &resp) >= 0 && is_success(resp.status);
		http_response_done(&resp);
		if (!found)
			continue;
		n = strlen(err->message);
		snprintf(err->message + n, sizeof(err->message) - n,
			 "; a %s '%s' exists: did you mean '%s%s'?", words[i], repo->id,
			 prefixes[i], repo->id);
		return;
	}
}

int hub_repo_info(const struct hub_config *cfg, const struct hub_repo *repo, const char *rev,
		  struct hub_repo_info *ret, struct hub_error *err)
{
	_cleanup_free_ char *esc = NULL, *url = NULL;
	struct http_response resp;
	struct http_request req;
	char object[200];
	struct hub_reply_ctx ctx = { .cfg = cfg };
	int r;

	if (!rev || !*rev)
		rev = "main";
	repo_object(repo, object, sizeof(object));
	ctx.revision = rev;
	ctx.repo_object = object;
	ctx.first_call = true;
	r = hub_check_online(cfg, object, err);
	if (r < 0)
		return r;
	/* A full sha is asked too: the server says whether it exists in this repo. */
	esc = http_escape_segment(rev);
	if (!esc || asprintf(&url, "%s/api/%s/%s/revision/%s", cfg->endpoint,
			     hub_repo_type_plural(repo->type), repo->id, esc) < 0)
		return -ENOMEM;
	req = hub_metadata_request(cfg, url);
	r = http_request(&req, &resp);
	if (r < 0 || !is_success(resp.status)) {
		if (r >= 0 && resp.status >= 300 && resp.status < 400)
			r = hub_reply_unexpected(&resp, object, err);
		else
			r = hub_reply_failure(&resp, r, object, &ctx, err);
		http_response_done(&resp);
		if (err && err->reason == FETCH_NOT_FOUND)
			suggest_other_type(cfg, repo, err);
		return r;
	}
	*ret = (struct hub_repo_info){ 0 };
	r = hub_json_revision(resp.body, resp.body_len, ret->commit);
	if (r >= 0)
		r = hub_json_repo_flags(resp.body, resp.body_len, &ret->is_private, &ret->is_gated);
	if (r >= 0)
		r = hub_json_last_modified(resp.body, resp.body_len, &ret->last_modified);
	if (r < 0)
		hub_error_set(
			err, FETCH_PROTOCOL, resp.status,
			"malformed reply about revision '%s' of %s from %s: no 40-hex \"sha\"", rev,
			object, cfg->endpoint);
	else
		log_debug("hub: %s revision '%s' is %s", object, rev, ret->commit);
	http_response_done(&resp);
	return r;
}

int hub_check_access(const struct hub_config *cfg, const struct hub_repo *repo, const char *commit,
		     const char *path, struct hub_error *err)
{
	_cleanup_free_ char *url = hub_resolve_url(cfg, repo, commit, path);
	struct http_response resp;
	struct http_request req;
	char object[200];
	struct hub_reply_ctx ctx = { .cfg = cfg };
	int r;

	snprintf(object, sizeof(object), "repo '%s'", repo->id);
	ctx.repo_object = object;
	r = hub_check_online(cfg, object, err);
	if (r < 0)
		return r;
	if (!url)
		return -ENOMEM;
	req = hub_metadata_request(cfg, url);
	/* HEAD, as the official client's metadata request (HUB_PROTOCOL.md 4.1); any 2xx or 3xx
	 * means the contents may be read. */
	req.method = "HEAD";
	r = http_request(&req, &resp);
	if (r >= 0 && resp.status >= 200 && resp.status < 400) {
		http_response_done(&resp);
		return 0;
	}
	r = hub_reply_failure(&resp, r, object, &ctx, err);
	http_response_done(&resp);
	return r;
}

/* Seen page URLs, as 64-bit FNV-1a hashes in an open-addressing set: a cursor that leads back
 * to an earlier page is a loop. 64 bits over at most 10^5 pages: a false alarm needs a
 * collision of odds ~10^-9. */
struct url_set {
	uint64_t *v; /* 0 marks a free slot (a hash of 0 is stored as 1) */
	size_t cap, n;
};

static uint64_t url_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h ? h : 1;
}

/* Adds url; 1 when it was new, 0 when already there, -ENOMEM. */
static int url_set_add(struct url_set *s, const char *url)
{
	uint64_t h = url_hash(url);
	size_t i;

	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *v = calloc(cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		for (size_t j = 0; j < s->cap; j++) {
			if (!s->v[j])
				continue;
			for (i = s->v[j] & (cap - 1); v[i]; i = (i + 1) & (cap - 1))
				;
			v[i] = s->v[j];
		}
		free(s->v);
		s->v = v;
		s->cap = cap;
	}
	for (i = h & (s->cap - 1); s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == h)
			return 0;
	s->v[i] = h;
	s->n++;
	return 1;
}

static void sleep_s(uint64_t s)
{
	struct timespec ts = { .tv_sec = (time_t)s };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Seconds to wait before retry number attempt (1-based) of a page whose last try gave resp
 * (status 0: no reply), as Python's http_backoff (HUB_PROTOCOL.md 7): what the server asked
 * for (backoff_server_delay()), up to HUB_SERVER_DELAY_CAP_S; else 1 s doubling, capped at
 * 8 s, without jitter. */
static uint64_t retry_delay_s(const struct http_response *resp, unsigned attempt)
{
	uint64_t usec, s;

	if (backoff_server_delay(resp->status, resp->retry_after, resp->ratelimit, &usec))
		return MIN(usec / USEC_PER_SEC, HUB_SERVER_DELAY_CAP_S);
	s = (uint64_t)HUB_RETRY_BASE_S << MIN(attempt - 1, 16u);
	return MIN(s, HUB_RETRY_CAP_S);
}

static bool is_retryable(int r, const struct http_response *resp)
{
	return r < 0 ? resp->net_transient : fetch_status_is_transient(resp->status);
}

/* GETs one page into resp, retrying transient failures when retries > 0. Returns
 * http_request()'s result for the last try. */
static int get_page(const struct hub_config *cfg, const char *url, unsigned retries,
		    struct http_response *resp)
{
	struct http_request req = hub_metadata_request(cfg, url);
	int r;

	for (unsigned attempt = 1;; attempt++) {
		uint64_t wait;

		r = http_request(&req, resp);
		if (attempt > retries || !is_retryable(r, resp))
			return r;
		wait = retry_delay_s(resp, attempt);
		log_debug("hub: tree page %s: %s, retry %u of %u in %llu s", url,
			  r < 0 ? resp->error : "server busy", attempt, retries,
			  (unsigned long long)wait);
		http_response_done(resp);
		sleep_s(wait);
	}
}

/* The listing in progress: where it stands, for the words of a failure. */
struct tree_walk {
	const struct hub_config *cfg;
	const char *object; /* "repo 'org/name' at 0123456789ab" */
	const struct hub_reply_ctx *ctx;
	unsigned page; /* 0-based number of the page being fetched */
};

/* Fetches one page at url and appends its entries to tree; *ret_next gets the next page's URL
 * (malloc'd) or NULL after the last. */
static int tree_walk_page(const struct tree_walk *w, const char *url, struct hub_tree *tree,
			  char **ret_next, struct hub_error *err)
{
	struct http_response resp;
	int r;

	*ret_next = NULL;
	/* The first page fails fast; later ones get the full retry set (HUB_PROTOCOL.md 7), so
	 * a blip deep into a long listing does not throw the listing away. */
	r = get_page(w->cfg, url, w->page ? HUB_PAGE_RETRIES : 0, &resp);
	if (r >= 0 && resp.status >= 300 && resp.status < 400)
		r = hub_reply_unexpected(&resp, w->object, err);
	else if (r < 0 || !is_success(resp.status))
		r = hub_reply_failure(&resp, r, w->object, w->ctx, err);
	else if (hub_json_tree_page(resp.body, resp.body_len, tree) < 0) {
		hub_error_set(err, FETCH_PROTOCOL, resp.status,
			      "malformed page %u of the file list of %s from %s", w->page + 1,
			      w->object, w->cfg->endpoint);
		r = -EBADMSG;
	} else {
		*ret_next = resp.link ? http_link_next(resp.link) : NULL;
		if (!*ret_next && http_link_has_next(resp.link)) {
			/* Stopping here would mount a silently partial tree. */
			hub_error_set(
				err, FETCH_PROTOCOL, resp.status,
				"page %u of the file list of %s names a next page that is not an "
				"absolute http(s) URL",
				w->page + 1, w->object);
			r = -EBADMSG;
		}
	}
	http_response_done(&resp);
	return r;
}

/* Fetches every page from url (taken) on, appending to tree. */
static int tree_walk_all(struct tree_walk *w, char *url, struct hub_tree *tree,
			 struct hub_error *err)
{
	_cleanup_free_ char *cur = url;
	struct url_set seen = { 0 };
	int r = 0;

	for (w->page = 0; cur; w->page++) {
		char *next;

		if (w->page == HUB_TREE_MAX_PAGES) {
			hub_error_set(err, FETCH_PROTOCOL, 0,
				      "the file list of %s has more than %d pages", w->object,
				      HUB_TREE_MAX_PAGES);
			r = -EBADMSG;
			break;
		}
		r = url_set_add(&seen, cur);
		if (r == 0) {
			hub_error_set(
				err, FETCH_PROTOCOL, 0,
				"the file list of %s loops: page %u links back to an earlier page",
				w->object, w->page);
			r = -EBADMSG;
		}
		if (r < 0)
			break;
		r = tree_walk_page(w, cur, tree, &next, err);
		if (r < 0)
			break;
		log_debug("hub: %s: page %u, %zu entries so far%s", w->object, w->page + 1, tree->n,
			  next ? ", more" : "");
		free(cur);
		cur = next;
	}
	free(seen.v);
	return r;
}

int hub_list_tree(const struct hub_config *cfg, const struct hub_repo *repo, const char *commit,
		  unsigned page_limit, struct hub_tree *tree, struct hub_error *err)
{
	_cleanup_free_ char *esc = NULL;
	char *url = NULL, object[200], repo_object[160], limit[32] = "";
	struct hub_reply_ctx ctx = { .cfg = cfg, .revision = commit, .repo_object = repo_object };
	size_t start = tree->n;
	int r;

	snprintf(repo_object, sizeof(repo_object), "repo '%s'", repo->id);
	snprintf(object, sizeof(object), "repo '%s' at %.12s", repo->id, commit);
	r = hub_check_online(cfg, object, err);
	if (r < 0)
		return r;
	esc = http_escape_segment(commit);
	if (page_limit)
		snprintf(limit, sizeof(limit), "&limit=%u", page_limit);
	if (!esc ||
	    asprintf(&url, "%s/api/%s/%s/tree/%s?recursive=true&expand=false%s", cfg->endpoint,
		     hub_repo_type_plural(repo->type), repo->id, esc, limit) < 0)
		return -ENOMEM;
	r = tree_walk_all(&(struct tree_walk){ .cfg = cfg, .object = object, .ctx = &ctx }, url,
			  tree, err);
	if (r < 0)
		hub_tree_truncate(tree, start);
	return r;
}

char *hub_resolve_url(const struct hub_config *cfg, const struct hub_repo *repo, const char *commit,
		      const char *path)
{
	static const char *const prefix[] = {
		[HUB_REPO_MODEL] = "",
		[HUB_REPO_DATASET] = "datasets/",
		[HUB_REPO_SPACE] = "spaces/",
	};
	_cleanup_free_ char *esc = http_escape_path(path);
	char *url;

	if (!esc || (unsigned)repo->type >= ARRAY_SIZE(prefix))
		return NULL;
	if (asprintf(&url, "%s/%s%s/resolve/%s/%s", cfg->endpoint, prefix[repo->type], repo->id,
		     commit, esc) < 0)
		return NULL;
	return url;
}

int hub_whoami(const struct hub_config *cfg, struct hub_whoami *ret, struct hub_error *err)
{
	_cleanup_free_ char *url = NULL;
	struct hub_reply_ctx ctx = { .cfg = cfg };
	struct http_response resp;
	struct http_request req;
	int r;

	*ret = (struct hub_whoami){ 0 };
	r = hub_check_online(cfg, "the token's account (whoami-v2)", err);
	if (r < 0)
		return r;
	if (asprintf(&url, "%s/api/whoami-v2", cfg->endpoint) < 0)
		return -ENOMEM;
	req = hub_metadata_request(cfg, url);
	r = http_request(&req, &resp);
	ret->server_date_s = resp.date_s;
	if (r >= 0 && is_success(resp.status)) {
		r = hub_json_whoami(resp.body, resp.body_len, ret->name, sizeof(ret->name));
		if (r < 0)
			hub_error_set(err, FETCH_PROTOCOL, resp.status,
				      "malformed whoami-v2 reply from %s: no \"name\"",
				      cfg->endpoint);
	} else {
		r = hub_reply_failure(&resp, r, "the token's account (whoami-v2)", &ctx, err);
	}
	http_response_done(&resp);
	return r;
}

int hub_probe_range(const struct hub_config *cfg, const struct hub_repo *repo, const char *commit,
		    const char *path, unsigned long long len, struct hub_probe *ret,
		    struct hub_error *err)
{
	_cleanup_free_ char *url = hub_resolve_url(cfg, repo, commit, path);
	struct hub_reply_ctx ctx = { .cfg = cfg };
	struct http_response resp;
	struct http_request req;
	char object[256], range[48];
	int r;

	*ret = (struct hub_probe){ 0 };
	snprintf(object, sizeof(object), "file '%.80s' of repo '%s'", path, repo->id);
	r = hub_check_online(cfg, object, err);
	if (r < 0)
		return r;
	if (!url)
		return -ENOMEM;
	snprintf(range, sizeof(range), "0-%llu", len ? len - 1 : 0);
	req = hub_metadata_request(cfg, url);
	req.range = range;
	r = http_request(&req, &resp);
	if (r >= 0 && resp.status >= 300 && resp.status < 400 && resp.location) {
		/* The absolute redirect to the CDN: asked as a transfer asks it, the token kept
		 * to the endpoint's origin (HUB_PROTOCOL.md 4.2). */
		_cleanup_free_ char *target = strdup(resp.location);

		http_response_done(&resp);
		if (!target)
			return -ENOMEM;
		req.url = target;
		ret->redirected = true;
		r = http_request(&req, &resp);
		http_url_host(target, ret->host, sizeof(ret->host));
	} else {
		http_url_host(url, ret->host, sizeof(ret->host));
	}
	if (r >= 0 && is_success(resp.status)) {
		ret->bytes = resp.body_len;
		ret->ttfb_us = resp.ttfb_us;
		ret->total_us = resp.total_us;
		r = 0;
	} else {
		r = hub_reply_failure(&resp, r, object, &ctx, err);
	}
	http_response_done(&resp);
	return r;
}
