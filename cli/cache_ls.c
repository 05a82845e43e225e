/* cache_ls.c: `hffs cache ls`: a row per revision of every repo in the cache, as text or JSON:
 * the size of its files, the bytes cached, the space its data takes on disk (each content
 * once), its last use, whether a live mount uses it. Single thread; reads the index and the
 * data files' sizes, changes nothing. */
#include "cli/cache_ls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/bitmap.h"
#include "cache/blob.h"
#include "cache/db.h"
#include "cache/evict.h"
#include "util/cleanup.h"
#include "util/jsonw.h"
#include "util/parse.h"
#include "util/timeutil.h"

/* Bytes of a blob the cache holds: whole blocks, the last one only as long as the blob. */
static uint64_t blob_cached(struct cache_db *db, const struct cache_view_blob *b)
{
	_cleanup_free_ uint8_t *map = NULL;
	const struct blob_rec *r = &b->rec;
	uint64_t n = block_count(r->size, r->block_size);
	struct blob_rec now;

	if (r->blocks_present == 0)
		return 0;
	if (r->blocks_present == n)
		return r->size;
	/* Partial: whether the short last block is among them takes the bitmap. */
	if (db_blob_get(db, b->cid, &now, &map) < 0 || now.blocks_present != r->blocks_present)
		return r->blocks_present * r->block_size;
	return r->blocks_present * r->block_size -
	       (bitmap_test(map, n - 1) ? r->block_size - block_len(r->size, r->block_size, n - 1) :
					  0);
}

static const char *format_time(uint64_t usec, char *buf, size_t len)
{
	time_t t = (time_t)(usec / USEC_PER_SEC);
	struct tm tm;

	if (!usec || !localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M", &tm))
		snprintf(buf, len, "never");
	return buf;
}

/* JSON of a realtime usec: seconds since the epoch, null for never. */
static void json_time(struct jsonw *w, const char *key, uint64_t usec)
{
	if (usec)
		jsonw_uint(w, key, usec / USEC_PER_SEC);
	else
		jsonw_null(w, key);
}

struct tree_stats {
	size_t files;
	uint64_t total, cached, disk, last_use;
};

struct ls_ctx {
	struct cache_view *v;
	struct tree_stats *stats; /* per tree */
	uint64_t *disk; /* per blob row, its data file's usage */
	uint64_t *cached; /* per blob row */
};

static int cid_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Disk and last use of a set of cids (sorted here, each counted once). */
static void cids_stats(const struct ls_ctx *c, const char **cids, size_t n, struct tree_stats *s)
{
	qsort(cids, n, sizeof(*cids), cid_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct cache_view_blob *b;

		if (i && !strcmp(cids[i - 1], cids[i]))
			continue;
		b = cache_view_find_blob(c->v, cids[i]);
		if (!b)
			continue;
		s->disk += c->disk[b - c->v->blobs];
		s->last_use = MAX(s->last_use, b->rec.last_access);
	}
}

static int tree_stats(const struct ls_ctx *c, const struct cache_view_tree *t, struct tree_stats *s)
{
	_cleanup_free_ const char **cids = calloc(t->tree.n + 1, sizeof(*cids));
	size_t n = 0;

	if (!cids)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < t->tree.n; i++) {
		const struct tree_entry *e = &t->tree.v[i];
		const struct cache_view_blob *b;

		if (e->is_dir)
			continue;
		s->files++;
		s->total += e->size;
		if (!tree_entry_has_data(e))
			continue;
		cids[n++] = e->cid;
		b = cache_view_find_blob(c->v, e->cid);
		if (b)
			s->cached += MIN(c->cached[b - c->v->blobs], e->size);
	}
	cids_stats(c, cids, n, s);
	return 0;
}

/* Disk and last use of every blob of a repo's trees, shared ones once. */
static int repo_stats(const struct ls_ctx *c, const char *repo_key, struct tree_stats *s)
{
	_cleanup_free_ const char **cids = NULL;
	size_t n = 0, cap = 0;

	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < c->v->ntrees; i++)
		if (!strcmp(c->v->trees[i].repo_key, repo_key))
			cap += c->v->trees[i].tree.n;
	cids = calloc(cap + 1, sizeof(*cids));
	if (!cids)
		return -ENOMEM;
	for (size_t i = 0; i < c->v->ntrees; i++) {
		const struct cache_view_tree *t = &c->v->trees[i];

		if (strcmp(t->repo_key, repo_key))
			continue;
		for (size_t k = 0; k < t->tree.n; k++)
			if (tree_entry_has_data(&t->tree.v[k]))
				cids[n++] = t->tree.v[k].cid;
	}
	cids_stats(c, cids, n, s);
	return 0;
}

