/* test_budget.c: a mount's budget on a temporary cache: grants within the limits without
 * evicting, evicts least recently used unpinned blobs when short (never this mount's own),
 * refuses with a sentence naming the limit when nothing more can go, counts granted bytes
 * until they settle, the free-space floor, capacity, and no budget at all. */
#include "fs/budget.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cache/db.h"
#include "cache/evict.h"
#include "tests/unit/check.h"
#include "tests/unit/fixture.h"

static bool has_file(const char *dir, const char *cid)
{
	char path[PATH_MAX];
	struct stat st;

	ASSERT_OK(blob_path(dir, cid, path, sizeof(path)));
	return stat(path, &st) == 0;
}

/* Blobs a, b, c of 4 blocks used at 10, 20, 30; the mount's own tree holds c. */
static struct cache *setup(const char *dir, struct inode_table **own, uint64_t *ret_one)
{
	struct hub_tree tree = { 0 };
	struct cache *cache;
	struct cache_db *db;

	ASSERT_OK(cache_open(dir, &cache));
	db = cache_index(cache);
	fixture_put_blob(db, dir, CID("a"), 4, 4, 10);
	fixture_put_blob(db, dir, CID("b"), 4, 4, 20);
	fixture_put_blob(db, dir, CID("c"), 4, 4, 30);
	fixture_tree_push(&tree, "model.safetensors", false, 4 * FIXTURE_BS, "", CID("c"));
	ASSERT_OK(inode_table_new(&tree, own));
	hub_tree_done(&tree);
	*ret_one = blob_disk_usage(dir, CID("a"));
	ASSERT_TRUE(*ret_one >= 4 * FIXTURE_BS);
	return cache;
}

static void test_max_size(void)
{
	const char *dir = fixture_cache_dir("max");
	struct inode_table *own = NULL;
	struct budget_stats st;
	struct budget *b;
	struct cache *cache;
	uint64_t one;
	char why[400];

	cache = setup(dir, &own, &one);
	ASSERT_OK(budget_new(
		&(struct budget_opts){ .limits = { .max_size = 3 * one + one / 2 }, .own = own },
		cache, &b));
	/* Fits: nothing evicted. */
	ASSERT_OK(budget_admit(b, one / 4));
	ASSERT_TRUE(has_file(dir, CID("a")) && has_file(dir, CID("b")) && has_file(dir, CID("c")));
	budget_get_stats(b, &st);
	ASSERT_U64_EQ(st.evicted_blobs, 0);
	ASSERT_TRUE(st.usage >= 3 * one + one / 4);

	/* Short by about a blob (the quarter granted still counts): the least recently used go,
	 * oldest first; the mount's own blob stays. */
	ASSERT_OK(budget_admit(b, one));
	ASSERT_FALSE(has_file(dir, CID("a")));
	ASSERT_TRUE(has_file(dir, CID("c")));
	budget_get_stats(b, &st);
	ASSERT_TRUE(st.evicted_blobs >= 1 && st.evicted_bytes >= one);

	/* More than evicting everything unpinned can give: refused, and why names the limit. */
	ASSERT_EQ(budget_admit(b, 3 * one), -ENOSPC);
	ASSERT_FALSE(has_file(dir, CID("b")));
	ASSERT_TRUE(has_file(dir, CID("c")));
	budget_why(b, why, sizeof(why));
	/* 320 KiB are left of 896 KiB: not "full"; the words say what is short. */
	ASSERT_TRUE(strstr(why, "do not fit within --cache-max-size") && !strstr(why, "full"));
	/* The refusal stands, also for a room question of the same size. */
	ASSERT_FALSE(budget_room(b, 3 * one));

	/* What was granted and not written gives its room back. */
	budget_settle(b, one / 4 + one, 0);
	ASSERT_TRUE(budget_room(b, 2 * one));
	budget_why(b, why, sizeof(why));
	ASSERT_STR_EQ(why, "");
	/* Room for about 2.5 blobs beside c, whatever is asked. */
	ASSERT_TRUE(budget_capacity(b, 10 * one) >= 2 * one);
	ASSERT_TRUE(budget_capacity(b, 10 * one) <= 3 * one);
	ASSERT_U64_EQ(budget_capacity(b, one), one);

	b = budget_free(b);
	ASSERT_NULL(b);
	inode_table_free(own);
	cache = cache_close(cache);
}

static void test_min_free(void)
{
	const char *dir = fixture_cache_dir("floor");
	struct inode_table *own = NULL;
	struct budget *b;
	struct cache *cache;
	uint64_t one, total, avail;
	char why[400];

	cache = setup(dir, &own, &one);
	ASSERT_OK(evict_fs_space(dir, &total, &avail));
	/* A floor above what the disk has: every unpinned blob goes, and still no room. */
	ASSERT_OK(budget_new(&(struct budget_opts){ .limits = { .max_size = EVICT_NO_LIMIT,
								.min_free = avail + (1ULL << 30) },
						    .own = own },
			     cache, &b));
	ASSERT_EQ(budget_admit(b, 1), -ENOSPC);
	budget_why(b, why, sizeof(why));
	/* The disk is not full: the floor is what is short, and the words say so. */
	ASSERT_TRUE(strstr(why, "--min-free keeps") && !strstr(why, "full"));
	ASSERT_FALSE(has_file(dir, CID("a")) || has_file(dir, CID("b")));
	ASSERT_TRUE(has_file(dir, CID("c")));
	ASSERT_U64_EQ(budget_capacity(b, one), 0);
	budget_free(b);

	/* No floor, no size: granted without a look at the blobs. */
	ASSERT_OK(budget_new(&(struct budget_opts){ .limits = { .max_size = EVICT_NO_LIMIT } },
			     cache, &b));
	ASSERT_OK(budget_admit(b, one));
	ASSERT_TRUE(has_file(dir, CID("c")));
	budget_free(b);
	inode_table_free(own);
	cache_close(cache);
}

static void test_none(void)
{
	ASSERT_OK(budget_admit(NULL, UINT64_MAX / 2));
	ASSERT_TRUE(budget_room(NULL, UINT64_MAX / 2));
	budget_settle(NULL, 1, 1);
	budget_disk_full(NULL);
	ASSERT_NULL(budget_free(NULL));
}

int main(void)
{
	umask(022);
	fixture_tmpdir_init("budget");
	RUN(test_max_size);
	RUN(test_min_free);
	RUN(test_none);
	fixture_tmpdir_done();
	return 0;
}
