/* test_hub.c: repo ids (HUB_PROTOCOL.md 1), configuration from a controlled environment
 * (5-6), hostile trees (10), resolve URLs, error replies in words, and, against a fake Hub
 * forked from the test (tests/unit/minihttp.h): revisions (escaping, a renamed repo's relative
 * 307, 401/403/404 in words), paged tree listings (absolute Link pages, the token withheld
 * from another origin, retries of later pages, cursor loops, malformed pages) and the access
 * check of a gated repo. */
#include "fetch/hub.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fetch/http_exchange.h"
#include "fetch/hub_json.h"
#include "tests/unit/check.h"
#include "tests/unit/fixture.h"
#include "tests/unit/minihttp.h"

#define SHA1_A "0123456789abcdef0123456789abcdef01234567"
#define SHA1_B "89abcdef0123456789abcdef0123456789abcdef"
#define SHA256_A "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define COMMIT "c0ffee0000000000000000000000000000000001"
#define TOKEN "hf_good"

static char tmpdir[64];

#define ASSERT_CONTAINS(hay, needle)                                          \
	do {                                                                  \
		const char *_h = (hay), *_n = (needle);                       \
		if (!strstr(_h, _n))                                          \
			CHECK_FAIL("\"%s\" does not contain \"%s\"", _h, _n); \
	} while (0)

/* ---- repo ids ---- */

static void test_repo_parse(void)
{
	static const struct {
		const char *spec;
		enum hub_repo_type type;
		const char *id;
	} good[] = {
		{ "gpt2", HUB_REPO_MODEL, "gpt2" },
		{ "org/name", HUB_REPO_MODEL, "org/name" },
		{ "models/org/name", HUB_REPO_MODEL, "org/name" },
		{ "datasets/org/data_set-1.0", HUB_REPO_DATASET, "org/data_set-1.0" },
		{ "spaces/o/s", HUB_REPO_SPACE, "o/s" },
		{ "datasets/squad", HUB_REPO_DATASET, "squad" },
		{ "a.b-c_d/E9", HUB_REPO_MODEL, "a.b-c_d/E9" },
		{ "org/name.gitx", HUB_REPO_MODEL, "org/name.gitx" },
	};
	static const struct {
		const char *spec;
		const char *why;
	} bad[] = {
		{ "", "empty" },
		{ "a/b/c", "more than one '/'" },
		{ "datasets/a/b/c", "more than one '/'" },
		{ "-bad/name", "starting or ending" },
		{ "org/name-", "starting or ending" },
		{ ".org/name", "starting or ending" },
		{ "org/name.", "starting or ending" },
		{ "org/na..me", "'..'" },
		{ "org/na--me", "'--'" },
		{ "org/name.git", ".git" },
		{ "org/", "empty part" },
		{ "/name", "empty part" },
		{ "datasets/", "empty part" },
		{ "org/na me", "character" },
		{ "org/na%me", "character" },
		{ "org/caf\xc3\xa9", "character" },
		{ "org/0123456789012345678901234567890123456789012345678901234567890123456789"
		  "01234567890123456789012345678",
		  "96" },
		{ "0123456789012345678901234567890123456789012345678901234567890123456789/"
		  "0123456789012345678901234567890123456789012345678901234567890123456789",
		  "127" },
	};
	struct hub_repo repo;
	struct hub_error err;
	char key[160];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(&err, 0, sizeof(err));
		if (hub_repo_parse(good[i].spec, &repo, &err) < 0)
			CHECK_FAIL("'%s' refused: %s", good[i].spec, err.message);
		ASSERT_EQ(repo.type, good[i].type);
		ASSERT_STR_EQ(repo.id, good[i].id);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		if (hub_repo_parse(bad[i].spec, &repo, &err) != -EINVAL)
			CHECK_FAIL("'%s' accepted", bad[i].spec);
		ASSERT_CONTAINS(err.message, "repo id");
		ASSERT_CONTAINS(err.message, bad[i].why);
		ASSERT_TRUE(strchr(err.message, '\n') == NULL);
	}
	ASSERT_EQ(hub_repo_parse(NULL, &repo, NULL), -EINVAL);

	ASSERT_OK(hub_repo_parse("datasets/org/d", &repo, &err));
	ASSERT_OK(hub_repo_key(&repo, key, sizeof(key)));
	ASSERT_STR_EQ(key, "datasets/org/d");
	ASSERT_EQ(hub_repo_key(&repo, key, 8), -ENAMETOOLONG);
	ASSERT_OK(hub_repo_parse("gpt2", &repo, &err));
	ASSERT_OK(hub_repo_key(&repo, key, sizeof(key)));
	ASSERT_STR_EQ(key, "models/gpt2");
	ASSERT_STR_EQ(hub_repo_type_plural(HUB_REPO_SPACE), "spaces");
}

/* ---- configuration ---- */

static const char *const env_vars[] = {
	"HF_ENDPOINT",
	"HF_TOKEN",
	"HUGGING_FACE_HUB_TOKEN",
	"HF_TOKEN_PATH",
	"HF_HOME",
	"XDG_CACHE_HOME",
	"HF_HUB_DISABLE_IMPLICIT_TOKEN",
	"HF_HUB_OFFLINE",
	"TRANSFORMERS_OFFLINE",
	"HF_HUB_ETAG_TIMEOUT",
	"HUGGINGFACE_CO_STAGING",
	"HFFS_TEST_DIR",
};

static void env_clear(void)
{
	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
		unsetenv(env_vars[i]);
}

