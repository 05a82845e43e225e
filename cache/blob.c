/* blob.c: sparse data files of blobs, one per content id under <cache_dir>/blobs/<cid[0..1]>/.
 * Any thread; no state of its own (the file system orders concurrent opens). Knows nothing of
 * the index: which blocks of a file are valid is the bitmap's business (cache/db). */
#include "cache/blob.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/log.h"

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool blob_cid_is_valid(const char *cid)
{
	size_t n = 0;

	if (!cid)
		return false;
	while (cid[n] && n <= CID_MAX) {
		if (!is_lower_hex(cid[n]))
			return false;
		n++;
	}
	return n == 40 || n == 64;
}

int blob_mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	struct stat st;

	if (n == 0)
		return -EINVAL;
	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	/* Each prefix ending before a '/', then the whole path; EEXIST is checked at the end. */
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/' || p[-1] == '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (stat(buf, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int blob_path(const char *cache_dir, const char *cid, char *buf, size_t len)
{
	int n;

	if (!blob_cid_is_valid(cid))
		return -EINVAL;
	n = snprintf(buf, len, "%s/blobs/%.2s/%s", cache_dir, cid, cid);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int blob_dir(const char *cache_dir, const char *fanout, char *buf, size_t len)
{
	int n = fanout ? snprintf(buf, len, "%s/blobs/%s", cache_dir, fanout) :
			 snprintf(buf, len, "%s/blobs", cache_dir);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int blob_open(const char *cache_dir, const char *cid, uint64_t size)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	struct stat st;
	char *slash;
	int r;

	if (size > INT64_MAX)
		return -EINVAL;
	r = blob_path(cache_dir, cid, path, sizeof(path));
	if (r < 0)
		return r;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 && errno == ENOENT) {
		/* First blob of this fan-out directory (or of the cache). */
		slash = strrchr(path, '/');
		*slash = '\0';
		r = blob_mkdir_p(path);
		*slash = '/';
		if (r < 0) {
			log_debug("blob: cannot create the directory of '%s': %s", path,
				  strerror(-r));
			return r;
		}
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	}
	if (fd < 0) {
		r = -errno;
		log_debug("blob: cannot open '%s': %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	/* A new file is sized at once: holes cost no space and reads of them are never served
	 * (the bitmap says which blocks are valid). */
	if ((uint64_t)st.st_size != size && ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		log_debug("blob: cannot size '%s' to %llu bytes: %s", path,
			  (unsigned long long)size, strerror(-r));
		return r;
	}
	return TAKE_FD(fd);
}

static int check_range(size_t len, uint64_t offset)
{
	if (offset > INT64_MAX || len > INT64_MAX - offset)
		return -EINVAL;
	return 0;
}

int blob_pwrite_all(int fd, const void *buf, size_t len, uint64_t offset)
{
	const uint8_t *p = buf;
	int r = check_range(len, offset);

	if (r < 0)
		return r;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)offset);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* pwrite never returns 0 for len > 0 on a regular file; guard against a loop. */
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

int blob_pread_all(int fd, void *buf, size_t len, uint64_t offset)
{
	uint8_t *p = buf;
	int r = check_range(len, offset);

	if (r < 0)
		return r;
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)offset);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* past the end: the file is shorter than its blob */
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

int blob_sync(int fd)
{
	return fdatasync(fd) < 0 ? -errno : 0;
}

int blob_punch(int fd, uint64_t offset, uint64_t len)
{
	if (len == 0)
		return 0;
	if (offset > INT64_MAX || len > INT64_MAX - offset)
		return -EINVAL;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)len) <
	    0) {
		/* No hole punching here (e.g. some network file systems): the space stays used,
		 * and the stale bytes are harmless because the cleared bits disown them. */
		if (errno == EOPNOTSUPP || errno == ENOSYS)
			return 0;
		return -errno;
	}
	return 0;
}

int blob_unlink(const char *cache_dir, const char *cid)
{
	char path[PATH_MAX];
	int r = blob_path(cache_dir, cid, path, sizeof(path));

	if (r < 0)
		return r;
	return unlink(path) < 0 ? -errno : 0;
}

uint64_t blob_disk_usage(const char *cache_dir, const char *cid)
{
	char path[PATH_MAX];
	struct stat st;

	if (blob_path(cache_dir, cid, path, sizeof(path)) < 0 || stat(path, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}
