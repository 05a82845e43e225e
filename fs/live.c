/* live.c: the publisher thread of a mount's live figures, and their text form. */
#include "fs/live.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs/prom.h"
#include "util/atomic_file.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/timeutil.h"

#define RATE_SAMPLES 5
/* The cache's usage is a walk of its blob records and a stat per data file: not every
 * second. */
#define USAGE_EVERY_USEC (30 * USEC_PER_SEC)

struct live_pub {
	struct live_opts o; /* as given; use the copies below for its strings and record */
	struct db_mount rec;
	char *cache_dir, *metrics_file;
	pthread_t thread;
	pthread_mutex_t lock;
	bool stop; /* lock */
	uint64_t samples[RATE_SAMPLES]; /* engine byte counts, one a second (thread only) */
	uint64_t sample_at[RATE_SAMPLES]; /* monotonic usec of each (thread only) */
	unsigned nsamples;
	uint64_t last_progress; /* monotonic usec when bytes last grew (thread only) */
	uint64_t last_bytes;
	enum fetch_reason warned; /* the retried cause last said in the log (thread only) */
	uint64_t usage_at; /* monotonic usec of the last walk of the cache (thread only) */
	uint64_t metrics_at; /* monotonic usec of the last metrics file (thread only) */
	int metrics_err; /* the last failure to write it, said once (thread only) */
};

/* F_U64S: an array of uint64_t, its values on one line separated by spaces. */
enum field_kind { F_U64, F_UINT, F_I64, F_BOOL, F_STR, F_U64S };

/* clang-format 14 splits a braced initializer in a macro over lines, badly. */
/* clang-format off */
#define FIELD(n, k) { #n, k, offsetof(struct live, n), sizeof(((struct live *)0)->n) }
#define FIELD_AS(name, n, k) { name, k, offsetof(struct live, n), sizeof(((struct live *)0)->n) }
/* clang-format on */
static const struct field {
	const char *name;
	enum field_kind kind;
	size_t off, size;
} fields[] = {
	FIELD(updated, F_U64),
	FIELD(rate, F_U64),
	FIELD(bytes_fetched, F_U64),
	FIELD(bytes_total, F_U64),
	FIELD(bytes_cached, F_U64),
	FIELD(eta_s, F_I64),
	FIELD(active, F_UINT),
	FIELD(queued, F_UINT),
	FIELD(retries, F_U64),
	FIELD(stalls, F_U64),
	FIELD(failures, F_U64),
	FIELD(verify_failures, F_U64),
	FIELD(files_wanted, F_UINT),
	FIELD(files_done, F_UINT),
	FIELD(phase, F_STR),
	FIELD(stalled, F_BOOL),
	FIELD(last_error_at, F_U64),
	FIELD(last_error, F_STR),
	FIELD(paused, F_STR),
	FIELD(cache_max_size, F_U64),
	FIELD(min_free, F_U64),
	FIELD(disk_free, F_U64),
	FIELD(space_needed, F_U64),
	FIELD(space_room, F_U64),
	FIELD(evicted_blobs, F_U64),
	FIELD(evicted_bytes, F_U64),
	FIELD(retrying, F_STR),
	FIELD(cache_used, F_U64),
	FIELD(cache_used_known, F_BOOL),
	FIELD(bytes_hub, F_U64),
	FIELD(bytes_cdn, F_U64),
	FIELD_AS("reads", reads.reads, F_U64S),
	FIELD_AS("read_bytes", reads.bytes, F_U64S),
	FIELD_AS("read_errors", reads.errors, F_U64),
	FIELD_AS("read_usec", reads.usec_sum, F_U64),
	FIELD_AS("read_buckets", reads.buckets, F_U64S),
	FIELD(streaming, F_STR),
	FIELD(streamed_reads, F_U64),
	FIELD(streamed_bytes, F_U64),
	FIELD(io_timeout_s, F_UINT),
	FIELD(xet_files, F_UINT),
	FIELD(xet_resolve_files, F_UINT),
	FIELD(xet_bytes, F_U64),
	FIELD(xet_plans, F_U64),
};
#undef FIELD
#undef FIELD_AS

