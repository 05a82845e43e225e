/* cmd_status.c: `hffs status [MOUNTPOINT] [--json]`. Everything comes from the cache index
 * (mount records, trees, blob records and bitmaps), so it is right whether or not a daemon
 * is reading right now, and needs no daemon at all. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/bitmap.h"
#include "cache/cache.h"
#include "cache/db.h"
#include "cache/tree.h"
#include "cli/mounts.h"
#include "cli/status_prom.h"
#include "fs/live.h"
#include "util/cleanup.h"
#include "util/jsonw.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/timeutil.h"

static const char status_usage[] =
	"Usage: hffs status [MOUNTPOINT] [--json | --prometheus]\n"
	"                   [--watch [--interval S] [--count N]] [--cache-dir DIR]\n"
	"\n"
	"Shows the active mounts of the cache (all, or the one at MOUNTPOINT): repo, revision,\n"
	"commit, the live transfer figures (rate, ETA, connections, retries, stalls, the last\n"
	"error) and for every file a progress bar, the bytes cached and its state (missing,\n"
	"partial, complete, verified, bad), with totals. --watch refreshes in place every S\n"
	"seconds (default 1), N times (default: until interrupted). --prometheus prints the\n"
	"same figures in the Prometheus text format (see docs/cli.md).\n";

struct file_status {
	const char *path;
	uint64_t size;
	uint64_t cached;
	const char *state;
};

/* Bytes of cid in the cache and its state word. */
static void blob_status(struct cache_db *db, const struct tree_entry *e, struct file_status *fs)
{
	static const char empty_sha1[] = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";
	static const char empty_sha256[] =
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	_cleanup_free_ uint8_t *map = NULL;
	struct blob_rec rec;
	uint64_t n;

	fs->path = e->path;
	fs->size = e->size;
	fs->cached = 0;
	if (!e->size) {
		bool ok = !strcmp(e->cid, e->hash == BLOB_HASH_SHA256 ? empty_sha256 : empty_sha1);

		fs->state = ok ? "verified" : "bad";
		return;
	}
	if (db_blob_get(db, e->cid, &rec, &map) < 0 || !map) {
		fs->state = "missing";
		return;
	}
	n = block_count(rec.size, rec.block_size);
	fs->cached = rec.blocks_present * rec.block_size;
	if (n && bitmap_test(map, n - 1))
		fs->cached -= rec.block_size - block_len(rec.size, rec.block_size, n - 1);
	fs->state = !rec.blocks_present && rec.state == BLOB_PARTIAL ?
			    "missing" :
			    db_blob_state_str((enum blob_state)rec.state);
}

static bool is_complete(const struct file_status *f)
{
	return !strcmp(f->state, "complete") || !strcmp(f->state, "verified");
}

/* "[#######...]" for a fraction; width characters between the brackets. */
static const char *bar(uint64_t part, uint64_t whole, char *buf, size_t width)
{
	size_t fill = whole ? (size_t)((double)width * (double)part / (double)whole) : width;

	buf[0] = '[';
	for (size_t i = 0; i < width; i++)
		buf[i + 1] = i < fill ? '#' : '.';
	buf[width + 1] = ']';
	buf[width + 2] = '\0';
	return buf;
}

static bool load_live(struct cache_db *db, const char *mountpoint, struct live *ret)
{
	_cleanup_free_ void *buf = NULL;
	size_t len;

	return db_live_get(db, mountpoint, &buf, &len) >= 0 && live_decode(buf, len, ret) >= 0;
}

/* The cache's limits and what this mount did about them, when there is anything to say. */
static void print_space_text(const struct live *l)
{
	char a[32], b[32], c[32], d[32];

	if (l->space_room < l->space_needed)
		printf("  space: %s still to fetch, room for %s within the cache's limits\n",
		       format_size(l->space_needed, a, sizeof(a)),
		       format_size(l->space_room, b, sizeof(b)));
	if (l->cache_max_size || l->evicted_blobs || l->paused[0])
		printf("  cache: %s free on disk (--min-free %s), --cache-max-size %s; evicted %llu "
		       "blob%s (%s)\n",
		       format_size(l->disk_free, a, sizeof(a)),
		       format_size(l->min_free, b, sizeof(b)),
		       l->cache_max_size ? format_size(l->cache_max_size, c, sizeof(c)) : "none",
		       (unsigned long long)l->evicted_blobs, l->evicted_blobs == 1 ? "" : "s",
		       format_size(l->evicted_bytes, d, sizeof(d)));
}

