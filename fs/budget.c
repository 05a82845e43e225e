/* budget.c: admission of fetches against the cache's limits, eviction when short. Two locks:
 * scan serializes measuring and evicting (slow: statvfs, a walk of the blob records, unlinks,
 * the eviction flock); lock guards the counters and is never held across the slow part, so
 * settling a fetch (on the engine thread) never waits for a scan. Order: scan, then lock. */
#include "fs/budget.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/bitmap.h"
#include "cache/cache.h"
#include "cache/pins.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/timeutil.h"

/* A refusal stands this long before the cache is scanned again. */
#define REFUSAL_HOLD_USEC (1 * USEC_PER_SEC)
/* Measurements older than this are taken again at the next request. */
#define MEASURE_MAX_AGE_USEC (5 * USEC_PER_SEC)

struct budget {
	struct cache *cache;
	const char *dir; /* cache_dir(cache) */
	struct evict_limits limits;
	const struct inode_table *own;
	uint64_t fs_total; /* the cache's file system size, for the eviction slack */

	pthread_mutex_t scan;
	pthread_mutex_t lock;
	uint64_t usage0, avail0; /* lock: as measured */
	bool usage_walked; /* lock: usage0 came from a walk (else it only adds what landed) */
	uint64_t measured_at; /* lock: monotonic usec; 0: never */
	uint64_t landed; /* lock: bytes settled since the measurement */
	uint64_t pending; /* lock: bytes granted and not settled */
	uint64_t refused_at; /* lock: monotonic usec of the last refusal; 0: none standing */
	uint64_t evicted_blobs, evicted_bytes; /* lock */
	char why[320]; /* lock */
};

