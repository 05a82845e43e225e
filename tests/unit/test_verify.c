/* test_verify.c: content hashes against known vectors (FIPS 180 "abc", git's empty blob and
 * "hello\n"), a file of several 1 MiB chunks whose hashes Python's hashlib computed, a
 * mismatch, and a file shorter than its blob. */
#include "cache/verify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/blob.h"
#include "tests/unit/check.h"

#define SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA256_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define GIT_EMPTY "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
#define GIT_HELLO "ce013625030ba8dba906f756967f9e9ca394464a"
/* The pattern of big_pattern(), hashed by python3 hashlib (sha256; sha1 of "blob N\0"+data). */
#define BIG_SIZE ((5U << 19) + 3)
#define BIG_SHA256 "3ee82cd090c398011caf04fcaea7b8078c1394fb4ea8ec66f5d40d78c712da6d"
#define BIG_GIT "733ed6f4fa421d49ca24b4b8cec340ebe8de9a29"

static char tmp[] = "/tmp/hffs-test-verify-XXXXXX";

static uint8_t *big_pattern(void)
{
	uint8_t *b = malloc(BIG_SIZE);

	ASSERT_NOT_NULL(b);
	for (size_t i = 0; i < BIG_SIZE; i++)
		b[i] = (uint8_t)(i * 7 + (i >> 12));
	return b;
}

static int file_with(const char *name, const void *data, size_t len)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_OK(fd);
	ASSERT_OK(blob_pwrite_all(fd, data, len, 0));
	ASSERT_OK(unlink(path));
	return fd;
}

static void test_vectors(void)
{
	char hex[CID_MAX];

	verify_hash_buf("", 0, BLOB_HASH_SHA256, hex);
	ASSERT_STR_EQ(hex, SHA256_EMPTY);
	verify_hash_buf("abc", 3, BLOB_HASH_SHA256, hex);
	ASSERT_STR_EQ(hex, SHA256_ABC);
	verify_hash_buf("", 0, BLOB_HASH_GITSHA1, hex);
	ASSERT_STR_EQ(hex, GIT_EMPTY);
	verify_hash_buf("hello\n", 6, BLOB_HASH_GITSHA1, hex);
	ASSERT_STR_EQ(hex, GIT_HELLO);
}

static void test_fd_small(void)
{
	char actual[CID_MAX];
	int fd = file_with("hello", "hello\n", 6);

	ASSERT_OK(verify_fd(fd, 6, BLOB_HASH_GITSHA1, GIT_HELLO, NULL));
	/* The size is part of a git hash: hashing 5 bytes of the file gives another id. */
	ASSERT_EQ(verify_fd(fd, 5, BLOB_HASH_GITSHA1, GIT_HELLO, actual), -EIO);
	ASSERT_TRUE(strcmp(actual, GIT_HELLO) != 0);
	ASSERT_EQ(strlen(actual), 40);
	/* Empty blobs hash without reading. */
	ASSERT_OK(verify_fd(fd, 0, BLOB_HASH_GITSHA1, GIT_EMPTY, NULL));
	ASSERT_OK(verify_fd(fd, 0, BLOB_HASH_SHA256, SHA256_EMPTY, NULL));
	close(fd);
}

static void test_fd_big(void)
{
	char actual[CID_MAX], hex[CID_MAX];
	uint8_t *b = big_pattern();
	int fd = file_with("big", b, BIG_SIZE);

	ASSERT_OK(verify_fd(fd, BIG_SIZE, BLOB_HASH_SHA256, BIG_SHA256, actual));
	ASSERT_STR_EQ(actual, BIG_SHA256);
	ASSERT_OK(verify_fd(fd, BIG_SIZE, BLOB_HASH_GITSHA1, BIG_GIT, NULL));
	verify_hash_buf(b, BIG_SIZE, BLOB_HASH_SHA256, hex);
	ASSERT_STR_EQ(hex, BIG_SHA256);

	/* One flipped byte in the second chunk is a mismatch that reports the actual hash. */
	b[(1U << 20) + 17] ^= 1;
	ASSERT_OK(blob_pwrite_all(fd, b + (1U << 20) + 17, 1, (1U << 20) + 17));
	ASSERT_EQ(verify_fd(fd, BIG_SIZE, BLOB_HASH_SHA256, BIG_SHA256, actual), -EIO);
	verify_hash_buf(b, BIG_SIZE, BLOB_HASH_SHA256, hex);
	ASSERT_STR_EQ(actual, hex);

	/* A file shorter than its blob cannot be read to the end. */
	ASSERT_OK(ftruncate(fd, BIG_SIZE - 1));
	strcpy(actual, "untouched");
	ASSERT_EQ(verify_fd(fd, BIG_SIZE, BLOB_HASH_SHA256, BIG_SHA256, actual), -EIO);
	ASSERT_STR_EQ(actual, "untouched");
	close(fd);
	free(b);

	/* A closed descriptor is an error of its own. */
	ASSERT_EQ(verify_fd(fd, 10, BLOB_HASH_SHA256, BIG_SHA256, NULL), -EBADF);
}

int main(void)
{
	ASSERT_NOT_NULL(mkdtemp(tmp));
	RUN(test_vectors);
	RUN(test_fd_small);
	RUN(test_fd_big);
	ASSERT_OK(rmdir(tmp));
	return 0;
}
