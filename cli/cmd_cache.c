/* cmd_cache.c: `hffs cache ls|rm|gc|verify`: the cache directory as a whole. Reads the index
 * (refs, trees, blob records, mount records) and the data files; removes only through
 * cache/evict and cache/db, and never a blob a live mount uses: the pins are the blobs of the
 * trees of the mount records whose daemon is alive, computed under the eviction lock. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/bitmap.h"
#include "cache/blob.h"
#include "cache/db.h"
#include "cache/evict.h"
#include "cache/verify.h"
#include "cli/cache_gc.h"
#include "cli/cache_ls.h"
#include "cli/cache_rm.h"
#include "cli/cache_target.h"
#include "cli/cache_view.h"
#include "fetch/hub.h"
#include "fs/pins.h"
#include "util/cleanup.h"
#include "util/jsonw.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/timeutil.h"

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
static int parse_opts(int argc, char **argv, bool gc, int want_spec, struct cache_opts *o,
		      bool *ret_exit)
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
			fputs(cache_usage, stdout);
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
	fprintf(stderr, "see 'hffs cache --help'\n");
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
		putchar('\n');
	}
	fprintf(json ? stderr : stdout, "no hffs cache at %s%s\n", dir, what);
}

/* ---- hffs cache verify ---- */

enum bad_kind {
	BAD_MISMATCH, /* hashes to something else */
	BAD_SHORT, /* the data file is shorter than the blob */
	BAD_MISSING, /* the data file is gone */
};

static const char *const bad_kind_str[] = {
	[BAD_MISMATCH] = "mismatch",
	[BAD_SHORT] = "short",
	[BAD_MISSING] = "missing",
};

struct bad_blob {
	const struct cache_view_blob *row;
	enum bad_kind kind;
	char actual[CID_MAX];
	const struct db_mount *in_use; /* set: left as is */
	bool dropped;
};

struct verify_ctx {
	struct cache_view *v;
	struct evict_pins only; /* with REPO[@REV]: the blobs to check */
	bool selected;
	size_t checked, good, partial, errors;
	uint64_t bytes;
	struct bad_blob *bad;
	size_t nbad;
};

/* Hashes one complete blob. 0 good, 1 bad (filled in), -errno when it could not be read. */
static int verify_one(const struct verify_ctx *c, const struct cache_view_blob *b,
		      struct bad_blob *ret)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->row = b;
	r = blob_path(c->v->dir, b->cid, path, sizeof(path));
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		ret->kind = BAD_MISSING;
		return 1;
	}
	if (fd < 0)
		return -errno;
	r = verify_fd(fd, b->rec.size, (enum blob_hash)b->rec.hash, b->cid, ret->actual);
	if (r == -EIO) {
		ret->kind = ret->actual[0] ? BAD_MISMATCH : BAD_SHORT;
		return 1;
	}
	return r;
}

static bool verify_wanted(struct verify_ctx *c, const struct cache_view_blob *b)
{
	if (c->selected && !evict_pins_has(&c->only, b->cid))
		return false;
	return b->rec.size > 0;
}

static int verify_all(struct verify_ctx *c)
{
	c->bad = calloc(c->v->nblobs + 1, sizeof(*c->bad));
	if (!c->bad)
		return -ENOMEM;
	for (size_t i = 0; i < c->v->nblobs; i++) {
		const struct cache_view_blob *b = &c->v->blobs[i];
		int r;

		if (!verify_wanted(c, b))
			continue;
		if (b->rec.state != BLOB_COMPLETE && b->rec.state != BLOB_VERIFIED) {
			c->partial += b->rec.state == BLOB_PARTIAL && b->rec.blocks_present > 0;
			continue;
		}
		r = verify_one(c, b, &c->bad[c->nbad]);
		c->checked++;
		c->bytes += b->rec.size;
		if (r == 1) {
			c->nbad++;
		} else if (r < 0) {
			log_err("cannot verify %s: %s", b->cid, strerror(-r));
			c->errors++;
		} else {
			c->good++;
			if (b->rec.state == BLOB_COMPLETE)
				(void)db_blob_set_state(c->v->db, b->cid, BLOB_VERIFIED);
		}
	}
	return 0;
}

