/* cmd_pull.c: `hffs pull`: checks the arguments, runs the pull (fs/pull.h) with the
 * placement of cli/pull_place.h and the progress of cli/pull_progress.h, and says the outcome:
 * the folder it delivered into as the last line of stdout, and an exit code per kind of
 * failure (docs/cli.md). No FUSE, no daemon: all on this process. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/hf_layout.h"
#include "cli/mount_check.h"
#include "cli/pull_place.h"
#include "cli/pull_progress.h"
#include "fs/pull.h"
#include "util/cleanup.h"
#include "util/jsonw.h"
#include "util/log.h"
#include "util/parse.h"

static const char pull_usage[] =
	"Usage: hffs pull REPO [OPTIONS]\n"
	"\n"
	"Downloads REPO (org/name, name, datasets/org/name or spaces/org/name) at REV without\n"
	"mounting, with the mount's engine and cache: parallel ranges, retries, every file\n"
	"verified against its hash. A pull that was stopped resumes where it was; a file appears\n"
	"at its final path only once verified. Without --local-dir the files land in the Hugging\n"
	"Face hub cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub) as\n"
	"'hf download' leaves them, never replacing a file another client stored there; the\n"
	"last line printed is the snapshot folder.\n"
	"\n"
	"Options:\n"
	"  -r, --revision REV      branch, tag, commit or refs/pr/N (default: main)\n"
	"      --local-dir DIR     plain files in DIR instead of the hub cache\n"
	"      --include GLOB      only files matching GLOB (repeatable)\n"
	"      --exclude GLOB      not the files matching GLOB (repeatable)\n"
	"      --cache-dir DIR     hffs's cache (default: $HFFS_CACHE_DIR, else\n"
	"                          $XDG_CACHE_HOME/hffs or ~/.cache/hffs)\n"
	"      --endpoint URL      Hub endpoint (default: $HF_ENDPOINT or https://huggingface.co)\n"
	"      --connections N     parallel connections (default: 16)\n"
	"      --max-rate RATE     bandwidth cap in bytes/s, units allowed: 50M (default: none)\n"
	"      --range-align SIZE  start and end every range on a multiple of SIZE (but at\n"
	"                          EOF): a caching mirror's slice size, e.g. 1M (default: off)\n"
	"      --min-free SIZE|PCT%  keep this much of the cache's disk free (default: 5%,\n"
	"                          at most 5G); a pull that would go below fails\n"
	"      --json              progress as one JSON object per line on stdout\n"
	"  -q, --quiet             no progress; only the last line (errors still on stderr)\n"
	"  -h, --help              this text\n"
	"\n"
	"Exit status: 0 every file verified and in place; 1 other failure (network, disk);\n"
	"2 usage; 3 repo, revision or file not found; 4 token missing or invalid, gated or\n"
	"forbidden; 5 a file stayed corrupt after retries; 130 interrupted.\n";

enum {
	OPT_LOCAL_DIR = 256,
	OPT_INCLUDE,
	OPT_EXCLUDE,
	OPT_CACHE_DIR,
	OPT_ENDPOINT,
	OPT_CONNECTIONS,
	OPT_MAX_RATE,
	OPT_JSON,
	OPT_MIN_FREE,
	OPT_RANGE_ALIGN,
};

#define MAX_PATTERNS 64

enum {
	PULL_EXIT_FAILED = 1,
	PULL_EXIT_NOT_FOUND = 3,
	PULL_EXIT_ACCESS = 4,
	PULL_EXIT_CORRUPT = 5,
	PULL_EXIT_INTERRUPTED = 130,
};

static volatile int pull_stop;

static void on_signal(int sig)
{
	(void)sig;
	pull_stop = 1;
}

/* The exit code of a failure for this reason. */
static int exit_code(enum fetch_reason reason)
{
	switch (reason) {
	case FETCH_NOT_FOUND:
	case FETCH_NO_REVISION:
		return PULL_EXIT_NOT_FOUND;
	case FETCH_TOKEN:
	case FETCH_GATED:
	case FETCH_FORBIDDEN:
		return PULL_EXIT_ACCESS;
	case FETCH_BAD_HASH:
		return PULL_EXIT_CORRUPT;
	default:
		return PULL_EXIT_FAILED;
	}
}

