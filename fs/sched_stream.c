/* sched_stream.c: reads the cache has no room for (the budget refused their blocks, or the
 * disk filled), streamed from the Hub through a memory buffer and not kept, as rclone does
 * with a full cache. The promise stays that of cached reads (docs/design.md, "Correct bytes
 * or an error"): every streamed block leaves a digest on its blob; a read that needs the
 * whole blob verified streams the whole blob through its hash and is answered only if that
 * matches and every block served before (streamed or cached) equals what was verified.
 * Submitted from any thread; the sink and the hashes run on the engine thread (there is no
 * file for the verifier to read). Calls only the engine, verify.h and blob reads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/bitmap.h"
#include "cache/blob.h"
#include "fs/budget.h"
#include "fs/sched_priv.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Buffers of streams in flight, at most: the kernel sends a mount's reads 1 MiB at a time,
 * and no more than its max_background (12) asynchronous ones plus the workers' (16). */
#define STREAM_MAX_MEM (64ULL << 20)
/* A stream after this long without one says so in the log again. */
#define STREAM_QUIET_USEC (60 * USEC_PER_SEC)

/* One streamed read: bytes [offset, offset + len) of b, out of the range [from, to) asked:
 * the read's whole blocks, or [0, size) when the read waits for the whole blob's hash. */
struct sched_stream {
	struct sched *s;
	struct sched_blob *b;
	uint64_t offset, len;
	uint64_t from, to;
	uint64_t mem; /* bytes counted in s->stream_mem */
	uint8_t *buf; /* whole: the read's len bytes; else [from, to) */
	struct verify_hasher *h; /* whole: the blob's hash */
	struct verify_hasher *bh; /* whole: the hash of the block being streamed */
	uint64_t *dig; /* whole: every block's digest */
	uint64_t pos; /* whole: the next byte to arrive */
	uint64_t gen; /* the blob's generation when the read was asked */
	sched_stream_fn done;
	void *ud;
};

static void stream_free(struct sched_stream *st)
{
	verify_hasher_free(st->h);
	verify_hasher_free(st->bh);
	free(st->dig);
	free(st->buf);
	free(st);
}

/* A block's digest: 64 bits of its sha256, never 0 (which means "none"). */
static uint64_t digest_of(const char *hex)
{
	char head[17] = "";

	memcpy(head, hex, strnlen(hex, sizeof(head) - 1));
	return strtoull(head, NULL, 16) | 1;
}

static uint64_t digest_buf(const void *buf, size_t len)
{
	char hex[CID_MAX];

	verify_hash_buf(buf, len, BLOB_HASH_SHA256, hex);
	return digest_of(hex);
}

/* Whole streams: feeds the current block's hash, and records its digest at its end. */
static int whole_feed_blocks(struct sched_stream *st, const uint8_t *data, size_t len)
{
	const uint32_t bs = st->s->bs;
	const struct sched_blob *b = st->b;

	while (len) {
		uint64_t k = st->pos / bs, bend = k * bs + block_len(b->size, bs, k);
		size_t n = (size_t)MIN(len, bend - st->pos);
		char hex[CID_MAX];
		int r;

		if (!st->bh &&
		    (r = verify_hasher_new(BLOB_HASH_SHA256, bend - k * bs, &st->bh)) < 0)
			return r;
		r = verify_hasher_update(st->bh, data, n);
		if (r < 0)
			return r;
		st->pos += n;
		data += n;
		len -= n;
		if (st->pos < bend)
			continue;
		r = verify_hasher_hex(st->bh, hex);
		st->bh = verify_hasher_free(st->bh);
		if (r < 0)
			return r;
		st->dig[k] = digest_of(hex);
	}
	return 0;
}

/* Engine thread: bytes in order, each once (a retry resumes after the last one). */
static int stream_write(void *ud, uint64_t offset, const void *data, size_t len)
{
	struct sched_stream *st = ud;
	uint64_t lo, hi;
	int r;

	if (!st->h) {
		memcpy(st->buf + (offset - st->from), data, len);
		return 0;
	}
	lo = MAX(offset, st->offset);
	hi = MIN(offset + len, st->offset + st->len);
	if (lo < hi)
		memcpy(st->buf + (lo - st->offset), (const uint8_t *)data + (lo - offset), hi - lo);
	r = verify_hasher_update(st->h, data, len);
	return r < 0 ? r : whole_feed_blocks(st, data, len);
}

/* Whether the blocks of this mount's cache that are present at generation *ret_gen, and so
 * may have been served, equal the verified digests dig: 1 yes, 0 no, -ENOMEM. Reads them
 * from the blob's file (local disk); a block that cannot be read counts as differing. */