/* The live mount (fresh from the index) whose blobs include cid, or NULL. */
static const struct db_mount *verify_user(struct cache_view *v, const char *cid)
{
	for (size_t i = 0; i < v->nmounts; i++) {
		const struct db_mount *m = &v->mounts[i];
		const struct cache_view_tree *t = cache_view_find_tree(v, m->repo_key, m->commit);

		if (!t || t->unreadable)
			return m; /* unknown: treat as used */
		for (size_t k = 0; k < t->tree.n; k++)
			if (cache_view_has_data(&t->tree.v[k]) &&
			    !strcmp(hub_entry_cid(&t->tree.v[k]), cid))
				return m;
	}
	return NULL;
}

/* Drops the bits of each bad blob no live mount uses (the blocks are fetched again when
 * read), then frees its disk space: bits before bytes, so no bit claims a punched block. A
 * live mount serves from its own view of the bits, so its blobs are left for it. */
static int verify_drop(struct verify_ctx *c)
{
	int fd = evict_lock(c->v->dir, true), r = 0;

	if (fd < 0) {
		log_err("cannot take the eviction lock of '%s': %s", c->v->dir, strerror(-fd));
		return fd;
	}
	r = cache_view_load(c->v);
	for (size_t i = 0; r >= 0 && i < c->nbad; i++) {
		struct bad_blob *b = &c->bad[i];
		char path[PATH_MAX];
		int bfd;

		b->in_use = verify_user(c->v, b->row->cid);
		if (b->in_use)
			continue;
		r = db_blob_set_state(c->v->db, b->row->cid, BLOB_BAD);
		if (r < 0) {
			log_err("cannot mark %s bad: %s", b->row->cid, strerror(-r));
			break;
		}
		b->dropped = true;
		if (blob_path(c->v->dir, b->row->cid, path, sizeof(path)) < 0)
			continue;
		bfd = open(path, O_WRONLY | O_CLOEXEC);
		if (bfd >= 0) {
			(void)blob_punch(bfd, 0, b->row->rec.size);
			close(bfd);
		}
	}
	close(fd);
	return r;
}

/* "models/org/name: path" of the first tree file whose content is cid, into buf. */
static const char *blob_name(const struct cache_view *v, const char *cid, char *buf, size_t len)
{
	for (size_t i = 0; i < v->ntrees; i++) {
		const struct cache_view_tree *t = &v->trees[i];

		for (size_t k = 0; k < t->tree.n; k++) {
			if (!cache_view_has_data(&t->tree.v[k]) ||
			    strcmp(hub_entry_cid(&t->tree.v[k]), cid))
				continue;
			snprintf(buf, len, "%s: %s", cache_view_repo_display(t->repo_key),
				 t->tree.v[k].path);
			return buf;
		}
	}
	snprintf(buf, len, "(no file list names it)");
	return buf;
}

static void verify_bad_text(const struct verify_ctx *c, const struct bad_blob *b)
{
	const char *kind = b->row->rec.hash == BLOB_HASH_SHA256 ? "sha256" : "git sha1";
	char name[512];

	printf("bad: %s (%s %s): ", blob_name(c->v, b->row->cid, name, sizeof(name)), kind,
	       b->row->cid);
	if (b->kind == BAD_MISMATCH)
		printf("the data hashes to %s", b->actual);
	else if (b->kind == BAD_SHORT)
		printf("the data file is shorter than the file");
	else
		printf("the data file is missing");
	if (b->dropped)
		printf("; its blocks were dropped and will be fetched again\n");
	else if (b->in_use)
		printf("; left as is, the mount at '%s' uses it: unmount it and verify again\n",
		       b->in_use->mountpoint);
	else
		putchar('\n');
}