static void print_live_text(const struct live *l)
{
	char a[32], b[32];
	uint64_t age = l->last_error_at ?
			       (now_realtime_usec() - MIN(now_realtime_usec(), l->last_error_at)) /
				       USEC_PER_SEC :
			       0;

	printf("  %s/s, ETA %s, %u active, %u queued, background: %s%s\n",
	       format_size(l->rate, a, sizeof(a)),
	       l->paused[0] && l->eta_s ? "none (paused)" : format_eta(l->eta_s, b, sizeof(b)),
	       l->active, l->queued, l->phase,
	       l->stalled ? "  ** STALLED: no data for 30 s **" : "");
	printf("  retries %llu, stalls %llu, failed ranges %llu, verification failures %llu\n",
	       (unsigned long long)l->retries, (unsigned long long)l->stalls,
	       (unsigned long long)l->failures, (unsigned long long)l->verify_failures);
	printf("  reads: %llu from the cache, %llu waited for the network, %llu failed; fetched "
	       "%s from the Hub, %s from the CDN\n",
	       (unsigned long long)l->reads.reads[READSTATS_HIT],
	       (unsigned long long)l->reads.reads[READSTATS_MISS],
	       (unsigned long long)l->reads.errors, format_size(l->bytes_hub, a, sizeof(a)),
	       format_size(l->bytes_cdn, b, sizeof(b)));
	if (l->last_error[0])
		printf("  last error (%llu s ago): %s\n", (unsigned long long)age, l->last_error);
	if (l->retrying[0] && l->io_timeout_s)
		printf("  ** retrying: %s; reads of uncached bytes wait, EIO after %u s without "
		       "data (--io-timeout) **\n",
		       l->retrying, l->io_timeout_s);
	else if (l->retrying[0])
		printf("  ** retrying: %s; reads of uncached bytes wait **\n", l->retrying);
	if (l->xet_files || l->xet_resolve_files)
		printf("  xet: %u file%s on Xet, %s from xorbs in %llu plan%s; %u LFS file%s by "
		       "/resolve\n",
		       l->xet_files, l->xet_files == 1 ? "" : "s",
		       format_size(l->xet_bytes, a, sizeof(a)), (unsigned long long)l->xet_plans,
		       l->xet_plans == 1 ? "" : "s", l->xet_resolve_files,
		       l->xet_resolve_files == 1 ? "" : "s");
	if (l->paused[0])
		printf("  ** background completion paused: %s **\n", l->paused);
	if (l->streaming[0])
		printf("  streaming: %s; uncached reads are served through memory, not cached\n",
		       l->streaming);
	if (l->streamed_reads)
		printf("  streamed without caching: %llu reads, %s\n",
		       (unsigned long long)l->streamed_reads,
		       format_size(l->streamed_bytes, a, sizeof(a)));
	print_space_text(l);
}

/* Most file lines a mount's text shows: all, but in --watch on a terminal what fits. */
static size_t file_lines = SIZE_MAX;
/* --prometheus: the mounts are collected here and printed once all are seen. */
static struct status_prom *prom;

