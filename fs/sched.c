/* sched.c: from reads to block fetches and back. FUSE workers call sched_read(); the engine
 * thread calls fetch_write()/fetch_done(); the committer thread commits landed blocks to the
 * index. Lock order: s->lock, then (inside xfer) the engine's queue lock; no sched lock is
 * held while a ready callback runs or while xfer_submit() is called. */
#include "fs/sched.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/bitmap.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/timeutil.h"

struct fetch;

struct waiter {
	struct waiter *next;
	uint64_t first, last; /* blocks the read needs */
	sched_ready_fn ready;
	void *ud;
};

/* One per distinct content id. Fields after the first block are guarded by s->lock.
 * Invariant: a bit set in inflight is clear in present, and belongs to exactly one fetch. */
struct sched_blob {
	char cid[CID_MAX];
	char *path; /* the first file with this content, for messages */
	char *url; /* resolve URL at the pinned commit */
	uint64_t size;
	uint64_t nblocks;
	enum blob_hash hash;
	int fd; /* data file, open for the sched's life */

	uint8_t *present; /* s->lock: blocks in the file (committed or about to be) */
	uint8_t *inflight; /* s->lock: blocks some fetch will write */
	struct fetch *fetches; /* s->lock: fetches in flight */
	struct waiter *waiters; /* s->lock: parked reads */
	bool accessed; /* s->lock: read since the last commit batch */
	uint8_t state; /* s->lock: enum blob_state as this process knows it */
	bool verify_queued; /* s->lock: on the verify queue */
};

struct fetch {
	struct fetch *next;
	struct sched *s;
	struct sched_blob *b;
	uint64_t first, count; /* blocks */
	uint64_t landed; /* blocks [first, first + landed) are written (engine thread) */
	uint64_t id;
	enum xfer_prio prio;
	bool background; /* s->lock: counted in s->nbackground */
	uint64_t granted; /* bytes the budget granted (settled at done) */
};

struct pending {
	struct sched_blob *b;
	uint64_t block;
};

struct sched {
	struct cache_db *db;
	struct budget *budget;
	struct xfer *x;
	const struct inode_table *t;
	uint32_t bs;

	struct sched_blob *blobs;
	size_t nblobs;
	struct sched_blob **blob_of_ino; /* index ino; NULL for directories and empty files */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* committer work, fetch drain, flush progress */
	struct pending *queue; /* lock: landed blocks not yet committed */
	size_t qn, qcap;
	uint64_t queued_gen; /* lock: batches handed to the committer */
	uint64_t committed_gen; /* lock: batches committed */
	unsigned nfetches; /* lock: fetches between submit and done */
	unsigned nbackground; /* lock: of which background ones */
	uint64_t last_demand; /* lock: monotonic usec a read last parked (0: never) */
	uint64_t hot_ino, hot_off; /* lock: the file and end offset of that read */
	bool stopping; /* lock */
	pthread_t committer;

	struct sched_blob **vq; /* lock: blobs to hash, in order */
	size_t vqn, vqcap;
	uint64_t verify_failures; /* lock */
	pthread_cond_t vcond; /* verify queue work */
	pthread_t verifier;
};

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

/* Merges the bits other processes committed for b into present (they share the cache). */
static void merge_from_db_locked(struct sched *s, struct sched_blob *b)
{
	_cleanup_free_ uint8_t *map = NULL;
	struct blob_rec rec;

	if (db_blob_get(s->db, b->cid, &rec, &map) < 0 || !map)
		return;
	for (uint64_t i = 0; i < bitmap_bytes(b->nblocks); i++)
		b->present[i] |= map[i] & (uint8_t)~b->inflight[i];
}

static int blob_setup(struct sched *s, struct sched_blob *b, const struct sched_opts *o)
{
	struct blob_rec rec;
	int r;

	b->nblocks = block_count(b->size, s->bs);
	r = db_blob_ensure(s->db, b->cid, b->size, b->hash, s->bs, &rec);
	if (r < 0)
		return r;
	b->present = calloc(1, bitmap_bytes(b->nblocks) + 1);
	b->inflight = calloc(1, bitmap_bytes(b->nblocks) + 1);
	if (!b->present || !b->inflight)
		return -ENOMEM;
	b->state = rec.state;
	merge_from_db_locked(s, b);
	b->fd = blob_open(o->cache_dir, b->cid, b->size);
	return b->fd < 0 ? b->fd : 0;
}

