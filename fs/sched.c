/* sched.c: from reads to block fetches and back. FUSE workers call sched_read(); the engine
 * thread calls the fetch sink (sched_fetch_write()/sched_fetch_done()); the committer and
 * verifier threads live in sched_commit.c and sched_verify.c. Locks and the one authority for
 * presence: sched_priv.h. */
#include "fs/sched.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/bitmap.h"
#include "fs/sched_priv.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/timeutil.h"

static int blob_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sched_blob *)a)->cid, ((const struct sched_blob *)b)->cid);
}

static struct sched_blob *blob_find(struct sched *s, const char *cid)
{
	struct sched_blob key;

	snprintf(key.cid, sizeof(key.cid), "%s", cid);
	return bsearch(&key, s->blobs, s->nblobs, sizeof(key), blob_cmp);
}

/* Applies what the index says of b, read outside the lock: bits other processes committed
 * at b's generation join present; a generation past b's means another process found the blob
 * bad, and everything here is dropped. Bits of an older generation are ignored. */
static void merge_rec_locked(struct sched *s, struct sched_blob *b, const struct blob_rec *rec,
			     const uint8_t *map)
{
	uint64_t prefix = b->prefix;

	if (rec->bad_count > b->gen) {
		sched_blob_failed_elsewhere_locked(s, b, rec->bad_count);
		return;
	}
	if (rec->bad_count < b->gen || !map)
		return;
	if (b->given_up) {
		if (rec->state == BLOB_BAD)
			return;
		/* The index no longer calls it bad (`hffs cache verify`, or another process
		 * fetched it since): try again. */
		b->given_up = false;
		b->failures = 0;
	}
	for (uint64_t i = 0; i < bitmap_bytes(b->nblocks); i++)
		b->present[i] |= map[i] & (uint8_t)~b->inflight[i];
	sched_advance_prefix_locked(b);
	if (rec->state == BLOB_VERIFIED && b->prefix == b->nblocks)
		b->state = BLOB_VERIFIED; /* hashed by another process: nothing to do here */
	else if (b->prefix > prefix)
		sched_verify_push_locked(s, b);
}

/* Reads b's record outside every lock and merges it. */
static void merge_from_db(struct sched *s, struct sched_blob *b)
{
	_cleanup_free_ uint8_t *map = NULL;
	struct blob_rec rec;

	if (db_blob_get(s->db, b->cid, &rec, &map) < 0)
		return;
	pthread_mutex_lock(&s->lock);
	merge_rec_locked(s, b, &rec, map);
	pthread_mutex_unlock(&s->lock);
}

static int blob_setup(struct sched *s, struct sched_blob *b)
{
	_cleanup_free_ uint8_t *map = NULL;
	struct blob_rec rec;
	int r;

	b->nblocks = block_count(b->size, s->bs);
	r = db_blob_ensure(s->db, b->cid, b->size, b->hash, s->bs, &rec);
	if (r >= 0)
		r = db_blob_get(s->db, b->cid, &rec, &map);
	if (r < 0)
		return r;
	b->present = calloc(1, bitmap_bytes(b->nblocks) + 1);
	b->inflight = calloc(1, bitmap_bytes(b->nblocks) + 1);
	if (!b->present || !b->inflight)
		return -ENOMEM;
	b->gen = rec.bad_count;
	b->state = BLOB_PARTIAL; /* the merge makes it verified when the index says so */
	merge_rec_locked(s, b, &rec, map);
	/* Opened when first used: a repo may hold more contents than the process may open. */
	blob_fd_slot_init(&b->fd, b->cid, b->size);
	return 0;
}

/* File inodes by content id, then inode number (the lowest names a shared blob). */
static int file_cmp(const void *a, const void *b)
{
	const struct inode *x = *(const struct inode *const *)a;
	const struct inode *y = *(const struct inode *const *)b;
	int c = strcmp(x->cid, y->cid);

	return c ? c : (x->ino > y->ino) - (x->ino < y->ino);
}