static void print_text(const struct db_mount *m, const struct live *l, const struct file_status *fs,
		       size_t n, uint64_t total, uint64_t cached, size_t complete)
{
	char a[32], b[32], pb[32];

	printf("%s@%s (commit %.12s) at %s  [pid %d%s]\n", m->repo_key, m->revision, m->commit,
	       m->mountpoint, (int)m->pid, m->flags & DB_MOUNT_OFFLINE ? ", offline" : "");
	printf("  %s %3.0f%%  %s of %s cached, %zu of %zu files complete\n",
	       bar(cached, total, pb, 20), total ? 100.0 * (double)cached / (double)total : 100.0,
	       format_size(cached, a, sizeof(a)), format_size(total, b, sizeof(b)), complete, n);
	if (l)
		print_live_text(l);
	/* In a short terminal (--watch), the files still moving come first and the rest are
	 * counted, so the summary stays on screen. */
	for (int pass = n > file_lines ? 0 : 1, shown = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			bool done = !strcmp(fs[i].state, "verified");

			/* Pass 0 (short terminal only): what is still moving; pass 1: the rest. */
			if ((n > file_lines && done != (pass == 1)) || (size_t)shown >= file_lines)
				continue;
			printf("  %-9s %s %10s %10s  %s\n", fs[i].state,
			       bar(fs[i].cached, fs[i].size, pb, 10),
			       format_size(fs[i].cached, a, sizeof(a)),
			       format_size(fs[i].size, b, sizeof(b)), fs[i].path);
			shown++;
		}
		if (pass == 1 && (size_t)shown < n)
			printf("  ... and %zu more files (the terminal is short; 'hffs status %s' "
			       "lists them all)\n",
			       n - (size_t)shown, m->mountpoint);
	}
}

static void print_live_json(struct jsonw *w, const struct live *l)
{
	jsonw_begin_object(w, "live");
	jsonw_uint(w, "rate", l->rate);
	jsonw_int(w, "eta_s", l->eta_s);
	jsonw_uint(w, "active", l->active);
	jsonw_uint(w, "queued", l->queued);
	jsonw_uint(w, "retries", l->retries);
	jsonw_uint(w, "stalls", l->stalls);
	jsonw_uint(w, "failures", l->failures);
	jsonw_uint(w, "verify_failures", l->verify_failures);
	jsonw_uint(w, "bytes_fetched", l->bytes_fetched);
	jsonw_begin_object(w, "bytes_from");
	jsonw_uint(w, "hub", l->bytes_hub);
	jsonw_uint(w, "cdn", l->bytes_cdn);
	jsonw_end_object(w);
	jsonw_begin_object(w, "reads");
	jsonw_uint(w, "hits", l->reads.reads[READSTATS_HIT]);
	jsonw_uint(w, "misses", l->reads.reads[READSTATS_MISS]);
	jsonw_uint(w, "errors", l->reads.errors);
	jsonw_end_object(w);
	jsonw_begin_object(w, "xet");
	jsonw_uint(w, "files", l->xet_files);
	jsonw_uint(w, "resolve_files", l->xet_resolve_files);
	jsonw_uint(w, "bytes", l->xet_bytes);
	jsonw_uint(w, "plans", l->xet_plans);
	jsonw_end_object(w);
	jsonw_string(w, "phase", l->phase);
	jsonw_bool(w, "stalled", l->stalled);
	jsonw_string(w, "last_error", l->last_error[0] ? l->last_error : NULL);
	jsonw_uint(w, "last_error_at", l->last_error_at / USEC_PER_SEC);
	jsonw_uint(w, "updated", l->updated / USEC_PER_SEC);
	jsonw_string(w, "paused", l->paused[0] ? l->paused : NULL);
	jsonw_string(w, "retrying", l->retrying[0] ? l->retrying : NULL);
	jsonw_uint(w, "io_timeout_s", l->io_timeout_s);
	jsonw_string(w, "streaming", l->streaming[0] ? l->streaming : NULL);
	jsonw_uint(w, "streamed_reads", l->streamed_reads);
	jsonw_uint(w, "streamed_bytes", l->streamed_bytes);
	jsonw_begin_object(w, "space");
	if (l->cache_max_size)
		jsonw_uint(w, "cache_max_size", l->cache_max_size);
	else
		jsonw_null(w, "cache_max_size");
	jsonw_uint(w, "min_free", l->min_free);
	jsonw_uint(w, "disk_free", l->disk_free);
	jsonw_uint(w, "needed", l->space_needed);
	jsonw_uint(w, "room", l->space_room);
	jsonw_uint(w, "evicted_blobs", l->evicted_blobs);
	jsonw_uint(w, "evicted_bytes", l->evicted_bytes);
	jsonw_end_object(w);
	jsonw_end_object(w);
}

