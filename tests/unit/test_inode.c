/* Unit tests of fs/inode: implied directories, sorted children, lookups, conflicts, and the
 * compact table's edges: byte order, NFC/NFD twins, long names, deep and wide trees. */
#include <errno.h>
#include <stdio.h>
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

static void test_dir_then_file_conflict(void)
{
	struct hub_tree t = { 0 };
	struct inode_table *it = NULL;

	add(&t, "a/b", false, 1);
	add(&t, "a", false, 1); /* after its directory was implied */
	ASSERT_EQ(inode_table_new(&t, &it), -EBADMSG);
	hub_tree_done(&t);
}

/* Names sort by their bytes (readdir order), twins of one name in two Unicode forms are two
 * entries, and a 240-byte name keeps every byte. */
static void test_names(void)
{
	static const char nfc[] = "docs/read me \xc3\xa9.txt"; /* U+00E9 */
	static const char nfd[] = "docs/read me e\xcc\x81.txt"; /* e + U+0301 */
	char long_path[300], long_name[241];
	struct hub_tree t = { 0 };
	struct inode_table *it = NULL;
	const struct inode *docs, *root, *f;

	memset(long_name, 'n', 236);
	memcpy(long_name + 236, ".txt", 5);
	snprintf(long_path, sizeof(long_path), "long/%s", long_name);
	add(&t, nfc, false, 1);
	add(&t, nfd, false, 2);
	add(&t, long_path, false, 3);
	add(&t, "b", false, 1);
	add(&t, "B", false, 1);
	add(&t, "a", true, 0);
	add(&t, "a.txt", false, 1);
	ASSERT_OK(inode_table_new(&t, &it));
	hub_tree_done(&t); /* the table keeps its own copies */
	root = inode_get(it, 1);
	ASSERT_EQ(root->parent, 1);
	ASSERT_STR_EQ(root->path, "");
	ASSERT_EQ(root->nchildren, 6);
	/* "B" < "a" < "a.txt" < "b" < "docs" < "long" */
	ASSERT_STR_EQ(inode_get(it, root->children[0])->name, "B");
	ASSERT_STR_EQ(inode_get(it, root->children[1])->name, "a");
	ASSERT_STR_EQ(inode_get(it, root->children[2])->name, "a.txt");
	ASSERT_STR_EQ(inode_get(it, root->children[3])->name, "b");
	ASSERT_STR_EQ(inode_get(it, root->children[5])->name, "long");
	docs = inode_lookup(it, 1, "docs");
	ASSERT_EQ(docs->nchildren, 2);
	f = inode_lookup(it, docs->ino, nfc + 5);
	ASSERT_NOT_NULL(f);
	ASSERT_EQ(f->size, 1);
	ASSERT_STR_EQ(f->path, nfc);
	f = inode_lookup(it, docs->ino, nfd + 5);
	ASSERT_NOT_NULL(f);
	ASSERT_EQ(f->size, 2);
	ASSERT_NULL(inode_lookup(it, docs->ino, "read me e.txt"));
	f = inode_lookup(it, inode_lookup(it, 1, "long")->ino, long_name);
	ASSERT_NOT_NULL(f);
	ASSERT_EQ(strlen(f->name), 240);
	ASSERT_STR_EQ(f->path, long_path);
	ASSERT_STR_EQ(f->cid, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	ASSERT_TRUE(inode_has_data(f));
	ASSERT_STR_EQ(inode_lookup(it, 1, "a")->cid, "");
	ASSERT_NULL(inode_lookup(it, 1, "A"));
	inode_table_free(it);
}

/* A chain of 300 directories: every level implied, each found from its parent. */
static void test_deep(void)
{
	char path[300 * 2 + 8] = "";
	struct hub_tree t = { 0 };
	struct inode_table *it = NULL;
	const struct inode *d;

	for (int i = 0; i < 300; i++)
		strcat(path, i ? "/d" : "d");
	strcat(path, "/f");
	add(&t, path, false, 7);
	ASSERT_OK(inode_table_new(&t, &it));
	ASSERT_EQ(inode_count(it), 302);
	d = inode_get(it, 1);
	for (int i = 0; i < 300; i++) {
		d = inode_lookup(it, d->ino, "d");
		ASSERT_NOT_NULL(d);
		ASSERT_TRUE(d->is_dir);
		ASSERT_EQ(d->nchildren, 1);
	}
	d = inode_lookup(it, d->ino, "f");
	ASSERT_NOT_NULL(d);
	ASSERT_STR_EQ(d->path, path);
	ASSERT_EQ(d->size, 7);
	inode_table_free(it);
	hub_tree_done(&t);
}

/* 20,000 files in 200 directories listed in reverse: the directory set grows many times;
 * every file is found again, and each directory lists its 100 in order. */
static void test_wide(void)
{
	struct hub_tree t = { 0 };
	struct inode_table *it = NULL;
	char path[64];

	for (int i = 19999; i >= 0; i--) {
		snprintf(path, sizeof(path), "w/%03d/f%05d", i / 100, i);
		add(&t, path, false, (uint64_t)i);
	}
	ASSERT_OK(inode_table_new(&t, &it));
	ASSERT_EQ(inode_count(it), 1 + 1 + 200 + 20000);
	ASSERT_EQ(inode_lookup(it, 1, "w")->nchildren, 200);
	for (int i = 0; i < 20000; i++) {
		const struct inode *d, *f;
		char name[16];

		snprintf(name, sizeof(name), "%03d", i / 100);
		d = inode_lookup(it, inode_lookup(it, 1, "w")->ino, name);
		ASSERT_NOT_NULL(d);
		ASSERT_EQ(d->nchildren, 100);
		snprintf(name, sizeof(name), "f%05d", i);
		ASSERT_STR_EQ(inode_get(it, d->children[i % 100])->name, name);
		f = inode_lookup(it, d->ino, name);
		ASSERT_NOT_NULL(f);
		ASSERT_EQ(f->size, (uint64_t)i);
		ASSERT_EQ(f->parent, d->ino);
		ASSERT_TRUE(inode_get(it, f->ino) == f);
	}
	inode_table_free(it);
	hub_tree_done(&t);
}

int main(void)
{
	RUN(test_tree);
	RUN(test_file_and_dir_conflict);
	RUN(test_dir_then_file_conflict);
	RUN(test_names);
	RUN(test_deep);
	RUN(test_wide);
	return 0;
}
