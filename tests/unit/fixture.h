/* fixture.h: what several unit tests set up alike: a temporary directory holding one cache dir
 * per test (db, evict, budget), blobs with data written as a mount would (evict, budget), and
 * trees of entries built by hand (hub, hub_json, budget). Header only, so
 * each test links just its own layer: the cache tests see fetch/hub.h's declarations but call
 * nothing of fetch/. A failed setup exits like a failed check. */
#pragma once

#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/blob.h"
#include "cache/db.h"
#include "fetch/hub.h"
#include "tests/unit/check.h"

/* ---- the temporary directory ---- */

#define FIXTURE_TMPDIR_MAX 64

/* Its path: "" until fixture_tmpdir_init(). Short, so paths under it fit PATH_MAX. */
static inline char *fixture_tmpdir(void)
{
	static char dir[FIXTURE_TMPDIR_MAX];

	return dir;
}

/* Makes /tmp/hffs-test-<name>-XXXXXX, unique to this run. */
static inline void fixture_tmpdir_init(const char *name)
{
	char *dir = fixture_tmpdir();
	int n = snprintf(dir, FIXTURE_TMPDIR_MAX, "/tmp/hffs-test-%s-XXXXXX", name);

	ASSERT_TRUE(n > 0 && n < FIXTURE_TMPDIR_MAX);
	ASSERT_NOT_NULL(mkdtemp(dir));
}

static inline int fixture_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes the directory and everything under it. */
static inline void fixture_tmpdir_done(void)
{
	ASSERT_OK(nftw(fixture_tmpdir(), fixture_rm_one, 16, FTW_DEPTH | FTW_PHYS));
}

/* A fresh cache dir under the temporary directory, not created: "<tmpdir>/<name>". The
 * buffer is static, overwritten by the next call. */
static inline const char *fixture_cache_dir(const char *name)
{
	static char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s/%s", fixture_tmpdir(), name);
	return buf;
}

/* ---- blobs ---- */

#define FIXTURE_BS (64U * 1024U) /* small blocks: a blob of 4 blocks is 256 KiB */
#define FIXTURE_C8(c) c c c c c c c c
/* A 64-hex-digit content id of one repeated digit. */
#define CID(c) FIXTURE_C8(FIXTURE_C8(c))

/* Writes the first `blocks` blocks of a blob of `nblocks` blocks into its data file, commits
 * their bits and sets its access time, as a mount's reads would. */
static inline void fixture_put_blob(struct cache_db *db, const char *dir, const char *cid,
				    unsigned nblocks, unsigned blocks, uint64_t last_access)
{
	struct db_block_run run = { .cid = cid, .first = 0, .count = blocks };
	char *buf = malloc(FIXTURE_BS);
	struct blob_rec rec;
	int fd;

	ASSERT_NOT_NULL(buf);
	memset(buf, 'x', FIXTURE_BS);
	ASSERT_OK(db_blob_ensure(db, cid, (uint64_t)nblocks * FIXTURE_BS, BLOB_HASH_SHA256,
				 FIXTURE_BS, &rec));
	fd = blob_open(dir, cid, (uint64_t)nblocks * FIXTURE_BS);
	ASSERT_OK(fd);
	for (unsigned i = 0; i < blocks; i++)
		ASSERT_OK(blob_pwrite_all(fd, buf, FIXTURE_BS, (uint64_t)i * FIXTURE_BS));
	ASSERT_OK(blob_sync(fd));
	close(fd);
	if (blocks)
		ASSERT_OK(db_blob_add_blocks(db, &run, 1, NULL));
	ASSERT_OK(db_blob_touch(db, cid, last_access));
	free(buf);
}

/* ---- trees ---- */

/* Appends an entry to t as a tree page would: oid "" for a directory listed without one;
 * sha256 NULL for a file not in LFS. */
static inline void fixture_tree_push(struct hub_tree *t, const char *path, bool dir, uint64_t size,
				     const char *oid, const char *sha256)
{
	struct hub_entry e = { .size = size, .is_dir = dir, .is_lfs = sha256 != NULL };

	e.path = strdup(path);
	ASSERT_NOT_NULL(e.path);
	snprintf(e.oid, sizeof(e.oid), "%s", oid);
	if (sha256)
		snprintf(e.sha256, sizeof(e.sha256), "%s", sha256);
	ASSERT_OK(hub_tree_push(t, &e));
}