static void write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	ASSERT_NOT_NULL(f);
	ASSERT_EQ(fputs(content, f) >= 0, 1);
	ASSERT_OK(fclose(f));
}

static void config_case(const char *override, const char *endpoint, const char *token,
			const char *source, bool offline, long timeout)
{
	struct hub_config cfg;

	ASSERT_OK(hub_config_init(&cfg, override));
	ASSERT_STR_EQ(cfg.endpoint, endpoint);
	if (token) {
		ASSERT_STR_EQ(cfg.token, token);
		ASSERT_STR_EQ(cfg.token_source, source);
	} else if (cfg.token) {
		CHECK_FAIL("want no token, got \"%s\" from %s", cfg.token, cfg.token_source);
	}
	ASSERT_EQ(cfg.offline, offline);
	ASSERT_EQ(cfg.timeout_s, timeout);
	ASSERT_TRUE(!strncmp(cfg.user_agent, "hffs/" HFFS_VERSION "; curl/",
			     strlen("hffs/" HFFS_VERSION "; curl/")));
	ASSERT_TRUE(strlen(cfg.user_agent) > strlen("hffs/" HFFS_VERSION "; curl/"));
	hub_config_done(&cfg);
	ASSERT_NULL(cfg.endpoint);
}

static void test_config(void)
{
	char home[96], xdg[96], path[256], tokfile[256], hf_home_default[160];

	snprintf(home, sizeof(home), "%s/home", tmpdir);
	snprintf(xdg, sizeof(xdg), "%s/xdg", tmpdir);
	ASSERT_OK(mkdir(home, 0700));
	ASSERT_OK(mkdir(xdg, 0700));
	snprintf(path, sizeof(path), "%s/huggingface", xdg);
	ASSERT_OK(mkdir(path, 0700));
	snprintf(path, sizeof(path), "%s/.cache", home);
	ASSERT_OK(mkdir(path, 0700));
	snprintf(hf_home_default, sizeof(hf_home_default), "%s/.cache/huggingface", home);
	ASSERT_OK(mkdir(hf_home_default, 0700));

	env_clear();
	setenv("HOME", home, 1);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, NULL, NULL, false, 10);
	config_case("http://127.0.0.1:8080///", "http://127.0.0.1:8080", NULL, NULL, false, 10);
	setenv("HF_ENDPOINT", "https://mirror.example/", 1);
	config_case(NULL, "https://mirror.example", NULL, NULL, false, 10);
	config_case("http://override", "http://override", NULL, NULL, false, 10);
	unsetenv("HF_ENDPOINT");
	setenv("HUGGINGFACE_CO_STAGING", "1", 1);
	config_case(NULL, HUB_STAGING_ENDPOINT, NULL, NULL, false, 10);
	unsetenv("HUGGINGFACE_CO_STAGING");

	/* ~/.cache/huggingface/token, ~ from HOME */
	snprintf(tokfile, sizeof(tokfile), "%s/token", hf_home_default);
	write_file(tokfile, "  hf_home_default \r\n");
	config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_home_default", tokfile, false, 10);
	/* XDG_CACHE_HOME moves HF_HOME */
	setenv("XDG_CACHE_HOME", xdg, 1);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, NULL, NULL, false, 10);
	snprintf(tokfile, sizeof(tokfile), "%s/huggingface/token", xdg);
	write_file(tokfile, "hf_x\ndg\n");
	config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_xdg", tokfile, false, 10);
	/* HF_HOME with $VAR and ~ expanded */
	setenv("HFFS_TEST_DIR", tmpdir, 1);
	setenv("HF_HOME", "${HFFS_TEST_DIR}/hfhome", 1);
	snprintf(path, sizeof(path), "%s/hfhome", tmpdir);
	ASSERT_OK(mkdir(path, 0700));
	snprintf(tokfile, sizeof(tokfile), "%s/hfhome/token", tmpdir);
	write_file(tokfile, "hf_from_hf_home");
	config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_from_hf_home", tokfile, false, 10);
	setenv("HF_HOME", "~/.cache/huggingface", 1);
	snprintf(tokfile, sizeof(tokfile), "%s/token", hf_home_default);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_home_default", tokfile, false, 10);
	setenv("HF_HOME", "$HFFS_TEST_DIR/hfhome", 1);
	/* HF_TOKEN_PATH beats HF_HOME/token */
	snprintf(path, sizeof(path), "%s/tokpath", tmpdir);
	write_file(path, "hf_tokpath");
	setenv("HF_TOKEN_PATH", "$HFFS_TEST_DIR/tokpath", 1);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_tokpath", path, false, 10);
	/* an unknown variable stays as written */
	snprintf(path, sizeof(path), "%s/$HFFS_UNSET_VAR", tmpdir);
	ASSERT_OK(mkdir(path, 0700));
	snprintf(path, sizeof(path), "%s/$HFFS_UNSET_VAR/tok", tmpdir);
	write_file(path, "hf_literal");
	setenv("HF_TOKEN_PATH", path, 1);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_literal", path, false, 10);
	/* a missing or blank file: no token */
	setenv("HF_TOKEN_PATH", "/nonexistent/token", 1);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, NULL, NULL, false, 10);
	snprintf(path, sizeof(path), "%s/blank", tmpdir);
	write_file(path, " \r\n\t\n");
	setenv("HF_TOKEN_PATH", path, 1);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, NULL, NULL, false, 10);
	/* the variables beat the file, HF_TOKEN first; blank values count as unset */
	setenv("HUGGING_FACE_HUB_TOKEN", " hf_legacy ", 1);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_legacy", "HUGGING_FACE_HUB_TOKEN", false, 10);
	setenv("HF_TOKEN", "\thf_env\r\n", 1);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_env", "HF_TOKEN", false, 10);
	setenv("HF_TOKEN", "  \r\n", 1);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_legacy", "HUGGING_FACE_HUB_TOKEN", false, 10);
	setenv("HF_TOKEN", "hf_env", 1);
	/* no implicit token */
	setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "yes", 1);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, NULL, NULL, false, 10);
	setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "0", 1);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_env", "HF_TOKEN", false, 10);

	/* offline: 1, ON, yes, TRUE in any case; anything else is false */
	static const char *const on[] = { "1", "ON", "yes", "TRUE", "True" };
	static const char *const off[] = { "0", "off", "no", "", "2", "enabled" };

	for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
		setenv("HF_HUB_OFFLINE", on[i], 1);
		config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_env", "HF_TOKEN", true, 10);
	}
	for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
		setenv("HF_HUB_OFFLINE", off[i], 1);
		config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_env", "HF_TOKEN", false, 10);
	}
	unsetenv("HF_HUB_OFFLINE");
	setenv("TRANSFORMERS_OFFLINE", "1", 1);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_env", "HF_TOKEN", true, 10);
	unsetenv("TRANSFORMERS_OFFLINE");
	/* HF_HUB_DISABLE_XET, read as the official client's booleans */
	{
		struct hub_config cfg;

		setenv("HF_HUB_DISABLE_XET", "1", 1);
		ASSERT_OK(hub_config_init(&cfg, NULL));
		ASSERT_TRUE(cfg.disable_xet);
		hub_config_done(&cfg);
		setenv("HF_HUB_DISABLE_XET", "0", 1);
		ASSERT_OK(hub_config_init(&cfg, NULL));
		ASSERT_FALSE(cfg.disable_xet);
		hub_config_done(&cfg);
		unsetenv("HF_HUB_DISABLE_XET");
	}

	/* HF_HUB_ETAG_TIMEOUT: 0, junk and unset mean 10 */
	setenv("HF_HUB_ETAG_TIMEOUT", "42", 1);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_env", "HF_TOKEN", false, 42);
	setenv("HF_HUB_ETAG_TIMEOUT", "0", 1);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_env", "HF_TOKEN", false, 10);
	setenv("HF_HUB_ETAG_TIMEOUT", "soon", 1);
	config_case(NULL, HUB_DEFAULT_ENDPOINT, "hf_env", "HF_TOKEN", false, 10);
	env_clear();
}