struct pull_cli {
	struct pull_place place;
	struct pull_view view;
	bool json;
	char *root; /* the folder delivered into */
	char commit[41];
	int code; /* the exit code the files' final states say */
	const struct pull_info *info; /* the pull's, from begin() on */
};

static int on_begin(void *ud, const struct pull_info *i, const struct pull_progress *p)
{
	struct pull_cli *c = ud;
	char why[512];
	int r;

	c->info = i;
	snprintf(c->commit, sizeof(c->commit), "%s", i->commit);
	r = pull_view_init(&c->view, c->json, c->view.mode == PULL_PROGRESS_QUIET, p->nfiles);
	if (r < 0)
		return r;
	r = pull_place_begin(&c->place, i, why, sizeof(why));
	if (r < 0) {
		log_err("%s", why);
		return r;
	}
	c->root = pull_place_root(&c->place, i);
	return c->root ? 0 : -ENOMEM;
}

static int on_place(void *ud, const struct pull_info *i, struct pull_file *f, int fd)
{
	return pull_place_file(&((struct pull_cli *)ud)->place, i, f, fd);
}

/* At the end, the exit code the files say: that of the most serious failure (by number). */
static void on_progress(void *ud, const struct pull_progress *p, bool final)
{
	struct pull_cli *c = ud;
	char why[512], size[16];

	pull_view_show(&c->view, p, final);
	if (!final)
		return;
	for (size_t i = 0; i < p->nfiles; i++)
		if (p->files[i].state == PULL_FAILED)
			c->code = MAX(c->code, exit_code(p->files[i].reason));
	if (p->ndone == p->nfiles && c->info &&
	    pull_place_finish(&c->place, c->info, why, sizeof(why)) < 0) {
		log_err("%s", why);
		c->code = PULL_EXIT_FAILED;
	}
	if (p->nfailed && !c->json)
		log_err("%zu of %zu files failed (above); nothing partial is left at their place. "
			"Run the same command again to resume",
			p->nfailed, p->nfiles);
	else if (c->view.mode == PULL_PROGRESS_TTY || c->view.mode == PULL_PROGRESS_LINES)
		fprintf(stderr,
			"hffs: pull: %zu files verified, %s fetched; %u shared with the cache "
			"(reflink), %u copied, %u already in place\n",
			p->ndone, format_size(p->fetched, size, sizeof(size)), c->place.reflinked,
			c->place.copied, c->place.kept);
}

static void print_result(struct pull_cli *c, int code, const char *error)
{
	if (c->json) {
		struct jsonw w;

		jsonw_init(&w, stdout);
		jsonw_begin_object(&w, NULL);
		jsonw_string(&w, "type", "result");
		jsonw_string(&w, "state", code ? "failed" : "verified");
		jsonw_int(&w, "exit", code);
		jsonw_string(&w, "path", code ? NULL : c->root);
		jsonw_string(&w, "commit", c->commit[0] ? c->commit : NULL);
		jsonw_string(&w, "error", error);
		jsonw_end_object(&w);
	} else if (!code && c->root) {
		printf("%s\n", c->root);
	}
	fflush(stdout);
}

