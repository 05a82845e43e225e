/* cmd_status.c: `hffs status [MOUNTPOINT] [--json]`. Everything comes from the cache index
 * (mount records, trees, blob records and bitmaps), so it is right whether or not a daemon
 * is reading right now, and needs no daemon at all. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/bitmap.h"
#include "cache/db.h"
#include "fetch/hub.h"
#include "fetch/hub_json.h"
#include "util/cleanup.h"
#include "util/jsonw.h"
#include "util/log.h"
#include "util/parse.h"

static const char status_usage[] =
	"Usage: hffs status [MOUNTPOINT] [--json] [--cache-dir DIR]\n"
	"\n"
	"Shows the active mounts of the cache (all, or the one at MOUNTPOINT): repo, revision,\n"
	"commit, and for every file the bytes cached and its state (missing, partial,\n"
	"complete, verified, bad), with totals.\n";

struct file_status {
	const char *path;
	uint64_t size;
	uint64_t cached;
	const char *state;
};

struct mount_list {
	struct db_mount *v;
	size_t n;
};

static int collect_mount(void *ud, const struct db_mount *m)
{
	struct mount_list *l = ud;
	struct db_mount *v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	l->v = v;
	l->v[l->n++] = *m;
	return 0;
}

/* A record whose daemon is gone (killed, crashed) is not an active mount. */
static bool daemon_alive(pid_t pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return true;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	return !strncmp(comm, "hffs", 4);
}

/* Bytes of cid in the cache and its state word. */
static void blob_status(struct cache_db *db, const struct hub_entry *e, struct file_status *fs)
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
		bool ok = !strcmp(hub_entry_cid(e), e->is_lfs ? empty_sha256 : empty_sha1);

		fs->state = ok ? "verified" : "bad";
		return;
	}
	if (db_blob_get(db, hub_entry_cid(e), &rec, &map) < 0 || !map) {
		fs->state = "missing";
		return;
	}
	n = block_count(rec.size, rec.block_size);
	fs->cached = rec.blocks_present * rec.block_size;
	if (n && bitmap_test(map, n - 1))
		fs->cached -= rec.block_size - block_len(rec.size, rec.block_size, n - 1);
	fs->state = !rec.blocks_present && rec.state == BLOB_PARTIAL ?
			    "missing" :
			    blob_state_str((enum blob_state)rec.state);
}

static bool is_complete(const struct file_status *f)
{
	return !strcmp(f->state, "complete") || !strcmp(f->state, "verified");
}

static void print_text(const struct db_mount *m, const struct file_status *fs, size_t n,
		       uint64_t total, uint64_t cached, size_t complete)
{
	char a[32], b[32];

	printf("%s@%s (commit %.12s) at %s  [pid %d%s]\n", m->repo_key, m->revision, m->commit,
	       m->mountpoint, (int)m->pid, m->flags & DB_MOUNT_OFFLINE ? ", offline" : "");
	printf("  %s of %s cached (%.0f%%), %zu of %zu files complete\n",
	       format_size(cached, a, sizeof(a)), format_size(total, b, sizeof(b)),
	       total ? 100.0 * (double)cached / (double)total : 100.0, complete, n);
	for (size_t i = 0; i < n; i++)
		printf("  %-9s %11s %11s  %s\n", fs[i].state, format_size(fs[i].cached, a, sizeof(a)),
		       format_size(fs[i].size, b, sizeof(b)), fs[i].path);
}

static void print_json(struct jsonw *w, const struct db_mount *m, const struct file_status *fs,
		       size_t n, uint64_t total, uint64_t cached, size_t complete)
{
	jsonw_begin_object(w, NULL);
	jsonw_string(w, "repo", m->repo_key);
	jsonw_string(w, "revision", m->revision);
	jsonw_string(w, "commit", m->commit);
	jsonw_string(w, "mountpoint", m->mountpoint);
	jsonw_string(w, "endpoint", m->endpoint);
	jsonw_int(w, "pid", m->pid);
	jsonw_bool(w, "offline", m->flags & DB_MOUNT_OFFLINE);
	jsonw_uint(w, "bytes_total", total);
	jsonw_uint(w, "bytes_cached", cached);
	jsonw_uint(w, "files_total", n);
	jsonw_uint(w, "files_complete", complete);
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

static int show_mount(struct cache_db *db, const struct db_mount *m, struct jsonw *w)
{
	_cleanup_free_ char *json = NULL;
	_cleanup_free_ struct file_status *fs = NULL;
	struct hub_tree tree = { 0 };
	uint64_t total = 0, cached = 0;
	size_t len, n = 0, complete = 0;
	int r;

	r = db_tree_get(db, m->repo_key, m->commit, &json, &len);
	if (r >= 0)
		r = hub_json_tree_page(json, len, &tree);
	if (r < 0) {
		log_err("the file list of %s at %.12s is not readable in the cache: %s",
			m->repo_key, m->commit, strerror(-r));
		return r;
	}
	fs = calloc(tree.n + 1, sizeof(*fs));
	if (!fs) {
		hub_tree_done(&tree);
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
	if (w)
		print_json(w, m, fs, n, total, cached, complete);
	else
		print_text(m, fs, n, total, cached, complete);
	hub_tree_done(&tree);
	return 0;
}

int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "cache-dir", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	_cleanup_free_ char *cache_dir = NULL, *only = NULL;
	struct mount_list l = { 0 };
	struct cache_db *db = NULL;
	const char *cache_arg = NULL;
	struct jsonw w;
	bool json = false;
	size_t shown = 0;
	int c, r, rc = 0;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
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
	if (argc - optind == 1)
		only = cli_abspath(argv[optind]);
	cache_dir = cli_cache_dir(cache_arg);
	if (!cache_dir)
		return 1;
	r = db_open(cache_dir, &db);
	if (r < 0) {
		log_err("cannot open the cache index in '%s': %s", cache_dir, strerror(-r));
		return 1;
	}
	r = db_mount_foreach(db, collect_mount, &l);
	if (r < 0)
		log_err("cannot list the mounts: %s", strerror(-r));
	if (json) {
		jsonw_init(&w, stdout);
		jsonw_begin_object(&w, NULL);
		jsonw_string(&w, "cache_dir", cache_dir);
		jsonw_begin_array(&w, "mounts");
	}
	for (size_t i = 0; i < l.n; i++) {
		if (only && strcmp(only, l.v[i].mountpoint))
			continue;
		if (!daemon_alive(l.v[i].pid)) {
			/* Its daemon is gone: the record is stale; drop it. */
			(void)db_mount_del(db, l.v[i].mountpoint);
			continue;
		}
		if (show_mount(db, &l.v[i], json ? &w : NULL) < 0)
			rc = 1;
		shown++;
	}
	if (json) {
		jsonw_end_array(&w);
		jsonw_end_object(&w);
	} else if (!shown) {
		printf(only ? "no hffs mount at %s\n" : "no active hffs mounts%s\n", only ? only : "");
	}
	free(l.v);
	db_close(db);
	if (only && !shown)
		return 1;
	return rc;
}
