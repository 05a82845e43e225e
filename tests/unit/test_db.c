/* test_db.c: the cache index on a temporary directory: blob records and bitmaps through their
 * state changes, refs, trees, mounts, live figures, iteration, reopening, shared handles, the
 * schema check, map growth in this process and in another, a fork()ed writer seen by a
 * reading parent, walks and deletions of refs and trees, and compaction. */
#include "cache/db.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/bitmap.h"
#include "cache/db_priv.h"
#include "tests/unit/check.h"
#include "tests/unit/fixture.h"

#define MiB (1U << 20)
#define CID_A "aa0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
#define CID_B "bb0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
#define CID_C "cc0123456789abcdef0123"
#define GIT_EMPTY "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
#define SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define COMMIT1 "0123456789abcdef0123456789abcdef01234567"
#define COMMIT2 "89abcdef0123456789abcdef0123456789abcdef"

static void check_blob(struct cache_db *db, const char *cid, enum blob_state state,
		       uint64_t present)
{
	struct blob_rec rec;
	uint8_t *map = NULL;
	uint64_t n;

	ASSERT_OK(db_blob_get(db, cid, &rec, &map));
	ASSERT_NOT_NULL(map);
	n = block_count(rec.size, rec.block_size);
	ASSERT_STR_EQ(db_blob_state_str((enum blob_state)rec.state), db_blob_state_str(state));
	ASSERT_U64_EQ(rec.blocks_present, present);
	ASSERT_U64_EQ(bitmap_count(map, n), present);
	ASSERT_TRUE(bitmap_is_sane(map, n));
	free(map);
}