static void print_json(struct jsonw *w, const char *cache_dir, const struct db_mount *m,
		       const struct live *l, const struct file_status *fs, size_t n, uint64_t total,
		       uint64_t cached, size_t complete)
{
	jsonw_begin_object(w, NULL);
	jsonw_string(w, "repo", m->repo_key);
	jsonw_string(w, "revision", m->revision);
	jsonw_string(w, "commit", m->commit);
	jsonw_string(w, "mountpoint", m->mountpoint);
	jsonw_string(w, "cache_dir", cache_dir);
	jsonw_string(w, "endpoint", m->endpoint);
	jsonw_int(w, "pid", m->pid);
	jsonw_bool(w, "offline", m->flags & DB_MOUNT_OFFLINE);
	jsonw_uint(w, "bytes_total", total);
	jsonw_uint(w, "bytes_cached", cached);
	jsonw_uint(w, "files_total", n);
	jsonw_uint(w, "files_complete", complete);
	if (l)
		print_live_json(w, l);
	else
		jsonw_null(w, "live");
	jsonw_begin_array(w, "files");
	for (size_t i = 0; i < n; i++) {
		jsonw_begin_object(w, NULL);
		jsonw_string(w, "path", fs[i].path);
		jsonw_uint(w, "size", fs[i].size);
		jsonw_uint(w, "bytes_cached", fs[i].cached);
		jsonw_string(w, "state", fs[i].state);
		jsonw_end_object(w);
	}
	jsonw_end_array(w);
	jsonw_end_object(w);
}

/* Asks the daemon of m to commit what it holds and publish at once, and waits (at most a
 * second) for a live record newer than the request: what follows is the truth of now, not
 * of up to a second ago. Daemons that do not say they take the signal are not sent it. */
static void ask_flush(struct cache_db *db, const struct db_mount *m)
{
	uint64_t asked = now_realtime_usec(), deadline = now_usec() + USEC_PER_SEC;
	struct live l;

	if (!(m->flags & DB_MOUNT_FLUSHES) || kill(m->pid, LIVE_FLUSH_SIGNAL) < 0)
		return;
	while (now_usec() < deadline) {
		if (load_live(db, m->mountpoint, &l) && l.updated >= asked)
			return;
		(void)usleep(5000);
	}
}

static int show_mount(struct cache_db *db, const char *cache_dir, const struct db_mount *m,
		      struct jsonw *w)
{
	_cleanup_free_ struct file_status *fs = NULL;
	struct tree tree;
	struct live live;
	bool has_live;
	uint64_t total = 0, cached = 0;
	size_t n = 0, complete = 0;
	int r;

	ask_flush(db, m);
	has_live = load_live(db, m->mountpoint, &live);
	r = tree_get(db, m->repo_key, m->commit, &tree);
	if (r < 0) {
		log_err("the file list of %s at %.12s is not readable in the cache: %s",
			m->repo_key, m->commit, strerror(-r));
		return r;
	}
	fs = calloc(tree.n + 1, sizeof(*fs));
	if (!fs) {
		tree_done(&tree);
		return -ENOMEM;
	}
	for (size_t i = 0; i < tree.n; i++) {
		if (tree.v[i].is_dir)
			continue;
		blob_status(db, &tree.v[i], &fs[n]);
		total += fs[n].size;
		cached += fs[n].cached;
		complete += is_complete(&fs[n]);
		n++;
	}
	/* The rate is the daemon's; the coverage is what the index says now. */
	if (has_live)
		live.eta_s = cached >= total ? 0 :
			     live.rate && !live.paused[0] ?
					       (int64_t)((total - cached) / live.rate) :
					       -1;
	if (prom)
		r = status_prom_add(prom, cache_dir, m, has_live ? &live : NULL, n, complete, total,
				    cached);
	else if (w)
		print_json(w, cache_dir, m, has_live ? &live : NULL, fs, n, total, cached,
			   complete);
	else
		print_text(m, has_live ? &live : NULL, fs, n, total, cached, complete);
	tree_done(&tree);
	return r < 0 ? r : 0;
}

