/* cmd_doctor.c: `hffs doctor [REPO]`: why a mount would fail or be slow, one check a line.
 * The network checks go through the calls a mount makes (hub_config_init, hub_whoami,
 * hub_repo_info, hub_list_tree, hub_check_access, hub_probe_range: the same exchange code,
 * proxy and CA handling, and words); the machine's checks are doctor.c's. */
#include "cli/cli.h"

#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli/doctor.h"
#include "cli/doctor_xet.h"
#include "cli/mount_check.h"
#include "fetch/http.h"
#include "fetch/hub.h"
#include "util/cleanup.h"
#include "util/log.h"

static const char doctor_usage[] =
	"Usage: hffs doctor [REPO] [--revision REV] [--endpoint URL] [--cache-dir DIR]\n"
	"                   [--allow-other] [--json]\n"
	"\n"
	"Says why a mount would fail or be slow: the endpoint (DNS, TCP, TLS and the CA\n"
	"bundle, the proxy), the clock, the token, and with REPO the repo (exists, private,\n"
	"gated and whether access was granted) and a short timed download through the CDN;\n"
	"then FUSE, the cache directory and its index, and mounts left dead. One line per\n"
	"check: OK, WARN or FAIL, and what to do when not OK. Exit 0 when nothing FAILs.\n"
	"\n"
	"Options:\n"
	"  -r, --revision REV      revision of REPO to check (default: main)\n"
	"      --endpoint URL      Hub endpoint (default: $HF_ENDPOINT or https://huggingface.co)\n"
	"      --cache-dir DIR     cache directory (default: as 'hffs mount')\n"
	"      --allow-other       check what 'hffs mount --allow-other' needs too\n"
	"                          (user_allow_other in /etc/fuse.conf when not root)\n"
	"      --json              one JSON object: {\"checks\": [{name, status, detail, fix}]}\n"
	"  -h, --help              this text\n";

enum {
	OPT_ENDPOINT = 256,
	OPT_CACHE_DIR,
	OPT_JSON,
	OPT_ALLOW_OTHER,
};

/* Above this the signed CDN URLs of S3 are refused (RequestTimeTooSkewed: 15 min). */
#define DOCTOR_SKEW_FAIL_S (15 * 60)
#define DOCTOR_SKEW_WARN_S 60
/* The timed ranged GET: enough to see a rate, short on any link. */
#define DOCTOR_PROBE_BYTES (4ULL << 20)

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* The proxy variable libcurl (and http_env.h for HTTP_PROXY) uses for url, or NULL; its
 * name into *ret_name. */
static const char *proxy_for(const char *url, const char **ret_name)
{
	static const char *const https_vars[] = { "https_proxy", "HTTPS_PROXY", "all_proxy",
						  "ALL_PROXY", NULL };
	static const char *const http_vars[] = { "http_proxy", "HTTP_PROXY", "all_proxy",
						 "ALL_PROXY", NULL };
	const char *const *vars = strncasecmp(url, "https://", 8) ? http_vars : https_vars;

	for (size_t i = 0; vars[i]; i++) {
		const char *v = getenv(vars[i]);

		/* urllib: an empty http_proxy hides HTTP_PROXY (http_env.h). */
		if (v && !*v && !strcmp(vars[i], "http_proxy"))
			i++;
		else if (v && *v) {
			*ret_name = vars[i];
			return v;
		}
	}
	return NULL;
}

/* getaddrinfo() of the endpoint's host, as curl asks the system resolver. false on failure
 * (then it is the report's last network line). */
static bool check_dns(struct doctor *d, const char *endpoint)
{
	char host[256], *h = host, *end;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int r;

	http_url_host(endpoint, host, sizeof(host));
	if (*h == '[') {
		h++;
		end = strchr(h, ']');
	} else {
		end = strrchr(h, ':');
	}
	if (end)
		*end = '\0';
	r = getaddrinfo(h, NULL, &hints, &ai);
	if (r) {
		doctor_add(d, "dns", DOCTOR_FAIL,
			   "check the host name (HF_ENDPOINT or --endpoint) and this machine's DNS "
			   "(/etc/resolv.conf, VPN); behind a proxy, set HTTPS_PROXY",
			   "cannot resolve '%s': %s", h, gai_strerror(r));
		return false;
	}
	char addr[64] = "";
	(void)getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof(addr), NULL, 0, NI_NUMERICHOST);
	doctor_add(d, "dns", DOCTOR_OK, NULL, "'%s' resolves to %s", h, addr);
	freeaddrinfo(ai);
	return true;
}