static int cached_blocks_agree(struct sched *s, struct sched_blob *b, const uint64_t *dig,
			       uint64_t *ret_gen)
{
	_cleanup_free_ uint8_t *present = malloc(bitmap_bytes(b->nblocks) + 1);
	_cleanup_free_ uint8_t *buf = malloc(s->bs);
	int fd, agree = 1;

	if (!present || !buf)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	memcpy(present, b->present, bitmap_bytes(b->nblocks) + 1);
	*ret_gen = b->gen;
	pthread_mutex_unlock(&s->lock);
	if (!bitmap_count(present, b->nblocks))
		return 1;
	fd = sched_fd_get(s, b);
	if (fd < 0)
		return 0; /* the file cannot be opened: its blocks cannot be shown to agree */
	for (uint64_t k = 0; k < b->nblocks && agree; k++) {
		size_t n = block_len(b->size, s->bs, k);

		if (!bitmap_test(present, k))
			continue;
		if (blob_pread_all(fd, buf, n, k * s->bs) < 0 || digest_buf(buf, n) != dig[k])
			agree = 0;
	}
	sched_fd_put(s, b);
	return agree;
}

/* Records the digests of a stream that is not whole; false when a block differs from what
 * was streamed or verified before: one of them was wrong. */
static bool record_blocks_locked(struct sched_blob *b, uint64_t first, const uint64_t *dig,
				 uint64_t n)
{
	bool same = true;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t *d = &b->stream_dig[first + i];

		if (!*d)
			*d = dig[i];
		else if (*d != dig[i])
			same = false;
	}
	return same;
}

/* A reader may have got wrong bytes of b at generation gen (streamed or cached): the
 * generation fails as a bad hash does (cached blocks dropped, the kernel's pages dropped,
 * later reads of handles opened before fail, given up at the second time), and the digests
 * start over. */
static void stream_fail(struct sched *s, struct sched_blob *b, uint64_t gen)
{
	sched_verify_fail(s, b, gen, "bytes that differ from another stream of the same block");
	pthread_mutex_lock(&s->lock);
	memset(b->stream_dig, 0, b->nblocks * sizeof(*b->stream_dig));
	b->stream_dig_verified = false;
	pthread_mutex_unlock(&s->lock);
}

/* The verdict of a whole stream whose hash matched: true when every block served before,
 * streamed or cached, equals what was verified (else the generation fails). The verified
 * digests stand from now on. */