static void test_blob_lifecycle(void)
{
	/* 10.5 MiB: 11 blocks, the last one short. */
	const uint64_t size = 10 * MiB + MiB / 2;
	struct db_block_run runs[3];
	struct blob_rec rec;
	struct cache_db *db;
	uint8_t *map = NULL;
	bool done[3];

	ASSERT_OK(db_open(fixture_cache_dir("life"), &db));
	ASSERT_EQ(db_schema_version(db), DB_SCHEMA_VERSION);
	ASSERT_EQ(db_blob_get(db, CID_A, &rec, NULL), -ENOENT);
	ASSERT_OK(db_blob_ensure(db, CID_A, size, BLOB_HASH_SHA256, MiB, &rec));
	ASSERT_U64_EQ(rec.size, size);
	ASSERT_EQ(rec.block_size, MiB);
	ASSERT_EQ(rec.state, BLOB_PARTIAL);
	ASSERT_EQ(rec.hash, BLOB_HASH_SHA256);
	ASSERT_U64_EQ(rec.blocks_present, 0);
	/* Ensuring again is a lookup; another size for the same content is refused. */
	ASSERT_OK(db_blob_ensure(db, CID_A, size, BLOB_HASH_SHA256, MiB, &rec));
	ASSERT_EQ(db_blob_ensure(db, CID_A, size + 1, BLOB_HASH_SHA256, MiB, &rec), -EBADMSG);
	ASSERT_EQ(db_blob_ensure(db, CID_A, size, BLOB_HASH_SHA256, MiB / 2, &rec), -EBADMSG);
	ASSERT_EQ(db_blob_ensure(db, CID_C, size, BLOB_HASH_SHA256, MiB, &rec), -EINVAL);
	ASSERT_EQ(db_blob_ensure(db, CID_B, size, BLOB_HASH_SHA256, 0, &rec), -EINVAL);
	check_blob(db, CID_A, BLOB_PARTIAL, 0);

	/* Overlapping runs in one batch count each block once. */
	runs[0] = (struct db_block_run){ .cid = CID_A, .first = 0, .count = 3 };
	runs[1] = (struct db_block_run){ .cid = CID_A, .first = 2, .count = 3 };
	ASSERT_OK(db_blob_add_blocks(db, runs, 2, done));
	ASSERT_FALSE(done[0]);
	ASSERT_FALSE(done[1]);
	check_blob(db, CID_A, BLOB_PARTIAL, 5);
	ASSERT_OK(db_blob_get(db, CID_A, &rec, &map));
	ASSERT_EQ(map[0], 0x1f);
	ASSERT_EQ(map[1], 0);
	free(map);

	/* A batch with an unknown cid or a run past the end writes nothing at all. */
	runs[0] = (struct db_block_run){ .cid = CID_A, .first = 5, .count = 1 };
	runs[1] = (struct db_block_run){ .cid = CID_B, .first = 0, .count = 1 };
	ASSERT_EQ(db_blob_add_blocks(db, runs, 2, NULL), -ENOENT);
	runs[1] = (struct db_block_run){ .cid = CID_A, .first = 10, .count = 2 };
	ASSERT_EQ(db_blob_add_blocks(db, runs, 2, NULL), -EINVAL);
	check_blob(db, CID_A, BLOB_PARTIAL, 5);

	/* The last block completes the blob, and only the run that did it says so. */
	runs[0] = (struct db_block_run){ .cid = CID_A, .first = 5, .count = 5 };
	runs[1] = (struct db_block_run){ .cid = CID_A, .first = 10, .count = 1 };
	runs[2] = (struct db_block_run){ .cid = CID_A, .first = 0, .count = 11 };
	ASSERT_OK(db_blob_add_blocks(db, runs, 3, done));
	ASSERT_FALSE(done[0]);
	ASSERT_TRUE(done[1]);
	ASSERT_FALSE(done[2]);
	check_blob(db, CID_A, BLOB_COMPLETE, 11);

	/* States must agree with the bits. */
	ASSERT_EQ(db_blob_set_state(db, CID_A, BLOB_PARTIAL), -EINVAL);
	ASSERT_OK(db_blob_set_state(db, CID_A, BLOB_VERIFIED));
	check_blob(db, CID_A, BLOB_VERIFIED, 11);
	ASSERT_EQ(db_blob_set_state(db, CID_B, BLOB_VERIFIED), -ENOENT);

	/* A bad hash drops every block; the refetch goes partial, then complete again. */
	ASSERT_OK(db_blob_set_state(db, CID_A, BLOB_BAD));
	check_blob(db, CID_A, BLOB_BAD, 0);
	ASSERT_OK(db_blob_get(db, CID_A, &rec, NULL));
	ASSERT_U64_EQ(rec.bad_count, 1);
	ASSERT_EQ(db_blob_set_state(db, CID_A, BLOB_COMPLETE), -EINVAL);
	/* Blocks fetched before the bad hash (generation 0) are never claimed. */
	runs[0] = (struct db_block_run){ .cid = CID_A, .first = 0, .count = 11 };
	ASSERT_OK(db_blob_add_blocks(db, runs, 1, done));
	ASSERT_FALSE(done[0]);
	check_blob(db, CID_A, BLOB_BAD, 0);
	runs[0] = (struct db_block_run){ .cid = CID_A, .first = 3, .count = 2, .gen = 1 };
	ASSERT_OK(db_blob_add_blocks(db, runs, 1, done));
	ASSERT_FALSE(done[0]);
	check_blob(db, CID_A, BLOB_PARTIAL, 2);
	runs[0] = (struct db_block_run){ .cid = CID_A, .first = 0, .count = 11, .gen = 1 };
	ASSERT_OK(db_blob_add_blocks(db, runs, 1, done));
	ASSERT_TRUE(done[0]);
	check_blob(db, CID_A, BLOB_COMPLETE, 11);
	ASSERT_OK(db_blob_get(db, CID_A, &rec, NULL));
	ASSERT_U64_EQ(rec.bad_count, 1);

	ASSERT_OK(db_blob_touch(db, CID_A, 1234567));
	ASSERT_OK(db_blob_get(db, CID_A, &rec, NULL));
	ASSERT_U64_EQ(rec.last_access, 1234567);
	ASSERT_EQ(rec.state, BLOB_COMPLETE);
	ASSERT_EQ(db_blob_touch(db, CID_B, 1), -ENOENT);

	ASSERT_OK(db_blob_delete(db, CID_A));
	ASSERT_EQ(db_blob_get(db, CID_A, &rec, NULL), -ENOENT);
	ASSERT_EQ(db_blob_delete(db, CID_A), -ENOENT);
	db_close(db);
}

static void test_empty_blobs(void)
{
	struct blob_rec rec;
	struct cache_db *db;
	uint8_t *map = NULL;

	ASSERT_OK(db_open(fixture_cache_dir("empty"), &db));
	/* The hash of no bytes needs no file: empty blobs are verified (or bad) at once. */
	ASSERT_OK(db_blob_ensure(db, GIT_EMPTY, 0, BLOB_HASH_GITSHA1, MiB, &rec));
	ASSERT_EQ(rec.state, BLOB_VERIFIED);
	ASSERT_OK(db_blob_ensure(db, SHA256_EMPTY, 0, BLOB_HASH_SHA256, MiB, &rec));
	ASSERT_EQ(rec.state, BLOB_VERIFIED);
	ASSERT_OK(db_blob_ensure(db, CID_B, 0, BLOB_HASH_SHA256, MiB, &rec));
	ASSERT_EQ(rec.state, BLOB_BAD);
	ASSERT_OK(db_blob_get(db, GIT_EMPTY, &rec, &map));
	ASSERT_NOT_NULL(map);
	ASSERT_U64_EQ(rec.blocks_present, 0);
	free(map);
	db_close(db);
}

struct collect {
	char cids[8][CID_MAX];
	int n, stop_after;
};

