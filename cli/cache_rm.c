/* cache_rm.c: `hffs cache rm REPO[@REV]`: drops the refs and trees REPO[@REV] names from the
 * index, then the blobs nothing left names, refs and trees first so a crash leaves only data
 * nothing names. Refuses while a live mount uses a tree it would drop, and keeps every blob
 * of a live mount. Single thread, under the caller's eviction lock. */
#include "cli/cache_rm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/db.h"
#include "cache/evict.h"
#include "cache/pins.h"
#include "util/jsonw.h"
#include "util/log.h"
#include "util/parse.h"

struct rm_plan {
	const char **revisions; /* refs to drop (borrowed from the view) */
	size_t nrevisions;
	const char **commits; /* trees to drop */
	size_t ncommits;
	struct evict_pins drop; /* blobs of the dropped trees */
};

static void rm_plan_done(struct rm_plan *p)
{
	free(p->revisions);
	free(p->commits);
	evict_pins_done(&p->drop);
}

/* Whether a ref that stays names commit. */
static bool commit_kept_by_ref(const struct cache_view *v, const struct cache_target *t,
			       const char *commit)
{
	for (size_t i = 0; i < v->nrefs; i++)
		if (!strcmp(v->refs[i].repo_key, t->repo_key) &&
		    !cache_target_has_ref(t, &v->refs[i]) && !strcmp(v->refs[i].commit, commit))
			return true;
	return false;
}

