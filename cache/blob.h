/* blob.h: blob data files. Each blob (content-addressed: LFS sha256 or git blob sha1) is one
 * sparse file <cache_dir>/blobs/<cid[0..1]>/<cid>, sized to the blob when created, holding the
 * blob's bytes at their own offsets; holes are blocks not fetched yet. The presence of a block
 * is recorded in cache/db, never inferred from the file. Any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest content id (64 hex digits of a sha256) plus NUL. */
#define CID_MAX 65

/* True when cid is 40 or 64 lowercase hex digits (a git sha1 or a sha256). */
bool blob_cid_is_valid(const char *cid);

/* Creates the directory path and its missing parents, mode 0755 (mkdir -p): 0 when it
 * exists (as a directory) afterwards, else -errno (-ENOTDIR, -EACCES, -ENAMETOOLONG). */
int blob_mkdir_p(const char *path);

/* Writes "<cache_dir>/blobs/<cid[0..1]>/<cid>" into buf. -ENAMETOOLONG, -EINVAL bad cid. */
int blob_path(const char *cache_dir, const char *cid, char *buf, size_t len);
/* Writes the directory of the data files, "<cache_dir>/blobs", or with fanout one of its
 * fan-out directories, "<cache_dir>/blobs/<fanout>", into buf. -ENAMETOOLONG. */
int blob_dir(const char *cache_dir, const char *fanout, char *buf, size_t len);

/* Opens (creating directories and the file, and sizing a new file to size) the data file of
 * cid, O_RDWR|O_CLOEXEC. An existing file of another size is resized to size (its data is
 * kept; the bitmap in db is what says which blocks are valid). Returns the fd, or -errno
 * (-ENOSPC, -EACCES, -EINVAL). The caller closes it. */
int blob_open(const char *cache_dir, const char *cid, uint64_t size);

/* pwrite/pread of all len bytes at offset, retrying EINTR and short transfers.
 * Returns 0 or -errno (-ENOSPC, -EIO). A read past the file's end is -EIO. */
int blob_pwrite_all(int fd, const void *buf, size_t len, uint64_t offset);
int blob_pread_all(int fd, void *buf, size_t len, uint64_t offset);

/* Makes written data durable before the bits that claim it are committed (fdatasync). */
int blob_sync(int fd);

/* Frees the disk space of [offset, offset+len) (FALLOC_FL_PUNCH_HOLE), keeping the size.
 * A file system without hole punching returns 0 with nothing freed: the bitmap, not the
 * file, says which bytes are valid, so stale bytes need no zeroing. */
int blob_punch(int fd, uint64_t offset, uint64_t len);

/* Removes the data file of cid. -ENOENT when there is none. */
int blob_unlink(const char *cache_dir, const char *cid);

/* Bytes the data file occupies on disk (st_blocks * 512), 0 when absent. */
uint64_t blob_disk_usage(const char *cache_dir, const char *cid);
