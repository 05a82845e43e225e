/* cache_view.c: the index of a cache directory as the `hffs cache` subcommands read it: refs,
 * trees (parsed), live mounts, blob records. Single thread. Only reads: what removes goes
 * through cache/evict and cache/db in the subcommands. */
#include "cli/cache_view.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cache/pins.h"
#include "util/log.h"

int cache_view_open(struct cache_view *v, const char *dir)
{
	char path[PATH_MAX];
	int r;

	v->dir = dir;
	if (snprintf(path, sizeof(path), "%s/index/data.mdb", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (access(path, F_OK) < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	r = cache_open(dir, &v->cache);
	if (r >= 0)
		v->db = cache_index(v->cache);
	if (r == -EPROTONOSUPPORT)
		log_err("the cache index in '%s' was written by another version of hffs (this one "
			"reads schema %u); it was not touched: use that version, or remove the "
			"directory",
			dir, (unsigned)DB_SCHEMA_VERSION);
	else if (r < 0)
		log_err("cannot open the cache index in '%s': %s", dir, strerror(-r));
	return r < 0 ? r : 1;
}

/* ---- refs, trees, live mounts ---- */

static int collect_ref(void *ud, const char *repo_key, const char *revision, const char *commit)
{
	struct cache_view *v = ud;
	struct cache_view_ref *p = reallocarray(v->refs, v->nrefs + 1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	v->refs = p;
	p = &v->refs[v->nrefs];
	p->repo_key = strdup(repo_key);
	p->revision = strdup(revision);
	memcpy(p->commit, commit, sizeof(p->commit));
	if (!p->repo_key || !p->revision) {
		free(p->repo_key);
		free(p->revision);
		return -ENOMEM;
	}
	v->nrefs++;
	return 0;
}

static int collect_tree(void *ud, const char *repo_key, const char *commit, const void *data,
			size_t len)
{
	struct cache_view *v = ud;
	struct cache_view_tree *p = reallocarray(v->trees, v->ntrees + 1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	v->trees = p;
	p = &v->trees[v->ntrees];
	memset(p, 0, sizeof(*p));
	p->repo_key = strdup(repo_key);
	if (!p->repo_key)
		return -ENOMEM;
	snprintf(p->commit, sizeof(p->commit), "%s", commit);
	p->unreadable = tree_decode(data, len, &p->tree) < 0;
	v->ntrees++;
	return 0;
}

/* Forgets the refs, trees and mounts read. */
static void view_clear(struct cache_view *v)
{
	for (size_t i = 0; i < v->nrefs; i++) {
		free(v->refs[i].repo_key);
		free(v->refs[i].revision);
	}
	for (size_t i = 0; i < v->ntrees; i++) {
		free(v->trees[i].repo_key);
		tree_done(&v->trees[i].tree);
	}
	free(v->refs);
	free(v->trees);
	free(v->mounts);
	v->refs = NULL;
	v->trees = NULL;
	v->mounts = NULL;
	v->nrefs = v->ntrees = v->nmounts = 0;
}

void cache_view_done(struct cache_view *v)
{
	view_clear(v);
	free(v->blobs);
	v->blobs = NULL;
	v->nblobs = v->blobs_cap = 0;
	v->db = NULL;
	v->cache = cache_close(v->cache);
}

int cache_view_load(struct cache_view *v)
{
	int r;

	view_clear(v);
	r = db_ref_foreach(v->db, collect_ref, v);
	if (r >= 0)
		r = db_tree_foreach(v->db, collect_tree, v);
	if (r >= 0)
		r = cache_live_mounts(v->db, false, &v->mounts, &v->nmounts);
	if (r < 0)
		log_err("cannot read the cache index in '%s': %s", v->dir, strerror(-r));
	return r;
}

const struct cache_view_tree *cache_view_find_tree(const struct cache_view *v, const char *repo_key,
						   const char *commit)
{
	for (size_t i = 0; i < v->ntrees; i++)
		if (!strcmp(v->trees[i].repo_key, repo_key) && !strcmp(v->trees[i].commit, commit))
			return &v->trees[i];
	return NULL;
}

const struct db_mount *cache_view_find_mount(const struct cache_view *v, const char *repo_key,
					     const char *commit)
{
	for (size_t i = 0; i < v->nmounts; i++)
		if (!strcmp(v->mounts[i].repo_key, repo_key) &&
		    (!commit || !strcmp(v->mounts[i].commit, commit)))
			return &v->mounts[i];
	return NULL;
}

int cache_view_pins(struct cache_view *v, struct evict_pins *pins)
{
	char why[512] = "";
	int r = pins_live_mounts(v->db, pins, why, sizeof(why));

	if (r == -EBADMSG)
		log_err("%s; nothing was removed", why);
	else if (r < 0)
		log_err("cannot read the mounts of '%s': %s", v->dir, strerror(-r));
	return r;
}

/* ---- blob records ---- */

static int collect_blob(void *ud, const char *cid, const struct blob_rec *rec)
{
	struct cache_view *v = ud;

	if (v->nblobs == v->blobs_cap) {
		size_t cap = v->blobs_cap ? v->blobs_cap * 2 : 256;
		struct cache_view_blob *p = reallocarray(v->blobs, cap, sizeof(*p));

		if (!p)
			return -ENOMEM;
		v->blobs = p;
		v->blobs_cap = cap;
	}
	snprintf(v->blobs[v->nblobs].cid, CID_MAX, "%s", cid);
	v->blobs[v->nblobs++].rec = *rec;
	return 0;
}

int cache_view_load_blobs(struct cache_view *v)
{
	int r = db_blob_foreach(v->db, collect_blob, v);

	if (r < 0)
		log_err("cannot read the blob records of '%s': %s", v->dir, strerror(-r));
	return r;
}

static int blob_cmp(const void *key, const void *blob)
{
	return strcmp(key, ((const struct cache_view_blob *)blob)->cid);
}

const struct cache_view_blob *cache_view_find_blob(const struct cache_view *v, const char *cid)
{
	return v->nblobs ? bsearch(cid, v->blobs, v->nblobs, sizeof(*v->blobs), blob_cmp) : NULL;
}

/* ---- repo names ---- */

const char *cache_view_repo_display(const char *repo_key)
{
	return strncmp(repo_key, "models/", 7) ? repo_key : repo_key + 7;
}