static void check_tls_fail(struct doctor *d, const struct hub_error *err)
{
	const char *file = env_nonempty("SSL_CERT_FILE"), *dir = env_nonempty("SSL_CERT_DIR");
	char fix[400];

	if (file || dir)
		snprintf(fix, sizeof(fix),
			 "the CA bundle in use is %s%s%s%s: point it at a bundle that holds the "
			 "certificate authority of the server (or of your proxy), or unset it",
			 file ? "SSL_CERT_FILE=" : "", file ? file : "",
			 dir ? " SSL_CERT_DIR=" : "", dir ? dir : "");
	else
		snprintf(
			fix, sizeof(fix),
			"install the system's CA certificates (apt install ca-certificates); behind "
			"a TLS-inspecting proxy, set SSL_CERT_FILE to a bundle holding its CA");
	doctor_add(d, "tls", DOCTOR_FAIL, fix, "%s", err->message);
}

static void check_clock(struct doctor *d, long long server_s)
{
	long long skew = (long long)time(NULL) - server_s;
	long long a = skew < 0 ? -skew : skew;
	const char *fix = "sync the clock (timedatectl set-ntp true, or ntpdate)";

	if (!server_s)
		doctor_add(d, "clock", DOCTOR_WARN, NULL,
			   "the endpoint sent no Date: clock skew not checked");
	else if (a > DOCTOR_SKEW_FAIL_S)
		doctor_add(d, "clock", DOCTOR_FAIL, fix,
			   "this clock is %lld s %s the Hub's: signed CDN URLs are refused", a,
			   skew > 0 ? "ahead of" : "behind");
	else if (a > DOCTOR_SKEW_WARN_S)
		doctor_add(d, "clock", DOCTOR_WARN, fix,
			   "this clock is %lld s %s the Hub's (signed CDN URLs fail beyond %d s)",
			   a, skew > 0 ? "ahead of" : "behind", DOCTOR_SKEW_FAIL_S);
	else
		doctor_add(d, "clock", DOCTOR_OK, NULL, "within %lld s of the Hub's", a);
}

/* The endpoint's route and the token, through one whoami-v2 exchange. false when the
 * endpoint cannot be reached (the repo checks are then left out). */
