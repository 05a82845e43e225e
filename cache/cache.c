/* cache.c: the cache handle (a directory and its index) and the mounts a cache serves. Any
 * thread. */
#include "cache/cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache/blob.h"
#include "util/proc.h"

/* Invariant: dir and db are set for the handle's life. */
struct cache {
	char *dir;
	struct cache_db *db;
};

int cache_open(const char *dir, struct cache **ret)
{
	struct cache *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->dir = strdup(dir);
	r = c->dir ? db_open(dir, &c->db) : -ENOMEM;
	if (r < 0) {
		free(c->dir);
		free(c);
		return r;
	}
	*ret = c;
	return 0;
}

struct cache *cache_close(struct cache *c)
{
	if (!c)
		return NULL;
	db_close(c->db);
	free(c->dir);
	free(c);
	return NULL;
}

const char *cache_dir(const struct cache *c)
{
	return c->dir;
}

struct cache_db *cache_index(const struct cache *c)
{
	return c->db;
}

int cache_blob_path(const struct cache *c, const char *cid, char *buf, size_t len)
{
	return blob_path(c->dir, cid, buf, len);
}

struct cache_mount_list {
	struct db_mount *v;
	size_t n;
	bool drop_stale;
	size_t nstale;
	struct db_mount *stale;
};

static int cache_mount_add(struct db_mount **v, size_t *n, const struct db_mount *m)
{
	struct db_mount *p = reallocarray(*v, *n + 1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	*v = p;
	p[(*n)++] = *m;
	return 0;
}

static int cache_collect_mount(void *ud, const struct db_mount *m)
{
	struct cache_mount_list *l = ud;

	if (proc_hffs_alive(m->pid))
		return cache_mount_add(&l->v, &l->n, m);
	return l->drop_stale ? cache_mount_add(&l->stale, &l->nstale, m) : 0;
}

int cache_live_mounts(struct cache_db *db, bool drop_stale, struct db_mount **ret, size_t *ret_n)
{
	struct cache_mount_list l = { .drop_stale = drop_stale };
	int r = db_mount_foreach(db, cache_collect_mount, &l);

	/* After the walk: its callback may not write to the index. */
	for (size_t i = 0; r >= 0 && i < l.nstale; i++) {
		(void)db_mount_del(db, l.stale[i].mountpoint);
		(void)db_live_del(db, l.stale[i].mountpoint);
	}
	free(l.stale);
	if (r < 0) {
		free(l.v);
		l.v = NULL;
		l.n = 0;
	}
	*ret = l.v;
	*ret_n = l.n;
	return r < 0 ? r : 0;
}
