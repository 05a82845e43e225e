/* hub.c: the Hub's metadata API (HUB_PROTOCOL.md 1-3, 5-7): repo ids, configuration from the
 * environment, resolving a revision, listing the tree across pages, validating it, and error
 * replies in words. Any thread; the calls that talk to the Hub block, sleeping between retries
 * (mount time only, never a FUSE worker). HTTP through http.h, JSON through hub_json.h. */
#include "fetch/hub.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fetch/backoff.h"
#include "fetch/http.h"
#include "fetch/http_exchange.h"
#include "fetch/hub_json.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/timeutil.h"

#define HUB_DEFAULT_TIMEOUT_S 10
#define HUB_TIMEOUT_MAX_S 86400
#define HUB_TOKEN_FILE_MAX 65536
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
#define HUB_PATH_MAX 4095
#define HUB_SEGMENT_MAX 255

static void set_err(struct hub_error *err, enum fetch_reason reason, long status, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));

static void set_err(struct hub_error *err, enum fetch_reason reason, long status, const char *fmt,
		    ...)
{
	va_list ap;

	if (!err)
		return;
	err->reason = reason;
	err->status = status;
	va_start(ap, fmt);
	(void)vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* ---- repo ids ---- */

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
		set_err(err, FETCH_OK, 0, "the repo id is empty; give 'namespace/name' or 'name'");
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
		set_err(err, FETCH_OK, 0, "invalid repo id '%.200s': %s", spec, why);
		return -EINVAL;
	}
	memcpy(ret->id, id, n + 1);
	return 0;
}

/* ---- configuration ---- */

/* The variable reference at s ("$NAME" or "${NAME}"): its name into name (len bytes) and the
 * reference's length, or 0 when s starts none. */
static size_t var_ref(const char *s, char *name, size_t len)
{
	bool braced = s[1] == '{';
	const char *p = s + 1 + braced, *end = p;

	while (isalnum((unsigned char)*end) || *end == '_')
		end++;
	if (s[0] != '$' || end == p || (braced && *end != '}') || (size_t)(end - p) >= len)
		return 0;
	memcpy(name, p, (size_t)(end - p));
	name[end - p] = '\0';
	return (size_t)(end + braced - s);
}

/* $VAR and ${VAR} replaced by their values; unknown ones are kept as written (Python
 * os.path.expandvars). NULL on OOM. */
static char *expand_vars(const char *s)
{
	_cleanup_free_ char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return NULL;
	while (*s) {
		char name[256];
		size_t n = var_ref(s, name, sizeof(name));
		const char *v = n ? secure_getenv(name) : NULL;

		if (v)
			(void)fputs(v, f);
		else
			(void)fwrite(s, 1, n ? n : 1, f);
		s += n ? n : 1;
	}
	if (fclose(f) != 0)
		return NULL;
	return TAKE_PTR(out);
}

/* A leading "~" or "~user" replaced by that home directory (Python os.path.expanduser).
 * NULL on OOM. */
static char *expand_user(const char *s)
{
	const char *rest, *home = NULL;
	char *out;

	if (s[0] != '~')
		return strdup(s);
	rest = s + 1 + strcspn(s + 1, "/");
	if (rest == s + 1) {
		home = secure_getenv("HOME");
		if (!home || !*home) {
			struct passwd *pw = getpwuid(getuid());

			home = pw ? pw->pw_dir : NULL;
		}
	} else {
		_cleanup_free_ char *user = strndup(s + 1, (size_t)(rest - s - 1));
		struct passwd *pw;

		if (!user)
			return NULL;
		pw = getpwnam(user);
		home = pw ? pw->pw_dir : NULL;
	}
	if (!home)
		return strdup(s);
	/* "/" + "/x" must not become "//x" */
	if (home[0] == '/' && home[1] == '\0' && *rest == '/')
		home = "";
	if (asprintf(&out, "%s%s", home, rest) < 0)
		return NULL;
	return out;
}

static char *expand_path(const char *s)
{
	_cleanup_free_ char *v = expand_vars(s);

	return v ? expand_user(v) : NULL;
}

/* HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface; expanded. */
static char *hf_home(void)
{
	const char *v = secure_getenv("HF_HOME");
	_cleanup_free_ char *raw = NULL;

	if (v && *v)
		return expand_path(v);
	v = secure_getenv("XDG_CACHE_HOME");
	if (asprintf(&raw, "%s/huggingface", v && *v ? v : "~/.cache") < 0) {
		raw = NULL;
		return NULL;
	}
	return expand_path(raw);
}

/* Python _clean_token(): CR and LF removed anywhere, then surrounding whitespace. In place;
 * returns s, now possibly empty. */
static char *token_clean(char *s)
{
	char *o = s, *start;
	size_t n;

	for (char *p = s; *p; p++)
		if (*p != '\r' && *p != '\n')
			*o++ = *p;
	*o = '\0';
	start = s;
	while (isspace((unsigned char)*start))
		start++;
	n = strlen(start);
	while (n && isspace((unsigned char)start[n - 1]))
		n--;
	memmove(s, start, n);
	s[n] = '\0';
	return s;
}

/* The token file's cleaned content into *ret (NULL: absent, unreadable or empty). */
static int token_from_file(const char *path, char **ret)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;

	*ret = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return 0;
	buf = malloc(HUB_TOKEN_FILE_MAX + 1);
	if (!buf)
		return -ENOMEM;
	while (len < HUB_TOKEN_FILE_MAX) {
		ssize_t n = read(fd, buf + len, HUB_TOKEN_FILE_MAX - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_debug("hub: cannot read the token file '%s': %m", path);
			return 0;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) /* a NUL inside: not a token file */
		return 0;
	if (!*token_clean(buf))
		return 0;
	*ret = TAKE_PTR(buf);
	return 0;
}

/* Token discovery (HUB_PROTOCOL.md 5): the first non-empty of HF_TOKEN,
 * HUGGING_FACE_HUB_TOKEN, the file at HF_TOKEN_PATH or $HF_HOME/token. */
static int config_token(struct hub_config *cfg)
{
	static const char *const vars[] = { "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN" };
	_cleanup_free_ char *path = NULL;
	const char *v;
	int r;

	if (parse_env_bool(secure_getenv("HF_HUB_DISABLE_IMPLICIT_TOKEN")))
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(vars); i++) {
		v = secure_getenv(vars[i]);
		if (!v)
			continue;
		cfg->token = strdup(v);
		if (!cfg->token)
			return -ENOMEM;
		if (*token_clean(cfg->token)) {
			cfg->token_source = strdup(vars[i]);
			return cfg->token_source ? 0 : -ENOMEM;
		}
		free(cfg->token);
		cfg->token = NULL;
	}
	v = secure_getenv("HF_TOKEN_PATH");
	if (v && *v) {
		path = expand_path(v);
	} else {
		_cleanup_free_ char *home = hf_home();

		if (!home || asprintf(&path, "%s/token", home) < 0)
			path = NULL;
	}
	if (!path)
		return -ENOMEM;
	r = token_from_file(path, &cfg->token);
	if (r < 0 || !cfg->token)
		return r;
	cfg->token_source = TAKE_PTR(path);
	return 0;
}

int hub_config_init(struct hub_config *cfg, const char *endpoint_override)
{
	const char *v;
	size_t n;
	uint64_t t;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	v = endpoint_override;
	if (!v || !*v)
		v = secure_getenv("HF_ENDPOINT");
	if (!v || !*v)
		v = parse_env_bool(secure_getenv("HUGGINGFACE_CO_STAGING")) ? HUB_STAGING_ENDPOINT :
									      HUB_DEFAULT_ENDPOINT;
	n = strlen(v);
	while (n > 0 && v[n - 1] == '/')
		n--;
	cfg->endpoint = strndup(v, n);
	if (asprintf(&cfg->user_agent, "hffs/%s; curl/%s", HFFS_VERSION, http_curl_version()) < 0)
		cfg->user_agent = NULL;
	if (!cfg->endpoint || !cfg->user_agent) {
		r = -ENOMEM;
		goto fail;
	}
	r = config_token(cfg);
	if (r < 0)
		goto fail;
	cfg->offline = parse_env_bool(secure_getenv("HF_HUB_OFFLINE")) ||
		       parse_env_bool(secure_getenv("TRANSFORMERS_OFFLINE"));
	cfg->timeout_s = HUB_DEFAULT_TIMEOUT_S;
	v = secure_getenv("HF_HUB_ETAG_TIMEOUT");
	if (v && parse_uint(v, HUB_TIMEOUT_MAX_S, &t) == 0 && t > 0)
		cfg->timeout_s = (long)t;
	log_debug("hub: endpoint %s, token %s%s, timeout %ld s%s", cfg->endpoint,
		  cfg->token ? "from " : "none", cfg->token ? cfg->token_source : "",
		  cfg->timeout_s, cfg->offline ? ", offline" : "");
	return 0;
fail:
	hub_config_done(cfg);
	return r;
}