static uint64_t sub0(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static uint64_t est_usage_locked(const struct budget *b)
{
	return b->usage0 + b->landed + b->pending;
}

static uint64_t est_avail_locked(const struct budget *b)
{
	return sub0(b->avail0, b->landed + b->pending);
}

static bool fits_locked(const struct budget *b, uint64_t n)
{
	return (b->limits.max_size == EVICT_NO_LIMIT ||
		est_usage_locked(b) + n <= b->limits.max_size) &&
	       est_avail_locked(b) >= b->limits.min_free + n;
}

/* The pins: this mount's files and every live mount's. -EBADMSG with why filled. */
static int collect_pins(struct budget *b, struct evict_pins *pins, char *why, size_t len)
{
	for (size_t ino = 1; b->own && ino <= inode_count(b->own); ino++) {
		const struct inode *f = inode_get(b->own, ino);
		int r = inode_has_data(f) ? evict_pins_add(pins, f->cid) : 0;

		if (r < 0)
			return r;
	}
	return pins_live_mounts(cache_index(b->cache), pins, why, len);
}

/* Says why n bytes cannot be had, from the figures after a scan. "Full" only when it is
 * (within a block, or an eighth of a smaller limit, of --cache-max-size; less than a block
 * free on the disk): a fetch refused in an almost empty cache, or a --min-free above what
 * the disk has free, say what is short instead. */
static void explain_locked(struct budget *b, uint64_t n)
{
	const uint64_t block = CACHE_BLOCK_SIZE_DEFAULT;
	uint64_t usage = est_usage_locked(b), avail = est_avail_locked(b);
	uint64_t margin = MIN(block, b->limits.max_size / 8);
	char s1[16], s2[16], s3[16], s4[16];

	format_size(usage, s1, sizeof(s1));
	format_size(n, s3, sizeof(s3));
	if (b->limits.max_size != EVICT_NO_LIMIT && usage + n > b->limits.max_size) {
		format_size(b->limits.max_size, s2, sizeof(s2));
		if (usage + margin >= b->limits.max_size)
			snprintf(b->why, sizeof(b->why),
				 "the cache is full: %s in use or being fetched of its "
				 "--cache-max-size %s, and what it holds belongs to live mounts",
				 s1, s2);
		else
			snprintf(
				b->why, sizeof(b->why),
				"%s more do not fit within --cache-max-size %s (%s in use or being "
				"fetched, %s left), and what the cache holds belongs to live mounts",
				s3, s2, s1,
				format_size(b->limits.max_size - usage, s4, sizeof(s4)));
	} else if (avail < block) {
		snprintf(b->why, sizeof(b->why),
			 "the cache's disk is full: %s free on '%s' (--min-free %s), and nothing "
			 "more can be evicted",
			 format_size(avail, s1, sizeof(s1)), b->dir,
			 format_size(b->limits.min_free, s2, sizeof(s2)));
	} else {
		snprintf(b->why, sizeof(b->why),
			 "%s free on the cache's disk '%s', and --min-free keeps %s of it free: no "
			 "room for %s more, and nothing more can be evicted",
			 format_size(avail, s1, sizeof(s1)), b->dir,
			 format_size(b->limits.min_free, s2, sizeof(s2)), s3);
	}
}

/* Sets the figures as measured (usage walked, or not: then what landed is added to the
 * last figure); bytes settled since landed0 was read may or may not be in them, so they stay
 * counted. */
static void set_figures(struct budget *b, bool walked, uint64_t usage, uint64_t avail,
			uint64_t landed0)
{
	pthread_mutex_lock(&b->lock);
	b->usage0 = walked ? usage : b->usage0 + landed0;
	b->usage_walked |= walked;
	b->avail0 = avail;
	b->landed -= landed0;
	b->measured_at = now_usec();
	pthread_mutex_unlock(&b->lock);
}

static uint64_t landed_now(struct budget *b)
{
	uint64_t landed;

	pthread_mutex_lock(&b->lock);
	landed = b->landed;
	pthread_mutex_unlock(&b->lock);
	return landed;
}

/* Takes the figures again: free space always, usage (a walk of the blob records) when there
 * is a max size or walk says so. Called with scan held, lock not held. */
static int measure(struct budget *b, bool walk)
{
	struct evict_limits none = { .max_size = EVICT_NO_LIMIT };
	struct evict_plan plan = { 0 };
	uint64_t total, avail, landed0 = landed_now(b);
	int r;

	walk |= b->limits.max_size != EVICT_NO_LIMIT;
	if (walk) {
		r = evict_plan(b->cache, &none, NULL, &plan);
		evict_plan_done(&plan);
		if (r < 0)
			return r;
	}
	r = evict_fs_space(b->dir, &total, &avail);
	if (r < 0)
		return r;
	set_figures(b, walk, plan.usage, avail, landed0);
	return 0;
}

int budget_measure_usage(struct budget *b)
{
	int r;

	pthread_mutex_lock(&b->scan);
	r = measure(b, true);
	pthread_mutex_unlock(&b->scan);
	return r;
}

/* Evicts what the limits ask for n more bytes (beyond what is pending) plus some slack, so
 * the next requests do not each scan; the eviction's plan is the new measurement. Called
 * with scan held, lock not held. */
static void evict_for(struct budget *b, uint64_t n)
{
	struct evict_pins pins = { 0 };
	struct evict_plan plan = { 0 };
	struct evict_result res = { 0 };
	struct evict_limits want = b->limits;
	uint64_t total, avail, extra, slack, landed0;
	char why[320] = "";
	int fd, r;

	pthread_mutex_lock(&b->lock);
	extra = b->pending + n;
	landed0 = b->landed;
	pthread_mutex_unlock(&b->lock);
	/* Slack: an eighth of the limit, at most 256 MiB, so eviction comes in batches. */
	slack = MIN(256ULL << 20, MIN(b->limits.max_size, b->fs_total) / 8);
	if (b->limits.max_size != EVICT_NO_LIMIT)
		want.max_size = sub0(b->limits.max_size, extra + slack);
	want.min_free = b->limits.min_free + extra + slack;

	fd = evict_lock(b->dir, true);
	if (fd < 0) {
		log_warn("cache budget: cannot take the eviction lock: %s", strerror(-fd));
		return;
	}
	r = collect_pins(b, &pins, why, sizeof(why));
	if (r == 0)
		r = evict_to_budget(b->cache, &want, &pins, &plan, &res);
	close(fd);
	evict_pins_done(&pins);
	if (r == -EBADMSG && why[0])
		log_warn("cache budget: %s; nothing was evicted", why);
	else if (r < 0)
		log_warn("cache budget: eviction stopped: %s", strerror(-r));
	if (res.removed) {
		char s1[16];

		log_info("evicted %zu least recently used blob%s (%s) to stay within the cache's "
			 "limits",
			 res.removed, res.removed == 1 ? "" : "s",
			 format_size(res.freed, s1, sizeof(s1)));
		pthread_mutex_lock(&b->lock);
		b->evicted_blobs += res.removed;
		b->evicted_bytes += res.freed;
		pthread_mutex_unlock(&b->lock);
	}
	/* The plan walked every record before removing: its usage less what went is the usage
	 * now; free space is asked again (one statvfs). Without a plan, measure from scratch. */
	if (r == 0 && evict_fs_space(b->dir, &total, &avail) == 0)
		set_figures(b, true, sub0(plan.usage, res.freed), avail, landed0);
	else
		(void)measure(b, false);
	evict_plan_done(&plan);
}

/* Measures when the figures are old, and evicts when n bytes do not fit. Called with scan
 * held, lock not held. */
static void refresh(struct budget *b, uint64_t n)
{
	bool ok;

	pthread_mutex_lock(&b->lock);
	ok = now_usec() - b->measured_at < MEASURE_MAX_AGE_USEC;
	pthread_mutex_unlock(&b->lock);
	if (!ok && measure(b, false) < 0)
		return;
	pthread_mutex_lock(&b->lock);
	ok = fits_locked(b, n);
	pthread_mutex_unlock(&b->lock);
	if (!ok)
		evict_for(b, n);
}

/* The common part of admit and room: 0 when n fits (taken when take), else -ENOSPC. */
static int request(struct budget *b, uint64_t n, bool take)
{
	uint64_t now = now_usec();

	pthread_mutex_lock(&b->lock);
	if (now - b->measured_at < MEASURE_MAX_AGE_USEC && fits_locked(b, n))
		goto grant;
	if (b->refused_at && now - b->refused_at < REFUSAL_HOLD_USEC) {
		pthread_mutex_unlock(&b->lock);
		return -ENOSPC;
	}
	pthread_mutex_unlock(&b->lock);

	/* Another thread may have scanned meanwhile: refresh looks again. */
	pthread_mutex_lock(&b->scan);
	refresh(b, n);
	pthread_mutex_unlock(&b->scan);

	pthread_mutex_lock(&b->lock);
	if (!fits_locked(b, n)) {
		explain_locked(b, n);
		if (!b->refused_at)
			log_warn("cache budget: %s", b->why);
		b->refused_at = now_usec();
		pthread_mutex_unlock(&b->lock);
		return -ENOSPC;
	}
grant:
	if (b->refused_at)
		log_info("cache budget: room again");
	b->refused_at = 0;
	b->why[0] = '\0';
	if (take)
		b->pending += n;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

int budget_admit(struct budget *b, uint64_t n)
{
	return b ? request(b, n, true) : 0;
}

bool budget_room(struct budget *b, uint64_t n)
{
	return !b || request(b, n, false) == 0;
}

void budget_settle(struct budget *b, uint64_t granted, uint64_t written)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->pending = sub0(b->pending, granted);
	b->landed += MIN(written, granted);
	pthread_mutex_unlock(&b->lock);
}

void budget_disk_full(struct budget *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->measured_at = 0;
	pthread_mutex_unlock(&b->lock);
}

void budget_why(struct budget *b, char *buf, size_t len)
{
	pthread_mutex_lock(&b->lock);
	snprintf(buf, len, "%s", b->why);
	pthread_mutex_unlock(&b->lock);
}

void budget_get_stats(struct budget *b, struct budget_stats *ret)
{
	pthread_mutex_lock(&b->lock);
	*ret = (struct budget_stats){
		.limits = b->limits,
		.usage = est_usage_locked(b),
		.used = b->usage0 + b->landed,
		.used_known = b->usage_walked,
		.avail = est_avail_locked(b),
		.evicted_blobs = b->evicted_blobs,
		.evicted_bytes = b->evicted_bytes,
	};
	pthread_mutex_unlock(&b->lock);
}

uint64_t budget_capacity(struct budget *b, uint64_t n)
{
	struct evict_pins pins = { 0 };
	struct evict_plan plan = { 0 };
	struct evict_limits want = b->limits;
	uint64_t room, cap = 0;
	int fd;

	if (b->limits.max_size != EVICT_NO_LIMIT)
		want.max_size = sub0(b->limits.max_size, n);
	want.min_free = b->limits.min_free + n;
	pthread_mutex_lock(&b->scan);
	fd = evict_lock(b->dir, false);
	if (fd >= 0 && collect_pins(b, &pins, NULL, 0) == 0 &&
	    evict_plan(b->cache, &want, &pins, &plan) == 0) {
		room = sub0(plan.avail, b->limits.min_free);
		if (b->limits.max_size != EVICT_NO_LIMIT)
			room = MIN(room, sub0(b->limits.max_size, plan.usage));
		cap = MIN(n, room + plan.freed);
	}
	if (fd >= 0)
		close(fd);
	evict_plan_done(&plan);
	evict_pins_done(&pins);
	pthread_mutex_unlock(&b->scan);
	return cap;
}

int budget_new(const struct budget_opts *o, struct cache *cache, struct budget **ret)
{
	_cleanup_free_ struct budget *b = calloc(1, sizeof(*b));
	int r;

	if (!b)
		return -ENOMEM;
	*b = (struct budget){
		.cache = cache, .dir = cache_dir(cache), .limits = o->limits, .own = o->own
	};
	r = evict_fs_space(b->dir, &b->fs_total, &b->avail0);
	if (r < 0)
		return r;
	pthread_mutex_init(&b->scan, NULL);
	pthread_mutex_init(&b->lock, NULL);
	*ret = TAKE_PTR(b);
	return 0;
}

struct budget *budget_free(struct budget *b)
{
	if (!b)
		return NULL;
	pthread_mutex_destroy(&b->lock);
	pthread_mutex_destroy(&b->scan);
	free(b);
	return NULL;
}
