/* test_blob_fds.c: the bounded set of open data files: at most the maximum open while none is
 * referenced, least recently used closed first, a referenced fd never closed (it stays
 * usable), bytes written through one fd read back through a later one, a file replaced
 * behind the set's back refused, and the limit taken from RLIMIT_NOFILE. */
#include "cache/blob_fds.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/check.h"
#include "util/cleanup.h"

#define NSLOTS 6

static char tmp[] = "/tmp/hffs-test-blob-fds-XXXXXX";
static char cids[NSLOTS][CID_MAX];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Whether fd is open in this process. */
static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void test_bounded_lru(void)
{
	struct blob_fds *p = blob_fds_new(tmp, 2);
	struct blob_fd_slot slots[NSLOTS];
	int fd0, fd1, fd, held;
	uint8_t c;

	ASSERT_NOT_NULL(p);
	for (int i = 0; i < NSLOTS; i++)
		blob_fd_slot_init(&slots[i], cids[i], 100);
	/* Every slot used once, each byte written through its own fd: two stay open. */
	for (int i = 0; i < NSLOTS; i++) {
		fd = blob_fds_get(p, &slots[i]);
		ASSERT_OK(fd);
		c = (uint8_t)('a' + i);
		ASSERT_OK(blob_pwrite_all(fd, &c, 1, 7));
		blob_fds_put(p, &slots[i]);
		ASSERT_TRUE(blob_fds_open_count(p) <= 2);
	}
	ASSERT_EQ(blob_fds_open_count(p), 2);
	/* Reopened files hold what was written through the closed fds. */
	for (int i = 0; i < NSLOTS; i++) {
		fd = blob_fds_get(p, &slots[i]);
		ASSERT_OK(fd);
		ASSERT_OK(blob_pread_all(fd, &c, 1, 7));
		ASSERT_EQ(c, 'a' + i);
		blob_fds_put(p, &slots[i]);
	}
	/* Slots 4 and 5 are open; using 4 makes 5 the least recently used. */
	fd0 = blob_fds_get(p, &slots[4]);
	blob_fds_put(p, &slots[4]);
	fd1 = blob_fds_get(p, &slots[5]);
	blob_fds_put(p, &slots[5]);
	ASSERT_OK(blob_fds_get(p, &slots[4]));
	blob_fds_put(p, &slots[4]);
	ASSERT_OK(blob_fds_get(p, &slots[0]));
	blob_fds_put(p, &slots[0]);
	ASSERT_EQ(slots[5].fd, -1);
	ASSERT_EQ(slots[4].fd, fd0);
	(void)fd1;
	/* Referenced fds are never closed, even past the maximum. */
	held = blob_fds_get(p, &slots[1]);
	ASSERT_OK(held);
	ASSERT_OK(blob_fds_get(p, &slots[2]));
	ASSERT_OK(blob_fds_get(p, &slots[3]));
	ASSERT_EQ(blob_fds_open_count(p), 3); /* 0 and 4 were closed for them */
	ASSERT_TRUE(is_open(held));
	ASSERT_OK(blob_pread_all(held, &c, 1, 7));
	ASSERT_EQ(c, 'b');
	/* Once let go, the set shrinks back to its maximum. */
	blob_fds_put(p, &slots[1]);
	blob_fds_put(p, &slots[2]);
	blob_fds_put(p, &slots[3]);
	ASSERT_EQ(blob_fds_open_count(p), 2);
	ASSERT_EQ(slots[1].fd, -1);
	ASSERT_NULL(blob_fds_free(p));
}

static void test_replaced_file(void)
{
	struct blob_fds *p = blob_fds_new(tmp, 1);
	struct blob_fd_slot a, b;
	char path[PATH_MAX];
	uint8_t c = 'x';
	int fd, old;

	ASSERT_NOT_NULL(p);
	blob_fd_slot_init(&a, cids[0], 100);
	blob_fd_slot_init(&b, cids[1], 100);
	fd = blob_fds_get(p, &a);
	ASSERT_OK(fd);
	ASSERT_OK(blob_pwrite_all(fd, &c, 1, 0));
	blob_fds_put(p, &a);
	/* a is closed for b, then its file goes away behind the set's back. */
	ASSERT_OK(blob_fds_get(p, &b));
	blob_fds_put(p, &b);
	ASSERT_EQ(a.fd, -1);
	/* Kept open, the removed file's inode cannot be reused for the new file. */
	ASSERT_OK(blob_path(tmp, cids[0], path, sizeof(path)));
	old = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_OK(old);
	ASSERT_OK(blob_unlink(tmp, cids[0]));
	/* A new, empty file is not the one whose bytes were written: refused, every time. */
	ASSERT_EQ(blob_fds_get(p, &a), -ESTALE);
	ASSERT_EQ(blob_fds_get(p, &a), -ESTALE);
	ASSERT_OK(blob_fds_get(p, &b));
	blob_fds_put(p, &b);
	close(old);
	ASSERT_NULL(blob_fds_free(p));
}

static void test_limit(void)
{
	struct rlimit old, rl;

	ASSERT_OK(getrlimit(RLIMIT_NOFILE, &old));
	rl = old;
	rl.rlim_cur = MIN(300, old.rlim_max);
	ASSERT_OK(setrlimit(RLIMIT_NOFILE, &rl));
	ASSERT_EQ(blob_fds_limit(100), rl.rlim_cur - 100);
	ASSERT_EQ(blob_fds_limit(1000), 8);
	ASSERT_OK(setrlimit(RLIMIT_NOFILE, &old));
	ASSERT_TRUE(blob_fds_limit(0) <= 4096);
}

int main(void)
{
	ASSERT_NOT_NULL(mkdtemp(tmp));
	for (int i = 0; i < NSLOTS; i++)
		snprintf(cids[i], sizeof(cids[i]), "%02d%062d", i, 0);
	RUN(test_bounded_lru);
	RUN(test_replaced_file);
	RUN(test_limit);
	ASSERT_OK(nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS));
	return 0;
}
