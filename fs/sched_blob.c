/* sched_blob.c: a blob's presence and its parked reads, the state every other part of the
 * scheduler reads and changes under s->lock: how far its prefix reaches, dropping blocks,
 * which parked reads can be answered or never will be, and answering them with its data
 * file. Calls nothing outside itself but the bitmap and the data files' set; the other sched
 * files build on it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache/bitmap.h"
#include "fs/sched_priv.h"
#include "util/cleanup.h"
#include "util/log.h"

void sched_advance_prefix_locked(struct sched_blob *b)
{
	b->prefix = bitmap_next_clear(b->present, b->prefix, b->nblocks);
}

void sched_drop_locked(struct sched_blob *b, uint64_t first, uint64_t count)
{
	for (uint64_t i = first; i < first + count && i < b->nblocks; i++)
		if (!bitmap_test(b->inflight, i))
			bitmap_clear(b->present, i);
	b->epoch++;
	b->prefix = MIN(b->prefix, first);
	if (b->state != BLOB_BAD)
		b->state = BLOB_PARTIAL;
	b->record_verified = false;
}

/* The blocks w needs, present or in flight; false when one of them is neither. */
static bool is_served_or_coming(const struct sched_blob *b, const struct sched_waiter *w)
{
	uint64_t first = w->whole ? 0 : w->first, last = w->whole ? b->nblocks - 1 : w->last;

	for (uint64_t i = first; i <= last; i++)
		if (!bitmap_test(b->present, i) && !bitmap_test(b->inflight, i))
			return false;
	return true;
}

void sched_take_answerable_locked(struct sched_blob *b, struct sched_waiter **ret_ready,
				  struct sched_waiter **ret_failed)
{
	struct sched_waiter **pp = &b->waiters;

	while (*pp) {
		struct sched_waiter *w = *pp, **to = NULL;

		if (w->gen < b->gen || b->given_up)
			to = ret_failed;
		else if (w->whole ? b->state == BLOB_VERIFIED :
				    bitmap_all_set(b->present, w->first, w->last - w->first + 1))
			to = ret_ready;
		if (!to) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->next = *to;
		*to = w;
	}
}

struct sched_waiter *sched_take_all_locked(struct sched_blob *b)
{
	return TAKE_PTR(b->waiters);
}

struct sched_waiter *sched_take_orphans_locked(struct sched_blob *b)
{
	struct sched_waiter *dead = NULL, **pp = &b->waiters;

	while (*pp) {
		struct sched_waiter *w = *pp;

		if (!is_served_or_coming(b, w)) {
			*pp = w->next;
			w->next = dead;
			dead = w;
		} else {
			pp = &w->next;
		}
	}
	return dead;
}

void sched_answer(struct sched_waiter *list, int err, int fd)
{
	while (list) {
		struct sched_waiter *next = list->next;

		list->ready(list->ud, err, err ? -1 : fd, list->net);
		free(list);
		list = next;
	}
}

int sched_fd_get(struct sched *s, struct sched_blob *b)
{
	int fd = blob_fds_get(s->fds, &b->fd);

	if (fd >= 0 || __atomic_exchange_n(&b->fd_failed, true, __ATOMIC_RELAXED))
		return fd;
	if (fd == -ESTALE)
		log_err("the cache's data file of '%s' (%s) was removed or replaced while mounted: "
			"its reads fail until the next mount",
			b->path, b->cid);
	else
		log_err("cannot open the cache's data file of '%s' (%s): %s; its reads fail "
			"while it cannot be opened",
			b->path, b->cid, strerror(-fd));
	return fd;
}

void sched_fd_put(struct sched *s, struct sched_blob *b)
{
	blob_fds_put(s->fds, &b->fd);
}

void sched_answer_ready(struct sched *s, struct sched_blob *b, struct sched_waiter *list)
{
	int fd;

	if (!list)
		return;
	fd = sched_fd_get(s, b);
	if (fd < 0) {
		sched_answer(list, -EIO, -1);
		return;
	}
	sched_answer(list, 0, fd);
	sched_fd_put(s, b);
}
