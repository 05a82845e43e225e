/* inode.c: the immutable inode table of one mounted commit. Built on the mount thread before
 * the FUSE loop starts; read-only afterwards. Knows nothing of FUSE or the network. The
 * build borrows the Hub tree's paths and keeps only three allocations when it is done. */
#include "fs/inode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Invariant: v[i].ino == i + 1; v[0] is the root; a child's parent is a directory; kids holds
 * every inode but the root, grouped by parent, each group sorted by name without twins. */
struct inode_table {
	struct inode *v;
	size_t n;
	uint32_t *kids;
	char *pool; /* every path and content id, NUL-terminated */
};

/* An inode while the table is built: its path borrowed from the Hub tree. */
struct node {
	const char *path;
	uint32_t len;
	uint32_t parent; /* ino */
	const struct hub_entry *h; /* NULL for a directory */
};

/* The nodes so far and an open-addressing set of the directories among them, by path. */
struct build {
	struct node *v;
	size_t n, cap;
	uint32_t *slot; /* ino of a directory, 0: empty; a power of two long */
	size_t nslot, ndirs;
};

static uint64_t hash_path(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
	return h;
}

static size_t slot_of(const struct build *b, const char *path, size_t len)
{
	size_t i = hash_path(path, len) & (b->nslot - 1);

	for (;; i = (i + 1) & (b->nslot - 1)) {
		const struct node *d = b->slot[i] ? &b->v[b->slot[i] - 1] : NULL;

		if (!d || (d->len == len && !memcmp(d->path, path, len)))
			return i;
	}
}

static int grow_slots(struct build *b)
{
	size_t nslot = b->nslot ? b->nslot * 2 : 1024;
	uint32_t *old = b->slot;
	size_t nold = b->nslot;

	b->slot = calloc(nslot, sizeof(*b->slot));
	if (!b->slot) {
		b->slot = old;
		return -ENOMEM;
	}
	b->nslot = nslot;
	for (size_t i = 0; i < nold; i++)
		if (old[i]) {
			const struct node *d = &b->v[old[i] - 1];

			b->slot[slot_of(b, d->path, d->len)] = old[i];
		}
	free(old);
	return 0;
}

/* Appends a node; returns its ino, 0 on OOM or when the table would outgrow uint32_t. */
static uint32_t add_node(struct build *b, const char *path, size_t len, uint32_t parent,
			 const struct hub_entry *h)
{
	if (b->n >= UINT32_MAX - 1)
		return 0;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		struct node *v = reallocarray(b->v, cap, sizeof(*v));

		if (!v)
			return 0;
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n] = (struct node){ .path = path, .len = (uint32_t)len, .parent = parent, .h = h };
	return (uint32_t)++b->n;
}

/* The ino of directory path (len bytes), created with its parents when not seen yet. 0 on
 * OOM. Recursion is bounded by the path's segments (at most 2048). */
static uint32_t dir_ino(struct build *b, const char *path, size_t len)
{
	const char *slash;
	uint32_t parent, ino;
	size_t i;

	if ((b->ndirs + 1) * 2 > b->nslot && grow_slots(b) < 0)
		return 0;
	i = slot_of(b, path, len);
	if (b->slot[i])
		return b->slot[i];
	slash = memrchr(path, '/', len);
	parent = dir_ino(b, path, slash ? (size_t)(slash - path) : 0);
	if (!parent)
		return 0;
	ino = add_node(b, path, len, parent, NULL);
	if (!ino)
		return 0;
	/* The parent's creation may have grown the set: find the slot again. */
	b->slot[slot_of(b, path, len)] = ino;
	b->ndirs++;
	return ino;
}

