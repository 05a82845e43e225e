/* cmd_cache.c: `hffs cache ls|rm|gc|verify`: the cache directory as a whole. Parses the
 * options, opens the index without creating one, loads the view (cache_view.c) and runs the
 * subcommand: cache_ls.c, cache_rm.c, cache_gc.c, cache_verify.c. None removes a blob a live
 * mount uses: the pins are the blobs of the trees of the mount records whose daemon is alive,
 * computed under the eviction lock. Single thread. */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cache/evict.h"
#include "cli/cache_gc.h"
#include "cli/cache_ls.h"
#include "cli/cache_rm.h"
#include "cli/cache_target.h"
#include "cli/cache_verify.h"
#include "cli/cache_view.h"
#include "util/cleanup.h"
#include "util/jsonw.h"
#include "util/log.h"

static const char cache_usage[] =
	"Usage: hffs cache COMMAND [ARGS] [--json] [--cache-dir DIR]\n"
	"\n"
	"Commands:\n"
	"  ls                      repos and revisions in the cache: commit, size, bytes cached\n"
	"                          (coverage), space on disk, last use\n"
	"  rm REPO[@REV]           remove a repo (or one revision) and the data no other\n"
	"                          revision uses; refused while a mount uses it\n"
	"  gc [--max-size SIZE] [--min-free SIZE|PCT%]\n"
	"                          remove orphaned data, evict least recently used data until\n"
	"                          the cache fits (never what a live mount uses), compact the index\n"
	"  verify [REPO[@REV]]     rehash complete files; drop the bad ones (fetched again later)\n"
	"\n"
	"Options:\n"
	"      --json              machine-readable output\n"
	"      --cache-dir DIR     cache directory (default: $HFFS_CACHE_DIR, else\n"
	"                          $XDG_CACHE_HOME/hffs or ~/.cache/hffs)\n"
	"  -h, --help              this text\n";

#define CACHE_OPTIONS                                                                 \
	"\nOptions:\n"                                                                \
	"      --json              machine-readable output\n"                         \
	"      --cache-dir DIR     cache directory (default: $HFFS_CACHE_DIR, else\n" \
	"                          $XDG_CACHE_HOME/hffs or ~/.cache/hffs)\n"          \
	"  -h, --help              this text\n"

/* Each subcommand's own --help. */
static const char *const sub_usage[] = {
	"Usage: hffs cache ls [--json] [--cache-dir DIR]\n"
	"\n"
	"Lists the repos and revisions in the cache: commit, size, bytes cached (coverage),\n"
	"space on disk, last use.\n" CACHE_OPTIONS,
	"Usage: hffs cache rm REPO[@REV] [--json] [--cache-dir DIR]\n"
	"\n"
	"Removes REPO (every revision, or only REV) and the data no other revision uses.\n"
	"Refused while a mount uses it.\n" CACHE_OPTIONS,
	"Usage: hffs cache gc [--max-size SIZE] [--min-free SIZE|PCT%] [--json] [--cache-dir DIR]\n"
	"\n"
	"Removes orphaned data, evicts least recently used data until the cache fits\n"
	"--max-size and leaves --min-free of its disk free (never what a live mount uses), and\n"
	"compacts the index.\n" CACHE_OPTIONS,
	"Usage: hffs cache verify [REPO[@REV]] [--json] [--cache-dir DIR]\n"
	"\n"
	"Rehashes the complete files (all, or REPO's) against their content ids; drops the\n"
	"blocks of bad ones not in use (fetched again when read), and releases files that\n"
	"failed a hash before for another fetch.\n" CACHE_OPTIONS,
};

enum {
	OPT_JSON = 256,
	OPT_CACHE_DIR,
	OPT_MAX_SIZE,
	OPT_MIN_FREE,
};

/* ---- options ---- */

struct cache_opts {
	const char *cache_arg;
	bool json;
	const char *max_size; /* gc */
	const char *min_free; /* gc */
	const char *spec; /* rm, verify: REPO[@REV] */
};

/* Parses the options of one subcommand (argv[0] is its name). Returns 0, or the exit status
 * (0 after --help, 2 for bad usage). want_spec: 1 requires REPO[@REV], -1 allows it, 0 not. */