/* ---- trees ---- */

static void test_tree_validate(void)
{
	char long_seg[300], long_path[4200];
	static const struct {
		const char *path;
		bool dir;
		const char *oid, *sha256, *why;
	} bad[] = {
		{ "../etc/passwd", false, SHA1_A, NULL, "'..'" },
		{ "a/..", false, SHA1_A, NULL, "'..'" },
		{ "a/./b", false, SHA1_A, NULL, "'.'" },
		{ ".", true, SHA1_A, NULL, "'.'" },
		{ "/abs", false, SHA1_A, NULL, "absolute" },
		{ "a//b", false, SHA1_A, NULL, "empty segment" },
		{ "dir/", true, SHA1_A, NULL, "empty segment" },
		{ "", false, SHA1_A, NULL, "empty path" },
		{ "a\\b", false, SHA1_A, NULL, "backslash" },
		{ "a\x01"
		  "b",
		  false, SHA1_A, NULL, "control" },
		{ "tab\there", false, SHA1_A, NULL, "control" },
		{ "del\x7f", false, SHA1_A, NULL, "control" },
		{ "new\nline", false, SHA1_A, NULL, "control" },
		{ "noid", false, "", NULL, "40 hex" },
		{ "upper", false, "0123456789ABCDEF0123456789ABCDEF01234567", NULL, "40 hex" },
		{ "shortsha", false, SHA1_A, "e3b0c442", "sha256" },
		{ "badsha", false, SHA1_A,
		  "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "sha256" },
		{ "baddir", true, "zz", NULL, "40 hex" },
	};
	struct hub_tree t = { 0 };
	struct hub_error err;

	/* a sane tree: nested dirs, implied parents, odd but legal names */
	fixture_tree_push(&t, "config.json", false, 1, SHA1_A, NULL);
	fixture_tree_push(&t, "sub", true, 1, SHA1_B, NULL);
	fixture_tree_push(&t, "sub/deeper", true, 1, "", NULL);
	fixture_tree_push(&t, "sub/deeper/w.safetensors", false, 1, SHA1_B, SHA256_A);
	fixture_tree_push(&t, "implied/parent/file", false, 1, SHA1_A, NULL);
	fixture_tree_push(&t, "caf\xc3\xa9 #?%+ .txt", false, 1, SHA1_A, NULL);
	fixture_tree_push(&t, "..hidden...", false, 1, SHA1_A, NULL);
	fixture_tree_push(&t, "sub.txt", false, 1, SHA1_A, NULL);
	ASSERT_OK(hub_tree_validate(&t, &err));

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = t.n;

		fixture_tree_push(&t, bad[i].path, bad[i].dir, 1, bad[i].oid, bad[i].sha256);
		memset(&err, 0, sizeof(err));
		if (hub_tree_validate(&t, &err) != -EBADMSG)
			CHECK_FAIL("entry %zu accepted", i);
		ASSERT_CONTAINS(err.message, "unsafe path '");
		ASSERT_CONTAINS(err.message, bad[i].why);
		ASSERT_TRUE(strchr(err.message, '\n') == NULL &&
			    strchr(err.message, '\x01') == NULL);
		ASSERT_EQ(err.reason, FETCH_PROTOCOL);
		hub_tree_truncate(&t, n);
	}

	memset(long_seg, 'x', 256);
	long_seg[256] = '\0';
	fixture_tree_push(&t, long_seg, false, 1, SHA1_A, NULL);
	ASSERT_EQ(hub_tree_validate(&t, &err), -EBADMSG);
	ASSERT_CONTAINS(err.message, "255");
	hub_tree_truncate(&t, t.n - 1);
	long_seg[255] = '\0';
	fixture_tree_push(&t, long_seg, false, 1, SHA1_A, NULL);
	ASSERT_OK(hub_tree_validate(&t, &err));
	hub_tree_truncate(&t, t.n - 1);
	for (size_t i = 0; i < 4100; i++)
		long_path[i] = i % 100 == 99 ? '/' : 'p';
	long_path[4100] = '\0';
	fixture_tree_push(&t, long_path, false, 1, SHA1_A, NULL);
	ASSERT_EQ(hub_tree_validate(&t, &err), -EBADMSG);
	hub_tree_truncate(&t, t.n - 1);

	/* duplicates, a file and a directory of one path, a file under a file */
	fixture_tree_push(&t, "config.json", false, 1, SHA1_B, NULL);
	ASSERT_EQ(hub_tree_validate(&t, &err), -EBADMSG);
	ASSERT_CONTAINS(err.message, "'config.json' (listed twice)");
	hub_tree_truncate(&t, t.n - 1);
	fixture_tree_push(&t, "config.json", true, 1, SHA1_B, NULL);
	ASSERT_EQ(hub_tree_validate(&t, &err), -EBADMSG);
	hub_tree_truncate(&t, t.n - 1);
	fixture_tree_push(&t, "config.json/x", false, 1, SHA1_B, NULL);
	ASSERT_EQ(hub_tree_validate(&t, &err), -EBADMSG);
	ASSERT_CONTAINS(err.message, "'config.json/x' (its parent is a file)");
	hub_tree_truncate(&t, t.n - 1);
	fixture_tree_push(&t, "sub/deeper/w.safetensors/y/z", true, 1, "", NULL);
	ASSERT_EQ(hub_tree_validate(&t, &err), -EBADMSG);
	hub_tree_truncate(&t, t.n - 1);
	ASSERT_OK(hub_tree_validate(&t, &err));

	ASSERT_STR_EQ(hub_entry_cid(&t.v[0]), SHA1_A);
	ASSERT_STR_EQ(hub_entry_cid(&t.v[3]), SHA256_A);
	hub_tree_done(&t);
	ASSERT_OK(hub_tree_validate(&t, &err)); /* empty */
}