static int ls_prepare(struct ls_ctx *c)
{
	int r = cache_view_load_blobs(c->v);

	if (r < 0)
		return r;
	c->disk = calloc(c->v->nblobs + 1, sizeof(*c->disk));
	c->cached = calloc(c->v->nblobs + 1, sizeof(*c->cached));
	c->stats = calloc(c->v->ntrees + 1, sizeof(*c->stats));
	if (!c->disk || !c->cached || !c->stats)
		return -ENOMEM;
	for (size_t i = 0; i < c->v->nblobs; i++) {
		c->disk[i] = blob_disk_usage(c->v->dir, c->v->blobs[i].cid);
		c->cached[i] = blob_cached(c->v->db, &c->v->blobs[i]);
	}
	for (size_t i = 0; i < c->v->ntrees; i++) {
		r = tree_stats(c, &c->v->trees[i], &c->stats[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* One row of the listing: a revision (or NULL for a tree no ref names) at commit. */
struct ls_row {
	const char *repo_key;
	const char *revision;
	const char *commit;
	const struct tree_stats *st; /* NULL: the tree is missing or unreadable */
	bool in_use;
};

static void ls_row_text(const struct ls_row *r)
{
	char a[32], b[32], d[32], t[32];

	printf("%-32s %-12s %-12.12s", cache_view_repo_display(r->repo_key),
	       r->revision ? r->revision : "-", r->commit);
	if (!r->st) {
		printf("  (file list missing or unreadable)\n");
		return;
	}
	printf(" %10s %10s %4.0f%% %10s  %-16s%s\n", format_size(r->st->total, a, sizeof(a)),
	       format_size(r->st->cached, b, sizeof(b)),
	       r->st->total ? 100.0 * (double)r->st->cached / (double)r->st->total : 100.0,
	       format_size(r->st->disk, d, sizeof(d)), format_time(r->st->last_use, t, sizeof(t)),
	       r->in_use ? "  mounted" : "");
}

static void ls_row_json(struct jsonw *w, const struct ls_row *r)
{
	jsonw_begin_object(w, NULL);
	jsonw_string(w, "revision", r->revision);
	jsonw_string(w, "commit", r->commit);
	jsonw_bool(w, "tree", r->st != NULL);
	if (r->st) {
		jsonw_uint(w, "files", r->st->files);
		jsonw_uint(w, "bytes_total", r->st->total);
		jsonw_uint(w, "bytes_cached", r->st->cached);
		jsonw_double(w, "coverage",
			     r->st->total ? (double)r->st->cached / (double)r->st->total : 1.0);
		jsonw_uint(w, "disk", r->st->disk);
		json_time(w, "last_use", r->st->last_use);
	}
	jsonw_bool(w, "in_use", r->in_use);
	jsonw_end_object(w);
}

static void ls_emit(struct ls_ctx *c, struct jsonw *w, const char *repo_key, const char *revision,
		    const char *commit, size_t *nrows)
{
	const struct cache_view_tree *t = cache_view_find_tree(c->v, repo_key, commit);
	struct ls_row r = {
		.repo_key = repo_key,
		.revision = revision,
		.commit = commit,
		.st = t && !t->unreadable ? &c->stats[t - c->v->trees] : NULL,
		.in_use = cache_view_find_mount(c->v, repo_key, commit) != NULL,
	};

	if (w)
		ls_row_json(w, &r);
	else
		ls_row_text(&r);
	(*nrows)++;
}

/* The rows of one repo: its refs by revision, then its trees that no ref names. */
static void ls_repo(struct ls_ctx *c, struct jsonw *w, const char *repo_key, size_t *nrows)
{
	struct tree_stats rs;

	if (w) {
		jsonw_begin_object(w, NULL);
		jsonw_string(w, "repo", repo_key);
		if (repo_stats(c, repo_key, &rs) == 0) {
			jsonw_uint(w, "disk", rs.disk);
			json_time(w, "last_use", rs.last_use);
		}
		jsonw_bool(w, "in_use", cache_view_find_mount(c->v, repo_key, NULL) != NULL);
		jsonw_begin_array(w, "revisions");
	}
	for (size_t i = 0; i < c->v->nrefs; i++)
		if (!strcmp(c->v->refs[i].repo_key, repo_key))
			ls_emit(c, w, repo_key, c->v->refs[i].revision, c->v->refs[i].commit,
				nrows);
	for (size_t i = 0; i < c->v->ntrees; i++) {
		const struct cache_view_tree *t = &c->v->trees[i];
		bool named = false;

		if (strcmp(t->repo_key, repo_key))
			continue;
		for (size_t k = 0; k < c->v->nrefs && !named; k++)
			named = !strcmp(c->v->refs[k].repo_key, repo_key) &&
				!strcmp(c->v->refs[k].commit, t->commit);
		if (!named)
			ls_emit(c, w, repo_key, NULL, t->commit, nrows);
	}
	if (w) {
		jsonw_end_array(w);
		jsonw_end_object(w);
	}
}

/* Calls ls_repo once per repo key, in key order (refs and trees are each sorted by it). */
static size_t ls_repos(struct ls_ctx *c, struct jsonw *w, size_t *nrows)
{
	size_t i = 0, k = 0, nrepos = 0;
	const char *last = NULL;

	while (i < c->v->nrefs || k < c->v->ntrees) {
		const char *a = i < c->v->nrefs ? c->v->refs[i].repo_key : NULL;
		const char *b = k < c->v->ntrees ? c->v->trees[k].repo_key : NULL;
		const char *next = !a ? b : !b ? a : strcmp(a, b) <= 0 ? a : b;

		if (next == a)
			i++;
		else
			k++;
		if (last && !strcmp(last, next))
			continue;
		last = next;
		ls_repo(c, w, next, nrows);
		nrepos++;
	}
	return nrepos;
}

static void ls_totals(const struct ls_ctx *c, struct jsonw *w, size_t nrows, size_t nrepos)
{
	uint64_t usage = 0, total = 0, avail = 0;
	char a[32], b[32];
	bool space = evict_fs_space(c->v->dir, &total, &avail) == 0;

	for (size_t i = 0; i < c->v->nblobs; i++)
		usage += c->disk[i];
	if (w) {
		jsonw_uint(w, "blobs", c->v->nblobs);
		jsonw_uint(w, "disk", usage);
		if (space)
			jsonw_uint(w, "fs_avail", avail);
		else
			jsonw_null(w, "fs_avail");
		return;
	}
	printf("%zu revision%s of %zu repo%s; %s of data in %zu blob%s", nrows,
	       nrows == 1 ? "" : "s", nrepos, nrepos == 1 ? "" : "s",
	       format_size(usage, a, sizeof(a)), c->v->nblobs, c->v->nblobs == 1 ? "" : "s");
	if (space)
		printf("; %s free", format_size(avail, b, sizeof(b)));
	putchar('\n');
}

int cli_cache_ls(struct cache_view *v, bool json)
{
	struct ls_ctx c = { .v = v };
	struct jsonw w;
	size_t nrows = 0, nrepos;
	int r = ls_prepare(&c);

	if (r < 0)
		goto out;
	if (json) {
		jsonw_init(&w, stdout);
		jsonw_begin_object(&w, NULL);
		jsonw_string(&w, "cache_dir", v->dir);
		jsonw_bool(&w, "index", true);
		jsonw_begin_array(&w, "repos");
	} else {
		printf("%-32s %-12s %-12s %10s %10s %5s %10s  %s\n", "REPO", "REVISION", "COMMIT",
		       "SIZE", "CACHED", "", "ON DISK", "LAST USE");
	}
	nrepos = ls_repos(&c, json ? &w : NULL, &nrows);
	if (json)
		jsonw_end_array(&w);
	ls_totals(&c, json ? &w : NULL, nrows, nrepos);
	if (json) {
		jsonw_end_object(&w);
	}
out:
	free(c.disk);
	free(c.cached);
	free(c.stats);
	return r < 0 ? 1 : 0;
}
