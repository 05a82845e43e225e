/* pins.c: live mounts' blobs, from the mount records and the cached trees. Any thread. */
#include "cache/pins.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cache/cache.h"

int pins_add_tree(struct evict_pins *pins, const struct tree *tree)
{
	for (size_t i = 0; i < tree->n; i++) {
		const struct tree_entry *e = &tree->v[i];
		int r = tree_entry_has_data(e) ? evict_pins_add(pins, e->cid) : 0;

		if (r < 0)
			return r;
	}
	return 0;
}

/* The blobs of one mount's tree; -EBADMSG when the tree is missing or unreadable. */
static int pins_add_mount(struct cache_db *db, const struct db_mount *m, struct evict_pins *pins,
			  char *why, size_t whylen)
{
	struct tree tree;
	int r = tree_get(db, m->repo_key, m->commit, &tree);

	if (r == 0)
		r = pins_add_tree(pins, &tree);
	tree_done(&tree);
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
	struct db_mount *v = NULL;
	size_t n = 0;
	int r = cache_live_mounts(db, false, &v, &n);

	for (size_t i = 0; r >= 0 && i < n; i++)
		r = pins_add_mount(db, &v[i], pins, why, whylen);
	free(v);
	return r < 0 ? r : 0;
}