static void test_resolve_url(void)
{
	struct hub_config cfg = { .endpoint = (char *)"https://hub.example.org" };
	struct hub_repo repo;
	struct hub_error err;
	char *url;

	ASSERT_OK(hub_repo_parse("org/m", &repo, &err));
	url = hub_resolve_url(&cfg, &repo, COMMIT, "dir/a b#?%+/caf\xc3\xa9.bin");
	ASSERT_STR_EQ(url, "https://hub.example.org/org/m/resolve/" COMMIT
			   "/dir/a%20b%23%3F%25%2B/caf%C3%A9.bin");
	free(url);
	ASSERT_OK(hub_repo_parse("datasets/org/d", &repo, &err));
	url = hub_resolve_url(&cfg, &repo, COMMIT, "x");
	ASSERT_STR_EQ(url, "https://hub.example.org/datasets/org/d/resolve/" COMMIT "/x");
	free(url);
	ASSERT_OK(hub_repo_parse("spaces/gpt2", &repo, &err));
	url = hub_resolve_url(&cfg, &repo, COMMIT, "x");
	ASSERT_STR_EQ(url, "https://hub.example.org/spaces/gpt2/resolve/" COMMIT "/x");
	free(url);
}

static void error_case(long status, const char *code, const char *xmsg, const char *body,
		       const char *rid, enum fetch_reason want, const char *words)
{
	struct http_response r = {
		.status = status,
		.x_error_code = (char *)code,
		.x_error_message = (char *)xmsg,
		.body = (char *)(body ? body : ""),
		.body_len = body ? strlen(body) : 0,
		.x_request_id = (char *)rid,
		.effective_url = (char *)"http://127.0.0.1:8080/api/models/org/m/revision/main",
	};
	struct hub_error err;

	hub_reply_words(&r, "repo 'org/m'", &err);
	ASSERT_EQ(err.reason, want);
	ASSERT_EQ(err.status, status);
	ASSERT_CONTAINS(err.message, words);
	ASSERT_TRUE(strchr(err.message, '\n') == NULL);
}