static int collect_blob(void *ud, const char *cid, const struct blob_rec *rec)
{
	struct collect *c = ud;

	ASSERT_U64_EQ(rec->size, 5);
	snprintf(c->cids[c->n++], CID_MAX, "%s", cid);
	return c->n == c->stop_after ? -42 : 1; /* a positive return goes on */
}

static void test_foreach(void)
{
	struct collect c = { .n = 0 };
	struct blob_rec rec;
	struct cache_db *db;

	ASSERT_OK(db_open(fixture_cache_dir("foreach"), &db));
	ASSERT_OK(db_blob_foreach(db, collect_blob, &c));
	ASSERT_EQ(c.n, 0);
	ASSERT_OK(db_blob_ensure(db, CID_B, 5, BLOB_HASH_SHA256, MiB, &rec));
	ASSERT_OK(db_blob_ensure(db, GIT_EMPTY "", 5, BLOB_HASH_GITSHA1, MiB, &rec));
	ASSERT_OK(db_blob_ensure(db, CID_A, 5, BLOB_HASH_SHA256, MiB, &rec));
	ASSERT_OK(db_blob_foreach(db, collect_blob, &c));
	ASSERT_EQ(c.n, 3);
	ASSERT_STR_EQ(c.cids[0], CID_A);
	ASSERT_STR_EQ(c.cids[1], CID_B);
	ASSERT_STR_EQ(c.cids[2], GIT_EMPTY);
	c = (struct collect){ .stop_after = 2 };
	ASSERT_EQ(db_blob_foreach(db, collect_blob, &c), -42);
	ASSERT_EQ(c.n, 2);
	db_close(db);
}

static void test_refs_trees(void)
{
	static const char tree[] = "[{\"path\":\"a\"}]\0binary\xff";
	char commit[41], long_repo[700], long_rev[700];
	struct cache_db *db;
	char *t = NULL;
	size_t len = 0;

	ASSERT_OK(db_open(fixture_cache_dir("refs"), &db));
	ASSERT_EQ(db_ref_get(db, "models/a/b", "main", commit), -ENOENT);
	ASSERT_OK(db_ref_put(db, "models/a/b", "main", COMMIT1));
	ASSERT_OK(db_ref_put(db, "models/a/bc", "main", COMMIT2));
	ASSERT_OK(db_ref_get(db, "models/a/b", "main", commit));
	ASSERT_STR_EQ(commit, COMMIT1);
	/* "a/b" + "cmain" must not meet "a/bc" + "main": the separator is a NUL. */
	ASSERT_EQ(db_ref_get(db, "models/a/b", "cmain", commit), -ENOENT);
	ASSERT_OK(db_ref_put(db, "models/a/b", "main", COMMIT2));
	ASSERT_OK(db_ref_get(db, "models/a/b", "main", commit));
	ASSERT_STR_EQ(commit, COMMIT2);
	ASSERT_EQ(db_ref_put(db, "models/a/b", "main", "abc"), -EINVAL);
	ASSERT_EQ(db_ref_put(db, "models/a/b", "main", COMMIT1 "0"), -EINVAL);
	ASSERT_EQ(db_ref_put(db, "", "main", COMMIT1), -EINVAL);

	/* Keys beyond LMDB's 511 bytes, differing only at their end. */
	memset(long_repo, 'r', sizeof(long_repo) - 1);
	long_repo[sizeof(long_repo) - 1] = '\0';
	memset(long_rev, 'v', sizeof(long_rev) - 1);
	long_rev[sizeof(long_rev) - 1] = '\0';
	ASSERT_OK(db_ref_put(db, long_repo, long_rev, COMMIT1));
	long_rev[sizeof(long_rev) - 2] = 'w';
	ASSERT_OK(db_ref_put(db, long_repo, long_rev, COMMIT2));
	ASSERT_OK(db_ref_get(db, long_repo, long_rev, commit));
	ASSERT_STR_EQ(commit, COMMIT2);
	long_rev[sizeof(long_rev) - 2] = 'v';
	ASSERT_OK(db_ref_get(db, long_repo, long_rev, commit));
	ASSERT_STR_EQ(commit, COMMIT1);

	ASSERT_EQ(db_tree_get(db, "models/a/b", COMMIT1, &t, &len), -ENOENT);
	ASSERT_OK(db_tree_put(db, "models/a/b", COMMIT1, tree, sizeof(tree)));
	ASSERT_OK(db_tree_get(db, "models/a/b", COMMIT1, &t, &len));
	ASSERT_EQ(len, sizeof(tree));
	ASSERT_EQ(memcmp(t, tree, len), 0);
	ASSERT_EQ(t[len], '\0');
	free(t);
	ASSERT_OK(db_tree_put(db, "models/a/b", COMMIT2, "", 0));
	ASSERT_OK(db_tree_get(db, "models/a/b", COMMIT2, &t, &len));
	ASSERT_EQ(len, 0);
	ASSERT_STR_EQ(t, "");
	free(t);
	db_close(db);
}

