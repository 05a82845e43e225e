/* sched_fetch.c: the scheduler's fetches: planning runs of missing blocks into range
 * requests, cutting background requests that stand in a demand read's way, handing them to
 * the engine (or, for LFS blobs with --xet auto|on, to fs/xet_read.c, which feeds the same
 * sink), and the sink that writes their bytes and answers parked reads. Runs on FUSE workers
 * (planning) and the engine thread (the sink; a Xet worker may end a fetch too). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cache/bitmap.h"
#include "fs/sched_priv.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/timeutil.h"

/* One range request in flight for blocks [first, first + count) of a blob. */
struct sched_fetch {
	struct sched_fetch *next; /* on b->fetches */
	struct sched_fetch *todo_next; /* between planning and submitting */
	struct sched *s;
	struct sched_blob *b;
	uint64_t first, count; /* blocks */
	uint64_t landed; /* blocks [first, first + landed) are written (engine thread) */
	uint64_t id;
	enum xfer_prio prio;
	bool background; /* s->lock: counted in s->nbackground */
	uint64_t granted; /* bytes the budget granted (settled at done) */
};

/* Engine thread: bytes of f's range, in order. Data reaches the file first; only then is a
 * block marked present and queued for its bit to be committed. */
static int sched_fetch_write(void *ud, uint64_t offset, const void *data, size_t len)
{
	struct sched_fetch *f = ud;
	struct sched *s = f->s;
	struct sched_blob *b = f->b;
	uint64_t end = offset + len, limit, prefix;
	struct sched_waiter *ready = NULL, *failed = NULL;
	bool cut = false, idle;
	int fd, r;

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
	fd = sched_fd_get(s, b);
	if (fd < 0)
		return fd;
	r = blob_pwrite_all(fd, data, len, offset);
	if (r < 0) {
		sched_fd_put(s, b);
		return r;
	}
	pthread_mutex_lock(&s->lock);
	prefix = b->prefix;
	idle = !s->qn;
	while (f->landed < f->count) {
		uint64_t k = f->first + f->landed;
		uint64_t block_end = k * s->bs + block_len(b->size, s->bs, k);

		if (end < block_end)
			break;
		bitmap_set(b->present, k);
		bitmap_clear(b->inflight, k);
		if (sched_queue_push_locked(s, b, k) < 0)
			log_warn(
				"out of memory: block %llu of '%s' will be fetched again next time",
				(unsigned long long)k, b->path);
		f->landed++;
	}
	sched_advance_prefix_locked(b);
	if (b->prefix > prefix)
		sched_verify_push_locked(s, b);
	if (b->prefix == b->nblocks && prefix < b->nblocks)
		b->whole_at = now_usec();
	sched_take_answerable_locked(b, &ready, &failed);
	/* Only the committer waits on what lands, and only for an empty queue to fill: a wakeup
	 * per chunk would cost a futex call and a context switch per 128 KiB. */
	if (idle && s->qn)
		pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	sched_answer(ready, 0, fd);
	sched_fd_put(s, b);
	sched_answer(failed, -EIO, -1);
	return cut ? -ECANCELED : 0;
}

/* Engine thread, once per fetch. Blocks the fetch did not land are given up; reads that
 * needed them fail (the engine already spent the retry budget). */
static void sched_fetch_done(void *ud, int err, enum fetch_reason reason, const char *why,
			     uint64_t written)
{
	struct sched_fetch *f = ud;
	struct sched *s = f->s;
	struct sched_blob *b = f->b;
	struct sched_waiter *dead = NULL;
	struct sched_fetch **pp;
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
		dead = sched_take_orphans_locked(b);
		if (!err) {
			err = -EIO;
			reason = FETCH_PROTOCOL;
		}
	} else if (err == -ECANCELED) {
		err = 0; /* cut short by a demand read, after landing all it still owned */
	}
	s->nfetches--;
	/* A range the budget refused: the budget said why once; background completion pauses,
	 * and the reads that needed it are streamed (ops.c; sched_stream.c says so). */
	quiet = err == -ENOSPC && !f->granted;
	if (err && err != -ECANCELED && f->count && !quiet) {
		b->fetch_failures++;
		b->fetch_reason = (uint8_t)reason;
		snprintf(b->fetch_error, sizeof(b->fetch_error), "%s",
			 why && *why ? why : fetch_reason_str(reason));
	}
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
			 disk_full ? "); reads of it are streamed without caching" : "");
	sched_answer(dead, err == -ENOSPC ? -ENOSPC : -EIO, -1);
	free(f);
}