static bool check_endpoint(struct doctor *d, const struct hub_config *cfg)
{
	const char *pname = NULL, *proxy = proxy_for(cfg->endpoint, &pname);
	const char *no_proxy = env_nonempty("NO_PROXY") ?: env_nonempty("no_proxy");
	bool tls = strncasecmp(cfg->endpoint, "https://", 8) == 0;
	char host[256], via[300] = "";
	struct hub_whoami w;
	struct hub_error err = { 0 };
	int r;

	http_url_host(cfg->endpoint, host, sizeof(host));
	if (proxy)
		snprintf(via, sizeof(via), "%s=%s%s%s", pname, proxy, no_proxy ? ", NO_PROXY=" : "",
			 no_proxy ? no_proxy : "");
	if (!proxy && !check_dns(d, cfg->endpoint))
		return false;
	r = hub_whoami(cfg, &w, &err);
	if (r < 0 && !err.status) {
		/* Through a proxy the first connect is the proxy's: curl 7.88 cannot say so
		 * itself for a proxy it chose (http_exchange.c), but one in effect for the
		 * endpoint with no NO_PROXY is the only address tried. */
		enum fetch_reason why = err.reason;

		if (proxy && !no_proxy && (why == FETCH_CONNECT || why == FETCH_TIMEOUT))
			why = FETCH_PROXY;
		switch (why) {
		case FETCH_PROXY:
			doctor_add(
				d, "proxy", DOCTOR_FAIL,
				"check the proxy's address, or unset the variable if no proxy is "
				"needed",
				"%s: %s", via, err.message);
			return false;
		case FETCH_DNS:
			doctor_add(
				d, "dns", DOCTOR_FAIL,
				"check the host name (HF_ENDPOINT or --endpoint) and the proxy's DNS",
				"%s", err.message);
			return false;
		case FETCH_TLS:
			doctor_add(d, "tcp", DOCTOR_OK, NULL, "connected to %s", host);
			check_tls_fail(d, &err);
			return false;
		default:
			doctor_add(
				d, "tcp", DOCTOR_FAIL,
				proxy ? "check that the proxy answers and lets the endpoint "
					"through" :
					"check that the endpoint is up and that no firewall or VPN "
					"blocks it (or set HTTPS_PROXY if the network needs a proxy)",
				"%s", err.message);
			return false;
		}
	}
	if (proxy)
		doctor_add(d, "proxy", DOCTOR_OK, NULL, "%s answers", via);
	else
		doctor_add(d, "proxy", DOCTOR_OK, NULL, "none set%s%s",
			   no_proxy ? ", NO_PROXY=" : "", no_proxy ? no_proxy : "");
	doctor_add(d, "tcp", DOCTOR_OK, NULL, "connected to %s%s", host,
		   proxy ? " via the proxy" : "");
	if (tls)
		doctor_add(d, "tls", DOCTOR_OK, NULL, "certificate of %s verified (CA: %s)", host,
			   env_nonempty("SSL_CERT_FILE") ?: "the system's bundle");
	else
		doctor_add(d, "tls", DOCTOR_OK, NULL, "not used: the endpoint is http://");
	check_clock(d, w.server_date_s);
	if (r >= 0)
		doctor_add(d, "token", DOCTOR_OK, NULL, "valid: user '%s' (from %s)", w.name,
			   cfg->token_source);
	else if (!cfg->token && err.reason == FETCH_TOKEN)
		doctor_add(d, "token", DOCTOR_OK, NULL,
			   "none: anonymous, public repos only (set HF_TOKEN for private or gated "
			   "ones)");
	else if (err.reason == FETCH_TOKEN)
		doctor_add(d, "token", DOCTOR_FAIL,
			   "create a token on the Hub (Settings, Access Tokens) and put it in "
			   "HF_TOKEN or the token file ('hf auth login')",
			   "%s", err.message);
	else
		doctor_add(d, "token", DOCTOR_WARN, NULL, "not checked: %s", err.message);
	return true;
}

static const char *repo_fix(const struct hub_config *cfg, enum fetch_reason reason)
{
	switch (reason) {
	case FETCH_NOT_FOUND:
		return cfg->token ?
			       "check the repo id; if it is private, use a token of an account "
			       "that can read it" :
			       "check the repo id; if it is private, set HF_TOKEN to a token of "
			       "an account that can read it";
	case FETCH_NO_REVISION:
		return "check the revision (a branch, tag, commit or refs/pr/N of the repo)";
	case FETCH_GATED:
		return "request access on the repo's page on the Hub, then use a token of the "
		       "approved account";
	case FETCH_TOKEN:
		return "create a new token and put it in HF_TOKEN or the token file";
	default:
		return "try again later; if it lasts, see the Hub's status page";
	}
}

/* The repo at rev: exists, private, gated and access, then a timed ranged GET of its
 * largest file through the Hub's redirect. */