/* The mounts of one cache directory that match only (NULL: all), into w or as text. */
static void show_cache(const char *cache_dir, const char *only, struct jsonw *w, int *shown,
		       bool *failed)
{
	struct cache_db *db = NULL;
	struct db_mount *mounts = NULL;
	size_t nmounts = 0;
	int r = db_open(cache_dir, &db);

	if (r < 0) {
		log_err("cannot open the cache index in '%s': %s", cache_dir, strerror(-r));
		*failed = true;
		return;
	}
	/* A record whose daemon is gone is stale: it is dropped. */
	r = cache_live_mounts(db, true, &mounts, &nmounts);
	if (r < 0)
		log_err("cannot list the mounts: %s", strerror(-r));
	for (size_t i = 0; i < nmounts; i++) {
		if (only && strcmp(only, mounts[i].mountpoint))
			continue;
		if (show_mount(db, cache_dir, &mounts[i], w) < 0)
			*failed = true;
		(*shown)++;
	}
	free(mounts);
	db_close(db);
}

/* The dead hffs mounts (their daemon gone) that match only: they need an unmount. */
static int show_dead(const struct cli_mount *v, size_t n, const char *only, struct jsonw *w)
{
	int shown = 0;

	if (w)
		jsonw_begin_array(w, "dead_mounts");
	for (size_t i = 0; i < n; i++) {
		if (!v[i].dead || (only && strcmp(only, v[i].mountpoint)))
			continue;
		if (w) {
			jsonw_begin_object(w, NULL);
			jsonw_string(w, "mountpoint", v[i].mountpoint);
			jsonw_string(w, "source", v[i].source);
			jsonw_end_object(w);
		} else {
			printf("%s: %s, DEAD: its daemon is gone (\"Transport endpoint is not "
			       "connected\"); run 'hffs unmount %s'\n",
			       v[i].mountpoint, v[i].source, v[i].mountpoint);
		}
		shown++;
	}
	if (w)
		jsonw_end_array(w);
	return shown;
}

/* One report of every matching mount of every cache directory in dirs, and of the dead
 * mounts. Returns how many mounts were shown (dead ones are counted in *ret_dead), or -1 when
 * one failed. */
static int show_all(char *const *dirs, size_t ndirs, const char *only, bool json,
		    const struct cli_mount *mounts, size_t nmounts, int *ret_dead)
{
	struct jsonw w;
	int shown = 0;
	bool failed = false;

	if (prom) {
		*ret_dead = 0;
		for (size_t i = 0; i < ndirs; i++)
			show_cache(dirs[i], only, NULL, &shown, &failed);
		for (size_t i = 0; i < nmounts; i++)
			*ret_dead +=
				mounts[i].dead && (!only || !strcmp(only, mounts[i].mountpoint));
		status_prom_print(prom, (size_t)*ret_dead, stdout);
		status_prom_done(prom);
		fflush(stdout);
		return failed ? -1 : shown;
	}
	if (json) {
		jsonw_init(&w, stdout);
		jsonw_begin_object(&w, NULL);
		jsonw_string(&w, "cache_dir", dirs[0]);
		jsonw_begin_array(&w, "mounts");
	}
	for (size_t i = 0; i < ndirs; i++)
		show_cache(dirs[i], only, json ? &w : NULL, &shown, &failed);
	if (json)
		jsonw_end_array(&w);
	*ret_dead = show_dead(mounts, nmounts, only, json ? &w : NULL);
	if (json)
		jsonw_end_object(&w);
	else if (!shown && !*ret_dead)
		printf(only ? "no hffs mount at %s\n" : "no active hffs mounts%s\n",
		       only ? only : "");
	fflush(stdout);
	return failed ? -1 : shown;
}

/* File lines that keep --watch's screen from scrolling: the terminal's height less the
 * summary lines (about 8), at least 3. */