static int build_blobs(struct sched *s, const struct sched_opts *o)
{
	size_t n = inode_count(s->t), k = 0;

	s->blob_of_ino = calloc(n + 1, sizeof(*s->blob_of_ino));
	s->blobs = calloc(n, sizeof(*s->blobs));
	if (!s->blob_of_ino || !s->blobs)
		return -ENOMEM;
	for (uint64_t ino = 1; ino <= n; ino++) {
		const struct inode *f = inode_get(s->t, ino);

		if (f->is_dir || !f->size)
			continue;
		s->blobs[k].fd = -1;
		snprintf(s->blobs[k].cid, CID_MAX, "%s", f->cid);
		s->blobs[k].size = f->size;
		s->blobs[k].hash = f->is_lfs ? BLOB_HASH_SHA256 : BLOB_HASH_GITSHA1;
		s->blobs[k].path = f->path; /* the table outlives the sched */
		k++;
	}
	qsort(s->blobs, k, sizeof(*s->blobs), blob_cmp);
	/* Paths that share content share one blob. */
	for (size_t i = 0; i < k; i++)
		if (!s->nblobs || strcmp(s->blobs[s->nblobs - 1].cid, s->blobs[i].cid))
			s->blobs[s->nblobs++] = s->blobs[i];
	for (size_t i = 0; i < s->nblobs; i++) {
		struct sched_blob *b = &s->blobs[i];
		int r;

		b->url = hub_resolve_url(o->cfg, o->repo, o->commit, b->path);
		if (!b->url)
			return -ENOMEM;
		r = blob_setup(s, b, o);
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

/* Removes and returns the waiters of b whose blocks are all present. */
static struct waiter *take_ready_locked(struct sched_blob *b)
{
	struct waiter *ready = NULL, **pp = &b->waiters;

	while (*pp) {
		struct waiter *w = *pp;

		if (bitmap_all_set(b->present, w->first, w->last - w->first + 1)) {
			*pp = w->next;
			w->next = ready;
			ready = w;
		} else {
			pp = &w->next;
		}
	}
	return ready;
}

/* Removes and returns the waiters of b that need a block neither present nor in flight:
 * nothing will ever answer them. */
static struct waiter *take_orphans_locked(struct sched_blob *b)
{
	struct waiter *dead = NULL, **pp = &b->waiters;

	while (*pp) {
		struct waiter *w = *pp;
		bool orphan = false;

		for (uint64_t i = w->first; i <= w->last && !orphan; i++)
			orphan = !bitmap_test(b->present, i) && !bitmap_test(b->inflight, i);
		if (orphan) {
			*pp = w->next;
			w->next = dead;
			dead = w;
		} else {
			pp = &w->next;
		}
	}
	return dead;
}

static void answer(struct waiter *list, int err, int fd)
{
	while (list) {
		struct waiter *next = list->next;

		list->ready(list->ud, err, fd);
		free(list);
		list = next;
	}
}

static int queue_push_locked(struct sched *s, struct sched_blob *b, uint64_t block)
{
	if (s->qn == s->qcap) {
		size_t cap = s->qcap ? s->qcap * 2 : 256;
		struct pending *q = realloc(s->queue, cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		s->queue = q;
		s->qcap = cap;
	}
	s->queue[s->qn++] = (struct pending){ .b = b, .block = block };
	return 0;
}

/* Engine thread: bytes of f's range, in order. Data reaches the file first; only then is a
 * block marked present and queued for its bit to be committed. */
static int fetch_write(void *ud, uint64_t offset, const void *data, size_t len)
{
	struct fetch *f = ud;
	struct sched *s = f->s;
	struct sched_blob *b = f->b;
	uint64_t end = offset + len, limit;
	struct waiter *ready;
	bool cut = false;
	int r;

	/* A demand read may have cut this (background) fetch short: its tail belongs to another
	 * fetch now, so stop the transfer at the cut. */
	pthread_mutex_lock(&s->lock);
	limit = MIN((f->first + f->count) * s->bs, b->size);
	pthread_mutex_unlock(&s->lock);
	if (offset >= limit)
		return -ECANCELED;
	if (end > limit) {
		len = limit - offset;
		end = limit;
		cut = true;
	}
	r = blob_pwrite_all(b->fd, data, len, offset);
	if (r < 0)
		return r;
	pthread_mutex_lock(&s->lock);
	while (f->landed < f->count) {
		uint64_t k = f->first + f->landed;
		uint64_t block_end = k * s->bs + block_len(b->size, s->bs, k);

		if (end < block_end)
			break;
		bitmap_set(b->present, k);
		bitmap_clear(b->inflight, k);
		if (queue_push_locked(s, b, k) < 0)
			log_warn(
				"out of memory: block %llu of '%s' will be fetched again next time",
				(unsigned long long)k, b->path);
		f->landed++;
	}
	ready = take_ready_locked(b);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	answer(ready, 0, b->fd);
	return cut ? -ECANCELED : 0;
}

/* Engine thread, once per fetch. Blocks the fetch did not land are given up; reads that
 * needed them fail (the engine already spent the retry budget). */
static void fetch_done(void *ud, int err, enum fetch_reason reason, const char *why,
		       uint64_t written)
{
	struct fetch *f = ud;
	struct sched *s = f->s;
	struct sched_blob *b = f->b;
	struct waiter *dead = NULL;
	struct fetch **pp;
	bool quiet, disk_full = false;

	budget_settle(s->budget, f->granted, written);
	pthread_mutex_lock(&s->lock);
	for (pp = &b->fetches; *pp && *pp != f; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = f->next;
	for (uint64_t i = f->landed; i < f->count; i++)
		bitmap_clear(b->inflight, f->first + i);
	if (f->background)
		s->nbackground--;
	if (f->landed < f->count) {
		dead = take_orphans_locked(b);
		if (!err) {
			err = -EIO;
			reason = FETCH_PROTOCOL;
		}
	} else if (err == -ECANCELED) {
		err = 0; /* cut short by a demand read, after landing all it still owned */
	}
	s->nfetches--;
	/* A background range the budget refused: background completion says so once. */
	quiet = err == -ENOSPC && !f->granted && f->prio != XFER_PRIO_DEMAND;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);

	/* The disk filled behind the budget's back: it measures again. */
	if (err == -ENOSPC && f->granted) {
		budget_disk_full(s->budget);
		disk_full = true;
	}
	/* A fetch cut to nothing by a demand read owned no block: nothing failed. */
	if (err && err != -ECANCELED && f->count && !quiet)
		log_warn("fetching '%s' bytes %llu-%llu failed: %s%s%s", b->path,
			 (unsigned long long)(f->first * s->bs),
			 (unsigned long long)MIN((f->first + f->count) * s->bs, b->size) - 1,
			 disk_full ? "the cache's disk is full (" : "",
			 why && *why ? why : fetch_reason_str(reason),
			 disk_full ? "); what is cached is still served" : "");
	answer(dead, err == -ENOSPC ? -ENOSPC : -EIO, -1);
	free(f);
}

/* Creates the fetch of blocks [first, first + count) of b and marks them in flight. */
static struct fetch *fetch_new_locked(struct sched *s, struct sched_blob *b, uint64_t first,
				      uint64_t count, enum xfer_prio prio)
{
	struct fetch *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	*f = (struct fetch){ .s = s, .b = b, .first = first, .count = count, .prio = prio };
	bitmap_set_range(b->inflight, first, count);
	f->next = b->fetches;
	b->fetches = f;
	s->nfetches++;
	f->background = prio == XFER_PRIO_BACKGROUND;
	s->nbackground += f->background;
	return f;
}

static void fetch_submit(struct fetch *f)
{
	struct sched *s = f->s;
	struct sched_blob *b = f->b;
	uint64_t off = f->first * s->bs;
	uint64_t end = MIN((f->first + f->count) * s->bs, b->size);
	struct xfer_req req = {
		.url = b->url,
		.blob_key = b->cid,
		.blob_size = b->size,
		.offset = off,
		.len = end - off,
		.prio = f->prio,
		.sink = { .write = fetch_write, .done = fetch_done, .ud = f },
	};
	uint64_t id = 0;
	char why[320];
	int r;

	if (budget_admit(s->budget, req.len) < 0) {
		budget_why(s->budget, why, sizeof(why));
		fetch_done(f, -ENOSPC, FETCH_DISK_FULL, why, 0);
		return;
	}
	f->granted = req.len;
	/* The id is written before the engine can look at f only through the sched lock. */
	pthread_mutex_lock(&s->lock);
	r = xfer_submit(s->x, &req, &id);
	f->id = id;
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		fetch_done(f, r, r == -ECANCELED ? FETCH_CANCELED : FETCH_IO, "not submitted", 0);
}

/* Creates one fetch (at most max_blocks long) per run of blocks of [first, last] that are
 * neither present nor in flight; returns how many, at most ntodo. */
static size_t plan_locked(struct sched *s, struct sched_blob *b, uint64_t first, uint64_t last,
			  uint64_t max_blocks, enum xfer_prio prio, struct fetch **todo,
			  size_t ntodo)
{
	size_t n = 0;

	for (uint64_t i = first; i <= last && n < ntodo;) {
		uint64_t end;

		i = bitmap_next_clear(b->present, i, last + 1);
		while (i <= last && bitmap_test(b->inflight, i))
			i = bitmap_next_clear(b->present, i + 1, last + 1);
		if (i > last)
			break;
		for (end = i; end <= last && end - i < max_blocks &&
			      !bitmap_test(b->present, end) && !bitmap_test(b->inflight, end);
		     end++)
			;
		todo[n] = fetch_new_locked(s, b, i, end - i, prio);
		if (!todo[n])
			break;
		n++;
		i = end;
	}
	return n;
}

/* A demand read never waits behind background traffic: a background or read-ahead fetch
 * that must deliver two or more blocks before the read's first gives up the rest (it is cut
 * where the read begins) and the read fetches its blocks itself; what lies past the read is
 * fetched again by whoever wants it. A fetch about to deliver the read's blocks is raised to
 * demand priority instead. ret_cancel receives the ids of fetches cut
 * to nothing (at most ncancel). Returns how many. */
static size_t cut_locked(struct sched *s, struct sched_blob *b, uint64_t first, uint64_t last,
			 uint64_t *ret_cancel, size_t ncancel)
{
	size_t n = 0;

	for (struct fetch *f = b->fetches; f; f = f->next) {
		uint64_t reached = f->first + f->landed, end = f->first + f->count;

		if (f->prio == XFER_PRIO_DEMAND || f->first > last || end <= first)
			continue;
		/* Its bytes come in order: if it must deliver two or more other blocks before
		 * the read's first, take the read's blocks away; else it is about to deliver them
		 * and a raise is enough (a cut would throw away what is in flight). */
		if (reached + 2 <= first) {
			uint64_t cut = first;

			for (uint64_t i = cut; i < end; i++)
				bitmap_clear(b->inflight, i);
			f->count = cut - f->first;
			if (!f->count && n < ncancel)
				ret_cancel[n++] = f->id;
			continue;
		}
		f->prio = XFER_PRIO_DEMAND;
		if (f->background) {
			f->background = false;
			s->nbackground--;
		}
		(void)xfer_set_prio(s->x, f->id, XFER_PRIO_DEMAND);
	}
	return n;
}

int sched_read(struct sched *s, const struct inode *f, uint64_t offset, uint64_t len,
	       sched_ready_fn ready, void *ud, int *ret_fd)
{
	struct sched_blob *b = s->blob_of_ino[f->ino];
	struct fetch *todo[64];
	uint64_t cancel[16];
	size_t ntodo, ncancel;
	uint64_t first, last;
	struct waiter *w;

	if (!b || !block_span(b->size, s->bs, offset, len, &first, &last)) {
		*ret_fd = b ? b->fd : -1;
		return 1;
	}
	pthread_mutex_lock(&s->lock);
	b->accessed = true;
	if (!bitmap_all_set(b->present, first, last - first + 1))
		merge_from_db_locked(s, b);
	if (bitmap_all_set(b->present, first, last - first + 1)) {
		pthread_mutex_unlock(&s->lock);
		*ret_fd = b->fd;
		return 1;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		pthread_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	s->last_demand = now_usec();
	s->hot_ino = f->ino;
	s->hot_off = offset + len;
	*w = (struct waiter){
		.next = b->waiters, .first = first, .last = last, .ready = ready, .ud = ud
	};
	b->waiters = w;
	ncancel = cut_locked(s, b, first, last, cancel, ARRAY_SIZE(cancel));
	/* Every parked read of the blob, this one included: a cut may have released blocks
	 * another one waits for, and nothing else would fetch them. */
	ntodo = 0;
	for (struct waiter *p = b->waiters; p && ntodo < ARRAY_SIZE(todo); p = p->next)
		ntodo += plan_locked(s, b, p->first, p->last, UINT64_MAX, XFER_PRIO_DEMAND,
				     todo + ntodo, ARRAY_SIZE(todo) - ntodo);
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < ncancel; i++)
		(void)xfer_cancel(s->x, cancel[i]);
	for (size_t i = 0; i < ntodo; i++)
		fetch_submit(todo[i]);
	return 0;
}

int sched_prefetch(struct sched *s, const struct inode *f, uint64_t offset, uint64_t len,
		   uint64_t max_fetch, enum xfer_prio prio)
{
	struct sched_blob *b = s->blob_of_ino[f->ino];
	uint64_t first, last, max_blocks = MAX(1, DIV_ROUND_UP(max_fetch, s->bs));
	struct fetch *todo[16];
	size_t ntodo;

	if (!b || !block_span(b->size, s->bs, offset, len, &first, &last))
		return 0;
	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->lock);
		return -ECANCELED;
	}
	if (bitmap_all_set(b->present, first, last - first + 1)) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	merge_from_db_locked(s, b);
	ntodo = plan_locked(s, b, first, last, max_blocks, prio, todo, ARRAY_SIZE(todo));
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < ntodo; i++)
		fetch_submit(todo[i]);
	return (int)ntodo;
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

int sched_pread(struct sched *s, const struct inode *f, void *buf, size_t len, uint64_t offset)
{
	struct sched_blob *b = s->blob_of_ino[f->ino];
	uint64_t first, last;
	bool present;

	if (!b || !block_span(b->size, s->bs, offset, len, &first, &last))
		return len ? -EIO : 0;
	pthread_mutex_lock(&s->lock);
	present = bitmap_all_set(b->present, first, last - first + 1);
	pthread_mutex_unlock(&s->lock);
	if (!present)
		return -EAGAIN;
	return blob_pread_all(b->fd, buf, len, offset);
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
	for (uint64_t i = first; i <= last; i++)
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
	done = bitmap_all_set(b->present, 0, b->nblocks);
	pthread_mutex_unlock(&s->lock);
	return done;
}

void sched_get_stats(struct sched *s, struct sched_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nblobs; i++) {
		struct sched_blob *b = &s->blobs[i];
		uint64_t n = bitmap_count(b->present, b->nblocks);

		ret->bytes_total += b->size;
		ret->bytes_present += n * s->bs;
		if (n && bitmap_test(b->present, b->nblocks - 1))
			ret->bytes_present -= s->bs - block_len(b->size, s->bs, b->nblocks - 1);
		ret->blobs++;
		ret->blobs_complete += n == b->nblocks;
		ret->blobs_verified += b->state == BLOB_VERIFIED;
	}
	ret->background = s->nbackground;
	ret->verify_failures = s->verify_failures;
	pthread_mutex_unlock(&s->lock);
}