/* What `rm` of t drops: its refs, and its trees no other ref of the repo still names. */
static int rm_plan_make(const struct cache_view *v, const struct cache_target *t, struct rm_plan *p)
{
	memset(p, 0, sizeof(*p));
	p->revisions = calloc(v->nrefs + 1, sizeof(*p->revisions));
	p->commits = calloc(v->ntrees + 1, sizeof(*p->commits));
	if (!p->revisions || !p->commits)
		return -ENOMEM;
	for (size_t i = 0; i < v->nrefs; i++)
		if (cache_target_has_ref(t, &v->refs[i]))
			p->revisions[p->nrevisions++] = v->refs[i].revision;
	for (size_t i = 0; i < v->ntrees; i++) {
		const struct cache_view_tree *tr = &v->trees[i];
		int r;

		if (!cache_target_has_tree(t, v, tr) || commit_kept_by_ref(v, t, tr->commit))
			continue;
		p->commits[p->ncommits++] = tr->commit;
		r = pins_add_tree(&p->drop, &tr->tree);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The live mount that uses a tree rm would drop, or NULL. */
static const struct db_mount *rm_conflict(const struct cache_view *v, const struct cache_target *t,
					  const struct rm_plan *p)
{
	for (size_t i = 0; i < p->ncommits; i++) {
		const struct db_mount *m = cache_view_find_mount(v, t->repo_key, p->commits[i]);

		if (m)
			return m;
	}
	return NULL;
}

/* The blobs of trees that stay, and of live mounts: what rm must keep. -EBADMSG when a tree
 * that stays cannot be read (its blobs are unknown, so none is removed). */
static int rm_keep_set(struct cache_view *v, const struct cache_target *t, struct evict_pins *keep)
{
	int r = cache_view_pins(v, keep);

	for (size_t i = 0; r >= 0 && i < v->ntrees; i++) {
		const struct cache_view_tree *tr = &v->trees[i];

		if (cache_target_has_tree(t, v, tr) && !commit_kept_by_ref(v, t, tr->commit))
			continue;
		if (tr->unreadable) {
			log_warn("the file list of %s at %.12s is unreadable: nothing was removed, "
				 "since it may use some",
				 cache_view_repo_display(tr->repo_key), tr->commit);
			return -EBADMSG;
		}
		r = pins_add_tree(keep, &tr->tree);
	}
	return r;
}

/* Drops the refs and trees of the plan, then the blobs nothing else uses. */
static int rm_apply(struct cache_view *v, const struct cache_target *t, struct rm_plan *p,
		    size_t *ret_blobs, uint64_t *ret_freed)
{
	struct evict_pins keep = { 0 };
	int r, k;

	/* What stays is known before anything goes: when it cannot be told, nothing is removed. */
	k = rm_keep_set(v, t, &keep);
	if (k < 0) {
		evict_pins_done(&keep);
		if (k != -EBADMSG)
			log_err("cannot tell which data %s shares with what stays: %s", t->spec,
				strerror(-k));
		return k;
	}
	r = 0;
	for (size_t i = 0; r >= 0 && i < p->nrevisions; i++) {
		r = db_ref_del(v->db, t->repo_key, p->revisions[i]);
		r = r == -ENOENT ? 0 : r;
	}
	for (size_t i = 0; r >= 0 && i < p->ncommits; i++) {
		r = db_tree_del(v->db, t->repo_key, p->commits[i]);
		r = r == -ENOENT ? 0 : r;
	}
	if (r < 0) {
		log_err("cannot remove %s from the cache index: %s", t->spec, strerror(-r));
		evict_pins_done(&keep);
		return r;
	}
	/* Refs and trees first: a crash from here on leaves data nothing names, which eviction
	 * reclaims, never a tree whose data is gone. */
	for (size_t i = 0; i < p->drop.n; i++) {
		uint64_t freed = 0;

		if (evict_pins_has(&keep, p->drop.v[i]))
			continue;
		r = evict_remove(v->cache, p->drop.v[i], &freed);
		if (r == -ENOENT)
			continue;
		if (r < 0) {
			log_err("cannot remove the data of %s: %s", p->drop.v[i], strerror(-r));
			break;
		}
		(*ret_blobs)++;
		*ret_freed += freed;
	}
	evict_pins_done(&keep);
	return r < 0 ? r : 0;
}

static void rm_report(const struct cache_target *t, const struct rm_plan *p, size_t blobs,
		      uint64_t freed, bool json)
{
	struct jsonw w;
	char a[32];

	if (!json) {
		printf("removed %s: %zu revision%s, %zu file list%s, %zu blob%s (%s freed)\n",
		       t->spec, p->nrevisions, p->nrevisions == 1 ? "" : "s", p->ncommits,
		       p->ncommits == 1 ? "" : "s", blobs, blobs == 1 ? "" : "s",
		       format_size(freed, a, sizeof(a)));
		return;
	}
	jsonw_init(&w, stdout);
	jsonw_begin_object(&w, NULL);
	jsonw_string(&w, "repo", t->repo_key);
	jsonw_string(&w, "revision", t->rev);
	jsonw_begin_array(&w, "revisions_removed");
	for (size_t i = 0; i < p->nrevisions; i++)
		jsonw_string(&w, NULL, p->revisions[i]);
	jsonw_end_array(&w);
	jsonw_begin_array(&w, "commits_removed");
	for (size_t i = 0; i < p->ncommits; i++)
		jsonw_string(&w, NULL, p->commits[i]);
	jsonw_end_array(&w);
	jsonw_uint(&w, "blobs_removed", blobs);
	jsonw_uint(&w, "bytes_freed", freed);
	jsonw_end_object(&w);
}

int cli_cache_rm(struct cache_view *v, const struct cache_target *t, bool json)
{
	struct rm_plan p;
	const struct db_mount *m;
	uint64_t freed = 0;
	size_t blobs = 0;
	int r = rm_plan_make(v, t, &p);

	if (r < 0) {
		log_err("out of memory");
	} else if (!p.nrevisions && !p.ncommits) {
		log_err("%s is not in the cache at %s", t->spec, v->dir);
		r = -ENOENT;
	} else if ((m = rm_conflict(v, t, &p))) {
		log_err("%s is in use by the mount at '%s' (pid %d); unmount it first", t->spec,
			m->mountpoint, (int)m->pid);
		r = -EBUSY;
	} else {
		r = rm_apply(v, t, &p, &blobs, &freed);
		if (r >= 0)
			rm_report(t, &p, blobs, freed, json);
	}
	rm_plan_done(&p);
	return r < 0 ? 1 : 0;
}
