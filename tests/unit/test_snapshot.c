/* test_snapshot.c: the offline half of fs/snapshot.c: a commit whose tree the cache holds
 * mounts without the Hub, and a tree an older hffs stored as the Hub's JSON is converted to
 * the cache's record once (every legacy tree of the index) and served like one. */
#include "fs/snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache/tree.h"
#include "check.h"
#include "fetch/hub_json.h"
#include "fixture.h"

#define COMMIT_A "0123456789abcdef0123456789abcdef01234567"
#define COMMIT_B "89abcdef0123456789abcdef0123456789abcdef"
#define SHA1_A "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"

static void put_legacy(struct cache_db *db, const char *commit)
{
	struct hub_tree h = { 0 };
	char *json;
	size_t len;

	fixture_tree_push(&h, "dir", true, 0, "", NULL);
	fixture_tree_push(&h, "dir/config.json", false, 3, SHA1_A, NULL);
	fixture_tree_push(&h, "model.safetensors", false, 1 << 20, SHA1_A, CID("c"));
	json = hub_json_tree_dump(&h, &len);
	ASSERT_NOT_NULL(json);
	ASSERT_OK(db_tree_put(db, "models/org/m", commit, json, len));
	free(json);
	hub_tree_done(&h);
}

static void test_legacy_offline(void)
{
	struct hub_config cfg = { .offline = true };
	struct hub_error err;
	struct cache_db *db;
	struct snapshot s;
	struct tree t;

	ASSERT_OK(db_open(fixture_cache_dir("legacy"), &db));
	put_legacy(db, COMMIT_A);
	put_legacy(db, COMMIT_B);
	ASSERT_EQ(tree_get(db, "models/org/m", COMMIT_A, &t), -EBADMSG);

	ASSERT_OK(snapshot_load(&cfg, db, "org/m", COMMIT_A, 0, &s, &err));
	ASSERT_TRUE(s.tree_from_cache);
	ASSERT_EQ(s.tree.n, 3);
	ASSERT_TRUE(s.tree.v[2].is_lfs);
	ASSERT_STR_EQ(hub_entry_cid(&s.tree.v[2]), CID("c"));
	ASSERT_STR_EQ(hub_entry_cid(&s.tree.v[1]), SHA1_A);
	snapshot_done(&s);

	/* Both trees are records now. */
	ASSERT_OK(tree_get(db, "models/org/m", COMMIT_B, &t));
	ASSERT_EQ(t.n, 3);
	ASSERT_EQ(t.v[2].hash, BLOB_HASH_SHA256);
	tree_done(&t);

	/* Served from the record as well; an unknown commit is not in the cache. */
	ASSERT_OK(snapshot_load(&cfg, db, "org/m", COMMIT_B, 0, &s, &err));
	ASSERT_EQ(s.tree.n, 3);
	snapshot_done(&s);
	ASSERT_EQ(snapshot_load(&cfg, db, "org/other", COMMIT_B, 0, &s, &err), -ENETDOWN);
	snapshot_done(&s);
	db_close(db);
}

int main(void)
{
	fixture_tmpdir_init("snapshot");
	RUN(test_legacy_offline);
	fixture_tmpdir_done();
	return 0;
}