/* A failure the engine retries makes reads wait: said once per cause in the log, at once,
 * and shown in status while it lasts; its end is said too. */
static void retry_news(struct live_pub *lp, const struct xfer_stats *xs, struct live *l)
{
	uint64_t age = now_realtime_usec() - MIN(now_realtime_usec(), xs->last_retry_at);
	bool recent = xs->last_retry_reason != FETCH_OK && age < LIVE_RETRY_S * USEC_PER_SEC;

	if (recent)
		snprintf(l->retrying, sizeof(l->retrying), "%s", xs->last_retry);
	if (recent && xs->last_retry_reason != lp->warned && xs->io_timeout_s) {
		log_warn("transfers are failing and being retried (%s); reads of bytes not cached "
			 "wait meanwhile, and fail with EIO after %u s without data (--io-timeout)",
			 xs->last_retry, xs->io_timeout_s);
		lp->warned = xs->last_retry_reason;
	} else if (recent && xs->last_retry_reason != lp->warned) {
		log_warn("transfers are failing and being retried (%s); reads of bytes not cached "
			 "wait meanwhile, and fail with EIO if the retries run out",
			 xs->last_retry);
		lp->warned = xs->last_retry_reason;
	} else if (!recent && lp->warned != FETCH_OK) {
		log_info("transfers are no longer being retried");
		lp->warned = FETCH_OK;
	}
}

/* One "name=value\n" line; a string's newlines become spaces (one line per field). */
static int field_put(const struct live *l, const struct field *f, char *buf, size_t len)
{
	const char *p = (const char *)l + f->off;
	int n = 0;

	switch (f->kind) {
	case F_U64:
		n = snprintf(buf, len, "%s=%" PRIu64 "\n", f->name, *(const uint64_t *)p);
		break;
	case F_UINT:
		n = snprintf(buf, len, "%s=%u\n", f->name, *(const unsigned *)p);
		break;
	case F_I64:
		n = snprintf(buf, len, "%s=%" PRId64 "\n", f->name, *(const int64_t *)p);
		break;
	case F_BOOL:
		n = snprintf(buf, len, "%s=%d\n", f->name, *(const bool *)p);
		break;
	case F_U64S:
		n = snprintf(buf, len, "%s=", f->name);
		for (size_t i = 0; i < f->size / sizeof(uint64_t) && n >= 0 && (size_t)n < len; i++)
			n += snprintf(buf + n, len - (size_t)n, "%s%" PRIu64, i ? " " : "",
				      ((const uint64_t *)p)[i]);
		if (n >= 0 && (size_t)n < len)
			n += snprintf(buf + n, len - (size_t)n, "\n");
		break;
	case F_STR:
		n = snprintf(buf, len, "%s=%.*s\n", f->name, (int)strnlen(p, f->size), p);
		/* Between "name=" and the line's own newline, a newline becomes a space. */
		for (size_t i = strlen(f->name) + 1; n > 0 && i + 1 < MIN((size_t)n, len - 1); i++)
			if (buf[i] == '\n')
				buf[i] = ' ';
		break;
	}
	return n;
}

size_t live_encode(const struct live *l, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(fields) && used < len - 1; i++) {
		int n = field_put(l, &fields[i], buf + used, len - used);

		if (n < 0)
			break;
		used += MIN((size_t)n, len - 1 - used);
	}
	return used;
}