static int parse_opts(int argc, char **argv, bool gc, int want_spec, const char *usage,
		      struct cache_opts *o, bool *ret_exit)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
		{ "max-size", required_argument, NULL, OPT_MAX_SIZE },
		{ "min-free", required_argument, NULL, OPT_MIN_FREE },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	*ret_exit = true;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_CACHE_DIR:
			o->cache_arg = optarg;
			break;
		case OPT_MAX_SIZE:
			if (!gc)
				goto bad;
			o->max_size = optarg;
			break;
		case OPT_MIN_FREE:
			if (!gc)
				goto bad;
			o->min_free = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (argc - optind > (want_spec ? 1 : 0) || (want_spec == 1 && argc - optind < 1))
		goto bad;
	if (optind < argc)
		o->spec = argv[optind];
	*ret_exit = false;
	return 0;
bad:
	fprintf(stderr, "see 'hffs cache %s --help'\n", argv[0]);
	return 2;
}

/* No index in dir: says so; --json gets an empty listing. */
static void no_cache(const char *dir, bool json, const char *what)
{
	struct jsonw w;

	if (json) {
		jsonw_init(&w, stdout);
		jsonw_begin_object(&w, NULL);
		jsonw_string(&w, "cache_dir", dir);
		jsonw_bool(&w, "index", false);
		jsonw_begin_array(&w, "repos");
		jsonw_end_array(&w);
		jsonw_end_object(&w);
	}
	fprintf(json ? stderr : stdout, "no hffs cache at %s%s\n", dir, what);
}

/* ---- dispatch ---- */

static int run_sub(const char *sub, struct cache_view *v, const struct cache_opts *o,
		   const struct cache_target *t)
{
	if (!strcmp(sub, "ls"))
		return cli_cache_ls(v, o->json);
	if (!strcmp(sub, "gc"))
		return cli_cache_gc(v, o->max_size, o->min_free, o->json);
	if (!strcmp(sub, "verify"))
		return cli_cache_verify(v, t, o->json);
	return cli_cache_rm(v, t, o->json);
}

/* rm takes the eviction lock for its whole run: its pins and its removals must see one
 * state. gc and verify take it only for their removals (hashing can take minutes). */
static int run_locked(const char *sub, struct cache_view *v, const struct cache_opts *o,
		      const struct cache_target *t)
{
	int fd = -1, r;

	if (!strcmp(sub, "rm")) {
		fd = evict_lock(v->dir, true);
		if (fd < 0) {
			log_err("cannot take the eviction lock of '%s': %s", v->dir, strerror(-fd));
			return 1;
		}
	}
	r = cache_view_load(v) < 0 ? 1 : run_sub(sub, v, o, t);
	if (fd >= 0)
		close(fd);
	return r;
}

int cmd_cache(int argc, char **argv)
{
	static const struct {
		const char *name;
		bool gc;
		int spec;
	} subs[] = {
		{ "ls", false, 0 },
		{ "rm", false, 1 },
		{ "gc", true, 0 },
		{ "verify", false, -1 },
	};
	struct cache_opts o = { 0 };
	_cleanup_free_ char *dir = NULL;
	struct cache_view v = { 0 };
	struct cache_target t;
	const char *sub;
	bool done;
	size_t i;
	int r;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(cache_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	sub = argv[1];
	for (i = 0; i < ARRAY_SIZE(subs) && strcmp(subs[i].name, sub); i++)
		;
	if (i == ARRAY_SIZE(subs)) {
		fprintf(stderr, "hffs: unknown cache command '%s'; see 'hffs cache --help'\n", sub);
		return 2;
	}
	r = parse_opts(argc - 1, argv + 1, subs[i].gc, subs[i].spec, sub_usage[i], &o, &done);
	if (done)
		return r;
	if (o.spec && (r = cache_target_parse(o.spec, &t)))
		return r;
	dir = cli_cache_dir(o.cache_arg);
	if (!dir) {
		log_err("no cache directory: give --cache-dir or set HFFS_CACHE_DIR or HOME");
		return 1;
	}
	r = cache_view_open(&v, dir);
	if (r < 0)
		return 1;
	if (r == 0) {
		no_cache(dir, o.json, strcmp(sub, "gc") ? "" : ": nothing to collect");
		return strcmp(sub, "rm") && strcmp(sub, "verify") ? 0 : 1;
	}
	r = run_locked(sub, &v, &o, o.spec ? &t : NULL);
	cache_view_done(&v);
	fflush(stdout);
	return r;
}