static void test_error_from_response(void)
{
	error_case(401, "RepoNotFound", NULL, NULL, NULL, FETCH_NOT_FOUND,
		   "repo 'org/m' not found, or private and no token was sent (HTTP 401 "
		   "RepoNotFound); set HF_TOKEN or log in");
	error_case(404, "RepoNotFound", "Repository not found", NULL, NULL, FETCH_NOT_FOUND,
		   "repo 'org/m' not found (HTTP 404 RepoNotFound: Repository not found)");
	error_case(403, "GatedRepo", NULL, NULL, NULL, FETCH_GATED,
		   "repo 'org/m' is gated: request access on its page, then use a token of an "
		   "approved account (HTTP 403 GatedRepo)");
	error_case(401, "GatedRepo", NULL, NULL, NULL, FETCH_GATED, "is gated");
	error_case(404, "RevisionNotFound", NULL, NULL, NULL, FETCH_NO_REVISION, "revision");
	error_case(401, NULL, "Invalid credentials in Authorization header", NULL, NULL,
		   FETCH_TOKEN, "token");
	error_case(403, NULL, NULL, "{\"error\":\"Access to this resource is disabled.\"}", NULL,
		   FETCH_FORBIDDEN, "forbidden (HTTP 403: Access to this resource is disabled.)");
	error_case(503, NULL, NULL, "<html>bad gateway</html>", "abc", FETCH_SERVER,
		   "HTTP 503 from 127.0.0.1:8080 for repo 'org/m' (X-Request-Id abc)");
	error_case(429, NULL, NULL, NULL, NULL, FETCH_RATE_LIMITED, "rate limited by 127.0.0.1");
	error_case(400, NULL, "line one\r\nline two", NULL, NULL, FETCH_PROTOCOL,
		   "HTTP 400: line one  line two");
}

/* ---- against a fake Hub ---- */

static struct minihttp hub, other;
static char endpoint[64];

