/* test_evict.c: the cache budget on a temporary cache built through cache/db and cache/blob:
 * the budget's arithmetic, least-recently-used order, pinned blobs left alone, removal order
 * (record before file), orphans both ways, and the eviction lock. */
#include "cache/evict.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/bitmap.h"
#include "cache/cache.h"
#include "cache/db.h"
#include "tests/unit/check.h"
#include "tests/unit/fixture.h"

#define KiB 1024U
#define MiB (1U << 20)

static bool has_record(struct cache_db *db, const char *cid)
{
	struct blob_rec rec;
	int r = db_blob_get(db, cid, &rec, NULL);

	ASSERT_TRUE(r == 0 || r == -ENOENT);
	return r == 0;
}

static bool has_file(const char *dir, const char *cid)
{
	char path[PATH_MAX];
	struct stat st;

	ASSERT_OK(blob_path(dir, cid, path, sizeof(path)));
	return stat(path, &st) == 0;
}

static void test_need(void)
{
	struct evict_limits b = { .max_size = EVICT_NO_LIMIT, .min_free = 0 };

	ASSERT_U64_EQ(evict_need(&b, UINT64_MAX, 0), 0);
	b.max_size = 100;
	ASSERT_U64_EQ(evict_need(&b, 100, 0), 0);
	ASSERT_U64_EQ(evict_need(&b, 130, 0), 30);
	b.min_free = 50;
	ASSERT_U64_EQ(evict_need(&b, 130, 40), 30); /* freeing 30 also lifts avail to 70 */
	ASSERT_U64_EQ(evict_need(&b, 110, 5), 45); /* the floor is the larger shortfall */
	ASSERT_U64_EQ(evict_need(&b, 0, 50), 0);
	b.max_size = 0;
	ASSERT_U64_EQ(evict_need(&b, 7, UINT64_MAX), 7);

	ASSERT_U64_EQ(evict_default_min_free(10ULL << 30), 512ULL << 20); /* 5% */
	ASSERT_U64_EQ(evict_default_min_free(1ULL << 40), EVICT_MIN_FREE_CAP_DEFAULT);
	ASSERT_U64_EQ(evict_default_min_free(0), 0);
}

/* Five blobs of 4 blocks used at times 50, 10, 40, 20, 30, and one never fetched: a budget 1.5
 * blobs under the usage takes the two least recently used, oldest first. */
static void test_lru_order(void)
{
	const char *dir = fixture_cache_dir("lru");
	struct evict_limits b = { .min_free = 0 };
	struct evict_result res;
	struct evict_plan p;
	struct cache_db *db;
	struct cache *cache;
	uint64_t one;

	ASSERT_OK(cache_open(dir, &cache));
	db = cache_index(cache);
	fixture_put_blob(db, dir, CID("a"), 4, 4, 50);
	fixture_put_blob(db, dir, CID("b"), 4, 4, 10);
	fixture_put_blob(db, dir, CID("c"), 4, 4, 40);
	fixture_put_blob(db, dir, CID("d"), 4, 4, 20);
	fixture_put_blob(db, dir, CID("e"), 4, 4, 30);
	fixture_put_blob(db, dir, CID("f"), 4, 0, 1); /* oldest, but nothing on disk to free */
	one = blob_disk_usage(dir, CID("a"));
	ASSERT_TRUE(one >= 4 * FIXTURE_BS);

	b.max_size = EVICT_NO_LIMIT;
	ASSERT_OK(evict_plan(cache, &b, NULL, &p));
	ASSERT_U64_EQ(p.usage, 5 * one);
	ASSERT_U64_EQ(p.blobs, 6);
	ASSERT_EQ(p.n, 0);
	ASSERT_TRUE(p.met);
	evict_plan_done(&p);

	b.max_size = 5 * one - one - one / 2;
	ASSERT_OK(evict_plan(cache, &b, NULL, &p));
	ASSERT_U64_EQ(p.need, one + one / 2);
	ASSERT_EQ(p.n, 2);
	ASSERT_STR_EQ(p.v[0].cid, CID("b"));
	ASSERT_STR_EQ(p.v[1].cid, CID("d"));
	ASSERT_U64_EQ(p.v[0].last_access, 10);
	ASSERT_U64_EQ(p.freed, 2 * one);
	ASSERT_TRUE(p.met);
	ASSERT_OK(evict_run(cache, &p, &res));
	ASSERT_EQ(res.removed, 2);
	ASSERT_U64_EQ(res.freed, 2 * one);
	evict_plan_done(&p);
	ASSERT_FALSE(has_record(db, CID("b")) || has_file(dir, CID("b")));
	ASSERT_FALSE(has_record(db, CID("d")) || has_file(dir, CID("d")));
	ASSERT_TRUE(has_record(db, CID("e")) && has_file(dir, CID("e")));

	/* Now within budget: nothing more goes. A record with no data is never chosen. */
	ASSERT_OK(evict_to_budget(cache, &b, NULL, &p, &res));
	ASSERT_EQ(p.n, 0);
	ASSERT_EQ(res.removed, 0);
	evict_plan_done(&p);
	b.max_size = 0;
	ASSERT_OK(evict_to_budget(cache, &b, NULL, NULL, &res));
	ASSERT_EQ(res.removed, 3);
	ASSERT_TRUE(has_record(db, CID("f")));
	ASSERT_FALSE(has_record(db, CID("a")) || has_record(db, CID("c")));
	cache_close(cache);
}

