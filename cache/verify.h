/* verify.h: proving a blob equals its content id, at once (verify_fd) or as its prefix lands
 * (struct verify_hasher). Blocking (reads the file): callers run it on a verify thread, never
 * on a FUSE worker or the engine thread. */
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

/* A hash fed in order as a blob's prefix lands, so that checking a complete blob costs only
 * its last bytes. Not thread-safe: one owner. */
struct verify_hasher;

/* A hasher of a blob of size bytes by the rule of hash, at offset 0. -ENOMEM. */
int verify_hasher_new(enum blob_hash hash, uint64_t size, struct verify_hasher **ret);
/* Takes NULL, returns NULL. */
struct verify_hasher *verify_hasher_free(struct verify_hasher *h);
/* Bytes hashed so far: the next byte to feed. */
uint64_t verify_hasher_offset(const struct verify_hasher *h);
/* Hashes bytes [offset, upto) of fd (upto is clipped to the size). 0, or -errno when the
 * file cannot be read (-EIO when it is shorter), -ENOMEM; the hasher is then unusable. */
int verify_hasher_feed(struct verify_hasher *h, int fd, uint64_t upto);
/* Hashes len bytes of buf as the next bytes of the blob (a stream that is not kept in any
 * file). 0; -EINVAL past the size; -ENOMEM (the hasher is then unusable). Memory only: any
 * thread that owns the hasher. */
int verify_hasher_update(struct verify_hasher *h, const void *buf, size_t len);
/* Once every byte is fed: the hash in lowercase hex into ret_hex (CID_MAX bytes). 0,
 * -EINVAL when bytes are missing, -ENOMEM. Ends the hasher: only free is valid after. */
int verify_hasher_hex(struct verify_hasher *h, char *ret_hex);
/* Once every byte is fed: 0 when the hash is cid, -EIO when not (ret_actual, if given,
 * receives the computed hex, CID_MAX bytes), -EINVAL when bytes are missing, -ENOMEM. Ends
 * the hasher: only free is valid after. */
int verify_hasher_finish(struct verify_hasher *h, const char *cid, char *ret_actual);

/* Hash of a memory buffer by the same rule into ret_hex (CID_MAX bytes). For tests and small
 * blobs. ret_hex is "" when OpenSSL fails (out of memory): it matches no cid. */
void verify_hash_buf(const void *buf, size_t len, enum blob_hash hash, char *ret_hex);