static int collect(struct build *b, const struct hub_tree *tree)
{
	if (grow_slots(b) < 0 || !add_node(b, "", 0, 1, NULL))
		return -ENOMEM;
	b->slot[slot_of(b, "", 0)] = 1;
	b->ndirs = 1;
	for (size_t i = 0; i < tree->n; i++) {
		const struct hub_entry *h = &tree->v[i];
		size_t len = strlen(h->path);
		const char *slash = memrchr(h->path, '/', len);
		uint32_t parent;

		if (h->is_dir) {
			if (!dir_ino(b, h->path, len))
				return b->n >= UINT32_MAX - 1 ? -EFBIG : -ENOMEM;
			continue;
		}
		parent = dir_ino(b, h->path, slash ? (size_t)(slash - h->path) : 0);
		if (!parent || !add_node(b, h->path, len, parent, h))
			return b->n >= UINT32_MAX - 1 ? -EFBIG : -ENOMEM;
	}
	return 0;
}

static int cmp_child(const void *a, const void *b, void *ud)
{
	const struct inode *v = ud;

	return strcmp(v[*(const uint32_t *)a - 1].name, v[*(const uint32_t *)b - 1].name);
}

/* Fills the records from the nodes, copying the strings into one pool. */
static int fill(struct inode_table *t, const struct build *b)
{
	size_t bytes = 0;
	char *p;

	for (size_t i = 0; i < b->n; i++)
		bytes += b->v[i].len + 1 + (b->v[i].h ? strlen(hub_entry_cid(b->v[i].h)) : 0) + 1;
	t->v = calloc(b->n, sizeof(*t->v));
	t->pool = malloc(bytes);
	t->kids = calloc(b->n, sizeof(*t->kids));
	if (!t->v || !t->pool || !t->kids)
		return -ENOMEM;
	t->n = b->n;
	p = t->pool;
	for (size_t i = 0; i < b->n; i++) {
		const struct node *nd = &b->v[i];
		struct inode *e = &t->v[i];
		const char *slash;

		e->ino = (uint32_t)(i + 1);
		e->parent = nd->parent;
		e->is_dir = !nd->h;
		e->path = memcpy(p, nd->path, nd->len);
		p[nd->len] = 0;
		p += nd->len + 1;
		slash = strrchr(e->path, '/');
		e->name = slash ? slash + 1 : e->path;
		e->cid = p;
		if (nd->h) {
			const char *cid = hub_entry_cid(nd->h);

			e->size = nd->h->size;
			e->is_lfs = nd->h->is_lfs;
			p = stpcpy(p, cid);
		}
		*p++ = 0;
	}
	return 0;
}

/* Groups every inode but the root under its parent, sorted by name. -EBADMSG for a name
 * listed twice in one directory (a path that is both file and directory). */
static int link_children(struct inode_table *t)
{
	size_t at = 0;

	for (size_t i = 1; i < t->n; i++)
		t->v[t->v[i].parent - 1].nchildren++;
	for (size_t i = 0; i < t->n; i++) {
		struct inode *d = &t->v[i];

		d->children = d->nchildren ? t->kids + at : NULL;
		at += d->nchildren;
		d->nchildren = 0;
	}
	for (size_t i = 1; i < t->n; i++) {
		struct inode *p = &t->v[t->v[i].parent - 1];

		((uint32_t *)p->children)[p->nchildren++] = t->v[i].ino;
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct inode *d = &t->v[i];

		if (d->nchildren > 1)
			qsort_r((uint32_t *)d->children, d->nchildren, sizeof(uint32_t), cmp_child,
				t->v);
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
	struct build b = { 0 };
	int r = -ENOMEM;

	if (!t)
		goto out_free_build;
	r = collect(&b, tree);
	if (r < 0)
		goto out_free_build;
	/* The set's memory goes before the table's comes. */
	free(b.slot);
	b.slot = NULL;
	r = fill(t, &b);
	if (r < 0)
		goto out_free_build;
	free(b.v);
	b.v = NULL;
	r = link_children(t);
	if (r < 0)
		goto out_free_build;
	*ret = t;
	return 0;
out_free_build:
	free(b.slot);
	free(b.v);
	inode_table_free(t);
	return r;
}

struct inode_table *inode_table_free(struct inode_table *t)
{
	if (!t)
		return NULL;
	free(t->v);
	free(t->kids);
	free(t->pool);
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

bool inode_has_data(const struct inode *f)
{
	return !f->is_dir && f->size > 0;
}
