/* cache_gc.c: `hffs cache gc`: removes orphans (data files the index does not know, records
 * of data files that are gone), evicts least recently used blobs to the budget, never one a
 * live mount uses, then compacts the index when nothing else has it open. Single thread; the
 * removals under the eviction lock, with the pins computed under it. */
#include "cli/cache_gc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cache/db.h"
#include "cache/evict.h"
#include "cli/cli.h"
#include "util/cleanup.h"
#include "util/jsonw.h"
#include "util/log.h"
#include "util/parse.h"

struct gc_report {
	struct evict_orphans orphans;
	struct evict_plan plan;
	struct evict_result res;
	struct evict_limits budget;
	uint64_t avail_after;
	bool compacted;
	uint64_t index_before, index_after;
	const char *compact_skipped; /* why not, or NULL */
};

/* Orphans, then eviction, under the eviction lock with the pins computed under it. */
static int gc_evict(struct cache_view *v, struct gc_report *g)
{
	struct evict_pins pins = { 0 };
	int fd, r;

	fd = evict_lock(v->dir, true);
	if (fd < 0) {
		log_err("cannot take the eviction lock of '%s': %s", v->dir, strerror(-fd));
		return fd;
	}
	r = cache_view_load(v);
	if (r >= 0)
		r = cache_view_pins(v, &pins);
	if (r >= 0) {
		r = evict_orphans(v->cache, &pins, &g->orphans);
		if (r < 0)
			log_err("cannot remove orphaned data in '%s': %s", v->dir, strerror(-r));
	}
	if (r >= 0) {
		r = evict_to_budget(v->cache, &g->budget, &pins, &g->plan, &g->res);
		if (r < 0)
			log_err("eviction stopped: %s", strerror(-r));
	}
	close(fd);
	evict_pins_done(&pins);
	return r;
}

static void gc_compact(struct cache_view *v, struct gc_report *g)
{
	int r;

	if (v->nmounts) {
		g->compact_skipped = "a live mount uses the cache";
		return;
	}
	r = db_compact(v->db, &g->index_before, &g->index_after);
	if (r == -EBUSY)
		g->compact_skipped = "another process has the index open";
	else if (r < 0)
		g->compact_skipped = strerror(-r);
	else
		g->compacted = true;
}

static void gc_report_text(const struct gc_report *g)
{
	const struct evict_plan *p = &g->plan;
	char a[32], b[32], c[32], d[32];

	if (g->orphans.files || g->orphans.records)
		printf("orphans: %zu data file%s without a record removed (%s), %zu record%s of "
		       "missing data dropped\n",
		       g->orphans.files, g->orphans.files == 1 ? "" : "s",
		       format_size(g->orphans.file_bytes, a, sizeof(a)), g->orphans.records,
		       g->orphans.records == 1 ? "" : "s");
	else
		printf("orphans: none\n");
	printf("evicted %zu blob%s, least recently used first: %s freed\n", g->res.removed,
	       g->res.removed == 1 ? "" : "s", format_size(g->res.freed, a, sizeof(a)));
	printf("data now %s (max %s); %s free (floor %s)\n",
	       format_size(p->usage - MIN(p->usage, g->res.freed), a, sizeof(a)),
	       g->budget.max_size == EVICT_NO_LIMIT ? "none" :
						      format_size(g->budget.max_size, b, sizeof(b)),
	       format_size(g->avail_after, c, sizeof(c)),
	       format_size(g->budget.min_free, d, sizeof(d)));
	if (!p->met)
		printf("the budget is not met: %s in %zu blob%s belong to live mounts\n",
		       format_size(p->pinned, a, sizeof(a)), p->npinned,
		       p->npinned == 1 ? "" : "s");
	if (g->compacted)
		printf("index compacted: %s -> %s\n", format_size(g->index_before, a, sizeof(a)),
		       format_size(g->index_after, b, sizeof(b)));
	else
		printf("index not compacted: %s\n", g->compact_skipped);
}

static void gc_report_json(const struct cache_view *v, const struct gc_report *g)
{
	const struct evict_plan *p = &g->plan;
	struct jsonw w;

	jsonw_init(&w, stdout);
	jsonw_begin_object(&w, NULL);
	jsonw_string(&w, "cache_dir", v->dir);
	jsonw_bool(&w, "index", true);
	jsonw_uint(&w, "orphan_files", g->orphans.files);
	jsonw_uint(&w, "orphan_bytes", g->orphans.file_bytes);
	jsonw_uint(&w, "orphan_records", g->orphans.records);
	jsonw_uint(&w, "evicted", g->res.removed);
	jsonw_uint(&w, "bytes_freed", g->res.freed);
	jsonw_uint(&w, "disk", p->usage - MIN(p->usage, g->res.freed));
	jsonw_uint(&w, "fs_avail", g->avail_after);
	if (g->budget.max_size == EVICT_NO_LIMIT)
		jsonw_null(&w, "max_size");
	else
		jsonw_uint(&w, "max_size", g->budget.max_size);
	jsonw_uint(&w, "min_free", g->budget.min_free);
	jsonw_bool(&w, "met", p->met);
	jsonw_uint(&w, "pinned_blobs", p->npinned);
	jsonw_uint(&w, "pinned_bytes", p->pinned);
	jsonw_bool(&w, "compacted", g->compacted);
	if (g->compacted) {
		jsonw_uint(&w, "index_before", g->index_before);
		jsonw_uint(&w, "index_after", g->index_after);
	} else {
		jsonw_null(&w, "index_before");
		jsonw_null(&w, "index_after");
	}
	jsonw_string(&w, "compact_skipped", g->compact_skipped);
	jsonw_end_object(&w);
}

int cli_cache_gc(struct cache_view *v, const char *max_size, const char *min_free, bool json)
{
	struct gc_report g = { .plan.met = true };
	uint64_t total;
	int r = cli_budget("--max-size", max_size, min_free, v->dir, &g.budget);

	if (r)
		return r;
	r = gc_evict(v, &g);
	if (r >= 0) {
		gc_compact(v, &g);
		if (evict_fs_space(v->dir, &total, &g.avail_after) < 0)
			g.avail_after = 0;
		if (json)
			gc_report_json(v, &g);
		else
			gc_report_text(&g);
	}
	evict_plan_done(&g.plan);
	return r < 0 ? 1 : 0;
}