static void verify_report_json(const struct verify_ctx *c)
{
	struct jsonw w;
	char name[512];

	jsonw_init(&w, stdout);
	jsonw_begin_object(&w, NULL);
	jsonw_string(&w, "cache_dir", c->v->dir);
	jsonw_uint(&w, "checked", c->checked);
	jsonw_uint(&w, "bytes_checked", c->bytes);
	jsonw_uint(&w, "good", c->good);
	jsonw_uint(&w, "partial_skipped", c->partial);
	jsonw_uint(&w, "errors", c->errors);
	jsonw_begin_array(&w, "bad");
	for (size_t i = 0; i < c->nbad; i++) {
		const struct bad_blob *b = &c->bad[i];

		jsonw_begin_object(&w, NULL);
		jsonw_string(&w, "cid", b->row->cid);
		jsonw_string(&w, "file", blob_name(c->v, b->row->cid, name, sizeof(name)));
		jsonw_string(&w, "reason", bad_kind_str[b->kind]);
		jsonw_string(&w, "actual", b->kind == BAD_MISMATCH ? b->actual : NULL);
		jsonw_bool(&w, "dropped", b->dropped);
		jsonw_string(&w, "in_use_by", b->in_use ? b->in_use->mountpoint : NULL);
		jsonw_end_object(&w);
	}
	jsonw_end_array(&w);
	jsonw_end_object(&w);
	putchar('\n');
}

static void verify_report(const struct verify_ctx *c, bool json)
{
	char a[32];

	if (json) {
		verify_report_json(c);
		return;
	}
	for (size_t i = 0; i < c->nbad; i++)
		verify_bad_text(c, &c->bad[i]);
	printf("checked %zu blob%s (%s): %zu good, %zu bad", c->checked, c->checked == 1 ? "" : "s",
	       format_size(c->bytes, a, sizeof(a)), c->good, c->nbad);
	if (c->errors)
		printf(", %zu unreadable", c->errors);
	if (c->partial)
		printf("; %zu partial blob%s not checked", c->partial, c->partial == 1 ? "" : "s");
	putchar('\n');
}

/* With REPO[@REV]: the blobs of its trees. */
static int verify_select(struct verify_ctx *c, const struct cache_target *t)
{
	bool any = false;

	for (size_t i = 0; i < c->v->ntrees; i++) {
		const struct cache_view_tree *tr = &c->v->trees[i];
		int r;

		if (!cache_target_has_tree(t, c->v, tr))
			continue;
		any = true;
		r = pins_add_tree(&c->only, &tr->tree);
		if (r < 0)
			return r;
	}
	if (!any) {
		log_err("%s is not in the cache at %s", t->spec, c->v->dir);
		return -ENOENT;
	}
	c->selected = true;
	return 0;
}

static int cache_verify(struct cache_view *v, const struct cache_target *t, bool json)
{
	struct verify_ctx c = { .v = v };
	int r = t ? verify_select(&c, t) : 0;

	if (r >= 0)
		r = cache_view_load_blobs(v);
	if (r >= 0)
		r = verify_all(&c);
	if (r >= 0 && c.nbad)
		r = verify_drop(&c);
	if (r >= 0)
		verify_report(&c, json);
	free(c.bad);
	evict_pins_done(&c.only);
	return r < 0 || c.nbad || c.errors ? 1 : 0;
}

/* ---- dispatch ---- */

static int run_sub(const char *sub, struct cache_view *v, const struct cache_opts *o,
		   const struct cache_target *t)
{
	if (!strcmp(sub, "ls"))
		return cache_ls(v, o->json);
	if (!strcmp(sub, "gc"))
		return cache_gc(v, o->max_size, o->min_free, o->json);
	if (!strcmp(sub, "verify"))
		return cache_verify(v, t, o->json);
	return cache_rm(v, t, o->json);
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
	r = parse_opts(argc - 1, argv + 1, subs[i].gc, subs[i].spec, &o, &done);
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