static int build_blobs(struct sched *s, const struct sched_opts *o)
{
	size_t n = inode_count(s->t), k = 0;
	_cleanup_free_ const struct inode **files = NULL;

	/* Paths that share content share one blob: the files are sorted by content id through
	 * pointers (8 bytes a file), and only distinct contents get a record (280 bytes). */
	s->blob_of_ino = calloc(n + 1, sizeof(*s->blob_of_ino));
	files = calloc(n ? n : 1, sizeof(*files));
	if (!s->blob_of_ino || !files)
		return -ENOMEM;
	for (uint64_t ino = 1; ino <= n; ino++) {
		const struct inode *f = inode_get(s->t, ino);

		if (!f->is_dir && f->size)
			files[k++] = f;
	}
	qsort(files, k, sizeof(*files), file_cmp);
	for (size_t i = 0; i < k; i++)
		s->nblobs += !i || strcmp(files[i - 1]->cid, files[i]->cid);
	s->blobs = calloc(s->nblobs ? s->nblobs : 1, sizeof(*s->blobs));
	if (!s->blobs)
		return -ENOMEM;
	for (size_t i = 0, j = 0; i < k; i++) {
		const struct inode *f = files[i];
		struct sched_blob *b = &s->blobs[j];

		if (i && !strcmp(files[i - 1]->cid, f->cid))
			continue;
		snprintf(b->cid, CID_MAX, "%s", f->cid);
		b->size = f->size;
		b->hash = f->is_lfs ? BLOB_HASH_SHA256 : BLOB_HASH_GITSHA1;
		b->path = f->path; /* the table outlives the sched */
		j++;
	}
	for (size_t i = 0; i < s->nblobs; i++) {
		struct sched_blob *b = &s->blobs[i];
		int r;

		b->url = hub_resolve_url(o->cfg, o->repo, o->commit, b->path);
		if (!b->url)
			return -ENOMEM;
		r = blob_setup(s, b);
		if (r < 0) {
			log_err("cannot prepare the cache of '%s' (%s): %s", b->path, b->cid,
				strerror(-r));
			return r;
		}
	}
	for (uint64_t ino = 1; ino <= n; ino++) {
		const struct inode *f = inode_get(s->t, ino);

		if (!f->is_dir && f->size)
			s->blob_of_ino[ino] = blob_find(s, f->cid);
	}
	return 0;
}

/* Whether a read of blocks [.., last] of b must wait for the whole blob to verify. */
static bool needs_whole(const struct sched *s, const struct sched_blob *b, uint64_t last)
{
	return sched_needs_whole_locked(s, b, last);
}

uint64_t sched_open(struct sched *s, const struct inode *f)
{
	struct sched_blob *b = s->blob_of_ino[f->ino];
	uint64_t gen;

	if (!b)
		return 0;
	pthread_mutex_lock(&s->lock);
	while (b->inval_pending && !s->stopping)
		pthread_cond_wait(&s->cond, &s->lock);
	gen = b->gen;
	pthread_mutex_unlock(&s->lock);
	return gen;
}

/* Whether a read of [first, last] of b can be served now; -EIO when it never can. */
static int servable_locked(const struct sched *s, const struct sched_blob *b, uint64_t first,
			   uint64_t last, uint64_t gen)
{
	if (b->given_up || gen < b->gen)
		return -EIO;
	if (needs_whole(s, b, last))
		return 0;
	return bitmap_all_set(b->present, first, last - first + 1);
}

/* A read servable now: b's data file, referenced for the reply (-EIO when it cannot be
 * opened). */
static int serve_now(struct sched *s, struct sched_blob *b, int *ret_fd)
{
	int fd = sched_fd_get(s, b);

	if (fd < 0)
		return -EIO;
	*ret_fd = fd;
	return 1;
}

void sched_read_done(struct sched *s, const struct inode *f, int fd)
{
	if (fd >= 0)
		sched_fd_put(s, s->blob_of_ino[f->ino]);
}

