/* blob_fds.c: a bounded set of open blob data files, closed least recently used first and
 * never while referenced. Any thread: the set's mutex guards the slots' fd, refs, list links
 * and first identity, and the counts; open() and close() run outside it. Knows nothing of
 * the index or of who holds the slots. */
#include "cache/blob_fds.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"

/* Files closed by one call at most; more wait for the next get or put. */
#define CLOSE_BATCH 8

struct blob_fds {
	char *cache_dir;
	unsigned max_open;
	pthread_mutex_t lock;
	struct blob_fd_slot *head, *tail; /* lock: open slots, most recently used first */
	unsigned nopen; /* lock: slots on the list */
};

unsigned blob_fds_limit(unsigned reserve)
{
	struct rlimit rl;
	uint64_t n = 4096;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		n = rl.rlim_cur > reserve ? MIN(n, rl.rlim_cur - reserve) : 0;
	return (unsigned)MAX(n, 8);
}

struct blob_fds *blob_fds_new(const char *cache_dir, unsigned max_open)
{
	struct blob_fds *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->cache_dir = strdup(cache_dir);
	if (!p->cache_dir) {
		free(p);
		return NULL;
	}
	p->max_open = MAX(max_open, 1);
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

struct blob_fds *blob_fds_free(struct blob_fds *p)
{
	if (!p)
		return NULL;
	for (struct blob_fd_slot *s = p->head, *next; s; s = next) {
		next = s->next;
		(void)close(s->fd);
		s->fd = -1;
		s->prev = s->next = NULL;
	}
	pthread_mutex_destroy(&p->lock);
	free(p->cache_dir);
	free(p);
	return NULL;
}

void blob_fd_slot_init(struct blob_fd_slot *slot, const char *cid, uint64_t size)
{
	*slot = (struct blob_fd_slot){ .cid = cid, .size = size, .fd = -1 };
}

static void unlink_locked(struct blob_fds *p, struct blob_fd_slot *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		p->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		p->tail = s->prev;
	s->prev = s->next = NULL;
}

static void push_front_locked(struct blob_fds *p, struct blob_fd_slot *s)
{
	s->prev = NULL;
	s->next = p->head;
	if (p->head)
		p->head->prev = s;
	else
		p->tail = s;
	p->head = s;
}

/* Takes the least recently used unreferenced files past the maximum off the list; returns
 * how many fds it put in ret_fds (the caller closes them, unlocked). */
static size_t take_excess_locked(struct blob_fds *p, int ret_fds[static CLOSE_BATCH])
{
	size_t n = 0;

	for (struct blob_fd_slot *s = p->tail, *prev;
	     s && p->nopen > p->max_open && n < CLOSE_BATCH; s = prev) {
		prev = s->prev;
		if (s->refs)
			continue;
		unlink_locked(p, s);
		ret_fds[n++] = s->fd;
		s->fd = -1;
		p->nopen--;
	}
	return n;
}

static void close_all(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		(void)close(fds[i]);
}

/* Opens the slot's file and checks it is the one first opened for the slot: the same device,
 * inode number and birth time (a file system may give a new file the number of one just
 * removed; the birth time tells them apart where the file system records it). */
static int open_checked(struct blob_fds *p, struct blob_fd_slot *slot)
{
	_cleanup_close_ int fd = blob_open(p->cache_dir, slot->cid, slot->size);
	uint64_t dev, born;
	struct statx stx;
	bool same;

	if (fd < 0)
		return fd;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_INO | STATX_BTIME, &stx) < 0)
		return -errno;
	dev = (uint64_t)stx.stx_dev_major << 32 | stx.stx_dev_minor;
	born = stx.stx_mask & STATX_BTIME ?
		       (uint64_t)stx.stx_btime.tv_sec * 1000000000 + stx.stx_btime.tv_nsec :
		       0;
	pthread_mutex_lock(&p->lock);
	same = !slot->ino || (slot->dev == dev && slot->ino == stx.stx_ino && slot->born == born);
	if (!slot->ino) {
		slot->dev = dev;
		slot->ino = stx.stx_ino;
		slot->born = born;
	}
	pthread_mutex_unlock(&p->lock);
	return same ? TAKE_FD(fd) : -ESTALE;
}

int blob_fds_get(struct blob_fds *p, struct blob_fd_slot *slot)
{
	int fds[CLOSE_BATCH + 1], fd;
	size_t n;

	pthread_mutex_lock(&p->lock);
	if (slot->fd >= 0) {
		slot->refs++;
		if (p->head != slot) {
			unlink_locked(p, slot);
			push_front_locked(p, slot);
		}
		fd = slot->fd;
		pthread_mutex_unlock(&p->lock);
		return fd;
	}
	pthread_mutex_unlock(&p->lock);
	fd = open_checked(p, slot);
	if (fd < 0)
		return fd;
	pthread_mutex_lock(&p->lock);
	if (slot->fd >= 0) {
		/* Another thread opened it meanwhile: use theirs. */
		fds[0] = fd;
		n = 1;
		fd = slot->fd;
		if (p->head != slot) {
			unlink_locked(p, slot);
			push_front_locked(p, slot);
		}
	} else {
		slot->fd = fd;
		push_front_locked(p, slot);
		p->nopen++;
		n = 0;
	}
	slot->refs++;
	n += take_excess_locked(p, fds + n);
	pthread_mutex_unlock(&p->lock);
	close_all(fds, n);
	return fd;
}

void blob_fds_put(struct blob_fds *p, struct blob_fd_slot *slot)
{
	int fds[CLOSE_BATCH];
	size_t n = 0;

	pthread_mutex_lock(&p->lock);
	slot->refs--;
	/* Past the maximum only while others were referenced: close them once they are not. */
	if (p->nopen > p->max_open)
		n = take_excess_locked(p, fds);
	pthread_mutex_unlock(&p->lock);
	close_all(fds, n);
}

unsigned blob_fds_open_count(struct blob_fds *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->nopen;
	pthread_mutex_unlock(&p->lock);
	return n;
}
