/* test_blob.c: blob data files in a temporary cache dir: content ids, paths, sparse creation,
 * resizing, full reads and writes, reads past the end, hole punching, unlink, disk usage. */
#include "cache/blob.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/check.h"

#define MiB (1ULL << 20)
#define CID_A "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
#define CID_B "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"

static char tmp[] = "/tmp/hffs-test-blob-XXXXXX";

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void test_cid(void)
{
	ASSERT_TRUE(blob_cid_is_valid(CID_A));
	ASSERT_TRUE(blob_cid_is_valid(CID_B));
	ASSERT_FALSE(blob_cid_is_valid(NULL));
	ASSERT_FALSE(blob_cid_is_valid(""));
	ASSERT_FALSE(blob_cid_is_valid("e69de29bb2d1d6434b8b29ae775ad8c2e48c539")); /* 39 */
	ASSERT_FALSE(blob_cid_is_valid("e69de29bb2d1d6434b8b29ae775ad8c2e48c53911")); /* 41 */
	ASSERT_FALSE(blob_cid_is_valid("E69DE29BB2D1D6434B8B29AE775AD8C2E48C5391")); /* upper */
	ASSERT_FALSE(blob_cid_is_valid("../de29bb2d1d6434b8b29ae775ad8c2e48c5391"));
	ASSERT_FALSE(blob_cid_is_valid(CID_A "0"));
	ASSERT_FALSE(blob_cid_is_valid(CID_A CID_A));
}

static void test_path(void)
{
	char buf[PATH_MAX], small[20];

	ASSERT_OK(blob_path("/c", CID_B, buf, sizeof(buf)));
	ASSERT_STR_EQ(buf, "/c/blobs/e6/" CID_B);
	ASSERT_EQ(blob_path("/c", "../../etc/passwd", buf, sizeof(buf)), -EINVAL);
	ASSERT_EQ(blob_path("/c", CID_B, small, sizeof(small)), -ENAMETOOLONG);
}

static void test_sparse_open(void)
{
	char path[PATH_MAX];
	struct stat st;
	int fd;

	/* A cache dir that does not exist yet is created with the fan-out directory. */
	snprintf(path, sizeof(path), "%s/cache", tmp);
	fd = blob_open(path, CID_A, 64 * MiB);
	ASSERT_OK(fd);
	ASSERT_OK(fstat(fd, &st));
	ASSERT_U64_EQ(st.st_size, 64 * MiB);
	ASSERT_EQ(st.st_mode & 0777, 0644);
	ASSERT_TRUE((uint64_t)st.st_blocks * 512 < MiB); /* sparse */
	ASSERT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ASSERT_U64_EQ(blob_disk_usage(path, CID_A), (uint64_t)st.st_blocks * 512);
	close(fd);
	snprintf(path, sizeof(path), "%s/cache/blobs/ab", tmp);
	ASSERT_OK(stat(path, &st));
	ASSERT_TRUE(S_ISDIR(st.st_mode));
	ASSERT_EQ(st.st_mode & 0777, 0755);

	snprintf(path, sizeof(path), "%s/cache", tmp);
	ASSERT_EQ(blob_open(path, "nothex", 1), -EINVAL);
	ASSERT_EQ(blob_open(path, CID_A, UINT64_MAX), -EINVAL);
}

static void test_write_read(void)
{
	char dir[PATH_MAX];
	uint8_t *w = malloc(3 * MiB), *rd = malloc(3 * MiB);
	uint64_t before, after;
	int fd;

	snprintf(dir, sizeof(dir), "%s/cache", tmp);
	fd = blob_open(dir, CID_B, 4 * MiB + 5);
	ASSERT_OK(fd);
	for (size_t i = 0; i < 3 * MiB; i++)
		w[i] = (uint8_t)(i * 7 + i / 4096);
	ASSERT_OK(blob_pwrite_all(fd, w, 3 * MiB, MiB));
	ASSERT_OK(blob_sync(fd));
	ASSERT_OK(blob_pread_all(fd, rd, 3 * MiB, MiB));
	ASSERT_EQ(memcmp(w, rd, 3 * MiB), 0);
	/* A hole reads as zeros; the bitmap, not this, decides whether it is served. */
	ASSERT_OK(blob_pread_all(fd, rd, 16, 0));
	for (int i = 0; i < 16; i++)
		ASSERT_EQ(rd[i], 0);
	/* The last 5 bytes exist, one more does not. */
	ASSERT_OK(blob_pread_all(fd, rd, 5, 4 * MiB));
	ASSERT_EQ(blob_pread_all(fd, rd, 6, 4 * MiB), -EIO);
	ASSERT_EQ(blob_pread_all(fd, rd, 1, 4 * MiB + 5), -EIO);
	ASSERT_EQ(blob_pwrite_all(fd, w, 1, UINT64_MAX), -EINVAL);

	/* Punching the middle MiB frees its space but keeps the size. */
	before = blob_disk_usage(dir, CID_B);
	ASSERT_TRUE(before >= 3 * MiB);
	ASSERT_OK(blob_punch(fd, 2 * MiB, MiB));
	ASSERT_OK(blob_punch(fd, 0, 0));
	after = blob_disk_usage(dir, CID_B);
	ASSERT_TRUE(after <= before - MiB);
	ASSERT_OK(blob_pread_all(fd, rd, MiB, 2 * MiB));
	for (size_t i = 0; i < MiB; i++)
		if (rd[i])
			CHECK_FAIL("byte %zu of a punched block is %u", i, rd[i]);
	ASSERT_OK(blob_pread_all(fd, rd, MiB, MiB));
	ASSERT_EQ(memcmp(w, rd, MiB), 0);
	close(fd);

	/* Reopening at another size resizes and keeps the data below it. */
	fd = blob_open(dir, CID_B, 2 * MiB);
	ASSERT_OK(fd);
	ASSERT_EQ(lseek(fd, 0, SEEK_END), (off_t)(2 * MiB));
	ASSERT_OK(blob_pread_all(fd, rd, MiB, MiB));
	ASSERT_EQ(memcmp(w, rd, MiB), 0);
	close(fd);
	free(w);
	free(rd);
}

static void test_unlink(void)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/cache", tmp);
	ASSERT_OK(blob_unlink(dir, CID_B));
	ASSERT_EQ(blob_unlink(dir, CID_B), -ENOENT);
	ASSERT_U64_EQ(blob_disk_usage(dir, CID_B), 0);
	ASSERT_EQ(blob_unlink(dir, "zz"), -EINVAL);
}

static void test_mkdir_p(void)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/a//b/c/", tmp);
	ASSERT_OK(blob_mkdir_p(path));
	ASSERT_OK(blob_mkdir_p(path)); /* exists: fine */
	snprintf(path, sizeof(path), "%s/file", tmp);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	ASSERT_OK(fd);
	close(fd);
	ASSERT_EQ(blob_mkdir_p(path), -ENOTDIR);
	snprintf(path, sizeof(path), "%s/file/sub", tmp);
	ASSERT_EQ(blob_mkdir_p(path), -ENOTDIR);
	ASSERT_EQ(blob_mkdir_p(""), -EINVAL);
}

int main(void)
{
	umask(022); /* the modes checked are those under the usual umask */
	ASSERT_NOT_NULL(mkdtemp(tmp));
	RUN(test_cid);
	RUN(test_path);
	RUN(test_sparse_open);
	RUN(test_write_read);
	RUN(test_unlink);
	RUN(test_mkdir_p);
	ASSERT_OK(nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS));
	return 0;
}