static bool field_set(struct live *l, const struct field *f, const char *v)
{
	char *p = (char *)l + f->off;

	switch (f->kind) {
	case F_U64:
		return sscanf(v, "%" SCNu64, (uint64_t *)p) == 1;
	case F_UINT:
		return sscanf(v, "%u", (unsigned *)p) == 1;
	case F_I64:
		return sscanf(v, "%" SCNd64, (int64_t *)p) == 1;
	case F_BOOL:
		*(bool *)p = !strcmp(v, "1");
		return true;
	case F_STR:
		snprintf(p, f->size, "%s", v);
		return true;
	case F_U64S: {
		size_t i = 0;
		int used;

		/* As many values as are given, up to the array's length. */
		while (i < f->size / sizeof(uint64_t) &&
		       sscanf(v, " %" SCNu64 "%n", &((uint64_t *)p)[i], &used) == 1) {
			v += used;
			i++;
		}
		return i > 0;
	}
	}
	return false;
}

int live_decode(const char *buf, size_t len, struct live *ret)
{
	_cleanup_free_ char *copy = strndup(buf, len);
	char *save = NULL;
	unsigned known = 0;

	memset(ret, 0, sizeof(*ret));
	ret->eta_s = -1;
	if (!copy)
		return -ENOMEM;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, '=');

		if (!v)
			continue;
		*v++ = '\0';
		for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
			if (!strcmp(line, fields[i].name))
				known += field_set(ret, &fields[i], v);
	}
	return known ? 0 : -EBADMSG;
}

static void sample(struct live_pub *lp, struct live *l)
{
	struct xfer_stats xs;
	struct sched_stats ss;
	struct prefetch_stats ps = { .phase = PREFETCH_DONE };
	uint64_t now = now_usec(), oldest, remaining;

	xfer_get_stats(lp->o.x, &xs);
	sched_get_stats(lp->o.s, &ss);
	if (lp->o.p)
		prefetch_get_stats(lp->o.p, &ps);
	memset(l, 0, sizeof(*l));
	l->updated = now_realtime_usec();
	/* Rate over the last RATE_SAMPLES samples (about a second apart; a status request adds
	 * one in between, so the time they span is measured). */
	if (lp->nsamples == RATE_SAMPLES) {
		memmove(lp->samples, lp->samples + 1, (RATE_SAMPLES - 1) * sizeof(uint64_t));
		memmove(lp->sample_at, lp->sample_at + 1, (RATE_SAMPLES - 1) * sizeof(uint64_t));
	} else {
		lp->nsamples++;
	}
	lp->samples[lp->nsamples - 1] = xs.bytes;
	lp->sample_at[lp->nsamples - 1] = now;
	oldest = lp->samples[0];
	l->rate = lp->nsamples > 1 && now > lp->sample_at[0] ?
			  (xs.bytes - oldest) * USEC_PER_SEC / (now - lp->sample_at[0]) :
			  0;
	/* Nothing moving: no rate to spread over the rest (an old average would promise a
	 * finish that nothing is working toward). */
	if (!xs.active && lp->nsamples > 1 && xs.bytes == lp->samples[lp->nsamples - 2])
		l->rate = 0;
	l->bytes_fetched = xs.bytes;
	l->bytes_hub = xs.bytes_from[XFER_SOURCE_HUB];
	l->bytes_cdn = xs.bytes_from[XFER_SOURCE_CDN];
	if (lp->o.reads)
		readstats_get(lp->o.reads, &l->reads);
	l->bytes_total = ss.bytes_total;
	l->bytes_cached = ss.bytes_present;
	remaining = ss.bytes_total - MIN(ss.bytes_total, ss.bytes_present);
	/* Paused for space, completion is not working toward an end: the rate is readers'. */
	l->eta_s = !remaining				  ? 0 :
		   l->rate && ps.phase != PREFETCH_PAUSED ? (int64_t)(remaining / l->rate) :
							    -1;
	l->active = xs.active;
	for (int i = 0; i < XFER_PRIO_COUNT; i++)
		l->queued += xs.queued[i];
	l->retries = xs.retries;
	l->stalls = xs.stalls;
	l->failures = xs.failures;
	l->verify_failures = ss.verify_failures;
	l->xet_files = ss.xet.files_xet;
	l->xet_resolve_files = ss.xet.files_plain;
	l->xet_bytes = ss.xet.bytes;
	l->xet_plans = ss.xet.plans;
	l->files_wanted = ps.files_wanted;
	l->files_done = ps.files_done;
	snprintf(l->phase, sizeof(l->phase), "%s", lp->o.p ? prefetch_phase_str(ps.phase) : "off");
	if (xs.bytes != lp->last_bytes || !lp->last_progress) {
		lp->last_bytes = xs.bytes;
		lp->last_progress = now;
	}
	l->stalled =
		(xs.active || l->queued) && now - lp->last_progress > LIVE_STALL_S * USEC_PER_SEC;
	if (lp->o.b) {
		struct budget_stats bs;

		if (!lp->usage_at || now - lp->usage_at >= USAGE_EVERY_USEC) {
			(void)budget_measure_usage(lp->o.b);
			lp->usage_at = now;
		}
		budget_get_stats(lp->o.b, &bs);
		l->cache_used = bs.used;
		l->cache_used_known = bs.used_known;
		l->cache_max_size = bs.limits.max_size == EVICT_NO_LIMIT ? 0 : bs.limits.max_size;
		l->min_free = bs.limits.min_free;
		l->disk_free = bs.avail;
		l->evicted_blobs = bs.evicted_blobs;
		l->evicted_bytes = bs.evicted_bytes;
	}
	l->space_needed = ps.space_needed;
	l->space_room = ps.space_room;
	snprintf(l->paused, sizeof(l->paused), "%s", ps.phase == PREFETCH_PAUSED ? ps.paused : "");
	if (xs.last_reason != FETCH_OK) {
		snprintf(l->last_error, sizeof(l->last_error), "%s", xs.last_error);
		l->last_error_at = xs.last_error_at;
	}
	retry_news(lp, &xs, l);
	if (ss.streams_active || ss.stream_age_usec < LIVE_RETRY_S * USEC_PER_SEC)
		snprintf(l->streaming, sizeof(l->streaming), "%s", ss.stream_why);
	l->streamed_reads = ss.streamed_reads;
	l->io_timeout_s = xs.io_timeout_s;
	l->streamed_bytes = ss.streamed_bytes;
	/* A failed hash is news too: the newer of the two is the last error. */
	if (ss.last_error_at && ss.last_error_at >= l->last_error_at) {
		snprintf(l->last_error, sizeof(l->last_error), "%s", ss.last_error);
		l->last_error_at = ss.last_error_at;
	}
}

