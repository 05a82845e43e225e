/* verify.h: proving a complete blob equals its content id. Blocking (reads the whole file):
 * callers run it on a verify thread, never on a FUSE worker or the engine thread. */
#pragma once

#include <stddef.h>
#include <stdint.h>

enum blob_hash {
	BLOB_HASH_SHA256, /* LFS/Xet file: cid is the sha256 of the content (tree lfs.oid) */
	BLOB_HASH_GITSHA1, /* regular file: cid is sha1("blob <size>\0" + content) (tree oid) */
};

/* Hashes size bytes of fd from offset 0 by the rule of hash and compares with cid (lowercase
 * hex). Returns 0 on a match, -EIO on a mismatch (ret_actual, if given, receives the computed
 * hex, CID_MAX bytes), or -errno when the file cannot be read (-EIO too when it is shorter
 * than size; ret_actual is then left alone), -ENOMEM. Reads in 1 MiB chunks and drops them
 * from the page cache behind it. */
int verify_fd(int fd, uint64_t size, enum blob_hash hash, const char *cid, char *ret_actual);

/* Hash of a memory buffer by the same rule into ret_hex (CID_MAX bytes). For tests and small
 * blobs. ret_hex is "" when OpenSSL fails (out of memory): it matches no cid. */
void verify_hash_buf(const void *buf, size_t len, enum blob_hash hash, char *ret_hex);