static size_t watch_file_lines(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 || !ws.ws_row)
		return SIZE_MAX;
	return ws.ws_row > 8 + 3 ? ws.ws_row - 8U : 3;
}

/* The cache directories to report, each once, into dirs (at least one): --cache-dir; else
 * MOUNTPOINT's own; else the default and every live mount's. */
static size_t cache_dirs(const char *cache_arg, const char *only, const struct cli_mount *v,
			 size_t n, char **dirs)
{
	size_t k = 0;

	if (!cache_arg && only)
		dirs[k] = cli_mount_cache_dir(only);
	if (!dirs[0])
		dirs[0] = cli_cache_dir(cache_arg);
	if (!dirs[0])
		return 0;
	k = 1;
	for (size_t i = 0; !cache_arg && !only && i < n; i++) {
		bool seen = !v[i].cache_dir;

		for (size_t j = 0; j < k && !seen; j++)
			seen = !strcmp(dirs[j], v[i].cache_dir);
		if (!seen && (dirs[k] = strdup(v[i].cache_dir)))
			k++;
	}
	return k;
}

int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "prometheus", no_argument, NULL, 'P' },
		{ "watch", no_argument, NULL, 'w' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "cache-dir", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	_cleanup_free_ char *only = NULL;
	struct cli_mount *mounts = NULL;
	size_t nmounts = 0, ndirs = 0;
	char **dirs = NULL;
	const char *cache_arg = NULL;
	int dead = 0;
	struct status_prom collected = { 0 };
	bool json = false, watch = false;
	uint64_t interval_ms = 1000, count = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "hw", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'w':
			watch = true;
			break;
		case 'P':
			prom = &collected;
			break;
		case 'i': {
			double v;
			char *end;

			v = strtod(optarg, &end);
			if (*end || v < 0.1 || v > 3600) {
				log_err("--interval takes seconds from 0.1 to 3600, not '%s'",
					optarg);
				return 2;
			}
			interval_ms = (uint64_t)(v * 1000);
			break;
		}
		case 'n':
			if (parse_uint(optarg, 1000000, &count) < 0 || !count) {
				log_err("--count takes a positive number, not '%s'", optarg);
				return 2;
			}
			break;
		case 'C':
			cache_arg = optarg;
			break;
		case 'h':
			fputs(status_usage, stdout);
			return 0;
		default:
			fputs("see 'hffs status --help'\n", stderr);
			return 2;
		}
	}
	if (argc - optind > 1) {
		fputs(status_usage, stderr);
		return 2;
	}
	if (json && prom) {
		log_err("--json and --prometheus are two formats of one report: give one");
		return 2;
	}
	if (argc - optind == 1)
		only = cli_abspath(argv[optind]);
	r = cli_mounts_list(&mounts, &nmounts);
	if (r < 0)
		log_warn("cannot read the mount table: %s; showing the mounts of one cache only",
			 strerror(-r));
	dirs = calloc(nmounts + 1, sizeof(*dirs));
	ndirs = dirs ? cache_dirs(cache_arg, only, mounts, nmounts, dirs) : 0;
	if (!ndirs) {
		log_err("no cache directory: give --cache-dir or set HFFS_CACHE_DIR or HOME");
		r = -1;
		goto out_free;
	}
	for (uint64_t i = 0;; i++) {
		struct timespec ts = { .tv_sec = (time_t)(interval_ms / 1000),
				       .tv_nsec = (long)(interval_ms % 1000) * 1000000 };

		/* In place: home the cursor and clear the screen of a terminal. */
		if (watch && !json && isatty(STDOUT_FILENO)) {
			fputs("\033[H\033[J", stdout);
			file_lines = watch_file_lines();
		}
		r = show_all(dirs, ndirs, only, json, mounts, nmounts, &dead);
		if (!watch || (count && i + 1 >= count))
			break;
		nanosleep(&ts, NULL);
	}
out_free:
	for (size_t i = 0; i < ndirs; i++)
		free(dirs[i]);
	free(dirs);
	cli_mounts_free(mounts, nmounts);
	if (r < 0)
		return 1;
	return only && (r == 0 || dead) ? 1 : 0;
}