static void check_repo(struct doctor *d, const struct hub_config *cfg, const struct hub_repo *repo,
		       const char *rev)
{
	_cleanup_(hub_tree_done) struct hub_tree tree = { 0 };
	const struct hub_entry *small = NULL, *big = NULL, *big_lfs = NULL;
	struct hub_repo_info info;
	struct hub_error err = { 0 };
	struct hub_probe p;
	int r;

	r = hub_repo_info(cfg, repo, rev, &info, &err);
	if (r >= 0)
		r = hub_list_tree(cfg, repo, info.commit, 0, &tree, &err);
	if (r < 0) {
		doctor_add(d, "repo", DOCTOR_FAIL, repo_fix(cfg, err.reason), "%s", err.message);
		return;
	}
	doctor_add(d, "repo", DOCTOR_OK, NULL, "'%s' at '%s' is commit %.12s: %s%s, %zu entries",
		   repo->id, rev, info.commit, info.is_private ? "private" : "public",
		   info.is_gated ? ", gated" : "", tree.n);
	for (size_t i = 0; i < tree.n; i++) {
		const struct hub_entry *e = &tree.v[i];

		if (!hub_entry_has_data(e))
			continue;
		if (!small || e->size < small->size)
			small = e;
		if (!big || e->size > big->size)
			big = e;
		if (e->is_lfs && (!big_lfs || e->size > big_lfs->size))
			big_lfs = e;
	}
	if (!small) {
		doctor_add(d, "access", DOCTOR_OK, NULL, "no file holds data: nothing to read");
		return;
	}
	r = hub_check_access(cfg, repo, info.commit, small->path, &err);
	if (r < 0) {
		doctor_add(d, "access", DOCTOR_FAIL, repo_fix(cfg, err.reason), "%s", err.message);
		return;
	}
	doctor_add(d, "access", DOCTOR_OK, NULL, "%s",
		   info.is_gated ? "granted: the token's account is approved for this gated repo" :
				   "its files can be read");
	r = hub_probe_range(cfg, repo, info.commit, big->path, DOCTOR_PROBE_BYTES, &p, &err);
	if (r < 0) {
		doctor_add(d, "cdn", DOCTOR_FAIL,
			   "the Hub's file server must be reachable too: let its host through the "
			   "firewall or proxy; if the server answered an error, try again later",
			   "%s", err.message);
		return;
	}
	double secs = p.total_us > 0 ? (double)p.total_us / 1e6 : 1e-6;
	doctor_add(d, "cdn", DOCTOR_OK, NULL,
		   "%s%s: %llu bytes of '%s' in %.2f s (%.1f MiB/s), first byte after %lld ms",
		   p.host, p.redirected ? " (the Hub's redirect)" : "", p.bytes, big->path, secs,
		   (double)p.bytes / secs / (1 << 20), p.ttfb_us / 1000);
	doctor_check_xet(d, cfg, repo, info.commit, big_lfs);
}

int cmd_doctor(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "revision", required_argument, NULL, 'r' },
		{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
		{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "allow-other", no_argument, NULL, OPT_ALLOW_OTHER },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *endpoint = NULL, *cache_arg = NULL, *rev = "main";
	_cleanup_(hub_config_done) struct hub_config cfg = { 0 };
	_cleanup_free_ char *cache_dir = NULL;
	_cleanup_free_ struct doctor *d = NULL;
	struct hub_repo repo;
	struct hub_error err = { 0 };
	bool json = false, allow_other = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "r:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			rev = optarg;
			break;
		case OPT_ENDPOINT:
			endpoint = optarg;
			break;
		case OPT_CACHE_DIR:
			cache_arg = optarg;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_ALLOW_OTHER:
			allow_other = true;
			break;
		case 'h':
			fputs(doctor_usage, stdout);
			return 0;
		default:
			fputs("see 'hffs doctor --help'\n", stderr);
			return 2;
		}
	}
	if (argc - optind > 1) {
		fputs(doctor_usage, stderr);
		return 2;
	}
	if (optind < argc) {
		r = cli_check_repo_arg(argv[optind]);
		if (r)
			return r;
		if (hub_repo_parse(argv[optind], &repo, &err) < 0) {
			log_err("%s", err.message);
			return 2;
		}
	}
	r = endpoint ? cli_check_endpoint(endpoint, "--endpoint") :
		       cli_check_endpoint(secure_getenv("HF_ENDPOINT"), "HF_ENDPOINT");
	if (r)
		return r;
	d = calloc(1, sizeof(*d));
	cache_dir = cli_cache_dir(cache_arg);
	if (!d || !cache_dir || hub_config_init(&cfg, endpoint) < 0) {
		log_err("%s", d && !cache_dir ? "cannot determine the cache directory (set HOME or "
						"pass --cache-dir)" :
						"out of memory");
		return 1;
	}
	if (cfg.offline)
		doctor_add(d, "endpoint", DOCTOR_WARN, "unset HF_HUB_OFFLINE to reach the Hub",
			   "%s not checked: offline mode (HF_HUB_OFFLINE) uses the cache only",
			   cfg.endpoint);
	else if (check_endpoint(d, &cfg) && optind < argc)
		check_repo(d, &cfg, &repo, rev);
	doctor_check_fuse(d);
	if (allow_other)
		doctor_check_allow_other(d);
	doctor_check_cache(d, cache_dir);
	doctor_check_mounts(d);
	return doctor_print(d, json);
}