static void verify_push_locked(struct sched *s, struct sched_blob *b)
{
	if (b->verify_queued || b->state == BLOB_VERIFIED)
		return;
	if (s->vqn == s->vqcap) {
		size_t cap = s->vqcap ? s->vqcap * 2 : 64;
		struct sched_blob **q = realloc(s->vq, cap * sizeof(*q));

		if (!q)
			return; /* verified at the next mount instead */
		s->vq = q;
		s->vqcap = cap;
	}
	s->vq[s->vqn++] = b;
	b->verify_queued = true;
	pthread_cond_signal(&s->vcond);
}

/* Verify thread: hashes one complete blob. A mismatch drops its blocks from memory first (so
 * nothing more is served from them), then from the index, then frees the disk space; the
 * blocks are fetched again by whoever needs them. */
static void verify_one(struct sched *s, struct sched_blob *b)
{
	char actual[CID_MAX] = "";
	int r = verify_fd(b->fd, b->size, b->hash, b->cid, actual);

	if (r == 0) {
		(void)db_blob_set_state(s->db, b->cid, BLOB_VERIFIED);
		pthread_mutex_lock(&s->lock);
		b->state = BLOB_VERIFIED;
		b->verify_queued = false;
		pthread_mutex_unlock(&s->lock);
		log_debug("'%s' verified (%s)", b->path, b->cid);
		return;
	}
	pthread_mutex_lock(&s->lock);
	b->verify_queued = false;
	if (r == -EIO) {
		memset(b->present, 0, bitmap_bytes(b->nblocks));
		b->state = BLOB_BAD;
		s->verify_failures++;
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (r != -EIO) {
		log_warn("cannot verify '%s': %s; it will be verified at the next mount", b->path,
			 strerror(-r));
		return;
	}
	(void)db_blob_set_state(s->db, b->cid, BLOB_BAD);
	(void)blob_punch(b->fd, 0, b->size);
	log_warn("'%s' does not match its content id (%s %s, got %s): its blocks were dropped "
		 "and will be fetched again",
		 b->path, b->hash == BLOB_HASH_SHA256 ? "sha256" : "git sha1", b->cid, actual);
}

static void *verifier_main(void *arg)
{
	struct sched *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct sched_blob *b;

		while (!s->vqn && !s->stopping)
			pthread_cond_wait(&s->vcond, &s->lock);
		if (s->stopping)
			break;
		b = s->vq[0];
		memmove(s->vq, s->vq + 1, --s->vqn * sizeof(*s->vq));
		/* Blocks dropped since it was queued (bad, evicted): nothing to hash. */
		if (!bitmap_all_set(b->present, 0, b->nblocks)) {
			b->verify_queued = false;
			continue;
		}
		pthread_mutex_unlock(&s->lock);
		verify_one(s, b);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static int pending_cmp(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;

	if (x->b != y->b)
		return x->b < y->b ? -1 : 1;
	return x->block < y->block ? -1 : x->block > y->block;
}

/* Committer thread: one batch. Data files are synced before their bits are committed. */
static void commit_batch(struct sched *s, struct pending *q, size_t n)
{
	_cleanup_free_ struct db_block_run *runs = calloc(n ? n : 1, sizeof(*runs));
	_cleanup_free_ bool *completed = calloc(n ? n : 1, sizeof(*completed));
	_cleanup_free_ struct sched_blob **owner = calloc(n ? n : 1, sizeof(*owner));
	size_t nruns = 0;
	int r;

	if (!runs || !completed || !owner) {
		log_warn("out of memory: %zu blocks stay uncommitted and will be fetched again", n);
		return;
	}
	qsort(q, n, sizeof(*q), pending_cmp);
	for (size_t i = 0; i < n; i++) {
		struct db_block_run *last = nruns ? &runs[nruns - 1] : NULL;

		if (last && !strcmp(last->cid, q[i].b->cid) &&
		    last->first + last->count == q[i].block) {
			last->count++;
			continue;
		}
		if (!last || strcmp(last->cid, q[i].b->cid))
			(void)blob_sync(q[i].b->fd);
		owner[nruns] = q[i].b;
		runs[nruns++] = (struct db_block_run){ .cid = q[i].b->cid,
						       .first = q[i].block,
						       .count = 1 };
	}
	r = db_blob_add_blocks(s->db, runs, nruns, completed);
	if (r < 0) {
		log_warn("cannot record %zu fetched blocks in the cache index: %s", n,
			 strerror(-r));
		return;
	}
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < nruns; i++) {
		if (!completed[i])
			continue;
		if (owner[i]->state != BLOB_VERIFIED)
			owner[i]->state = BLOB_COMPLETE;
		verify_push_locked(s, owner[i]);
	}
	pthread_mutex_unlock(&s->lock);
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

static void *committer_main(void *arg)
{
	struct sched *s = arg;
	uint64_t last_touch = 0;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct pending *q;
		size_t n;
		uint64_t gen;

		while (!s->qn && !s->stopping && s->committed_gen == s->queued_gen)
			pthread_cond_wait(&s->cond, &s->lock);
		if (!s->qn && s->stopping)
			break;
		q = TAKE_PTR(s->queue);
		n = s->qn;
		s->qn = s->qcap = 0;
		gen = s->queued_gen;
		pthread_mutex_unlock(&s->lock);

		if (n)
			commit_batch(s, q, n);
		free(q);
		if (now_usec() - last_touch > 5 * USEC_PER_SEC) {
			touch_accessed(s);
			last_touch = now_usec();
		}

		pthread_mutex_lock(&s->lock);
		if (gen > s->committed_gen)
			s->committed_gen = gen;
		pthread_cond_broadcast(&s->cond);
		if (!s->stopping) {
			/* Batch what lands in the next 50 ms into one transaction. */
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			while (!s->stopping && s->queued_gen == s->committed_gen &&
			       pthread_cond_timedwait(&s->cond, &s->lock, &ts) == 0)
				;
		}
	}
	pthread_mutex_unlock(&s->lock);
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

int sched_new(const struct sched_opts *opts, struct cache_db *db, struct xfer *x,
	      const struct inode_table *t, struct sched **ret)
{
	struct sched *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->db = db;
	s->budget = opts->budget;
	s->x = x;
	s->t = t;
	s->bs = opts->block_size ? opts->block_size : CACHE_BLOCK_SIZE_DEFAULT;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	pthread_cond_init(&s->vcond, NULL);
	r = build_blobs(s, opts);
	if (r < 0)
		goto fail;
	/* Complete but never hashed (a crash came between): verify now. */
	for (size_t i = 0; i < s->nblobs; i++)
		if (s->blobs[i].state != BLOB_VERIFIED &&
		    bitmap_all_set(s->blobs[i].present, 0, s->blobs[i].nblocks))
			verify_push_locked(s, &s->blobs[i]);
	r = -pthread_create(&s->committer, NULL, committer_main, s);
	if (r < 0)
		goto fail;
	r = -pthread_create(&s->verifier, NULL, verifier_main, s);
	if (r < 0) {
		s->verifier = 0;
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	sched_free(s);
	return r;
}

struct sched *sched_free(struct sched *s)
{
	struct waiter *dead = NULL;

	if (!s)
		return NULL;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	while (s->nfetches)
		pthread_cond_wait(&s->cond, &s->lock);
	for (size_t i = 0; i < s->nblobs; i++) {
		struct waiter *w = TAKE_PTR(s->blobs[i].waiters);

		while (w) {
			struct waiter *next = w->next;

			w->next = dead;
			dead = w;
			w = next;
		}
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_cond_broadcast(&s->vcond);
	answer(dead, -EIO, -1);
	if (s->verifier)
		pthread_join(s->verifier, NULL);
	if (s->committer)
		pthread_join(s->committer, NULL);
	for (size_t i = 0; i < s->nblobs; i++) {
		struct sched_blob *b = &s->blobs[i];

		if (b->fd >= 0)
			close(b->fd);
		free(b->url);
		free(b->present);
		free(b->inflight);
	}
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
