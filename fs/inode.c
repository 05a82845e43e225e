/* inode.c: the immutable inode table of one mounted commit. Built on the mount thread before
 * the FUSE loop starts; read-only afterwards. Knows nothing of FUSE or the network. */
#include "fs/inode.h"

#include <errno.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"

/* Invariant: v[i].ino == i + 1; v[0] is the root; a child's parent is a directory. */
struct inode_table {
	struct inode *v;
	size_t n, cap;
};

static const struct inode_table *sort_table; /* qsort has no user pointer; mount thread only */

static int cmp_child(const void *a, const void *b)
{
	const struct inode *x = &sort_table->v[*(const uint64_t *)a - 1];
	const struct inode *y = &sort_table->v[*(const uint64_t *)b - 1];

	return strcmp(x->name, y->name);
}

static struct inode *table_add(struct inode_table *t, const char *path, bool is_dir)
{
	struct inode *e;
	const char *slash;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct inode *v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		t->v = v;
		t->cap = cap;
	}
	e = &t->v[t->n];
	memset(e, 0, sizeof(*e));
	e->path = strdup(path);
	if (!e->path)
		return NULL;
	slash = strrchr(e->path, '/');
	e->name = slash ? slash + 1 : e->path;
	e->is_dir = is_dir;
	e->ino = ++t->n;
	return e;
}

/* Finds the directory inode of path using the hash table of directory paths, creating it
 * (and its parents) when the tree did not list it. Returns its ino, 0 on error. */
static uint64_t dir_ino(struct inode_table *t, struct hsearch_data *dirs, const char *path)
{
	ENTRY q = { .key = (char *)path }, *found;
	_cleanup_free_ char *parent_path = NULL;
	const char *slash;
	uint64_t parent, ino;
	struct inode *e;

	if (hsearch_r(q, FIND, &found, dirs))
		return (uint64_t)(uintptr_t)found->data;
	slash = strrchr(path, '/');
	parent_path = strndup(path, slash ? (size_t)(slash - path) : 0);
	if (!parent_path)
		return 0;
	parent = dir_ino(t, dirs, parent_path);
	if (!parent)
		return 0;
	e = table_add(t, path, true);
	if (!e)
		return 0;
	e->parent = parent;
	ino = e->ino;
	q.key = e->path;
	q.data = (void *)(uintptr_t)ino;
	if (!hsearch_r(q, ENTER, &found, dirs))
		return 0;
	return ino;
}

static int link_children(struct inode_table *t)
{
	size_t *count = calloc(t->n + 1, sizeof(*count));

	if (!count)
		return -ENOMEM;
	for (size_t i = 1; i < t->n; i++)
		count[t->v[i].parent]++;
	for (size_t i = 0; i < t->n; i++) {
		struct inode *d = &t->v[i];

		if (!d->is_dir || !count[d->ino])
			continue;
		d->children = malloc(count[d->ino] * sizeof(uint64_t));
		if (!d->children) {
			free(count);
			return -ENOMEM;
		}
	}
	for (size_t i = 1; i < t->n; i++) {
		struct inode *p = &t->v[t->v[i].parent - 1];

		p->children[p->nchildren++] = t->v[i].ino;
	}
	free(count);
	sort_table = t;
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].nchildren > 1)
			qsort(t->v[i].children, t->v[i].nchildren, sizeof(uint64_t), cmp_child);
	sort_table = NULL;
	return 0;
}

/* Rejects a name listed twice in one directory (a path that is both file and directory). */
static int check_unique(const struct inode_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct inode *d = &t->v[i];

		for (size_t j = 1; j < d->nchildren; j++)
			if (!strcmp(t->v[d->children[j] - 1].name,
				    t->v[d->children[j - 1] - 1].name))
				return -EBADMSG;
	}
	return 0;
}

int inode_table_new(const struct hub_tree *tree, struct inode_table **ret)
{
	struct inode_table *t = calloc(1, sizeof(*t));
	struct hsearch_data dirs = { 0 };
	int r = -ENOMEM;

	if (!t || !hcreate_r(tree->n * 2 + 16, &dirs))
		goto out_free_table;
	if (!table_add(t, "", true))
		goto out_free_table;
	t->v[0].parent = 1;
	if (!hsearch_r((ENTRY){ .key = t->v[0].path, .data = (void *)(uintptr_t)1 }, ENTER,
		       &(ENTRY *){ NULL }, &dirs))
		goto out_free_table;
	for (size_t i = 0; i < tree->n; i++) {
		const struct hub_entry *h = &tree->v[i];
		const char *slash = strrchr(h->path, '/');
		_cleanup_free_ char *parent_path =
			strndup(h->path, slash ? (size_t)(slash - h->path) : 0);
		uint64_t parent;
		struct inode *e;

		if (!parent_path)
			goto out_free_table;
		if (h->is_dir) {
			if (!dir_ino(t, &dirs, h->path))
				goto out_free_table;
			continue;
		}
		parent = dir_ino(t, &dirs, parent_path);
		if (!parent)
			goto out_free_table;
		e = table_add(t, h->path, false);
		if (!e)
			goto out_free_table;
		e->parent = parent;
		e->size = h->size;
		e->is_lfs = h->is_lfs;
		snprintf(e->cid, sizeof(e->cid), "%s", hub_entry_cid(h));
	}
	r = link_children(t);
	if (r < 0)
		goto out_free_table;
	r = check_unique(t);
	if (r < 0)
		goto out_free_table;
	hdestroy_r(&dirs);
	*ret = t;
	return 0;
out_free_table:
	if (dirs.table)
		hdestroy_r(&dirs);
	inode_table_free(t);
	return r;
}

struct inode_table *inode_table_free(struct inode_table *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].path);
		free(t->v[i].children);
	}
	free(t->v);
	free(t);
	return NULL;
}

const struct inode *inode_get(const struct inode_table *t, uint64_t ino)
{
	if (ino < 1 || ino > t->n)
		return NULL;
	return &t->v[ino - 1];
}

const struct inode *inode_lookup(const struct inode_table *t, uint64_t parent, const char *name)
{
	const struct inode *d = inode_get(t, parent);
	size_t lo = 0, hi;

	if (!d || !d->is_dir)
		return NULL;
	hi = d->nchildren;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct inode *c = &t->v[d->children[mid] - 1];
		int cmp = strcmp(name, c->name);

		if (!cmp)
			return c;
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

size_t inode_count(const struct inode_table *t)
{
	return t->n;
}
