/* pins.c: live mounts' blobs, from the mount records and the cached trees. */
#include "fs/pins.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/hub_json.h"
#include "util/cleanup.h"
#include "util/proc.h"

int pins_add_tree(struct evict_pins *pins, const struct hub_tree *tree)
{
	for (size_t i = 0; i < tree->n; i++) {
		const struct hub_entry *e = &tree->v[i];
		int r = hub_entry_has_data(e) ? evict_pins_add(pins, hub_entry_cid(e)) : 0;

		if (r < 0)
			return r;
	}
	return 0;
}

struct live_list {
	struct db_mount *v;
	size_t n;
};

static int collect_live(void *ud, const struct db_mount *m)
{
	struct live_list *l = ud;
	struct db_mount *p;

	if (!proc_hffs_alive(m->pid))
		return 0;
	p = reallocarray(l->v, l->n + 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	l->v = p;
	l->v[l->n++] = *m;
	return 0;
}

/* The blobs of one mount's tree; -EBADMSG when the tree is missing or unreadable. */
static int add_mount(struct cache_db *db, const struct db_mount *m, struct evict_pins *pins,
		     char *why, size_t whylen)
{
	_cleanup_free_ char *json = NULL;
	struct hub_tree tree = { 0 };
	size_t len = 0;
	int r = db_tree_get(db, m->repo_key, m->commit, &json, &len);

	if (r == 0 && hub_json_tree_page(json, len, &tree) < 0)
		r = -EBADMSG;
	if (r == 0)
		r = pins_add_tree(pins, &tree);
	hub_tree_done(&tree);
	if ((r == -ENOENT || r == -EBADMSG) && why)
		snprintf(why, whylen,
			 "cannot tell which files the mount at '%s' uses: the file list of %s at "
			 "%.12s is %s",
			 m->mountpoint, m->repo_key, m->commit,
			 r == -ENOENT ? "missing" : "unreadable");
	return r == -ENOENT ? -EBADMSG : r;
}

int pins_live_mounts(struct cache_db *db, struct evict_pins *pins, char *why, size_t whylen)
{
	struct live_list l = { 0 };
	int r = db_mount_foreach(db, collect_live, &l);

	for (size_t i = 0; r >= 0 && i < l.n; i++)
		r = add_mount(db, &l.v[i], pins, why, whylen);
	free(l.v);
	return r < 0 ? r : 0;
}