void live_block_signal(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, LIVE_FLUSH_SIGNAL);
	(void)pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static bool stopping(struct live_pub *lp)
{
	bool stop;

	pthread_mutex_lock(&lp->lock);
	stop = lp->stop;
	pthread_mutex_unlock(&lp->lock);
	return stop;
}

/* The mount's files as the scheduler knows them now, for the metrics' coverage. */
static void coverage(struct live_pub *lp, struct prom_mount *v)
{
	const struct inode_table *t = lp->o.t;

	for (uint64_t ino = 1; t && ino <= inode_count(t); ino++) {
		const struct inode *f = inode_get(t, ino);
		struct sched_file_info fi;

		if (f->is_dir)
			continue;
		sched_file_info(lp->o.s, f, &fi);
		v->files++;
		v->bytes_total += f->size;
		v->bytes_cached += fi.bytes_cached;
		v->files_complete += !strcmp(fi.state, "complete") || !strcmp(fi.state, "verified");
	}
}

static int metrics_fill(FILE *f, void *ud)
{
	prom_print(f, ud, 1);
	return ferror(f) ? -EIO : 0;
}

/* Rewrites the metrics file (whole, or not at all); says once why it cannot. */
static void metrics_write(struct live_pub *lp, const struct live *l)
{
	struct prom_mount v = { .m = &lp->rec, .cache_dir = lp->cache_dir, .live = l };
	int r;

	coverage(lp, &v);
	r = atomic_file_write(lp->metrics_file, 0644, metrics_fill, &v);
	if (r < 0 && r != lp->metrics_err)
		log_warn("cannot write the metrics file '%s': %s; trying again every %d s",
			 lp->metrics_file, strerror(-r), LIVE_METRICS_S);
	else if (r == 0 && lp->metrics_err)
		log_info("the metrics file '%s' is written again", lp->metrics_file);
	lp->metrics_err = r;
}