/* 200 with a JSON body (the handler's static buffer; one reply at a time). */
static void reply_json(struct mh_reply *rep, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void reply_json(struct mh_reply *rep, const char *fmt, ...)
{
	static char body[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	rep->body = body;
	mh_header(rep, "Content-Type: application/json");
}

static void reply_error(struct mh_reply *rep, int status, const char *code, const char *msg)
{
	rep->status = status;
	if (code)
		mh_header(rep, "X-Error-Code: %s", code);
	if (msg) {
		mh_header(rep, "X-Error-Message: %s", msg);
		reply_json(rep, "{\"error\":\"%s\"}", msg);
	}
}

#define ENTRY(p) "{\"type\":\"file\",\"oid\":\"" SHA1_A "\",\"size\":3,\"path\":\"" p "\"}"

static void hub_revision(const struct mh_request *req, struct mh_reply *rep, const char *repo,
			 const char *rev)
{
	bool good = !strcmp(req->authorization, "Bearer " TOKEN);
	bool any = req->authorization[0];

	if (!strcmp(repo, "org/renamed")) {
		rep->status = 307;
		mh_header(rep, "Location: /api/models/org/model/revision/%s", rev);
	} else if (!strcmp(repo, "org/private") && !any) {
		reply_error(rep, 401, "RepoNotFound", "Invalid username or password.");
	} else if (any && !good) {
		reply_error(rep, 401, NULL, "Invalid credentials in Authorization header");
	} else if (!strcmp(repo, "org/gated")) {
		reply_error(rep, any ? 403 : 401, "GatedRepo", "Access to this repo is restricted");
	} else if (!strcmp(repo, "org/down")) {
		rep->status = 503;
		mh_header(rep, "X-Request-Id: abc");
	} else if (!strcmp(repo, "org/badjson")) {
		reply_json(rep, "{\"sha\":\"HEAD\"}");
	} else if (strcmp(repo, "org/model") && strcmp(repo, "org/private")) {
		reply_error(rep, any ? 404 : 401, "RepoNotFound", NULL);
	} else if (!strcmp(rev, "main") || !strcmp(rev, "refs%2Fpr%2F1") || !strcmp(rev, COMMIT)) {
		reply_json(rep, "{\"id\":\"%s\",\"sha\":\"%s\"}", repo, COMMIT);
	} else {
		reply_error(rep, 404, "RevisionNotFound", "Invalid rev id");
	}
}

/* Tree pages of repo org/model, chosen by the query's cursor. The first page of COMMIT links
 * to p2; the first page of any other "commit" (a scenario name) links to the cursor of that
 * name. */
static void hub_tree(const struct mh_request *req, struct mh_reply *rep, const char *commit,
		     const char *query)
{
	static int flaky_503, flaky_429;
	const char *cursor = strstr(query, "cursor=");
	char base[1280];

	snprintf(base, sizeof(base),
		 "http://127.0.0.1:%d/api/models/org/model/tree/%s?recursive=true&expand=false"
		 "&limit=2",
		 req->port, commit);
	if (!cursor && !strcmp(commit, "firstdown")) {
		rep->status = 503;
		mh_header(rep, "Retry-After: 0");
		mh_header(rep, "X-Request-Id: first-page");
		return;
	}
	if (!cursor) {
		mh_header(rep, "Link: <%s&cursor=%s>; rel=\"next\"", base,
			  strcmp(commit, COMMIT) ? commit : "p2");
		reply_json(rep, "[" ENTRY("a") "," ENTRY("b") "]");
		return;
	}
	cursor += 7;
	if (!strcmp(cursor, "p2")) {
		mh_header(rep,
			  "Link: <%s&cursor=first>; rel=\"prev\", <%s&cursor=p3>; rel=\"next\"",
			  base, base);
		reply_json(rep, "[" ENTRY("c") ",{\"type\":\"directory\",\"oid\":\"" SHA1_B
					       "\",\"size\":0,\"path\":\"d\"}]");
	} else if (!strcmp(cursor, "p3")) {
		reply_json(rep, "[" ENTRY("d/e") "]");
	} else if (!strcmp(cursor, "other")) {
		/* the next page lives on another origin */
		mh_header(rep, "Link: <http://127.0.0.1:%d/page?cursor=x>; rel=\"next\"",
			  other.port);
		reply_json(rep, "[" ENTRY("o1") "]");
	} else if (!strcmp(cursor, "loop")) {
		mh_header(rep, "Link: <%s&cursor=loop>; rel=\"next\"", base);
		reply_json(rep, "[]");
	} else if (!strcmp(cursor, "relative")) {
		mh_header(rep, "Link: </api/models/org/model/tree/x?cursor=p3>; rel=\"next\"");
		reply_json(rep, "[" ENTRY("r") "]");
	} else if (!strcmp(cursor, "bad")) {
		reply_json(rep, "[" ENTRY("z") ",{\"type\":\"file\"}]");
	} else if (!strcmp(cursor, "flaky503")) {
		if (flaky_503++ == 0) {
			rep->status = 503;
			mh_header(rep, "Retry-After: 0");
			return;
		}
		reply_json(rep, "[" ENTRY("after503") "]");
	} else if (!strcmp(cursor, "flaky429")) {
		if (flaky_429++ == 0) {
			rep->status = 429;
			mh_header(rep, "RateLimit: \"api\";r=0;t=0");
			return;
		}
		reply_json(rep, "[" ENTRY("after429") "]");
	} else {
		rep->status = 400;
	}
}

/* Resolve URLs (HUB_PROTOCOL.md 4.1): org/model answers a relative 307 to the resolve cache,
 * org/gated refuses anonymous (401) and unapproved (403) callers. False for other paths. */
static bool hub_resolve(const struct mh_request *req, struct mh_reply *rep, const char *path)
{
	static const char model[] = "/org/model/resolve/", gated[] = "/org/gated/resolve/";

	if (!strncmp(path, model, strlen(model))) {
		rep->status = 307;
		mh_header(rep, "Location: /api/resolve-cache/models/org/model/%s?etag=x",
			  path + strlen(model));
	} else if (!strncmp(path, "/api/resolve-cache/", 19)) {
		mh_header(rep, "X-Repo-Commit: " COMMIT);
		mh_header(rep, "ETag: \"" SHA1_A "\"");
		rep->body = "abc";
	} else if (!strncmp(path, gated, strlen(gated))) {
		rep->status = req->authorization[0] ? 403 : 401;
		mh_header(rep, "X-Error-Code: GatedRepo");
		mh_header(rep, "X-Error-Message: Access to model org/gated is restricted.");
	} else {
		return false;
	}
	return true;
}

static void hub_handler(const struct mh_request *req, struct mh_reply *rep)
{
	char path[4096], repo[256], what[64], rest[1024];
	const char *query;

	snprintf(path, sizeof(path), "%s", req->target);
	query = strchr(req->target, '?');
	path[strcspn(path, "?")] = '\0';
	if (hub_resolve(req, rep, path))
		return;
	/* /api/models/<ns>/<name>/<what>/<rest> */
	if (sscanf(path, "/api/models/%255[^/]/%*[^/]/%63[^/]/%1023s", repo, what, rest) == 3) {
		const char *name = path + strlen("/api/models/") + strlen(repo) + 1;

		snprintf(repo + strlen(repo), sizeof(repo) - strlen(repo), "/%.*s",
			 (int)strcspn(name, "/"), name);
		if (!strcmp(what, "revision")) {
			hub_revision(req, rep, repo, rest);
			return;
		}
		if (!strcmp(what, "tree") && !strcmp(repo, "org/model")) {
			hub_tree(req, rep, rest, query ? query : "");
			return;
		}
		if (!strcmp(what, "tree") && !strcmp(repo, "org/renamed")) {
			rep->status = 307;
			mh_header(rep, "Location: /api/models/org/model/tree/%s%s", rest,
				  query ? query : "");
			return;
		}
	}
	rep->status = 404;
}

static void other_handler(const struct mh_request *req, struct mh_reply *rep)
{
	(void)req;
	reply_json(rep, "[" ENTRY("o2") "]");
}

static void hub_cfg(struct hub_config *cfg, const char *token)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->endpoint = endpoint;
	cfg->token = (char *)token;
	cfg->token_source = (char *)"HF_TOKEN";
	cfg->user_agent = (char *)"hffs/test";
	cfg->timeout_s = 5;
}

static int resolve(const char *spec, const char *token, const char *rev, char *commit,
		   struct hub_error *err)
{
	struct hub_config cfg;
	struct hub_repo repo;
	struct hub_repo_info info;
	int r;

	hub_cfg(&cfg, token);
	ASSERT_OK(hub_repo_parse(spec, &repo, err));
	memset(err, 0, sizeof(*err));
	r = hub_repo_info(&cfg, &repo, rev, &info, err);
	if (r >= 0)
		memcpy(commit, info.commit, sizeof(info.commit));
	return r;
}

static void test_resolve_revision(void)
{
	struct hub_error err;
	char commit[41];

	minihttp_clear(&hub);
	ASSERT_OK(resolve("org/model", TOKEN, "main", commit, &err));
	ASSERT_STR_EQ(commit, COMMIT);
	ASSERT_EQ(minihttp_count(&hub, "GET /api/models/org/model/revision/main auth=Bearer " TOKEN
				       " ua=hffs/test ae=identity"),
		  1);
	/* refs/pr/1 travels as one segment; a full sha is still asked */
	ASSERT_OK(resolve("org/model", NULL, "refs/pr/1", commit, &err));
	ASSERT_EQ(minihttp_count(&hub, "GET /api/models/org/model/revision/refs%2Fpr%2F1 auth=-"),
		  1);
	ASSERT_OK(resolve("org/model", NULL, COMMIT, commit, &err));
	ASSERT_EQ(minihttp_count(&hub, "revision/" COMMIT), 1);
	/* a renamed repo: relative 307, followed with the token */
	minihttp_clear(&hub);
	ASSERT_OK(resolve("org/renamed", TOKEN, "main", commit, &err));
	ASSERT_STR_EQ(commit, COMMIT);
	ASSERT_EQ(minihttp_count(&hub,
				 "GET /api/models/org/renamed/revision/main auth=Bearer " TOKEN),
		  1);
	ASSERT_EQ(
		minihttp_count(&hub, "GET /api/models/org/model/revision/main auth=Bearer " TOKEN),
		1);

	/* refusals in words, with the errno that picks the caller's next step */
	ASSERT_EQ(resolve("org/private", NULL, "main", commit, &err), -ENOENT);
	ASSERT_EQ(err.reason, FETCH_NOT_FOUND);
	ASSERT_CONTAINS(err.message, "repo 'org/private' not found, or private and no token was "
				     "sent (HTTP 401 RepoNotFound");
	ASSERT_CONTAINS(err.message, "set HF_TOKEN or log in");
	ASSERT_OK(resolve("org/private", TOKEN, "main", commit, &err));
	ASSERT_EQ(resolve("org/private", "hf_wrong", "main", commit, &err), -EACCES);
	ASSERT_EQ(err.reason, FETCH_TOKEN);
	ASSERT_CONTAINS(err.message, "the token from HF_TOKEN was rejected (HTTP 401: Invalid "
				     "credentials in Authorization header)");
	ASSERT_EQ(resolve("org/gated", TOKEN, "main", commit, &err), -EACCES);
	ASSERT_EQ(err.reason, FETCH_GATED);
	ASSERT_CONTAINS(err.message, "repo 'org/gated' is gated: request access on its page");
	ASSERT_CONTAINS(err.message, "(HTTP 403 GatedRepo");
	ASSERT_EQ(resolve("org/gated", NULL, "main", commit, &err), -EACCES);
	ASSERT_CONTAINS(err.message, "HTTP 401 GatedRepo");
	ASSERT_EQ(resolve("org/model", TOKEN, "v9", commit, &err), -ENOENT);
	ASSERT_EQ(err.reason, FETCH_NO_REVISION);
	ASSERT_CONTAINS(err.message, "revision 'v9' not found in repo 'org/model' (HTTP 404 "
				     "RevisionNotFound");
	ASSERT_EQ(resolve("org/absent", TOKEN, "main", commit, &err), -ENOENT);
	ASSERT_CONTAINS(err.message, "repo 'org/absent' not found");
	ASSERT_EQ(resolve("org/down", TOKEN, "main", commit, &err), -EAGAIN);
	ASSERT_EQ(err.reason, FETCH_SERVER);
	{
		char want[128];

		snprintf(want, sizeof(want), "HTTP 503 from 127.0.0.1:%d", hub.port);
		ASSERT_CONTAINS(err.message, want);
		ASSERT_CONTAINS(err.message, "(X-Request-Id abc)");
	}
	ASSERT_EQ(resolve("org/badjson", TOKEN, "main", commit, &err), -EBADMSG);
	ASSERT_EQ(err.reason, FETCH_PROTOCOL);
	ASSERT_CONTAINS(err.message, "sha");

	/* offline: nothing is asked */
	{
		struct hub_config cfg;
		struct hub_repo repo;
		struct hub_repo_info info;

		hub_cfg(&cfg, TOKEN);
		cfg.offline = true;
		ASSERT_OK(hub_repo_parse("org/model", &repo, &err));
		minihttp_clear(&hub);
		ASSERT_EQ(hub_repo_info(&cfg, &repo, "main", &info, &err), -ENETDOWN);
		ASSERT_EQ(err.reason, FETCH_OFFLINE);
		ASSERT_EQ(minihttp_count(&hub, "GET"), 0);
	}
}

static int list_tree(const char *spec, const char *commit, struct hub_tree *t,
		     struct hub_error *err)
{
	struct hub_config cfg;
	struct hub_repo repo;

	hub_cfg(&cfg, TOKEN);
	ASSERT_OK(hub_repo_parse(spec, &repo, err));
	memset(err, 0, sizeof(*err));
	return hub_list_tree(&cfg, &repo, commit, 2, t, err);
}

/* A listing whose first page links to the page of cursor (a scenario of hub_tree()). */
static int list_via(const char *cursor, struct hub_tree *t, struct hub_error *err)
{
	return list_tree("org/model", cursor, t, err);
}

static void expect_paths(const struct hub_tree *t, const char *const *paths, size_t n)
{
	ASSERT_EQ(t->n, n);
	for (size_t i = 0; i < n; i++)
		ASSERT_STR_EQ(t->v[i].path, paths[i]);
}

static void test_list_tree(void)
{
	static const char *const all[] = { "a", "b", "c", "d", "d/e" };
	struct hub_tree t = { 0 };
	struct hub_error err;

	minihttp_clear(&hub);
	ASSERT_OK(list_tree("org/model", COMMIT, &t, &err));
	expect_paths(&t, all, 5);
	ASSERT_TRUE(t.v[3].is_dir);
	ASSERT_OK(hub_tree_validate(&t, &err));
	/* three pages, each with the token (same origin), the Link URL taken verbatim */
	ASSERT_EQ(minihttp_count(&hub, "GET /api/models/org/model/tree/" COMMIT
				       "?recursive=true&expand=false&limit=2 auth=Bearer " TOKEN),
		  1);
	ASSERT_EQ(minihttp_count(&hub, "&limit=2&cursor=p2 auth=Bearer " TOKEN), 1);
	ASSERT_EQ(minihttp_count(&hub, "&limit=2&cursor=p3 auth=Bearer " TOKEN), 1);
	ASSERT_EQ(minihttp_count(&hub, "cursor=first"), 0);
	hub_tree_done(&t);

	/* a renamed repo's tree: relative 307 */
	ASSERT_OK(list_tree("org/renamed", COMMIT, &t, &err));
	expect_paths(&t, all, 5);
	hub_tree_done(&t);

	/* a page on another origin gets no token */
	minihttp_clear(&other);
	ASSERT_OK(list_via("other", &t, &err));
	ASSERT_EQ(t.n, 4);
	ASSERT_STR_EQ(t.v[2].path, "o1");
	ASSERT_STR_EQ(t.v[3].path, "o2");
	ASSERT_EQ(minihttp_count(&other, "GET /page?cursor=x auth=- "), 1);
	hub_tree_done(&t);

	/* later pages are retried: 503 + Retry-After 0, then 429 + RateLimit r=0;t=0 */
	ASSERT_OK(list_via("flaky503", &t, &err));
	ASSERT_STR_EQ(t.v[t.n - 1].path, "after503");
	hub_tree_done(&t);
	ASSERT_OK(list_via("flaky429", &t, &err));
	ASSERT_STR_EQ(t.v[t.n - 1].path, "after429");
	hub_tree_done(&t);

	/* the first page fails fast: no retry */
	minihttp_clear(&hub);
	ASSERT_EQ(list_via("firstdown", &t, &err), -EAGAIN);
	ASSERT_EQ(err.reason, FETCH_SERVER);
	ASSERT_CONTAINS(err.message, "HTTP 503 from 127.0.0.1");
	ASSERT_CONTAINS(err.message, "(X-Request-Id first-page)");
	ASSERT_EQ(minihttp_count(&hub, "tree/firstdown"), 1);

	/* failures leave the tree as it was */
	fixture_tree_push(&t, "keep", false, 1, SHA1_A, NULL);
	ASSERT_EQ(list_via("loop", &t, &err), -EBADMSG);
	ASSERT_CONTAINS(err.message, "loops");
	ASSERT_EQ(t.n, 1);
	ASSERT_EQ(list_via("relative", &t, &err), -EBADMSG);
	ASSERT_CONTAINS(err.message, "absolute");
	ASSERT_EQ(list_via("bad", &t, &err), -EBADMSG);
	ASSERT_CONTAINS(err.message, "malformed page 2");
	ASSERT_EQ(t.n, 1);
	ASSERT_STR_EQ(t.v[0].path, "keep");
	hub_tree_done(&t);
}

static void test_check_access(void)
{
	struct hub_config cfg;
	struct hub_repo repo;
	struct hub_error err;

	hub_cfg(&cfg, TOKEN);
	ASSERT_OK(hub_repo_parse("org/model", &repo, &err));
	minihttp_clear(&hub);
	ASSERT_OK(hub_check_access(&cfg, &repo, COMMIT, "dir/a b.txt", &err));
	ASSERT_EQ(minihttp_count(&hub, "HEAD /org/model/resolve/" COMMIT
				       "/dir/a%20b.txt auth=Bearer " TOKEN),
		  1);
	ASSERT_EQ(minihttp_count(&hub, "HEAD /api/resolve-cache/models/org/model/" COMMIT
				       "/dir/a%20b.txt?etag=x auth=Bearer " TOKEN),
		  1);
	ASSERT_OK(hub_repo_parse("org/gated", &repo, &err));
	ASSERT_EQ(hub_check_access(&cfg, &repo, COMMIT, "config.json", &err), -EACCES);
	ASSERT_EQ(err.reason, FETCH_GATED);
	ASSERT_CONTAINS(err.message, "repo 'org/gated' is gated: request access on its page");
	ASSERT_CONTAINS(err.message,
			"(HTTP 403 GatedRepo: Access to model org/gated is restricted.)");
	hub_cfg(&cfg, NULL);
	ASSERT_EQ(hub_check_access(&cfg, &repo, COMMIT, "config.json", &err), -EACCES);
	ASSERT_CONTAINS(err.message, "HTTP 401 GatedRepo");
	cfg.offline = true;
	ASSERT_EQ(hub_check_access(&cfg, &repo, COMMIT, "config.json", &err), -ENETDOWN);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_hub.XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(tmpdir));
	RUN(test_repo_parse);
	RUN(test_config);
	RUN(test_tree_validate);
	RUN(test_resolve_url);
	RUN(test_error_from_response);
	minihttp_start(&other, other_handler, tmpdir);
	minihttp_start(&hub, hub_handler, tmpdir);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", hub.port);
	RUN(test_resolve_revision);
	RUN(test_list_tree);
	RUN(test_check_access);
	minihttp_stop(&hub);
	minihttp_stop(&other);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		ASSERT_EQ(system(cmd), 0);
	}
	return 0;
}
