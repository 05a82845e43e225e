/* sched_commit.c: the committer thread. It takes the blocks that landed, syncs each blob's
 * data file, and only then commits their bits to the index, in batches of what lands within
 * 50 ms (at once when a verified blob waits to be recorded). A failed sync commits nothing for
 * that blob: its new blocks are dropped from memory and fetched again. It also records the
 * blobs the verifier proved, and access times for eviction. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/sched_priv.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/timeutil.h"

#define BATCH_USEC (50 * 1000)
#define TOUCH_USEC (5 * USEC_PER_SEC)

int sched_queue_push_locked(struct sched *s, struct sched_blob *b, uint64_t block)
{
	if (s->qn == s->qcap) {
		size_t cap = s->qcap ? s->qcap * 2 : 256;
		struct sched_pending *q = realloc(s->queue, cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		s->queue = q;
		s->qcap = cap;
	}
	s->queue[s->qn++] = (struct sched_pending){ .b = b, .block = block, .gen = b->gen };
	return 0;
}

static int pending_cmp(const void *a, const void *b)
{
	const struct sched_pending *x = a, *y = b;

	if (x->b != y->b)
		return x->b < y->b ? -1 : 1;
	if (x->gen != y->gen)
		return x->gen < y->gen ? -1 : 1;
	return x->block < y->block ? -1 : x->block > y->block;
}

/* The file may have been closed since its blocks were written: fdatasync() on any fd of it
 * writes back the file's dirty pages, and a writeback error not yet reported reaches an fd
 * opened after it (Linux 4.16: errseq reports an unseen error to a new open). */
static int sync_blob(struct sched *s, struct sched_blob *b)
{
	int fd = sched_fd_get(s, b), r;

	if (fd < 0)
		return fd;
	r = s->hooks && s->hooks->sync ? s->hooks->sync(s->hooks->ud, fd) : blob_sync(fd);
	sched_fd_put(s, b);
	return r;
}

/* A blob whose file did not sync: its landed blocks of q[i..j) never become bits, and leave
 * memory (unless a failed hash dropped them already) to be fetched again. */
static void drop_unsynced(struct sched *s, const struct sched_pending *q, size_t n, int err)
{
	struct sched_blob *b = q[0].b;

	log_warn("cannot write '%s' to the cache's disk (%s): %zu fetched blocks are dropped and "
		 "fetched again",
		 b->path, strerror(-err), n);
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < n; i++)
		if (q[i].gen == b->gen)
			sched_drop_locked(b, q[i].block, 1);
	pthread_mutex_unlock(&s->lock);
}

/* One batch: sync, then commit the bits of the blobs that synced. */
static void commit_batch(struct sched *s, struct sched_pending *q, size_t n)
{
	_cleanup_free_ struct db_block_run *runs = calloc(n ? n : 1, sizeof(*runs));
	size_t nruns = 0;
	int r;

	if (!runs) {
		log_warn("out of memory: %zu blocks stay uncommitted and will be fetched again", n);
		return;
	}
	qsort(q, n, sizeof(*q), pending_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j < n && q[j].b == q[i].b)
			j++;
		r = sync_blob(s, q[i].b);
		if (r < 0) {
			drop_unsynced(s, q + i, j - i, r);
			i = j;
			continue;
		}
		for (; i < j; i++) {
			struct db_block_run *last = nruns ? &runs[nruns - 1] : NULL;

			if (last && last->cid == q[i].b->cid && last->gen == q[i].gen &&
			    last->first + last->count == q[i].block) {
				last->count++;
				continue;
			}
			runs[nruns++] = (struct db_block_run){
				.cid = q[i].b->cid, .first = q[i].block, .count = 1, .gen = q[i].gen
			};
		}
	}
	r = db_blob_add_blocks(s->db, runs, nruns, NULL);
	if (r < 0)
		log_warn("cannot record %zu fetched blocks in the cache index: %s", n,
			 strerror(-r));
}

/* Writes verified to the index for the blobs the verifier proved, once their bits are all
 * committed (-EINVAL until then: tried again after the next batch). */
static void record_verified(struct sched *s)
{
	for (size_t i = 0; i < s->nblobs; i++) {
		struct sched_blob *b = &s->blobs[i];
		uint64_t epoch;
		bool want;
		int r;

		pthread_mutex_lock(&s->lock);
		want = b->record_verified;
		epoch = b->epoch;
		pthread_mutex_unlock(&s->lock);
		if (!want)
			continue;
		r = db_blob_set_state(s->db, b->cid, BLOB_VERIFIED);
		if (r == -EINVAL)
			continue;
		if (r < 0)
			log_warn("cannot record that '%s' is verified: %s", b->path, strerror(-r));
		pthread_mutex_lock(&s->lock);
		if (b->epoch == epoch)
			b->record_verified = false;
		pthread_mutex_unlock(&s->lock);
	}
}

static void touch_accessed(struct sched *s)
{
	uint64_t now = now_realtime_usec();

	for (size_t i = 0; i < s->nblobs; i++) {
		bool accessed;

		pthread_mutex_lock(&s->lock);
		accessed = s->blobs[i].accessed;
		s->blobs[i].accessed = false;
		pthread_mutex_unlock(&s->lock);
		if (accessed)
			(void)db_blob_touch(s->db, s->blobs[i].cid, now);
	}
}

/* Waits up to BATCH_USEC for more to land, unless something wants the index now. */
static void wait_batch_locked(struct sched *s)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += BATCH_USEC * 1000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (!s->stopping && !s->commit_now && s->queued_gen == s->committed_gen &&
	       pthread_cond_timedwait(&s->cond, &s->lock, &ts) == 0)
		;
}

void *sched_committer_main(void *arg)
{
	struct sched *s = arg;
	uint64_t last_touch = 0;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct sched_pending *q;
		size_t n;
		uint64_t gen;

		while (!s->qn && !s->stopping && !s->commit_now &&
		       s->committed_gen == s->queued_gen)
			pthread_cond_wait(&s->cond, &s->lock);
		if (!s->qn && s->stopping)
			break;
		q = TAKE_PTR(s->queue);
		n = s->qn;
		s->qn = s->qcap = 0;
		s->commit_now = false;
		gen = s->queued_gen;
		pthread_mutex_unlock(&s->lock);

		if (n)
			commit_batch(s, q, n);
		free(q);
		record_verified(s);
		if (now_usec() - last_touch > TOUCH_USEC) {
			touch_accessed(s);
			last_touch = now_usec();
		}

		pthread_mutex_lock(&s->lock);
		if (gen > s->committed_gen)
			s->committed_gen = gen;
		pthread_cond_broadcast(&s->cond);
		if (!s->stopping)
			wait_batch_locked(s);
	}
	pthread_mutex_unlock(&s->lock);
	record_verified(s);
	touch_accessed(s);
	return NULL;
}

void sched_flush(struct sched *s)
{
	uint64_t want;

	pthread_mutex_lock(&s->lock);
	want = ++s->queued_gen;
	pthread_cond_broadcast(&s->cond);
	while (s->committed_gen < want)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
}