/* Equal access times fall back to cid order, so a plan does not depend on record order. */
static void test_ties(void)
{
	const char *dir = fixture_cache_dir("ties");
	struct evict_limits b = { .max_size = 0 };
	struct evict_plan p;
	struct cache_db *db;
	struct cache *cache;

	ASSERT_OK(cache_open(dir, &cache));
	db = cache_index(cache);
	fixture_put_blob(db, dir, CID("9"), 1, 1, 7);
	fixture_put_blob(db, dir, CID("1"), 1, 1, 7);
	fixture_put_blob(db, dir, CID("5"), 1, 1, 7);
	ASSERT_OK(evict_plan(cache, &b, NULL, &p));
	ASSERT_EQ(p.n, 3);
	ASSERT_STR_EQ(p.v[0].cid, CID("1"));
	ASSERT_STR_EQ(p.v[1].cid, CID("5"));
	ASSERT_STR_EQ(p.v[2].cid, CID("9"));
	evict_plan_done(&p);
	cache_close(cache);
}

/* Pinned blobs (a live mount's) are counted but never chosen, even when the budget cannot be
 * met without them; a floor no eviction can reach takes every unpinned blob. */
static void test_pinned(void)
{
	const char *dir = fixture_cache_dir("pinned");
	struct evict_limits b = { .max_size = 0 };
	struct evict_pins pins = { 0 };
	struct evict_result res;
	struct evict_plan p;
	struct cache_db *db;
	struct cache *cache;
	uint64_t one;

	ASSERT_OK(cache_open(dir, &cache));
	db = cache_index(cache);
	fixture_put_blob(db, dir, CID("a"), 2, 2, 1);
	fixture_put_blob(db, dir, CID("b"), 2, 2, 2);
	fixture_put_blob(db, dir, CID("c"), 2, 2, 3);
	one = blob_disk_usage(dir, CID("a"));
	ASSERT_EQ(evict_pins_add(&pins, "nothex"), -EINVAL);
	ASSERT_OK(evict_pins_add(&pins, CID("c")));
	ASSERT_OK(evict_pins_add(&pins, CID("a")));
	ASSERT_OK(evict_pins_add(&pins, CID("c")));
	ASSERT_TRUE(evict_pins_has(&pins, CID("a")));
	ASSERT_FALSE(evict_pins_has(&pins, CID("b")));
	ASSERT_EQ(pins.n, 2); /* sorted, the duplicate gone */

	ASSERT_OK(evict_plan(cache, &b, &pins, &p));
	ASSERT_EQ(p.n, 1);
	ASSERT_STR_EQ(p.v[0].cid, CID("b"));
	ASSERT_U64_EQ(p.pinned, 2 * one);
	ASSERT_EQ(p.npinned, 2);
	ASSERT_FALSE(p.met);
	ASSERT_OK(evict_run(cache, &p, &res));
	evict_plan_done(&p);
	ASSERT_TRUE(has_file(dir, CID("a")) && has_file(dir, CID("c")));
	ASSERT_FALSE(has_file(dir, CID("b")));

	/* A floor beyond the disk: every unpinned blob goes, and it is still not met. */
	fixture_put_blob(db, dir, CID("d"), 1, 1, 9);
	b = (struct evict_limits){ .max_size = EVICT_NO_LIMIT, .min_free = UINT64_MAX / 2 };
	ASSERT_OK(evict_plan(cache, &b, &pins, &p));
	ASSERT_EQ(p.n, 1);
	ASSERT_STR_EQ(p.v[0].cid, CID("d"));
	ASSERT_FALSE(p.met);
	ASSERT_TRUE(p.avail > 0 && p.fs_total >= p.avail);
	evict_plan_done(&p);
	evict_pins_done(&pins);
	ASSERT_EQ(pins.n, 0);
	cache_close(cache);
}