void hub_config_done(struct hub_config *cfg)
{
	if (cfg->token)
		explicit_bzero(cfg->token, strlen(cfg->token));
	free(cfg->endpoint);
	free(cfg->token);
	free(cfg->token_source);
	free(cfg->user_agent);
	memset(cfg, 0, sizeof(*cfg));
}

/* ---- error replies in words ---- */

/* What hub.c knows about an exchange beyond the reply (NULL members: unknown). */
struct reply_ctx {
	const char *revision; /* asked revision, for RevisionNotFound */
	const char *repo_object; /* "repo 'org/name'", for RevisionNotFound */
	const struct hub_config *cfg; /* token sent or not, and its source */
};

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
}

/* 401, 403 and 404: the Hub refused, and why decides what the person does next. */
static void describe_refusal(enum fetch_reason reason, long status, const struct reply_words *w,
			     const char *object, const struct reply_ctx *ctx, struct hub_error *err)
{
	const char *source = ctx && ctx->cfg && ctx->cfg->token ? ctx->cfg->token_source : NULL;
	bool token_known = ctx && ctx->cfg;

	if (reason == FETCH_NOT_FOUND && status == 401 && !source)
		/* the anonymous form of "missing or private" (HUB_PROTOCOL.md 5) */
		set_err(err, reason, status,
			"%s not found, or private and no token was sent (%s); set HF_TOKEN or log "
			"in",
			object, w->paren);
	else if (reason == FETCH_NOT_FOUND && source && !strcmp(w->code, "RepoNotFound"))
		set_err(err, reason, status,
			"%s not found, or private and not readable with the token from %s (%s)",
			object, source, w->paren);
	else if (reason == FETCH_NOT_FOUND)
		set_err(err, reason, status, "%s not found (%s)", object, w->paren);
	else if (reason == FETCH_NO_REVISION && ctx && ctx->revision)
		set_err(err, reason, status, "revision '%s' not found in %s (%s)", ctx->revision,
			ctx->repo_object ? ctx->repo_object : object, w->paren);
	else if (reason == FETCH_NO_REVISION)
		set_err(err, reason, status, "revision of %s not found (%s)", object, w->paren);
	else if (reason == FETCH_GATED)
		set_err(err, reason, status,
			"%s is gated: request access on its page, then use a token of an approved "
			"account (%s)",
			object, w->paren);
	else if (reason == FETCH_TOKEN && source)
		set_err(err, reason, status, "the token from %s was rejected (%s)", source,
			w->paren);
	else if (reason == FETCH_TOKEN && token_known)
		set_err(err, reason, status,
			"%s needs a token and none was sent (%s); set HF_TOKEN or log in", object,
			w->paren);
	else if (reason == FETCH_TOKEN)
		set_err(err, reason, status, "%s: the token is missing or was rejected (%s)",
			object, w->paren);
	else
		set_err(err, reason, status, "access to %s is forbidden (%s)", object, w->paren);
}

static void describe_reply(const struct http_response *r, const char *object,
			   const struct reply_ctx *ctx, struct hub_error *err)
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
		describe_refusal(reason, r->status, &w, object, ctx, err);
		break;
	case FETCH_RATE_LIMITED:
		set_err(err, reason, r->status, "rate limited by %s for %s (%s%s%s%s%s)", w.host,
			object, w.paren, w.retry[0] ? ", Retry-After " : "", w.retry,
			w.rid[0] ? ", X-Request-Id " : "", w.rid);
		break;
	default:
		/* 5xx and odd statuses: what to quote when reporting it to the host */
		set_err(err, reason, r->status, "%s from %s for %s%s%s%s", w.paren, w.host, object,
			w.rid[0] ? " (X-Request-Id " : "", w.rid, w.rid[0] ? ")" : "");
		break;
	}
}