/* Creates the fetch of blocks [first, first + count) of b and marks them in flight. */
static struct sched_fetch *fetch_new_locked(struct sched *s, struct sched_blob *b, uint64_t first,
					    uint64_t count, enum xfer_prio prio)
{
	struct sched_fetch *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	*f = (struct sched_fetch){ .s = s, .b = b, .first = first, .count = count, .prio = prio };
	bitmap_set_range(b->inflight, first, count);
	f->next = b->fetches;
	b->fetches = f;
	s->nfetches++;
	f->background = prio == XFER_PRIO_BACKGROUND;
	s->nbackground += f->background;
	return f;
}

/* Hands f to the engine (after asking the budget for room). No sched lock held. */
/* The request for what f still owns. A cut by another reader may shrink f and raise its
 * priority until it is submitted: read only under s->lock. */
static void fetch_req_locked(const struct sched_fetch *f, struct xfer_req *ret)
{
	const struct sched_blob *b = f->b;
	uint64_t off = f->first * f->s->bs;
	uint64_t end = MIN((f->first + f->count) * f->s->bs, b->size);

	*ret = (struct xfer_req){
		.url = b->url,
		.blob_key = b->cid,
		.blob_size = b->size,
		.offset = off,
		.len = end > off ? end - off : 0,
		.prio = f->prio,
		.sink = { .write = sched_fetch_write, .done = sched_fetch_done, .ud = (void *)f },
	};
}

static void fetch_submit(struct sched_fetch *f)
{
	struct sched *s = f->s;
	struct xfer_req req;
	uint64_t id = 0;
	char why[320];
	int r;

	pthread_mutex_lock(&s->lock);
	fetch_req_locked(f, &req);
	pthread_mutex_unlock(&s->lock);
	if (budget_admit(s->budget, req.len) < 0) {
		budget_why(s->budget, why, sizeof(why));
		sched_fetch_done(f, -ENOSPC, FETCH_DISK_FULL, why, 0);
		return;
	}
	f->granted = req.len;
	/* The engine may call the sink before xfer_submit() returns; the id it looks up (a cut)
	 * must be there first, so it is written under the lock, with the engine's queue lock
	 * (innermost) taken inside. What f owns is read again: a cut may have come since. */
	pthread_mutex_lock(&s->lock);
	fetch_req_locked(f, &req);
	if (!req.len)
		r = -ECANCELED;
	else if (s->xr && f->b->hash == BLOB_HASH_SHA256)
		r = xet_read_submit(s->xr, (size_t)(f->b - s->blobs), f->b->path, &req, &id);
	else
		r = xfer_submit(s->x, &req, &id);
	f->id = id;
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		sched_fetch_done(f, r, r == -ECANCELED ? FETCH_CANCELED : FETCH_IO,
				 req.len ? "not submitted" : "", 0);
}

void sched_cancel(struct sched *s, uint64_t id)
{
	if (id & XET_READ_ID_BIT)
		xet_read_cancel(s->xr, id);
	else
		(void)xfer_cancel(s->x, id);
}

void sched_submit_all(struct sched_fetch *todo)
{
	struct sched_fetch *fifo = NULL;

	while (todo) {
		struct sched_fetch *next = todo->todo_next;

		todo->todo_next = fifo;
		fifo = todo;
		todo = next;
	}
	todo = fifo;
	while (todo) {
		struct sched_fetch *next = todo->todo_next;

		fetch_submit(todo);
		todo = next;
	}
}

size_t sched_plan_locked(struct sched *s, struct sched_blob *b, uint64_t first, uint64_t last,
			 uint64_t max_blocks, enum xfer_prio prio, struct sched_fetch **todo)
{
	size_t n = 0;

	for (uint64_t i = first; i <= last;) {
		struct sched_fetch *f;
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
		f = fetch_new_locked(s, b, i, end - i, prio);
		if (!f)
			break;
		f->todo_next = *todo;
		*todo = f;
		n++;
		i = end;
	}
	return n;
}

size_t sched_cut_locked(struct sched *s, struct sched_blob *b, uint64_t first, uint64_t last,
			uint64_t *ret_cancel, size_t ncancel)
{
	size_t n = 0;

	for (struct sched_fetch *f = b->fetches; f; f = f->next) {
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
		if (f->id & XET_READ_ID_BIT)
			xet_read_set_prio(s->xr, f->id, XFER_PRIO_DEMAND);
		else
			(void)xfer_set_prio(s->x, f->id, XFER_PRIO_DEMAND);
	}
	return n;
}

void sched_plan_waiters_locked(struct sched *s, struct sched_blob *b, struct sched_fetch **todo)
{
	for (struct sched_waiter *p = b->waiters; p; p = p->next) {
		sched_plan_locked(s, b, p->first, p->last, UINT64_MAX, XFER_PRIO_DEMAND, todo);
		if (p->whole)
			sched_plan_locked(s, b, 0, b->nblocks - 1, MAX(1, (8U << 20) / s->bs),
					  XFER_PRIO_READAHEAD, todo);
	}
}