struct mounts {
	char points[4][DB_MOUNT_STR];
	int n;
};

static int collect_mount(void *ud, const struct db_mount *m)
{
	struct mounts *c = ud;

	snprintf(c->points[c->n++], DB_MOUNT_STR, "%s", m->mountpoint);
	return 0;
}

static void test_mounts_live(void)
{
	struct db_mount m = { .pid = 4242,
			      .started = 1700000000000000ULL,
			      .flags = DB_MOUNT_OFFLINE };
	struct mounts c = { .n = 0 };
	struct db_mount got;
	struct cache_db *db;
	void *live = NULL;
	size_t len = 0;

	ASSERT_OK(db_open(fixture_cache_dir("mounts"), &db));
	snprintf(m.mountpoint, sizeof(m.mountpoint), "/mnt/b");
	snprintf(m.repo_key, sizeof(m.repo_key), "models/org/name");
	snprintf(m.revision, sizeof(m.revision), "main");
	snprintf(m.commit, sizeof(m.commit), COMMIT1);
	snprintf(m.endpoint, sizeof(m.endpoint), "https://hub.example.org");
	ASSERT_OK(db_mount_put(db, &m));
	ASSERT_OK(db_mount_get(db, "/mnt/b", &got));
	ASSERT_EQ(memcmp(&got, &m, sizeof(m)), 0);
	/* The longest mountpoint the record holds (a hashed key). */
	memset(m.mountpoint, 'x', sizeof(m.mountpoint) - 1);
	m.mountpoint[0] = '/';
	m.mountpoint[sizeof(m.mountpoint) - 1] = '\0';
	m.pid = -1;
	ASSERT_OK(db_mount_put(db, &m));
	ASSERT_OK(db_mount_get(db, m.mountpoint, &got));
	ASSERT_EQ(memcmp(&got, &m, sizeof(m)), 0);
	snprintf(m.mountpoint, sizeof(m.mountpoint), "/mnt/a");
	ASSERT_OK(db_mount_put(db, &m));
	ASSERT_OK(db_mount_foreach(db, collect_mount, &c));
	ASSERT_EQ(c.n, 3);
	ASSERT_EQ(strlen(c.points[0]), DB_MOUNT_STR - 1); /* hashed keys sort first */
	ASSERT_STR_EQ(c.points[1], "/mnt/a");
	ASSERT_STR_EQ(c.points[2], "/mnt/b");
	ASSERT_OK(db_mount_del(db, "/mnt/a"));
	ASSERT_EQ(db_mount_del(db, "/mnt/a"), -ENOENT);
	ASSERT_EQ(db_mount_get(db, "/mnt/a", &got), -ENOENT);
	/* Fields without their NUL are refused. */
	memset(m.commit, 'f', sizeof(m.commit));
	ASSERT_EQ(db_mount_put(db, &m), -EINVAL);
	m.mountpoint[0] = '\0';
	ASSERT_EQ(db_mount_put(db, &m), -EINVAL);

	ASSERT_EQ(db_live_get(db, "/mnt/b", &live, &len), -ENOENT);
	ASSERT_OK(db_live_put(db, "/mnt/b", "rate=5", 6));
	ASSERT_OK(db_live_put(db, "/mnt/b", "rate=7", 6));
	ASSERT_OK(db_live_get(db, "/mnt/b", &live, &len));
	ASSERT_EQ(len, 6);
	ASSERT_STR_EQ(live, "rate=7");
	free(live);
	ASSERT_OK(db_live_del(db, "/mnt/b"));
	ASSERT_EQ(db_live_del(db, "/mnt/b"), -ENOENT);
	db_close(db);
}

static void test_reopen_and_share(void)
{
	struct cache_db *db, *db2;
	struct blob_rec rec;
	char commit[41];

	ASSERT_OK(db_open(fixture_cache_dir("reopen"), &db));
	ASSERT_OK(db_ref_put(db, "models/a/b", "main", COMMIT1));
	ASSERT_OK(db_blob_ensure(db, CID_A, 3 * MiB, BLOB_HASH_SHA256, MiB, &rec));
	ASSERT_NULL(db_close(db));
	ASSERT_OK(db_open(fixture_cache_dir("reopen"), &db));
	ASSERT_OK(db_ref_get(db, "models/a/b", "main", commit));
	ASSERT_STR_EQ(commit, COMMIT1);
	ASSERT_OK(db_blob_get(db, CID_A, &rec, NULL));
	ASSERT_U64_EQ(rec.size, 3 * MiB);

	/* A second open shares the environment; each sees the other's commits, and closing one
	 * leaves the other working. */
	ASSERT_OK(db_open(fixture_cache_dir("reopen"), &db2));
	ASSERT_OK(db_ref_put(db2, "models/a/b", "v1", COMMIT2));
	ASSERT_OK(db_ref_get(db, "models/a/b", "v1", commit));
	ASSERT_STR_EQ(commit, COMMIT2);
	db_close(db);
	ASSERT_OK(db_ref_put(db2, "models/a/b", "v2", COMMIT1));
	ASSERT_OK(db_ref_get(db2, "models/a/b", "v2", commit));
	db_close(db2);
	ASSERT_NULL(db_close(NULL));
}