void hub_error_from_response(const struct http_response *r, const char *object,
			     struct hub_error *err)
{
	describe_reply(r, object ? object : "the request", NULL, err);
}

/* Words for a failed exchange: no reply (transport) or an error reply. Returns the errno. */
static int exchange_error(const struct http_response *resp, int r, const char *object,
			  const struct reply_ctx *ctx, struct hub_error *err)
{
	if (r < 0) {
		set_err(err, resp->net_reason, 0, "cannot get %s: %s", object,
			resp->error[0] ? resp->error : strerror(-r));
		return r;
	}
	describe_reply(resp, object, ctx, err);
	if (err)
		return fetch_reason_errno(err->reason) ?: -EBADMSG;
	return fetch_reason_errno(fetch_reason_from_status(resp->status, resp->x_error_code)) ?:
		       -EBADMSG;
}

static int check_online(const struct hub_config *cfg, const char *object, struct hub_error *err)
{
	if (!cfg->offline)
		return 0;
	set_err(err, FETCH_OFFLINE, 0, "offline mode (HF_HUB_OFFLINE): %s is not asked of the Hub",
		object);
	return -ENETDOWN;
}

static bool is_success(long status)
{
	return status >= 200 && status < 300;
}

/* A 3xx that http_request() did not follow (an absolute Location) is not a metadata reply. */
static int unexpected_status(const struct http_response *resp, const char *object,
			     struct hub_error *err)
{
	char loc[200];

	one_line(loc, sizeof(loc), resp->location ? resp->location : "(none)");
	set_err(err, FETCH_PROTOCOL, resp->status, "unexpected HTTP %ld for %s (Location %s)",
		resp->status, object, loc);
	return -EBADMSG;
}

/* ---- revision ---- */

static struct http_request metadata_request(const struct hub_config *cfg, const char *url)
{
	return (struct http_request){
		.method = "GET",
		.url = url,
		.token = cfg->token,
		.auth_origin = cfg->endpoint,
		.user_agent = cfg->user_agent,
		.timeout_s = cfg->timeout_s,
		/* Renamed repos answer with a relative redirect (HUB_PROTOCOL.md 4.1). */
		.follow_relative = true,
	};
}

int hub_resolve_revision(const struct hub_config *cfg, const struct hub_repo *repo, const char *rev,
			 char ret_commit[41], struct hub_error *err)
{
	_cleanup_free_ char *esc = NULL, *url = NULL;
	struct http_response resp;
	struct http_request req;
	char object[200];
	struct reply_ctx ctx = { .cfg = cfg };
	int r;

	if (!rev || !*rev)
		rev = "main";
	snprintf(object, sizeof(object), "repo '%s'", repo->id);
	ctx.revision = rev;
	ctx.repo_object = object;
	r = check_online(cfg, object, err);
	if (r < 0)
		return r;
	/* A full sha is asked too: the server says whether it exists in this repo. */
	esc = http_escape_segment(rev);
	if (!esc || asprintf(&url, "%s/api/%s/%s/revision/%s", cfg->endpoint,
			     hub_repo_type_plural(repo->type), repo->id, esc) < 0)
		return -ENOMEM;
	req = metadata_request(cfg, url);
	r = http_request(&req, &resp);
	if (r < 0 || !is_success(resp.status)) {
		if (r >= 0 && resp.status >= 300 && resp.status < 400)
			r = unexpected_status(&resp, object, err);
		else
			r = exchange_error(&resp, r, object, &ctx, err);
		http_response_done(&resp);
		return r;
	}
	r = hub_json_revision(resp.body, resp.body_len, ret_commit);
	if (r < 0)
		set_err(err, FETCH_PROTOCOL, resp.status,
			"malformed reply about revision '%s' of %s from %s: no 40-hex \"sha\"", rev,
			object, cfg->endpoint);
	else
		log_debug("hub: %s revision '%s' is %s", object, rev, ret_commit);
	http_response_done(&resp);
	return r;
}

