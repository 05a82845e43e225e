/* prefetch.c: the background completion thread. It plans an ordered list of byte ranges, then
 * feeds them to sched at background priority, keeping a bounded number in flight. */
#include "fs/prefetch.h"

#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/bitmap.h"
#include "fetch/hub_json.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/parse.h"

#define SMALL_LFS_MAX (1ULL << 20)
#define INDEX_SUFFIX ".safetensors.index.json"

struct step {
	const struct inode *f;
	uint64_t offset, len;
	enum prefetch_phase phase;
};

struct prefetch {
	struct sched *s;
	const struct inode_table *t;
	struct prefetch_opts o;
	const struct inode **files; /* wanted files */
	size_t nfiles;

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop; /* lock */
	struct prefetch_stats stats; /* lock */
};

static bool match_one(const char *pattern, const char *path)
{
	size_t n = strlen(pattern);

	if (n && pattern[n - 1] == '/') {
		_cleanup_free_ char *p = NULL;

		if (asprintf(&p, "%s*", pattern) < 0)
			return false;
		return fnmatch(p, path, 0) == 0;
	}
	return fnmatch(pattern, path, 0) == 0;
}

bool prefetch_wants(const struct prefetch_opts *o, const char *path)
{
	bool in = o->ninclude == 0;

	for (size_t i = 0; i < o->ninclude && !in; i++)
		in = match_one(o->include[i], path);
	for (size_t i = 0; i < o->nexclude && in; i++)
		in = !match_one(o->exclude[i], path);
	return in;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static bool is_small(const struct inode *f)
{
	return !f->is_lfs || ends_with(f->path, ".json") || f->size <= SMALL_LFS_MAX;
}

static bool is_shard(const struct inode *f)
{
	return ends_with(f->path, ".safetensors");
}

static bool stopping(struct prefetch *p)
{
	bool stop;

	pthread_mutex_lock(&p->lock);
	stop = p->stop;
	pthread_mutex_unlock(&p->lock);
	return stop;
}

static void set_phase(struct prefetch *p, enum prefetch_phase ph)
{
	pthread_mutex_lock(&p->lock);
	p->stats.phase = ph;
	pthread_mutex_unlock(&p->lock);
}

/* While reads wait on the network, background completion keeps to READER_SHARE transfers
 * (and the engine keeps only those ahead of the reader, fetch/xfer_queue.c): measured on a
 * 50 MB/s link with 16 connections (docs/benchmarks.md), a reader beside 14 background
 * transfers got 13 MB/s, alone 45 MB/s. */
#define READER_SHARE 2
#define READER_RECENT_USEC (2 * 1000000ULL)

static unsigned inflight_limit(struct prefetch *p)
{
	if (sched_demand_age_usec(p->s) < READER_RECENT_USEC)
		return MIN(p->o.max_inflight, READER_SHARE);
	return p->o.max_inflight;
}

static bool pause_for(struct prefetch *p, unsigned seconds, enum prefetch_phase ph);

/* Waits until the budget has room for n bytes, paused and saying why meanwhile. Returns
 * false when stopping. */
static bool wait_room(struct prefetch *p, uint64_t n)
{
	enum prefetch_phase ph;
	char why[sizeof(p->stats.paused)];

	if (budget_room(p->o.budget, n))
		return true;
	budget_why(p->o.budget, why, sizeof(why));
	log_warn("background completion paused: %s", why);
	pthread_mutex_lock(&p->lock);
	ph = p->stats.phase;
	snprintf(p->stats.paused, sizeof(p->stats.paused), "%s", why);
	pthread_mutex_unlock(&p->lock);
	do {
		if (!pause_for(p, 5, PREFETCH_PAUSED))
			return false;
	} while (!budget_room(p->o.budget, n));
	log_info("background completion resumed: the cache has room again");
	pthread_mutex_lock(&p->lock);
	p->stats.phase = ph;
	p->stats.paused[0] = '\0';
	pthread_mutex_unlock(&p->lock);
	return true;
}

/* Submits one chunk of f at o (at most len bytes) once fewer than the allowed background
 * fetches are in flight and the budget has room. Returns false when stopping. */
static bool feed_chunk(struct prefetch *p, const struct inode *f, uint64_t o, uint64_t len)
{
	uint64_t missing = sched_missing(p->s, f, o, len);
	int r;

	if (!missing)
		return true;
	/* Near the cache's limits a smaller piece may still fit: from the first missing block,
	 * halve down to one block. */
	if (missing > CACHE_BLOCK_SIZE_DEFAULT && !budget_room(p->o.budget, missing)) {
		while (!sched_missing(p->s, f, o, CACHE_BLOCK_SIZE_DEFAULT)) {
			o += CACHE_BLOCK_SIZE_DEFAULT;
			len -= CACHE_BLOCK_SIZE_DEFAULT;
		}
		do {
			len = MAX(CACHE_BLOCK_SIZE_DEFAULT,
				  len / 2 / CACHE_BLOCK_SIZE_DEFAULT * CACHE_BLOCK_SIZE_DEFAULT);
			missing = sched_missing(p->s, f, o, len);
		} while (missing > CACHE_BLOCK_SIZE_DEFAULT && !budget_room(p->o.budget, missing));
	}
	if (!wait_room(p, missing))
		return false;
	while ((r = sched_wait_background(p->s, inflight_limit(p), 500)) == 0)
		if (stopping(p))
			return false;
	if (r < 0 || stopping(p))
		return false;
	return sched_prefetch(p->s, f, o, len, p->o.chunk, XFER_PRIO_BACKGROUND) >= 0;
}

static bool wanted(struct prefetch *p, const struct inode *f)
{
	for (size_t i = 0; i < p->nfiles; i++)
		if (p->files[i] == f)
			return true;
	return false;
}

/* The first chunk of f in [from, to) with missing blocks, into *ret_o. */
static bool first_missing(struct prefetch *p, const struct inode *f, uint64_t from, uint64_t to,
			  uint64_t *ret_o)
{
	for (uint64_t o = from; o < to; o += p->o.chunk)
		if (sched_missing(p->s, f, o, MIN(p->o.chunk, to - o))) {
			*ret_o = o;
			return true;
		}
	return false;
}

/* The next chunk of the file a reader waited for lately: the first one with missing blocks
 * at or after where the read ended, else before it. False when there is none, or while the
 * reader waits for the tensor it sought. */
static bool hot_chunk(struct prefetch *p, const struct inode **ret_f, uint64_t *ret_o)
{
	const struct inode *f;
	uint64_t ino, off;

	if (!sched_hot(p->s, READER_RECENT_USEC, &ino, &off) || !ino || ino > inode_count(p->t))
		return false;
	f = inode_get(p->t, ino);
	if (!f || f->is_dir || !wanted(p, f))
		return false;
	off = MIN(off, f->size);
	/* A reader waiting for a tensor it sought wants those bytes alone first: past them,
	 * completion would share the link with its last pieces (fs/tensors.h). */
	if (tensors_readahead_limit(p->o.tensors, f, off) != UINT64_MAX)
		return false;
	*ret_f = f;
	return first_missing(p, f, off, f->size, ret_o) || first_missing(p, f, 0, off, ret_o);
}

/* While a reader waits on a file, background completion works on that file, ahead of the
 * reader: the bandwidth it keeps then goes to what is being loaded. Returns false when
 * stopping. */
static bool follow_reader(struct prefetch *p)
{
	const struct inode *f, *last = NULL;
	uint64_t o, last_o = 0;

	/* The same chunk twice in a row: its fetch failed at once; the passes retry it later. */
	while (hot_chunk(p, &f, &o) && !(f == last && o == last_o)) {
		if (!feed_chunk(p, f, o, MIN(p->o.chunk, f->size - o)))
			return false;
		last = f;
		last_o = o;
	}
	return true;
}

/* Feeds [offset, offset+len) of f to sched in chunks, keeping at most max_inflight background
 * fetches in flight and within the budget, following a reader first. Returns false when
 * stopping. */
static bool feed(struct prefetch *p, const struct inode *f, uint64_t offset, uint64_t len)
{
	uint64_t end = MIN(f->size, offset + len);

	for (uint64_t o = offset; o < end; o += p->o.chunk)
		if (!follow_reader(p) || !feed_chunk(p, f, o, MIN(p->o.chunk, end - o)))
			return false;
	return true;
}

/* Waits until no background fetch is in flight (the phase's ranges landed or failed). */
static bool drain(struct prefetch *p)
{
	int r;

	while ((r = sched_wait_background(p->s, 1, 500)) == 0)
		if (stopping(p))
			return false;
	return r > 0 && !stopping(p);
}

/* The header region of a shard: 8 bytes of little-endian length, then that much JSON. */
static uint64_t header_len(struct prefetch *p, const struct inode *f)
{
	uint8_t b[8];
	uint64_t n = 0;

	if (f->size < 8 || sched_pread(p->s, f, b, sizeof(b), 0) < 0)
		return MIN(f->size, 1U << 20);
	for (int i = 7; i >= 0; i--)
		n = n << 8 | b[i];
	return n > f->size - 8 ? f->size : n + 8;
}

/* Shards in the order the index files list them (first appearance in weight_map), then the
 * rest by path. Returns a malloc'd array of nfiles entries (shards only) in *ret. */
static size_t shard_order(struct prefetch *p, const struct inode ***ret)
{
	const struct inode **order = calloc(p->nfiles + 1, sizeof(*order));
	size_t n = 0;

	*ret = order;
	if (!order)
		return 0;
	for (size_t i = 0; i < p->nfiles; i++) {
		const struct inode *idx = p->files[i];
		_cleanup_free_ char *json = NULL;
		char **names = NULL;
		size_t nnames = 0;

		if (!ends_with(idx->path, INDEX_SUFFIX) || idx->size > (64U << 20))
			continue;
		json = malloc(idx->size + 1);
		if (!json || sched_pread(p->s, idx, json, idx->size, 0) < 0)
			continue;
		if (hub_json_index_files(json, idx->size, &names, &nnames) < 0)
			continue;
		for (size_t k = 0; k < nnames; k++) {
			/* Names are relative to the index's folder. */
			size_t dir = strrchr(idx->path, '/') ?
					     (size_t)(strrchr(idx->path, '/') - idx->path) + 1 :
					     0;

			for (size_t j = 0; j < p->nfiles; j++) {
				const struct inode *f = p->files[j];
				bool seen = false;

				if (!is_shard(f) || strncmp(f->path, idx->path, dir) ||
				    strcmp(f->path + dir, names[k]))
					continue;
				for (size_t m = 0; m < n && !seen; m++)
					seen = order[m] == f;
				if (!seen)
					order[n++] = f;
			}
			free(names[k]);
		}
		free(names);
	}
	for (size_t j = 0; j < p->nfiles; j++) {
		bool seen = false;

		if (!is_shard(p->files[j]))
			continue;
		for (size_t m = 0; m < n && !seen; m++)
			seen = order[m] == p->files[j];
		if (!seen)
			order[n++] = p->files[j];
	}
	return n;
}

/* Compares what is still missing with the room the cache's limits leave, says so when it
 * does not fit, and keeps both for status. */
static void check_space(struct prefetch *p)
{
	uint64_t missing = 0, room;
	char s1[16], s2[16];

	for (size_t i = 0; i < p->nfiles; i++)
		missing += sched_missing(p->s, p->files[i], 0, p->files[i]->size);
	room = p->o.budget && missing ? budget_capacity(p->o.budget, missing) : missing;
	pthread_mutex_lock(&p->lock);
	p->stats.space_needed = missing;
	p->stats.space_room = room;
	pthread_mutex_unlock(&p->lock);
	if (room < missing)
		log_warn(
			"background completion needs %s more but the cache can take only %s within "
			"its limits (--cache-max-size, --min-free); it will pause there, and reads "
			"of the rest will be streamed without caching",
			format_size(missing, s1, sizeof(s1)), format_size(room, s2, sizeof(s2)));
	else if (missing)
		log_info("background completion: %s to fetch, the cache has room for it",
			 format_size(missing, s1, sizeof(s1)));
}

/* One pass over everything wanted. Returns false when stopping. */
static bool pass(struct prefetch *p)
{
	_cleanup_free_ const struct inode **shards = NULL;
	size_t nshards;

	if (p->stats.passes) /* the first pass was checked at start */
		check_space(p);
	set_phase(p, PREFETCH_SMALL);
	for (size_t i = 0; i < p->nfiles; i++)
		if (is_small(p->files[i]) && !is_shard(p->files[i]) &&
		    !feed(p, p->files[i], 0, p->files[i]->size))
			return false;
	if (!drain(p))
		return false;
	set_phase(p, PREFETCH_HEADERS);
	for (size_t i = 0; i < p->nfiles; i++)
		if (is_shard(p->files[i]) && !feed(p, p->files[i], 0, 1U << 20))
			return false;
	if (!drain(p))
		return false;
	for (size_t i = 0; i < p->nfiles; i++)
		if (is_shard(p->files[i]) && !feed(p, p->files[i], 0, header_len(p, p->files[i])))
			return false;
	set_phase(p, PREFETCH_SHARDS);
	nshards = shard_order(p, &shards);
	for (size_t i = 0; i < nshards; i++)
		if (!feed(p, shards[i], 0, shards[i]->size))
			return false;
	set_phase(p, PREFETCH_REST);
	for (size_t i = 0; i < p->nfiles; i++)
		if (!feed(p, p->files[i], 0, p->files[i]->size))
			return false;
	return drain(p);
}

static unsigned count_done(struct prefetch *p)
{
	unsigned done = 0;

	for (size_t i = 0; i < p->nfiles; i++)
		done += sched_is_complete(p->s, p->files[i]);
	return done;
}

/* Sleeps up to seconds, or until stopped or woken (a blob went bad). False when stopping. */
static bool pause_for(struct prefetch *p, unsigned seconds, enum prefetch_phase ph)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	pthread_mutex_lock(&p->lock);
	p->stats.phase = ph;
	p->stats.retry_in_s = ph == PREFETCH_WAITING ? seconds : 0;
	while (!p->stop && pthread_cond_timedwait(&p->cond, &p->lock, &ts) == 0)
		;
	stop = p->stop;
	pthread_mutex_unlock(&p->lock);
	return !stop;
}