/* The record goes before the file: when the file cannot be removed (here a directory stands
 * in its place), no record is left claiming its bytes. */
static void test_remove_order(void)
{
	const char *dir = fixture_cache_dir("order");
	char path[PATH_MAX];
	struct cache_db *db;
	struct cache *cache;
	uint64_t freed = 0;

	ASSERT_OK(cache_open(dir, &cache));
	db = cache_index(cache);
	fixture_put_blob(db, dir, CID("a"), 2, 2, 1);
	ASSERT_OK(evict_remove(cache, CID("a"), &freed));
	ASSERT_TRUE(freed >= 2 * FIXTURE_BS);
	ASSERT_FALSE(has_record(db, CID("a")) || has_file(dir, CID("a")));
	ASSERT_EQ(evict_remove(cache, CID("a"), NULL), -ENOENT);
	ASSERT_EQ(evict_remove(cache, "zz", NULL), -EINVAL);

	fixture_put_blob(db, dir, CID("b"), 2, 2, 1);
	ASSERT_OK(blob_path(dir, CID("b"), path, sizeof(path)));
	ASSERT_OK(unlink(path));
	ASSERT_OK(mkdir(path, 0755));
	ASSERT_EQ(evict_remove(cache, CID("b"), NULL), -EISDIR);
	ASSERT_FALSE(has_record(db, CID("b")));
	ASSERT_OK(rmdir(path));

	/* A file without its record (a crash between the two steps) is removed too. */
	fixture_put_blob(db, dir, CID("c"), 1, 1, 1);
	ASSERT_OK(db_blob_delete(db, CID("c")));
	ASSERT_OK(evict_remove(cache, CID("c"), NULL));
	ASSERT_FALSE(has_file(dir, CID("c")));
	cache_close(cache);
}

static void touch_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	ASSERT_OK(fd);
	ASSERT_EQ(write(fd, "data", 4), 4);
	close(fd);
}