int sched_read(struct sched *s, const struct inode *f, uint64_t offset, uint64_t len, uint64_t gen,
	       sched_ready_fn ready, void *ud, int *ret_fd)
{
	struct sched_blob *b = s->blob_of_ino[f->ino];
	struct sched_fetch *todo = NULL;
	uint64_t cancel[16];
	size_t ncancel;
	uint64_t first, last;
	struct sched_waiter *w;
	bool given_up, missing;
	int r;

	*ret_fd = -1;
	if (!b || !block_span(b->size, s->bs, offset, len, &first, &last))
		return 1;
	pthread_mutex_lock(&s->lock);
	b->accessed = true;
	r = servable_locked(s, b, first, last, gen);
	given_up = b->given_up;
	missing = needs_whole(s, b, last) ? b->prefix < b->nblocks :
					    !bitmap_all_set(b->present, first, last - first + 1);
	pthread_mutex_unlock(&s->lock);
	/* Another process may have fetched missing blocks; `hffs cache verify` may have asked
	 * for another try of a blob given up. A read that waits only for the hash asks nothing
	 * of the index. */
	if ((r == 0 && missing) || given_up) {
		merge_from_db(s, b);
		pthread_mutex_lock(&s->lock);
		r = servable_locked(s, b, first, last, gen);
		pthread_mutex_unlock(&s->lock);
	}
	if (r != 0)
		return r == 1 ? serve_now(s, b, ret_fd) : r;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct sched_waiter){
		.first = first, .last = last, .gen = gen, .ready = ready, .ud = ud
	};
	pthread_mutex_lock(&s->lock);
	/* Rechecked under the lock that parks it: the blob may have moved since. */
	r = servable_locked(s, b, first, last, gen);
	if (r != 0) {
		pthread_mutex_unlock(&s->lock);
		free(w);
		return r == 1 ? serve_now(s, b, ret_fd) : r;
	}
	w->whole = needs_whole(s, b, last);
	/* A read that is not servable lacks blocks, unless it waits for the whole blob's hash
	 * with every block present. */
	w->net = !w->whole || b->prefix < b->nblocks;
	s->last_demand = now_usec();
	s->hot_ino = f->ino;
	s->hot_off = offset + len;
	w->next = b->waiters;
	b->waiters = w;
	ncancel = sched_cut_locked(s, b, first, last, cancel, ARRAY_SIZE(cancel));
	sched_plan_waiters_locked(s, b, &todo);
	/* Complete already, waiting for its hash: make sure the verifier has it. */
	if (w->whole && b->prefix == b->nblocks)
		sched_verify_push_locked(s, b);
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < ncancel; i++)
		sched_cancel(s, cancel[i]);
	sched_submit_all(todo);
	return 0;
}

int sched_prefetch(struct sched *s, const struct inode *f, uint64_t offset, uint64_t len,
		   uint64_t max_fetch, enum xfer_prio prio)
{
	struct sched_blob *b = s->blob_of_ino[f->ino];
	uint64_t first, last, max_blocks = MAX(1, DIV_ROUND_UP(max_fetch, s->bs));
	struct sched_fetch *todo = NULL;
	bool done;
	size_t n;

	if (!b || !block_span(b->size, s->bs, offset, len, &first, &last))
		return 0;
	pthread_mutex_lock(&s->lock);
	done = s->stopping || b->given_up || bitmap_all_set(b->present, first, last - first + 1);
	pthread_mutex_unlock(&s->lock);
	if (done)
		return s->stopping ? -ECANCELED : 0;
	merge_from_db(s, b);
	pthread_mutex_lock(&s->lock);
	n = b->given_up ? 0 : sched_plan_locked(s, b, first, last, max_blocks, prio, &todo);
	pthread_mutex_unlock(&s->lock);
	sched_submit_all(todo);
	return (int)n;
}

int sched_wait_background(struct sched *s, unsigned max, unsigned timeout_ms)
{
	struct timespec ts;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->lock);
	while (!s->stopping && s->nbackground >= max &&
	       pthread_cond_timedwait(&s->cond, &s->lock, &ts) == 0)
		;
	r = s->stopping ? -ECANCELED : s->nbackground < max;
	pthread_mutex_unlock(&s->lock);
	return r;
}