static uint8_t *read_file(const char *path, size_t *ret_len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	ASSERT_OK(fd);
	ASSERT_OK(fstat(fd, &st));
	buf = malloc((size_t)st.st_size + 1);
	ASSERT_EQ(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*ret_len = (size_t)st.st_size;
	return buf;
}

static void test_schema_mismatch(void)
{
	char data[PATH_MAX + 32];
	struct cache_db *db;
	uint8_t *before, *after;
	size_t nb, na;

	ASSERT_OK(db_open(fixture_cache_dir("schema"), &db));
	ASSERT_OK(db_ref_put(db, "models/a/b", "main", COMMIT1));
	ASSERT_OK(db_priv_set_schema_version(db, DB_SCHEMA_VERSION + 1));
	db_close(db);
	snprintf(data, sizeof(data), "%s/index/data.mdb", fixture_cache_dir("schema"));
	before = read_file(data, &nb);
	db = NULL;
	ASSERT_EQ(db_open(fixture_cache_dir("schema"), &db), -EPROTONOSUPPORT);
	ASSERT_NULL(db);
	ASSERT_EQ(db_open(fixture_cache_dir("schema"), &db), -EPROTONOSUPPORT);
	after = read_file(data, &na);
	ASSERT_EQ(na, nb);
	ASSERT_EQ(memcmp(before, after, nb), 0);
	free(before);
	free(after);
}

static void tree_fill(char *buf, size_t len, int i)
{
	for (size_t k = 0; k < len; k++)
		buf[k] = (char)('a' + (k * 31 + (size_t)i) % 26);
}

static void tree_check(struct cache_db *db, int i, size_t want_len)
{
	char commit[41], *t = NULL, *want = malloc(want_len);
	size_t len;

	snprintf(commit, sizeof(commit), "%040d", i);
	ASSERT_OK(db_tree_get(db, "models/big/tree", commit, &t, &len));
	ASSERT_EQ(len, want_len);
	tree_fill(want, want_len, i);
	ASSERT_EQ(memcmp(t, want, len), 0);
	free(t);
	free(want);
}

static void tree_put(struct cache_db *db, int i, size_t len)
{
	char commit[41], *buf = malloc(len);

	snprintf(commit, sizeof(commit), "%040d", i);
	tree_fill(buf, len, i);
	ASSERT_OK(db_tree_put(db, "models/big/tree", commit, buf, len));
	free(buf);
}

/* 40 trees of 100 KB into a 64 KiB map: it has to double six times. */
static void test_map_growth(void)
{
	const size_t tree_len = 100000, initial = 64 << 10;
	struct cache_db *db;

	ASSERT_OK(db_open_with_mapsize(fixture_cache_dir("grow"), initial, &db));
	ASSERT_EQ(db_priv_mapsize(db), initial);
	for (int i = 0; i < 40; i++)
		tree_put(db, i, tree_len);
	ASSERT_TRUE(db_priv_mapsize(db) >= 40 * tree_len);
	for (int i = 0; i < 40; i++)
		tree_check(db, i, tree_len);
	db_close(db);
	/* Reopened with the tiny map asked again, it takes the size the index grew to. */
	ASSERT_OK(db_open_with_mapsize(fixture_cache_dir("grow"), initial, &db));
	ASSERT_TRUE(db_priv_mapsize(db) >= 40 * tree_len);
	tree_check(db, 39, tree_len);
	tree_put(db, 40, tree_len);
	db_close(db);
}

struct grow_thread {
	struct cache_db *db;
	int stop; /* atomic */
	int reads;
};

static void *reader_main(void *arg)
{
	struct grow_thread *g = arg;
	struct blob_rec rec;

	while (!__atomic_load_n(&g->stop, __ATOMIC_RELAXED)) {
		ASSERT_OK(db_blob_get(g->db, CID_A, &rec, NULL));
		ASSERT_U64_EQ(rec.size, 77);
		__atomic_add_fetch(&g->reads, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* Readers on two threads while a third grows the map under them. */
static void test_growth_with_readers(void)
{
	struct grow_thread g = { .stop = 0 };
	struct blob_rec rec;
	pthread_t th[2];

	ASSERT_OK(db_open_with_mapsize(fixture_cache_dir("threads"), 64 << 10, &g.db));
	ASSERT_OK(db_blob_ensure(g.db, CID_A, 77, BLOB_HASH_SHA256, MiB, &rec));
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(pthread_create(&th[i], NULL, reader_main, &g), 0);
	for (int i = 0; i < 20; i++)
		tree_put(g.db, i, 50000);
	__atomic_store_n(&g.stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(pthread_join(th[i], NULL), 0);
	ASSERT_TRUE(g.reads > 0);
	ASSERT_TRUE(db_priv_mapsize(g.db) >= 20 * 50000);
	for (int i = 0; i < 20; i++)
		tree_check(g.db, i, 50000);
	db_close(g.db);
}

/* The child, in its own process and environment: bits one by one, then trees that outgrow
 * both processes' maps. Exits 0 when all went well. */
static void fork_child(int go_fd, unsigned nblocks)
{
	struct cache_db *db;
	char c;

	if (read(go_fd, &c, 1) != 1)
		_exit(2);
	if (db_open_with_mapsize(fixture_cache_dir("fork"), 64 << 10, &db) < 0)
		_exit(3);
	for (unsigned i = 0; i < nblocks; i++) {
		struct db_block_run run = { .cid = CID_B, .first = (i * 7) % nblocks, .count = 1 };

		if (db_blob_add_blocks(db, &run, 1, NULL) < 0)
			_exit(4);
	}
	for (int i = 0; i < 12; i++)
		tree_put(db, i, 100000);
	db_close(db);
	_exit(0);
}

static void test_fork(void)
{
	const unsigned nblocks = 64; /* 7 is prime to 64, so (i * 7) % 64 visits every block */
	uint64_t last_present = 0;
	struct cache_db *db;
	struct blob_rec rec;
	int go[2], status, reads = 0;
	pid_t pid;

	ASSERT_OK(db_open_with_mapsize(fixture_cache_dir("fork"), 64 << 10, &db));
	ASSERT_OK(db_blob_ensure(db, CID_B, (uint64_t)nblocks * MiB, BLOB_HASH_SHA256, MiB, &rec));
	ASSERT_EQ(db_priv_mapsize(db), 64 << 10);
	ASSERT_OK(pipe2(go, O_CLOEXEC));
	pid = fork();
	ASSERT_OK(pid);
	if (pid == 0)
		fork_child(go[0], nblocks);
	ASSERT_EQ(write(go[1], "g", 1), 1);
	/* Read while the child writes: the count never goes back and always equals the bits. */
	for (;;) {
		uint8_t *map = NULL;
		pid_t w = waitpid(pid, &status, WNOHANG);

		ASSERT_OK(db_blob_get(db, CID_B, &rec, &map));
		ASSERT_U64_EQ(bitmap_count(map, nblocks), rec.blocks_present);
		ASSERT_TRUE(rec.blocks_present >= last_present);
		last_present = rec.blocks_present;
		free(map);
		reads++;
		if (w == pid)
			break;
		ASSERT_EQ(w, 0);
	}
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	ASSERT_TRUE(reads > 1);
	check_blob(db, CID_B, BLOB_COMPLETE, nblocks);
	/* The child's trees lie beyond the 64 KiB map this process opened with and never grew
	 * itself (it only read): reading them took the size the child gave the map. */
	for (int i = 0; i < 12; i++)
		tree_check(db, i, 100000);
	ASSERT_TRUE(db_priv_mapsize(db) >= 12 * 100000);
	tree_put(db, 12, 1000);
	tree_check(db, 12, 1000);
	close(go[0]);
	close(go[1]);
	db_close(db);
}

static int die_inside(void *ud, const char *cid, const struct blob_rec *rec)
{
	(void)ud;
	(void)cid;
	(void)rec;
	raise(SIGKILL); /* with its read transaction open, as a kill -9 would leave it */
	return 0;
}

static off_t file_size(const char *path)
{
	struct stat st;

	ASSERT_OK(stat(path, &st));
	return st.st_size;
}

/* A process killed inside a read transaction leaves its reader slot behind, which would pin
 * every page freed after it. The next process to open the index clears it: 100 rewrites of a
 * 64 KB tree then reuse their pages instead of growing the file by 6.4 MB. The parent keeps
 * the index open throughout, so LMDB does not simply reset its lock file. */
static void test_dead_reader(void)
{
	struct cache_db *db;
	struct blob_rec rec;
	char data[PATH_MAX + 32];
	int status;
	pid_t pid;

	ASSERT_OK(db_open(fixture_cache_dir("dead"), &db));
	ASSERT_OK(db_blob_ensure(db, CID_A, 1, BLOB_HASH_SHA256, MiB, &rec));
	tree_put(db, 0, 64000);
	pid = fork();
	ASSERT_OK(pid);
	if (pid == 0) {
		struct cache_db *c;

		if (db_open(fixture_cache_dir("dead"), &c) < 0)
			_exit(3);
		(void)db_blob_foreach(c, die_inside, NULL);
		_exit(4);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFSIGNALED(status));
	pid = fork();
	ASSERT_OK(pid);
	if (pid == 0) {
		struct cache_db *c;

		if (db_open(fixture_cache_dir("dead"), &c) < 0)
			_exit(3);
		for (int i = 0; i < 100; i++)
			tree_put(c, 0, 64000);
		db_close(c);
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	snprintf(data, sizeof(data), "%s/index/data.mdb", fixture_cache_dir("dead"));
	if (file_size(data) > 2 * 1024 * 1024)
		CHECK_FAIL("data.mdb grew to %lld bytes: a dead reader pinned its pages",
			   (long long)file_size(data));
	tree_check(db, 0, 64000);
	db_close(db);
}

struct pairs {
	char a[4][64], b[4][64], c[4][64];
	size_t len[4];
	int n, stop_after;
};

static int collect_ref(void *ud, const char *repo_key, const char *revision, const char *commit)
{
	struct pairs *p = ud;

	ASSERT_TRUE(p->n < 4);
	snprintf(p->a[p->n], 64, "%s", repo_key);
	snprintf(p->b[p->n], 64, "%s", revision);
	snprintf(p->c[p->n], 64, "%s", commit);
	p->n++;
	return p->n == p->stop_after ? -7 : 0;
}

static int collect_tree(void *ud, const char *repo_key, const char *commit, const void *data,
			size_t len)
{
	struct pairs *p = ud;

	ASSERT_TRUE(p->n < 4 && len < 64);
	snprintf(p->a[p->n], 64, "%s", repo_key);
	snprintf(p->b[p->n], 64, "%s", commit);
	memcpy(p->c[p->n], data, len);
	p->len[p->n] = len;
	p->n++;
	return 0;
}

/* Refs and trees walked in key order (repo, then revision), a key too long to be kept whole
 * skipped, the walk stopped by its callback, and entries dropped one by one. */
static void test_ref_tree_walk(void)
{
	char long_repo[700];
	struct pairs p = { .n = 0 };
	struct cache_db *db;

	memset(long_repo, 'r', sizeof(long_repo) - 1);
	long_repo[sizeof(long_repo) - 1] = '\0';
	ASSERT_OK(db_open(fixture_cache_dir("walk"), &db));
	ASSERT_OK(db_ref_foreach(db, collect_ref, &p));
	ASSERT_EQ(p.n, 0);
	ASSERT_OK(db_ref_put(db, "models/b/x", "main", COMMIT1));
	ASSERT_OK(db_ref_put(db, "models/a/x", "v1", COMMIT2));
	ASSERT_OK(db_ref_put(db, "models/a/x", "main", COMMIT1));
	ASSERT_OK(db_ref_put(db, long_repo, "main", COMMIT1));
	ASSERT_OK(db_ref_foreach(db, collect_ref, &p));
	ASSERT_EQ(p.n, 3);
	ASSERT_STR_EQ(p.a[0], "models/a/x");
	ASSERT_STR_EQ(p.b[0], "main");
	ASSERT_STR_EQ(p.c[0], COMMIT1);
	ASSERT_STR_EQ(p.b[1], "v1");
	ASSERT_STR_EQ(p.c[1], COMMIT2);
	ASSERT_STR_EQ(p.a[2], "models/b/x");
	p = (struct pairs){ .stop_after = 2 };
	ASSERT_EQ(db_ref_foreach(db, collect_ref, &p), -7);
	ASSERT_EQ(p.n, 2);

	ASSERT_OK(db_ref_del(db, "models/a/x", "main"));
	ASSERT_EQ(db_ref_del(db, "models/a/x", "main"), -ENOENT);
	ASSERT_EQ(db_ref_del(db, "models/a/x", ""), -EINVAL);
	ASSERT_OK(db_ref_del(db, long_repo, "main"));
	p = (struct pairs){ .n = 0 };
	ASSERT_OK(db_ref_foreach(db, collect_ref, &p));
	ASSERT_EQ(p.n, 2);
	ASSERT_STR_EQ(p.b[0], "v1");
	ASSERT_STR_EQ(p.a[1], "models/b/x");

	ASSERT_OK(db_tree_put(db, "models/a/x", COMMIT2, "[2]", 3));
	ASSERT_OK(db_tree_put(db, "models/a/x", COMMIT1, "[1]\0x", 5));
	ASSERT_OK(db_tree_put(db, long_repo, COMMIT1, "[]", 2));
	p = (struct pairs){ .n = 0 };
	ASSERT_OK(db_tree_foreach(db, collect_tree, &p));
	ASSERT_EQ(p.n, 2);
	ASSERT_STR_EQ(p.b[0], COMMIT1);
	ASSERT_EQ(p.len[0], 5);
	ASSERT_EQ(memcmp(p.c[0], "[1]\0x", 5), 0);
	ASSERT_STR_EQ(p.b[1], COMMIT2);
	ASSERT_OK(db_tree_del(db, "models/a/x", COMMIT1));
	ASSERT_EQ(db_tree_del(db, "models/a/x", COMMIT1), -ENOENT);
	p = (struct pairs){ .n = 0 };
	ASSERT_OK(db_tree_foreach(db, collect_tree, &p));
	ASSERT_EQ(p.n, 1);
	ASSERT_STR_EQ(p.b[0], COMMIT2);
	db_close(db);
}

static off_t index_size(const char *dir)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/index/data.mdb", dir);
	return file_size(path);
}

/* Compaction gives back the pages of 39 deleted 100 KB trees and keeps everything else; it
 * refuses while a second handle of this process, or another process, has the index open. */
static void test_compact(void)
{
	const char *dir = fixture_cache_dir("compact");
	uint64_t before = 0, after = 0;
	struct cache_db *db, *db2;
	struct blob_rec rec;
	int go[2], ready[2], status;
	char commit[41], c;
	pid_t pid;

	ASSERT_OK(db_open(dir, &db));
	ASSERT_OK(db_blob_ensure(db, CID_A, 3 * MiB, BLOB_HASH_SHA256, MiB, &rec));
	ASSERT_OK(db_blob_add_blocks(db, &(struct db_block_run){ .cid = CID_A, .count = 2 }, 1,
				     NULL));
	ASSERT_OK(db_ref_put(db, "models/a/b", "main", COMMIT1));
	for (int i = 0; i < 40; i++)
		tree_put(db, i, 100000);
	for (int i = 0; i < 39; i++) {
		snprintf(commit, sizeof(commit), "%040d", i);
		ASSERT_OK(db_tree_del(db, "models/big/tree", commit));
	}
	ASSERT_TRUE(index_size(dir) > 4000000);

	ASSERT_OK(db_open(dir, &db2));
	ASSERT_EQ(db_compact(db, NULL, NULL), -EBUSY);
	db_close(db2);

	ASSERT_OK(pipe2(go, O_CLOEXEC));
	ASSERT_OK(pipe2(ready, O_CLOEXEC));
	pid = fork();
	ASSERT_OK(pid);
	if (pid == 0) {
		struct cache_db *c2;

		if (db_open(dir, &c2) < 0)
			_exit(3);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(4);
		db_close(c2);
		_exit(0);
	}
	ASSERT_EQ(read(ready[0], &c, 1), 1);
	ASSERT_EQ(db_compact(db, NULL, NULL), -EBUSY);
	ASSERT_EQ(write(go[1], "g", 1), 1);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* The refusals changed nothing and the handle still works. */
	tree_check(db, 39, 100000);
	ASSERT_OK(db_compact(db, &before, &after));
	ASSERT_TRUE(after < 1000000 && before > 4000000);
	ASSERT_U64_EQ(after, index_size(dir));
	tree_check(db, 39, 100000);
	check_blob(db, CID_A, BLOB_PARTIAL, 2);
	ASSERT_OK(db_ref_get(db, "models/a/b", "main", commit));
	ASSERT_STR_EQ(commit, COMMIT1);
	/* It takes writes afterwards, and another process sees them. */
	tree_put(db, 41, 1000);
	pid = fork();
	ASSERT_OK(pid);
	if (pid == 0) {
		struct cache_db *c2;
		char *t = NULL;
		size_t len;

		snprintf(commit, sizeof(commit), "%040d", 41);
		if (db_open(dir, &c2) < 0 ||
		    db_tree_get(c2, "models/big/tree", commit, &t, &len) < 0)
			_exit(3);
		_exit(len == 1000 ? 0 : 4);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(go[0]);
	close(go[1]);
	close(ready[0]);
	close(ready[1]);
	db_close(db);
}

static void test_open_errors(void)
{
	char path[PATH_MAX];
	struct cache_db *db;
	int fd;

	snprintf(path, sizeof(path), "%s/not-a-dir", fixture_tmpdir());
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	ASSERT_OK(fd);
	close(fd);
	ASSERT_EQ(db_open(path, &db), -ENOTDIR);
}

int main(void)
{
	umask(022);
	fixture_tmpdir_init("db");
	RUN(test_blob_lifecycle);
	RUN(test_empty_blobs);
	RUN(test_foreach);
	RUN(test_refs_trees);
	RUN(test_mounts_live);
	RUN(test_reopen_and_share);
	RUN(test_schema_mismatch);
	RUN(test_map_growth);
	RUN(test_growth_with_readers);
	RUN(test_fork);
	RUN(test_dead_reader);
	RUN(test_ref_tree_walk);
	RUN(test_compact);
	RUN(test_open_errors);
	fixture_tmpdir_done();
	return 0;
}