/* Publishes once a second, and at once (after committing what landed) when status asks;
 * rewrites the metrics file every LIVE_METRICS_S. */
static void *live_main(void *arg)
{
	struct live_pub *lp = arg;
	const struct timespec second = { .tv_sec = 1 };
	char buf[4096];
	sigset_t set;
	bool flush = false;

	sigemptyset(&set);
	sigaddset(&set, LIVE_FLUSH_SIGNAL);
	while (!stopping(lp)) {
		struct live l;
		size_t n;
		uint64_t now;

		if (flush)
			sched_flush(lp->o.s);
		sample(lp, &l);
		n = live_encode(&l, buf, sizeof(buf));
		(void)db_live_put(lp->o.db, lp->rec.mountpoint, buf, n);
		now = now_usec();
		if (lp->metrics_file &&
		    (!lp->metrics_at || now - lp->metrics_at >= LIVE_METRICS_S * USEC_PER_SEC)) {
			metrics_write(lp, &l);
			lp->metrics_at = now;
		}
		flush = sigtimedwait(&set, NULL, &second) == LIVE_FLUSH_SIGNAL;
	}
	return NULL;
}

static void live_free(struct live_pub *lp)
{
	pthread_mutex_destroy(&lp->lock);
	free(lp->cache_dir);
	free(lp->metrics_file);
	free(lp);
}

int live_start(const struct live_opts *o, struct live_pub **ret)
{
	struct live_pub *lp = calloc(1, sizeof(*lp));
	sigset_t set, old;
	int r;

	if (!lp)
		return -ENOMEM;
	pthread_mutex_init(&lp->lock, NULL);
	lp->o = *o;
	lp->rec = *o->rec;
	lp->cache_dir = strdup(o->cache_dir ? o->cache_dir : "");
	lp->metrics_file = o->metrics_file ? strdup(o->metrics_file) : NULL;
	if (!lp->cache_dir || (o->metrics_file && !lp->metrics_file)) {
		live_free(lp);
		return -ENOMEM;
	}
	/* The thread starts with the signal blocked (it inherits this mask), so the wake-up of
	 * live_stop() can never take its default action, whoever the caller is. */
	sigemptyset(&set);
	sigaddset(&set, LIVE_FLUSH_SIGNAL);
	(void)pthread_sigmask(SIG_BLOCK, &set, &old);
	r = pthread_create(&lp->thread, NULL, live_main, lp);
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		live_free(lp);
		return -EAGAIN;
	}
	*ret = lp;
	return 0;
}

struct live_pub *live_stop(struct live_pub *lp)
{
	if (!lp)
		return NULL;
	pthread_mutex_lock(&lp->lock);
	lp->stop = true;
	pthread_mutex_unlock(&lp->lock);
	(void)pthread_kill(lp->thread, LIVE_FLUSH_SIGNAL);
	pthread_join(lp->thread, NULL);
	(void)db_live_del(lp->o.db, lp->rec.mountpoint);
	/* The mount is gone: so are its series (a file left would export it forever). */
	if (lp->metrics_file && unlink(lp->metrics_file) < 0 && errno != ENOENT)
		log_warn("cannot remove the metrics file '%s': %s", lp->metrics_file,
			 strerror(errno));
	live_free(lp);
	return NULL;
}