bool sched_is_present(struct sched *s, const struct inode *f, uint64_t offset, uint64_t len)
{
	struct sched_blob *b = s->blob_of_ino[f->ino];
	uint64_t first, last;
	bool present;

	if (!b || !block_span(b->size, s->bs, offset, len, &first, &last))
		return false;
	pthread_mutex_lock(&s->lock);
	present = !b->given_up && bitmap_all_set(b->present, first, last - first + 1);
	pthread_mutex_unlock(&s->lock);
	return present;
}

int sched_pread(struct sched *s, const struct inode *f, void *buf, size_t len, uint64_t offset)
{
	struct sched_blob *b = s->blob_of_ino[f->ino];
	int fd, r;

	if (!len)
		return 0;
	if (!b || offset >= b->size || len > b->size - offset)
		return -EIO;
	if (!sched_is_present(s, f, offset, len))
		return -EAGAIN;
	fd = sched_fd_get(s, b);
	if (fd < 0)
		return -EIO;
	r = blob_pread_all(fd, buf, len, offset);
	sched_fd_put(s, b);
	return r;
}

uint64_t sched_demand_age_usec(struct sched *s)
{
	uint64_t last;

	pthread_mutex_lock(&s->lock);
	last = s->last_demand;
	pthread_mutex_unlock(&s->lock);
	return last ? now_usec() - last : UINT64_MAX;
}

uint64_t sched_missing(struct sched *s, const struct inode *f, uint64_t offset, uint64_t len)
{
	struct sched_blob *b = s->blob_of_ino[f->ino];
	uint64_t first, last, n = 0;

	if (!b || !block_span(b->size, s->bs, offset, len, &first, &last))
		return 0;
	pthread_mutex_lock(&s->lock);
	for (uint64_t i = first; i <= last && !b->given_up; i++)
		if (!bitmap_test(b->present, i) && !bitmap_test(b->inflight, i))
			n += block_len(b->size, s->bs, i);
	pthread_mutex_unlock(&s->lock);
	return n;
}

bool sched_hot(struct sched *s, uint64_t max_age_usec, uint64_t *ret_ino, uint64_t *ret_off)
{
	bool hot;

	pthread_mutex_lock(&s->lock);
	hot = s->last_demand && now_usec() - s->last_demand < max_age_usec;
	*ret_ino = s->hot_ino;
	*ret_off = s->hot_off;
	pthread_mutex_unlock(&s->lock);
	return hot;
}

bool sched_is_complete(struct sched *s, const struct inode *f)
{
	struct sched_blob *b = s->blob_of_ino[f->ino];
	bool done;

	if (!b)
		return true;
	pthread_mutex_lock(&s->lock);
	done = b->given_up || b->prefix == b->nblocks;
	pthread_mutex_unlock(&s->lock);
	return done;
}

static uint64_t present_bytes_locked(const struct sched *s, const struct sched_blob *b)
{
	uint64_t n = bitmap_count(b->present, b->nblocks), bytes = n * s->bs;

	if (n && bitmap_test(b->present, b->nblocks - 1))
		bytes -= s->bs - block_len(b->size, s->bs, b->nblocks - 1);
	return bytes;
}

void sched_file_info(struct sched *s, const struct inode *f, struct sched_file_info *ret)
{
	struct sched_blob *b = s->blob_of_ino[f->ino];

	*ret = (struct sched_file_info){ .state = "verified" };
	if (!b)
		return;
	pthread_mutex_lock(&s->lock);
	ret->bytes_cached = present_bytes_locked(s, b);
	ret->fetch_failures = b->fetch_failures;
	ret->hash_failures = b->failures;
	ret->fetch_reason = (enum fetch_reason)b->fetch_reason;
	memcpy(ret->fetch_error, b->fetch_error, sizeof(ret->fetch_error));
	ret->state = b->given_up || (b->state == BLOB_BAD && !ret->bytes_cached) ? "bad" :
		     b->state == BLOB_VERIFIED					 ? "verified" :
		     b->prefix == b->nblocks					 ? "complete" :
		     ret->bytes_cached						 ? "partial" :
										   "missing";
	pthread_mutex_unlock(&s->lock);
}

