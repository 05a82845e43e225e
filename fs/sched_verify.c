/* sched_verify.c: the verifier thread. It hashes each blob as its prefix lands (so the wait
 * after the last block is short), decides the blob when the last byte is hashed, answers the
 * reads that wait for the whole blob, and carries out what a failed hash means: the index is
 * told first (its bad_count, the blob's generation, rises), then memory drops every block,
 * parked reads fail with -EIO, and the page cache of the blob's inodes is invalidated before
 * any new open may read. A second failure in one mount gives the blob up. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/bitmap.h"
#include "fs/sched_priv.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/timeutil.h"

#define HASH_SLICE (64ULL << 20)

void sched_verify_push_locked(struct sched *s, struct sched_blob *b)
{
	if (b->verify_queued)
		return;
	if (s->vqn == s->vqcap) {
		size_t cap = s->vqcap ? s->vqcap * 2 : 64;
		struct sched_blob **q = realloc(s->vq, cap * sizeof(*q));

		if (!q)
			return; /* hashed when its prefix grows again, or at the next mount */
		s->vq = q;
		s->vqcap = cap;
	}
	s->vq[s->vqn++] = b;
	b->verify_queued = true;
	pthread_cond_signal(&s->vcond);
}

static const char *hash_name(const struct sched_blob *b)
{
	return b->hash == BLOB_HASH_SHA256 ? "sha256" : "git sha1";
}

/* Memory's side of a failed generation: every block dropped, the blob bad until refetched,
 * and the verifier to answer its reads and invalidate its page cache. */
static void apply_failure_locked(struct sched *s, struct sched_blob *b, uint64_t gen)
{
	b->gen = MAX(b->gen + 1, gen);
	sched_drop_locked(b, 0, b->nblocks);
	b->state = BLOB_BAD;
	b->inval_pending = true;
	sched_verify_push_locked(s, b);
}

void sched_blob_failed_elsewhere_locked(struct sched *s, struct sched_blob *b, uint64_t gen)
{
	apply_failure_locked(s, b, gen);
	b->gen = gen;
	b->dropped_elsewhere = true;
}

/* Answers the reads of a dropped blob and invalidates the kernel's copy of its inodes. The
 * reads go first: the kernel's invalidation waits for the pages they hold locked. */
static void invalidate(struct sched *s, struct sched_blob *b)
{
	struct sched_waiter *ready = NULL, *failed = NULL;
	bool elsewhere = b->dropped_elsewhere;

	b->dropped_elsewhere = false;
	sched_take_answerable_locked(b, &ready, &failed);
	pthread_mutex_unlock(&s->lock);
	if (elsewhere)
		log_warn("'%s' was found not to match its content id by another process: its "
			 "blocks are fetched again",
			 b->path);
	sched_answer(failed, -EIO, -1);
	sched_answer_ready(s, b, ready);
	for (uint64_t ino = 1; s->on_drop && ino <= inode_count(s->t); ino++)
		if (s->blob_of_ino[ino] == b)
			s->on_drop(s->drop_ud, ino);
	pthread_mutex_lock(&s->lock);
	b->inval_pending = false;
	pthread_cond_broadcast(&s->cond);
}

/* A hash that did not match: the index first, so that no merge can bring the bits back. */
void sched_verify_fail(struct sched *s, struct sched_blob *b, uint64_t gen, const char *actual)
{
	char why[sizeof(s->last_error)];
	bool given_up;
	int r = db_blob_set_state(s->db, b->cid, BLOB_BAD);

	if (r < 0)
		log_warn("cannot record in the cache index that '%s' is bad: %s", b->path,
			 strerror(-r));
	if (s->hooks && s->hooks->after_drop)
		s->hooks->after_drop(s->hooks->ud, b->cid);
	pthread_mutex_lock(&s->lock);
	if (b->gen != gen) { /* another process found it first: already dropped */
		pthread_mutex_unlock(&s->lock);
		return;
	}
	apply_failure_locked(s, b, gen + 1);
	b->failures++;
	s->verify_failures++;
	given_up = b->given_up = b->failures >= 2;
	if (given_up)
		snprintf(
			why, sizeof(why),
			"'%s': the server sent bytes that do not match %s %s twice; its reads fail "
			"until the next mount or 'hffs cache verify'",
			b->path, hash_name(b), b->cid);
	else
		snprintf(why, sizeof(why),
			 "'%s' does not match its content id (%s %s, got %s): its blocks were "
			 "dropped and are fetched again",
			 b->path, hash_name(b), b->cid, actual);
	memcpy(s->last_error, why, sizeof(why));
	s->last_error_at = now_realtime_usec();
	pthread_mutex_unlock(&s->lock);
	if (given_up)
		log_err("%s", why);
	else
		log_warn("%s", why);
}

