/* hub_config.c: the configuration the official client reads from the environment
 * (HUB_PROTOCOL.md 5-6): endpoint, token discovery (variables, token file, HF_HOME with ~ and
 * $VAR expanded), offline mode, metadata timeout. Runs once, before threads change the
 * environment. Sends no request (it asks curl its version only, for the user agent). */
#include "fetch/hub_config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fetch/http_exchange.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/parse.h"

#define HUB_DEFAULT_TIMEOUT_S 10
#define HUB_TIMEOUT_MAX_S 86400
#define HUB_TOKEN_FILE_MAX 65536

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
		goto out_config_done;
	}
	r = config_token(cfg);
	if (r < 0)
		goto out_config_done;
	cfg->offline = parse_env_bool(secure_getenv("HF_HUB_OFFLINE")) ||
		       parse_env_bool(secure_getenv("TRANSFORMERS_OFFLINE"));
	cfg->disable_xet = parse_env_bool(secure_getenv("HF_HUB_DISABLE_XET"));
	cfg->timeout_s = HUB_DEFAULT_TIMEOUT_S;
	v = secure_getenv("HF_HUB_ETAG_TIMEOUT");
	if (v && parse_uint(v, HUB_TIMEOUT_MAX_S, &t) == 0 && t > 0)
		cfg->timeout_s = (long)t;
	log_debug("hub: endpoint %s, token %s%s, timeout %ld s%s", cfg->endpoint,
		  cfg->token ? "from " : "none", cfg->token ? cfg->token_source : "",
		  cfg->timeout_s, cfg->offline ? ", offline" : "");
	return 0;
out_config_done:
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
