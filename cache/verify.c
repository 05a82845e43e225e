/* verify.c: content hashes of blobs (sha256 for LFS files, git blob sha1 for the others)
 * through OpenSSL's EVP API. Runs on the caller's thread and blocks on disk reads; holds no
 * state. Knows nothing of the index: the caller records what the comparison says. */
#include "cache/verify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cache/blob.h"
#include "util/cleanup.h"
#include "util/log.h"

/* Big enough that the per-call cost vanishes, small enough to stay in L2. */
#define VERIFY_CHUNK (1U << 20)

static void evp_ctx_freep(EVP_MD_CTX **p)
{
	EVP_MD_CTX_free(*p);
}

/* Starts a digest by the rule of hash: git sha1 first hashes the "blob <size>\0" header. */
static int hash_begin(EVP_MD_CTX *ctx, enum blob_hash hash, uint64_t size)
{
	char head[32];
	int n;

	if (hash == BLOB_HASH_SHA256)
		return EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ? 0 : -ENOMEM;
	n = snprintf(head, sizeof(head), "blob %" PRIu64, size);
	/* The header's terminating NUL is part of what git hashes. */
	if (!EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) ||
	    !EVP_DigestUpdate(ctx, head, (size_t)n + 1))
		return -ENOMEM;
	return 0;
}

static int hash_end(EVP_MD_CTX *ctx, char *ret_hex)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_DigestFinal_ex(ctx, md, &n) || n * 2 >= CID_MAX)
		return -ENOMEM;
	for (unsigned int i = 0; i < n; i++) {
		ret_hex[2 * i] = digits[md[i] >> 4];
		ret_hex[2 * i + 1] = digits[md[i] & 15];
	}
	ret_hex[2 * n] = '\0';
	return 0;
}

void verify_hash_buf(const void *buf, size_t len, enum blob_hash hash, char *ret_hex)
{
	_cleanup_(evp_ctx_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	ret_hex[0] = '\0';
	if (!ctx || hash_begin(ctx, hash, len) < 0 || !EVP_DigestUpdate(ctx, buf, len) ||
	    hash_end(ctx, ret_hex) < 0)
		ret_hex[0] = '\0';
}

struct verify_hasher {
	EVP_MD_CTX *ctx;
	uint64_t size;
	uint64_t offset;
};

int verify_hasher_new(enum blob_hash hash, uint64_t size, struct verify_hasher **ret)
{
	struct verify_hasher *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return -ENOMEM;
	h->size = size;
	h->ctx = EVP_MD_CTX_new();
	r = h->ctx ? hash_begin(h->ctx, hash, size) : -ENOMEM;
	if (r < 0) {
		verify_hasher_free(h);
		return r;
	}
	*ret = h;
	return 0;
}

struct verify_hasher *verify_hasher_free(struct verify_hasher *h)
{
	if (h) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
	}
	return NULL;
}

uint64_t verify_hasher_offset(const struct verify_hasher *h)
{
	return h->offset;
}

int verify_hasher_feed(struct verify_hasher *h, int fd, uint64_t upto)
{
	/* The buffer lives for one call, not for the hasher: a mount hashing many files at
	 * once (completion lands blocks of all of them) must not hold a chunk per file. */
	_cleanup_free_ uint8_t *buf = NULL;

	upto = upto < h->size ? upto : h->size;
	if (h->offset < upto && !(buf = malloc(VERIFY_CHUNK)))
		return -ENOMEM;
	while (h->offset < upto) {
		size_t n =
			upto - h->offset < VERIFY_CHUNK ? (size_t)(upto - h->offset) : VERIFY_CHUNK;
		int r = blob_pread_all(fd, buf, n, h->offset);

		if (r < 0) {
			log_debug("verify: cannot read %zu bytes at %" PRIu64 ": %s", n, h->offset,
				  strerror(-r));
			return r;
		}
		if (!EVP_DigestUpdate(h->ctx, buf, n))
			return -ENOMEM;
		h->offset += n;
	}
	return 0;
}

int verify_hasher_update(struct verify_hasher *h, const void *buf, size_t len)
{
	if (len > h->size - h->offset)
		return -EINVAL;
	if (len && !EVP_DigestUpdate(h->ctx, buf, len))
		return -ENOMEM;
	h->offset += len;
	return 0;
}

int verify_hasher_hex(struct verify_hasher *h, char *ret_hex)
{
	return h->offset != h->size ? -EINVAL : hash_end(h->ctx, ret_hex);
}

int verify_hasher_finish(struct verify_hasher *h, const char *cid, char *ret_actual)
{
	char hex[CID_MAX];
	int r;

	r = verify_hasher_hex(h, hex);
	if (r < 0)
		return r;
	if (ret_actual)
		memcpy(ret_actual, hex, strlen(hex) + 1);
	if (strcmp(hex, cid) != 0) {
		log_debug("verify: '%s' hashes to %s", cid, hex);
		return -EIO;
	}
	return 0;
}

static void hasher_freep(struct verify_hasher **p)
{
	verify_hasher_free(*p);
}

int verify_fd(int fd, uint64_t size, enum blob_hash hash, const char *cid, char *ret_actual)
{
	_cleanup_(hasher_freep) struct verify_hasher *h = NULL;
	int r = verify_hasher_new(hash, size, &h);

	if (r < 0)
		return r;
	/* One pass over a file nobody else will read soon through this descriptor: read it
	 * ahead, and drop what was hashed so a 10 GB shard does not push out the page cache
	 * (a failure of either hint changes nothing but speed). */
	(void)posix_fadvise(fd, 0, (off_t)size, POSIX_FADV_SEQUENTIAL);
	while (h->offset < size) {
		uint64_t from = h->offset;

		r = verify_hasher_feed(h, fd, from + VERIFY_CHUNK);
		if (r < 0)
			return r;
		(void)posix_fadvise(fd, (off_t)from, (off_t)(h->offset - from),
				    POSIX_FADV_DONTNEED);
	}
	return verify_hasher_finish(h, cid, ret_actual);
}