/* ---- access ---- */

int hub_check_access(const struct hub_config *cfg, const struct hub_repo *repo, const char *commit,
		     const char *path, struct hub_error *err)
{
	_cleanup_free_ char *url = hub_resolve_url(cfg, repo, commit, path);
	struct http_response resp;
	struct http_request req;
	char object[200];
	struct reply_ctx ctx = { .cfg = cfg };
	int r;

	snprintf(object, sizeof(object), "repo '%s'", repo->id);
	ctx.repo_object = object;
	r = check_online(cfg, object, err);
	if (r < 0)
		return r;
	if (!url)
		return -ENOMEM;
	req = metadata_request(cfg, url);
	/* HEAD, as the official client's metadata request (HUB_PROTOCOL.md 4.1); any 2xx or 3xx
	 * means the contents may be read. */
	req.method = "HEAD";
	r = http_request(&req, &resp);
	if (r >= 0 && resp.status >= 200 && resp.status < 400) {
		http_response_done(&resp);
		return 0;
	}
	r = exchange_error(&resp, r, object, &ctx, err);
	http_response_done(&resp);
	return r;
}

/* ---- tree ---- */

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
	struct http_request req = metadata_request(cfg, url);
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
	const struct reply_ctx *ctx;
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
		r = unexpected_status(&resp, w->object, err);
	else if (r < 0 || !is_success(resp.status))
		r = exchange_error(&resp, r, w->object, w->ctx, err);
	else if (hub_json_tree_page(resp.body, resp.body_len, tree) < 0) {
		set_err(err, FETCH_PROTOCOL, resp.status,
			"malformed page %u of the file list of %s from %s", w->page + 1, w->object,
			w->cfg->endpoint);
		r = -EBADMSG;
	} else {
		*ret_next = resp.link ? http_link_next(resp.link) : NULL;
		if (!*ret_next && http_link_has_next(resp.link)) {
			/* Stopping here would mount a silently partial tree. */
			set_err(err, FETCH_PROTOCOL, resp.status,
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
			set_err(err, FETCH_PROTOCOL, 0,
				"the file list of %s has more than %d pages", w->object,
				HUB_TREE_MAX_PAGES);
			r = -EBADMSG;
			break;
		}
		r = url_set_add(&seen, cur);
		if (r == 0) {
			set_err(err, FETCH_PROTOCOL, 0,
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
	struct reply_ctx ctx = { .cfg = cfg, .revision = commit, .repo_object = repo_object };
	size_t start = tree->n;
	int r;

	snprintf(repo_object, sizeof(repo_object), "repo '%s'", repo->id);
	snprintf(object, sizeof(object), "repo '%s' at %.12s", repo->id, commit);
	r = check_online(cfg, object, err);
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

/* ---- tree entries ---- */

const char *hub_entry_cid(const struct hub_entry *e)
{
	return e->is_lfs ? e->sha256 : e->oid;
}

bool hub_entry_has_data(const struct hub_entry *e)
{
	return !e->is_dir && e->size > 0;
}

int hub_tree_push(struct hub_tree *tree, const struct hub_entry *e)
{
	if (tree->n == tree->cap) {
		size_t cap = tree->cap ? tree->cap * 2 : 256;
		struct hub_entry *v;

		if (cap > SIZE_MAX / sizeof(*v))
			return -ENOMEM;
		v = realloc(tree->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		tree->v = v;
		tree->cap = cap;
	}
	tree->v[tree->n++] = *e;
	return 0;
}

void hub_tree_truncate(struct hub_tree *tree, size_t n)
{
	while (tree->n > n)
		free(tree->v[--tree->n].path);
}

void hub_tree_done(struct hub_tree *tree)
{
	hub_tree_truncate(tree, 0);
	free(tree->v);
	memset(tree, 0, sizeof(*tree));
}

/* ---- validation ---- */

static bool is_lower_hex(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
	return true;
}

/* Why path is unsafe, or NULL (HUB_PROTOCOL.md 10, and what a FUSE name may be). */
static const char *path_problem(const char *path)
{
	size_t len = strlen(path);
	const char *seg = path;

	if (len == 0)
		return "an empty path";
	if (len > HUB_PATH_MAX)
		return "a path longer than 4095 bytes";
	if (path[0] == '/')
		return "an absolute path";
	for (const char *p = path; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return "a control character";
		if (*p == '\\')
			return "a backslash";
	}
	for (;;) {
		size_t n = strcspn(seg, "/");

		if (n == 0)
			return "an empty segment";
		if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return "a '.' or '..' segment";
		if (n > HUB_SEGMENT_MAX)
			return "a name longer than 255 bytes";
		if (!seg[n])
			return NULL;
		seg += n + 1;
	}
}

/* Why entry e is unacceptable apart from its path, or NULL. */
static const char *entry_problem(const struct hub_entry *e)
{
	if (e->is_dir)
		return e->oid[0] && !is_lower_hex(e->oid, 40) ? "a git oid that is not 40 hex" :
								NULL;
	if (!is_lower_hex(e->oid, 40))
		return "a git oid that is not 40 hex";
	if (e->is_lfs && !is_lower_hex(e->sha256, 64))
		return "an LFS sha256 that is not 64 hex";
	return NULL;
}

static int cmp_entry_path(const void *a, const void *b)
{
	const struct hub_entry *const *x = a, *const *y = b;

	return strcmp((*x)->path, (*y)->path);
}

static int cmp_key_entry(const void *key, const void *b)
{
	const struct hub_entry *const *y = b;

	return strcmp(key, (*y)->path);
}

/* Writes path into buf for a message: quotes kept out, odd bytes as \xNN, bounded. */
static void quote_path(char *buf, size_t len, const char *path)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)path; *p && o + 5 < len; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\'' || *p == '\\')
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
		else
			buf[o++] = (char)*p;
	}
	if (o + 5 >= len && o >= 3)
		memcpy(buf + o - 3, "...", 3);
	buf[o] = '\0';
}

static int refuse(struct hub_error *err, const char *path, const char *why)
{
	char q[220];

	quote_path(q, sizeof(q), path ? path : "");
	set_err(err, FETCH_PROTOCOL, 0, "refusing the repo's file list: unsafe path '%s' (%s)", q,
		why);
	return -EBADMSG;
}

/* The parent of each entry must not be a file ("a" file and "a/b" both listed). */
static int check_parents(const struct hub_entry **sorted, size_t n, struct hub_error *err)
{
	_cleanup_free_ char *buf = NULL;

	for (size_t i = 0; i < n; i++) {
		const char *path = sorted[i]->path;
		size_t len = strlen(path);
		char *slash;

		free(buf);
		buf = strdup(path);
		if (!buf)
			return -ENOMEM;
		while ((slash = memrchr(buf, '/', len))) {
			const struct hub_entry **hit;

			*slash = '\0';
			len = (size_t)(slash - buf);
			hit = bsearch(buf, sorted, n, sizeof(*sorted), cmp_key_entry);
			if (hit && !(*hit)->is_dir)
				return refuse(err, path, "its parent is a file");
		}
	}
	return 0;
}

int hub_tree_validate(const struct hub_tree *tree, struct hub_error *err)
{
	_cleanup_free_ const struct hub_entry **sorted = NULL;

	for (size_t i = 0; i < tree->n; i++) {
		const struct hub_entry *e = &tree->v[i];
		const char *why = e->path ? path_problem(e->path) : "no path";

		if (!why)
			why = entry_problem(e);
		if (why)
			return refuse(err, e->path, why);
	}
	if (tree->n == 0)
		return 0;
	sorted = malloc(tree->n * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	for (size_t i = 0; i < tree->n; i++)
		sorted[i] = &tree->v[i];
	qsort(sorted, tree->n, sizeof(*sorted), cmp_entry_path);
	for (size_t i = 1; i < tree->n; i++)
		if (!strcmp(sorted[i]->path, sorted[i - 1]->path))
			return refuse(err, sorted[i]->path, "listed twice");
	return check_parents(sorted, tree->n, err);
}