static void *prefetch_main(void *arg)
{
	struct prefetch *p = arg;
	unsigned backoff = 2;

	for (;;) {
		unsigned done;

		if (!pass(p))
			break;
		done = count_done(p);
		pthread_mutex_lock(&p->lock);
		p->stats.passes++;
		p->stats.files_done = done;
		pthread_mutex_unlock(&p->lock);
		if (done == p->nfiles) {
			if (backoff > 2)
				log_info("background completion finished: %u files", done);
			backoff = 2;
			/* Idle; look again now and then (a blob that failed verification is
			 * missing again and is fetched by the next pass). */
			if (!pause_for(p, 5, PREFETCH_DONE))
				break;
			continue;
		}
		log_info("background completion: %zu of %zu files incomplete after pass %u; next "
			 "pass in %u s",
			 p->nfiles - done, p->nfiles, p->stats.passes, backoff);
		if (!pause_for(p, backoff, PREFETCH_WAITING))
			break;
		backoff = MIN(backoff * 2, 60);
	}
	return NULL;
}

int prefetch_start(struct sched *s, const struct inode_table *t, const struct prefetch_opts *o,
		   struct prefetch **ret)
{
	struct prefetch *p = calloc(1, sizeof(*p));
	size_t n = inode_count(t);

	if (!p)
		return -ENOMEM;
	p->s = s;
	p->t = t;
	p->o = *o;
	if (!p->o.max_inflight)
		p->o.max_inflight = 16;
	if (!p->o.chunk)
		p->o.chunk = 16ULL << 20;
	p->files = calloc(n + 1, sizeof(*p->files));
	if (!p->files) {
		free(p);
		return -ENOMEM;
	}
	for (uint64_t ino = 1; ino <= n; ino++) {
		const struct inode *f = inode_get(t, ino);

		if (f->is_dir || !prefetch_wants(o, f->path))
			continue;
		p->files[p->nfiles++] = f;
		p->stats.bytes_wanted += f->size;
	}
	p->stats.files_wanted = (unsigned)p->nfiles;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	/* On the caller's thread: before the mount is ready, the warning reaches the terminal. */
	check_space(p);
	if (pthread_create(&p->thread, NULL, prefetch_main, p) != 0) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		free(p->files);
		free(p);
		return -EAGAIN;
	}
	*ret = p;
	return 0;
}

struct prefetch *prefetch_stop(struct prefetch *p)
{
	if (!p)
		return NULL;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->files);
	free(p);
	return NULL;
}

void prefetch_get_stats(struct prefetch *p, struct prefetch_stats *ret)
{
	pthread_mutex_lock(&p->lock);
	*ret = p->stats;
	pthread_mutex_unlock(&p->lock);
	ret->files_done = count_done(p);
}

const char *prefetch_phase_str(enum prefetch_phase ph)
{
	static const char *const names[] = { "small files", "safetensors headers", "shards",
					     "other files", "waiting to retry",	   "complete",
					     "paused" };

	return ph <= PREFETCH_PAUSED ? names[ph] : "?";
}