/* Hashes what b's prefix added since the last call, and decides b at its last byte. Called
 * with s->lock held; drops it while reading. */
static void hash_more(struct sched *s, struct sched_blob *b)
{
	struct sched_waiter *ready = NULL, *failed = NULL;
	uint64_t epoch = b->epoch, gen = b->gen, upto = MIN(b->prefix * s->bs, b->size);
	char actual[CID_MAX] = "";
	uint64_t lag;
	int fd = -1, r = 0;

	pthread_mutex_unlock(&s->lock);
	if (b->hasher && b->hasher_epoch != epoch)
		b->hasher = verify_hasher_free(b->hasher);
	if (!b->hasher) {
		r = verify_hasher_new(b->hash, b->size, &b->hasher);
		b->hasher_epoch = epoch;
	}
	/* A slice at a time, so that a blob a reader waits on is not queued behind the whole
	 * of a large one. */
	if (r >= 0)
		r = fd = sched_fd_get(s, b);
	if (r >= 0) {
		r = verify_hasher_feed(b->hasher, fd,
				       MIN(upto, verify_hasher_offset(b->hasher) + HASH_SLICE));
		sched_fd_put(s, b);
	}
	if (r >= 0 && verify_hasher_offset(b->hasher) < b->size) {
		pthread_mutex_lock(&s->lock);
		if (verify_hasher_offset(b->hasher) < upto)
			sched_verify_push_locked(s, b); /* the rest of what landed */
		return; /* more to come */
	}
	if (r >= 0)
		r = verify_hasher_finish(b->hasher, b->cid, actual);
	b->hasher = verify_hasher_free(b->hasher);
	pthread_mutex_lock(&s->lock);
	/* Blocks dropped while it hashed (a failed sync): the bytes hashed are not the ones that
	 * will be served, so no verdict; hash again. */
	if (b->epoch != epoch) {
		if (b->prefix == b->nblocks)
			sched_verify_push_locked(s, b);
		return;
	}
	if (r == -EIO && *actual) {
		pthread_mutex_unlock(&s->lock);
		sched_verify_fail(s, b, gen, actual);
		pthread_mutex_lock(&s->lock);
		return;
	}
	if (r < 0) {
		/* Not a verdict: the reads that wait for one fail, the blob stays unverified. */
		for (struct sched_waiter **pp = &b->waiters; *pp;) {
			struct sched_waiter *w = *pp;

			if (!w->whole) {
				pp = &w->next;
				continue;
			}
			*pp = w->next;
			w->next = failed;
			failed = w;
		}
		pthread_mutex_unlock(&s->lock);
		log_warn("cannot verify '%s': %s; reads that need it fail and it is verified again "
			 "when read",
			 b->path, strerror(-r));
		sched_answer(failed, -EIO, -1);
		pthread_mutex_lock(&s->lock);
		return;
	}
	b->state = BLOB_VERIFIED;
	b->record_verified = true;
	s->commit_now = true;
	pthread_cond_broadcast(&s->cond);
	sched_take_answerable_locked(b, &ready, &failed);
	lag = b->whole_at ? now_usec() - b->whole_at : 0;
	pthread_mutex_unlock(&s->lock);
	/* The wait a reader of the last block had, beyond the bytes themselves. */
	if (lag)
		log_info("'%s' verified, %.1f ms after its last block landed", b->path,
			 (double)lag / 1000.0);
	else
		log_info("'%s' verified", b->path);
	sched_answer_ready(s, b, ready);
	sched_answer(failed, -EIO, -1);
	pthread_mutex_lock(&s->lock);
}

static bool has_whole_waiter_locked(const struct sched_blob *b)
{
	for (const struct sched_waiter *w = b->waiters; w; w = w->next)
		if (w->whole)
			return true;
	return false;
}

/* The queued blob to take next: the first a reader waits on for its verdict, else the
 * oldest. */
static size_t pick_locked(const struct sched *s)
{
	for (size_t i = 0; i < s->vqn; i++)
		if (has_whole_waiter_locked(s->vq[i]))
			return i;
	return 0;
}

void *sched_verifier_main(void *arg)
{
	struct sched *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct sched_blob *b;
		size_t i;

		while (!s->vqn && !s->stopping)
			pthread_cond_wait(&s->vcond, &s->lock);
		if (s->stopping)
			break;
		i = pick_locked(s);
		b = s->vq[i];
		memmove(s->vq + i, s->vq + i + 1, (--s->vqn - i) * sizeof(*s->vq));
		b->verify_queued = false;
		if (b->inval_pending)
			invalidate(s, b);
		if (b->given_up || b->state == BLOB_VERIFIED ||
		    MIN(b->prefix * s->bs, b->size) <= (b->hasher && b->hasher_epoch == b->epoch ?
								verify_hasher_offset(b->hasher) :
								0))
			continue;
		hash_more(s, b);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}