int cmd_pull(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "revision", required_argument, NULL, 'r' },
		{ "local-dir", required_argument, NULL, OPT_LOCAL_DIR },
		{ "include", required_argument, NULL, OPT_INCLUDE },
		{ "exclude", required_argument, NULL, OPT_EXCLUDE },
		{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
		{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
		{ "connections", required_argument, NULL, OPT_CONNECTIONS },
		{ "max-rate", required_argument, NULL, OPT_MAX_RATE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "min-free", required_argument, NULL, OPT_MIN_FREE },
		{ "range-align", required_argument, NULL, OPT_RANGE_ALIGN },
		{ "quiet", no_argument, NULL, 'q' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *include[MAX_PATTERNS], *exclude[MAX_PATTERNS];
	struct pull_opts o = { .revision = "main" };
	struct pull_cli c = { 0 };
	_cleanup_free_ char *cache_dir = NULL, *local_dir = NULL, *hub = NULL;
	const char *cache_arg = NULL, *local_arg = NULL, *min_free_arg = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	struct evict_limits budget;
	struct hub_error err;
	bool quiet = false, debug = false, new_cache;
	int ch, r, code;

	while ((ch = getopt_long(argc, argv, "r:qdh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			o.revision = optarg;
			break;
		case OPT_LOCAL_DIR:
			local_arg = optarg;
			break;
		case OPT_INCLUDE:
		case OPT_EXCLUDE:
			if ((ch == OPT_INCLUDE ? o.ninclude : o.nexclude) == MAX_PATTERNS) {
				log_err("at most %d --include and %d --exclude patterns",
					MAX_PATTERNS, MAX_PATTERNS);
				return 2;
			}
			if (ch == OPT_INCLUDE)
				include[o.ninclude++] = optarg;
			else
				exclude[o.nexclude++] = optarg;
			break;
		case OPT_CACHE_DIR:
			cache_arg = optarg;
			break;
		case OPT_ENDPOINT:
			o.endpoint = optarg;
			break;
		case OPT_CONNECTIONS:
			if (cli_connections_arg(optarg, &o.connections))
				return 2;
			break;
		case OPT_MAX_RATE:
			if (cli_max_rate_arg(optarg, &o.max_rate))
				return 2;
			break;
		case OPT_RANGE_ALIGN:
			if (cli_range_align_arg(optarg, &o.range_align))
				return 2;
			break;
		case OPT_JSON:
			c.json = true;
			break;
		case OPT_MIN_FREE:
			min_free_arg = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'h':
			fputs(pull_usage, stdout);
			return 0;
		default:
			fputs("see 'hffs pull --help'\n", stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		fputs(pull_usage, stderr);
		return 2;
	}
	o.repo = argv[optind];
	o.include = include;
	o.exclude = exclude;
	r = cli_check_repo_arg(o.repo);
	if (!r)
		r = o.endpoint ? cli_check_endpoint(o.endpoint, "--endpoint") :
				 cli_check_endpoint(secure_getenv("HF_ENDPOINT"), "HF_ENDPOINT");
	if (r)
		return r;
	cache_dir = cli_cache_dir(cache_arg);
	if (local_arg)
		local_dir = cli_abspath(local_arg);
	else
		hub = hf_layout_root();
	if (!cache_dir || (local_arg ? !local_dir : !hub)) {
		log_err("cannot determine the %s (set HOME, or pass --cache-dir and --local-dir)",
			!cache_dir ? "cache directory" : "folder to download into");
		return 1;
	}
	new_cache = access(cache_dir, F_OK) < 0;
	r = cli_mkdir_p(cache_dir);
	if (r >= 0 && new_cache && chmod(cache_dir, 0700) < 0)
		r = -errno;
	if (r < 0) {
		log_err("cannot create the cache directory '%s': %s", cache_dir, strerror(-r));
		return 1;
	}
	r = local_dir ? cli_mkdir_p(local_dir) : 0;
	if (r < 0) {
		log_err("cannot create '%s': %s", local_dir, strerror(-r));
		return 1;
	}
	r = cli_budget("--cache-max-size", NULL, min_free_arg, cache_dir, &budget);
	if (r)
		return r;
	c.place = (struct pull_place){ .local_dir = local_dir, .hub_cache = hub };
	c.view.mode = quiet ? PULL_PROGRESS_QUIET : PULL_PROGRESS_LINES;
	o.cache_dir = cache_dir;
	o.destination = local_dir ? local_dir : hub;
	o.min_free = budget.min_free;
	o.begin = on_begin;
	o.place = on_place;
	o.progress = on_progress;
	o.ud = &c;
	o.stop = &pull_stop;
	/* The engine's own lines would tear the bars: the pull says what failed, per file. */
	log_set_level(debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERR);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	r = pull_run(&o, &err);
	if (r < 0 && r != -ECANCELED) {
		code = exit_code(err.reason);
		if (!c.json)
			log_err("%s", err.message[0] ? err.message : strerror(-r));
		print_result(&c, code, err.message[0] ? err.message : strerror(-r));
	} else {
		code = r == -ECANCELED ? PULL_EXIT_INTERRUPTED : c.code;
		if (code == PULL_EXIT_INTERRUPTED && !c.json)
			log_err("interrupted; run the same command again to resume");
		print_result(&c, code, code == PULL_EXIT_INTERRUPTED ? "interrupted" : NULL);
	}
	pull_view_done(&c.view);
	free(c.root);
	return code;
}