static void test_orphans(void)
{
	const char *dir = fixture_cache_dir("orphans");
	struct evict_pins pins = { 0 };
	char path[PATH_MAX + 64], other[PATH_MAX + 128];
	struct evict_orphans o;
	struct cache_db *db;
	struct cache *cache;
	uint64_t disk;

	ASSERT_OK(cache_open(dir, &cache));
	db = cache_index(cache);
	/* Empty cache: nothing to do, no blobs directory yet. */
	ASSERT_OK(evict_orphans(cache, NULL, &o));
	ASSERT_EQ(o.files + o.records, 0);

	fixture_put_blob(db, dir, CID("a"), 2, 2, 1); /* sound */
	fixture_put_blob(db, dir, CID("b"), 2, 2, 1); /* file without record */
	fixture_put_blob(db, dir, CID("c"), 2, 1, 1); /* record claiming a block, file gone */
	fixture_put_blob(db, dir, CID("d"), 2, 0,
			 1); /* record without blocks nor file: not an orphan */
	fixture_put_blob(db, dir, CID("e"), 2, 2, 1); /* pinned file without record */
	fixture_put_blob(db, dir, CID("f"), 2, 2, 1); /* pinned record with its file gone */
	disk = blob_disk_usage(dir, CID("b"));
	ASSERT_OK(db_blob_delete(db, CID("b")));
	ASSERT_OK(db_blob_delete(db, CID("e")));
	ASSERT_OK(blob_unlink(dir, CID("c")));
	ASSERT_OK(blob_unlink(dir, CID("d")));
	ASSERT_OK(blob_unlink(dir, CID("f")));
	/* Not hffs's files: a name that is no cid, a cid in another prefix's directory. */
	snprintf(other, sizeof(other), "%s/blobs/aa/notes.txt", dir);
	touch_file(other);
	snprintf(other, sizeof(other), "%s/blobs/aa/%s", dir, CID("b"));
	touch_file(other);
	ASSERT_OK(evict_pins_add(&pins, CID("e")));
	ASSERT_OK(evict_pins_add(&pins, CID("f")));

	ASSERT_OK(evict_orphans(cache, &pins, &o));
	ASSERT_EQ(o.files, 1);
	ASSERT_U64_EQ(o.file_bytes, disk);
	ASSERT_EQ(o.records, 1);
	ASSERT_TRUE(has_record(db, CID("a")) && has_file(dir, CID("a")));
	ASSERT_FALSE(has_file(dir, CID("b")));
	ASSERT_FALSE(has_record(db, CID("c")));
	ASSERT_TRUE(has_record(db, CID("d")));
	ASSERT_TRUE(has_file(dir, CID("e")));
	ASSERT_TRUE(has_record(db, CID("f")));
	ASSERT_OK(access(other, F_OK));
	snprintf(path, sizeof(path), "%s/blobs/aa/notes.txt", dir);
	ASSERT_OK(access(path, F_OK));

	/* A second pass finds nothing more. */
	ASSERT_OK(evict_orphans(cache, &pins, &o));
	ASSERT_EQ(o.files + o.records, 0);
	evict_pins_done(&pins);
	cache_close(cache);
}

static void test_lock(void)
{
	const char *dir = fixture_cache_dir("lock");
	char path[PATH_MAX + 32];
	int a, b, fd;

	ASSERT_EQ(evict_lock(fixture_cache_dir("missing"), true), -ENOENT);
	ASSERT_OK(mkdir(dir, 0755));
	snprintf(path, sizeof(path), "%s/evict.lock", dir);
	a = evict_lock(dir, false);
	b = evict_lock(dir, false);
	ASSERT_OK(a);
	ASSERT_OK(b); /* shared holders do not exclude each other */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_OK(fd);
	ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), -1);
	ASSERT_EQ(errno, EWOULDBLOCK);
	close(a);
	close(b);
	a = evict_lock(dir, true);
	ASSERT_OK(a);
	ASSERT_EQ(flock(fd, LOCK_SH | LOCK_NB), -1);
	close(a);
	ASSERT_OK(flock(fd, LOCK_SH | LOCK_NB));
	close(fd);
}

int main(void)
{
	umask(022);
	fixture_tmpdir_init("evict");
	RUN(test_need);
	RUN(test_lru_order);
	RUN(test_ties);
	RUN(test_pinned);
	RUN(test_remove_order);
	RUN(test_orphans);
	RUN(test_lock);
	fixture_tmpdir_done();
	return 0;
}