void sched_get_stats(struct sched *s, struct sched_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nblobs; i++) {
		struct sched_blob *b = &s->blobs[i];

		ret->bytes_total += b->size;
		ret->bytes_present += present_bytes_locked(s, b);
		ret->blobs++;
		ret->blobs_complete += b->prefix == b->nblocks;
		ret->blobs_verified += b->state == BLOB_VERIFIED;
		ret->blobs_given_up += b->given_up;
	}
	ret->background = s->nbackground;
	ret->verify_failures = s->verify_failures;
	snprintf(ret->last_error, sizeof(ret->last_error), "%s", s->last_error);
	ret->last_error_at = s->last_error_at;
	ret->streams_active = s->streams_active;
	ret->streamed_reads = s->streamed_reads;
	ret->streamed_bytes = s->streamed_bytes;
	ret->stream_age_usec = s->stream_last_at ? now_usec() - s->stream_last_at : UINT64_MAX;
	snprintf(ret->stream_why, sizeof(ret->stream_why), "%s", s->stream_why);
	pthread_mutex_unlock(&s->lock);
	if (s->xr)
		xet_read_get_stats(s->xr, &ret->xet);
}

int sched_new(const struct sched_opts *opts, struct xfer *x, const struct inode_table *t,
	      struct sched **ret)
{
	struct sched *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->db = cache_index(opts->cache);
	s->budget = opts->budget;
	s->x = x;
	s->t = t;
	s->bs = opts->block_size ? opts->block_size : CACHE_BLOCK_SIZE_DEFAULT;
	s->strict = opts->verify_strict;
	s->on_drop = opts->on_drop;
	s->drop_ud = opts->drop_ud;
	s->hooks = opts->hooks;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	pthread_cond_init(&s->vcond, NULL);
	s->fds = blob_fds_new(cache_dir(opts->cache),
			      opts->max_open_files ? opts->max_open_files : blob_fds_limit(256));
	if (!s->fds) {
		r = -ENOMEM;
		goto out_sched_free;
	}
	/* Blobs found complete but unhashed (a crash came between) are queued for the verifier
	 * as they are set up. */
	r = build_blobs(s, opts);
	if (r < 0)
		goto out_sched_free;
	if (opts->xet != XET_MODE_OFF) {
		struct xet_read_opts xo = { .cfg = opts->cfg,
					    .repo = opts->repo,
					    .commit = opts->commit,
					    .x = x,
					    .mode = opts->xet,
					    .nfiles = s->nblobs };

		r = xet_read_new(&xo, &s->xr);
		if (r < 0)
			goto out_sched_free;
	}
	r = -pthread_create(&s->committer, NULL, sched_committer_main, s);
	if (r < 0)
		goto out_sched_free;
	r = -pthread_create(&s->verifier, NULL, sched_verifier_main, s);
	if (r < 0) {
		s->verifier = 0;
		goto out_sched_free;
	}
	*ret = s;
	return 0;
out_sched_free:
	sched_free(s);
	return r;
}

void sched_stop_fetching(struct sched *s)
{
	if (s->xr)
		xet_read_stop(s->xr);
}

struct sched *sched_free(struct sched *s)
{
	struct sched_waiter *dead = NULL;

	if (!s)
		return NULL;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	while (s->nfetches)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	s->xr = xet_read_free(s->xr);
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nblobs; i++) {
		struct sched_waiter *w = sched_take_all_locked(&s->blobs[i]);

		while (w) {
			struct sched_waiter *next = w->next;

			w->next = dead;
			dead = w;
			w = next;
		}
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_cond_broadcast(&s->vcond);
	sched_answer(dead, -EIO, -1);
	if (s->verifier)
		pthread_join(s->verifier, NULL);
	if (s->committer)
		pthread_join(s->committer, NULL);
	for (size_t i = 0; i < s->nblobs; i++) {
		struct sched_blob *b = &s->blobs[i];

		free(b->url);
		free(b->present);
		free(b->inflight);
		free(b->stream_dig);
		verify_hasher_free(b->hasher);
	}
	s->fds = blob_fds_free(s->fds); /* closes the files still open */
	free(s->blobs);
	free(s->blob_of_ino);
	free(s->queue);
	free(s->vq);
	pthread_cond_destroy(&s->vcond);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return NULL;
}