static bool settle_whole(struct sched *s, struct sched_blob *b, struct sched_stream *st)
{
	uint64_t gen = 0;
	int agree = cached_blocks_agree(s, b, st->dig, &gen);
	bool ok = agree > 0;

	pthread_mutex_lock(&s->lock);
	for (uint64_t k = 0; k < b->nblocks; k++)
		ok = ok && (!b->stream_dig[k] || b->stream_dig[k] == st->dig[k]);
	pthread_mutex_unlock(&s->lock);
	if (!ok && agree >= 0)
		stream_fail(s, b, MIN(gen, st->gen));
	pthread_mutex_lock(&s->lock);
	memcpy(b->stream_dig, st->dig, b->nblocks * sizeof(*st->dig));
	b->stream_dig_verified = true;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

/* Engine thread, once: answers the read, with its bytes only when they are right. */
static void stream_done(void *ud, int err, enum fetch_reason reason, const char *why,
			uint64_t written)
{
	struct sched_stream *st = ud;
	struct sched *s = st->s;
	struct sched_blob *b = st->b;
	char actual[CID_MAX] = "", words[256] = "";
	const uint8_t *bytes = st->h ? st->buf : st->buf + (st->offset - st->from);
	bool bad = false;
	int r = err;

	(void)written;
	if (!r && st->h) {
		r = verify_hasher_finish(st->h, b->cid, actual);
		if (r == -EIO)
			snprintf(words, sizeof(words),
				 "'%s' streamed without caching hashed to %.16s..., not %.16s...: "
				 "the read fails",
				 b->path, actual, b->cid);
		else if (!r && !settle_whole(s, b, st))
			bad = true;
	} else if (!r) {
		uint64_t first = st->from / s->bs, n = (st->to - st->from + s->bs - 1) / s->bs;
		_cleanup_free_ uint64_t *dig = calloc(n, sizeof(*dig));

		for (uint64_t i = 0; dig && i < n; i++)
			dig[i] = digest_buf(st->buf + i * s->bs,
					    block_len(b->size, s->bs, first + i));
		pthread_mutex_lock(&s->lock);
		/* A handle opened before a failed generation reads nothing more. */
		bad = !dig || b->gen != st->gen;
		if (!bad && !record_blocks_locked(b, first, dig, n)) {
			bad = true;
			pthread_mutex_unlock(&s->lock);
			stream_fail(s, b, st->gen);
			pthread_mutex_lock(&s->lock);
		}
		pthread_mutex_unlock(&s->lock);
	}
	if (bad) {
		r = -EIO;
		snprintf(words, sizeof(words),
			 "bytes of '%s' streamed without caching differ from %s: the read fails",
			 b->path,
			 st->h ? "its verified content (an earlier read got wrong bytes)" :
				 "those streamed or verified before");
	}
	if (r && !words[0])
		snprintf(words, sizeof(words), "streaming '%s' bytes %llu-%llu failed: %s", b->path,
			 (unsigned long long)st->offset,
			 (unsigned long long)(st->offset + st->len - 1),
			 why && *why ? why : fetch_reason_str(reason));
	if (r)
		log_warn("%s", words);
	pthread_mutex_lock(&s->lock);
	s->stream_mem -= st->mem;
	s->streams_active--;
	if (!r) {
		s->streamed_reads++;
		s->streamed_bytes += st->len;
	} else {
		s->verify_failures += actual[0] != '\0' || bad;
		snprintf(s->last_error, sizeof(s->last_error), "%s", words);
		s->last_error_at = now_realtime_usec();
	}
	pthread_mutex_unlock(&s->lock);
	st->done(st->ud, r ? -EIO : 0, r ? NULL : bytes, r ? 0 : st->len);
	stream_free(st);
}

/* Takes the stream's memory and says why it streams, once a while. -EIO beyond the cap,
 * -ENOMEM. */
static int stream_admit(struct sched *s, struct sched_blob *b, uint64_t mem)
{
	char why[320];
	uint64_t now = now_usec();
	bool quiet;

	budget_why(s->budget, why, sizeof(why));
	pthread_mutex_lock(&s->lock);
	if (!b->stream_dig && !(b->stream_dig = calloc(b->nblocks, sizeof(*b->stream_dig)))) {
		pthread_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	if (s->stream_mem + mem > STREAM_MAX_MEM) {
		pthread_mutex_unlock(&s->lock);
		log_warn("a read of '%s' fails: %llu MiB of reads are being streamed already, "
			 "the most kept in memory",
			 b->path, (unsigned long long)(STREAM_MAX_MEM >> 20));
		return -EIO;
	}
	s->stream_mem += mem;
	s->streams_active++;
	quiet = s->stream_last_at && now - s->stream_last_at < STREAM_QUIET_USEC;
	s->stream_last_at = now;
	if (why[0] || !s->stream_why[0])
		snprintf(s->stream_why, sizeof(s->stream_why), "%s",
			 why[0] ? why : "the cache's disk is full");
	snprintf(why, sizeof(why), "%s", s->stream_why);
	pthread_mutex_unlock(&s->lock);
	if (!quiet)
		log_warn("streaming: %s; reads of uncached bytes are served through memory "
			 "without being cached",
			 why);
	return 0;
}

int sched_stream(struct sched *s, const struct inode *f, uint64_t offset, uint64_t len,
		 sched_stream_fn done, void *ud)
{
	struct sched_blob *b = s->blob_of_ino[f->ino];
	_cleanup_free_ struct sched_stream *st = NULL;
	struct xfer_req req;
	uint64_t first, last, gen;
	bool whole, given_up;
	int r;

	if (!b || !block_span(b->size, s->bs, offset, len, &first, &last))
		return -EIO;
	pthread_mutex_lock(&s->lock);
	/* Once a whole stream verified the blob, its digests check every block read after. */
	whole = sched_needs_whole_locked(s, b, last) && !b->stream_dig_verified;
	given_up = b->given_up;
	gen = b->gen;
	pthread_mutex_unlock(&s->lock);
	if (given_up)
		return -EIO;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	*st = (struct sched_stream){ .s = s,
				     .b = b,
				     .offset = offset,
				     .len = len,
				     .from = whole ? 0 : first * s->bs,
				     .to = whole ? b->size : MIN((last + 1) * s->bs, b->size),
				     .gen = gen,
				     .done = done,
				     .ud = ud };
	st->mem = whole ? len + b->nblocks * sizeof(uint64_t) : st->to - st->from;
	st->buf = malloc(whole ? len : st->to - st->from);
	r = st->buf ? 0 : -ENOMEM;
	if (!r && whole) {
		st->dig = calloc(b->nblocks, sizeof(*st->dig));
		r = st->dig ? verify_hasher_new(b->hash, b->size, &st->h) : -ENOMEM;
	}
	if (!r)
		r = stream_admit(s, b, st->mem);
	if (r < 0) {
		verify_hasher_free(st->h);
		free(st->dig);
		free(st->buf);
		return r;
	}
	req = (struct xfer_req){
		.url = b->url,
		.blob_key = b->cid,
		.blob_size = b->size,
		.offset = st->from,
		.len = st->to - st->from,
		.prio = XFER_PRIO_DEMAND,
		.sink = { .write = stream_write, .done = stream_done, .ud = st },
	};
	/* From here the engine owns st (done() answers and frees it), maybe before this
	 * returns. */
	r = xfer_submit(s->x, &req, NULL);
	if (r < 0)
		stream_done(TAKE_PTR(st), r, FETCH_CANCELED, "not submitted", 0);
	TAKE_PTR(st);
	return 0;
}
