/* Unit tests of fs/inode: implied directories, sorted children, lookups, conflicts. */
#include <errno.h>
#include <string.h>

#include "fs/inode.h"
#include "tests/unit/check.h"

static void add(struct hub_tree *t, const char *path, bool dir, uint64_t size)
{
	struct hub_entry *e;

	t->v = realloc(t->v, (t->n + 1) * sizeof(*t->v));
	e = &t->v[t->n++];
	memset(e, 0, sizeof(*e));
	e->path = strdup(path);
	e->is_dir = dir;
	e->size = size;
	memset(e->oid, 'a', 40);
}

static void test_tree(void)
{
	struct hub_tree t = { 0 };
	struct inode_table *it = NULL;
	const struct inode *root, *d, *f, *deep;

	add(&t, "config.json", false, 10);
	add(&t, "nested/deep/dir/file.txt", false, 3); /* parents implied */
	add(&t, "nested", true, 0); /* listed after its child */
	add(&t, "b.txt", false, 0);
	add(&t, "a.txt", false, 1);
	add(&t, "only-dirs/x", true, 0);
	ASSERT_OK(inode_table_new(&t, &it));
	/* root, config.json, nested, nested/deep, nested/deep/dir, file.txt, b, a, only-dirs, x */
	ASSERT_EQ(inode_count(it), 10);
	root = inode_get(it, 1);
	ASSERT_TRUE(root->is_dir);
	ASSERT_EQ(root->nchildren, 5);
	/* children sorted by name */
	ASSERT_STR_EQ(inode_get(it, root->children[0])->name, "a.txt");
	ASSERT_STR_EQ(inode_get(it, root->children[1])->name, "b.txt");
	ASSERT_STR_EQ(inode_get(it, root->children[4])->name, "only-dirs");
	d = inode_lookup(it, 1, "nested");
	ASSERT_NOT_NULL(d);
	ASSERT_TRUE(d->is_dir);
	ASSERT_EQ(d->nchildren, 1);
	deep = inode_lookup(it, inode_lookup(it, d->ino, "deep")->ino, "dir");
	ASSERT_NOT_NULL(deep);
	f = inode_lookup(it, deep->ino, "file.txt");
	ASSERT_NOT_NULL(f);
	ASSERT_STR_EQ(f->path, "nested/deep/dir/file.txt");
	ASSERT_EQ(f->size, 3);
	ASSERT_EQ(f->parent, deep->ino);
	ASSERT_NULL(inode_lookup(it, 1, "missing"));
	ASSERT_NULL(inode_lookup(it, f->ino, "x")); /* a file has no children */
	ASSERT_NULL(inode_get(it, 0));
	ASSERT_NULL(inode_get(it, 11));
	inode_table_free(it);
	hub_tree_done(&t);
}

static void test_file_and_dir_conflict(void)
{
	struct hub_tree t = { 0 };
	struct inode_table *it = NULL;

	add(&t, "a", false, 1);
	add(&t, "a/b", false, 1);
	ASSERT_EQ(inode_table_new(&t, &it), -EBADMSG);
	ASSERT_NULL(it);
	hub_tree_done(&t);
}

int main(void)
{
	RUN(test_tree);
	RUN(test_file_and_dir_conflict);
	return 0;
}
