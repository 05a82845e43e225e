/* pull.c: the life of one pull, on the caller's thread: pins the snapshot, starts the engine,
 * the scheduler and background completion as a mount does (fs/mount.c), then watches every
 * wanted file until it is verified and placed, or failed. It knows nothing of where files go
 * (the caller's place()) nor of FUSE. */
#include "fs/pull.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cache/db.h"
#include "cache/evict.h"
#include "fetch/xfer.h"
#include "fs/budget.h"
#include "fs/inode.h"
#include "fs/live.h"
#include "fs/prefetch.h"
#include "fs/sched.h"
#include "fs/snapshot.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/timeutil.h"

/* A failure the engine retries is shown while it is this recent. */
#define RETRY_SHOWN_USEC (10 * USEC_PER_SEC)

struct pull {
	const struct pull_opts *o;
	struct pull_info info;
	struct cache *cache;
	struct inode_table *t;
	struct xfer *x;
	struct budget *bu;
	struct sched *s;
	struct prefetch *pf;
	struct live_pub *lp; /* the live figures `hffs status` shows */
	const struct inode **inodes; /* of files[i] */
	struct pull_file *files;
	struct pull_progress pr;
	uint64_t last_tick; /* monotonic usec */
	uint64_t last_bytes; /* the engine's byte count then */
};

static bool is_final(enum pull_state st)
{
	return st == PULL_DONE || st == PULL_FAILED;
}

static void fail(struct pull_file *f, enum fetch_reason reason, const char *why)
{
	f->state = PULL_FAILED;
	f->reason = reason;
	if (why != f->error)
		snprintf(f->error, sizeof(f->error), "%s", why);
}

/* Hands f, verified in the cache, to the caller's place(). */
static void place(struct pull *p, struct pull_file *f)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	int r = 0;

	if (f->size) {
		r = cache_blob_path(p->cache, f->cid, path, sizeof(path));
		if (r >= 0) {
			fd = open(path, O_RDONLY | O_CLOEXEC);
			r = fd < 0 ? -errno : 0;
		}
		if (r < 0) {
			snprintf(f->error, sizeof(f->error),
				 "cannot open its verified copy in the cache: %s", strerror(-r));
			fail(f, FETCH_IO, f->error);
			return;
		}
	}
	f->error[0] = '\0';
	r = p->o->place(p->o->ud, &p->info, f, fd);
	if (r < 0) {
		if (!f->error[0])
			snprintf(f->error, sizeof(f->error), "cannot place it: %s", strerror(-r));
		fail(f, FETCH_IO, f->error);
		return;
	}
	f->state = PULL_DONE;
	f->done = f->size;
}

/* What the scheduler knows of f now, into f's state. */
static void update_file(struct pull *p, size_t i, uint64_t dt_usec)
{
	struct pull_file *f = &p->files[i];
	struct sched_file_info fi;
	uint64_t before = f->done;

	sched_file_info(p->s, p->inodes[i], &fi);
	f->done = fi.bytes_cached;
	if (dt_usec && f->done >= before) {
		uint64_t now_rate = (f->done - before) * USEC_PER_SEC / dt_usec;

		f->rate = (f->rate * 3 + now_rate) / 4;
	}
	f->errors = fi.fetch_failures + fi.hash_failures;
	if (fi.fetch_failures) {
		f->reason = fi.fetch_reason;
		snprintf(f->error, sizeof(f->error), "%s", fi.fetch_error);
	}
	if (!strcmp(fi.state, "verified")) {
		f->state = PULL_PLACING;
	} else if (!strcmp(fi.state, "bad")) {
		snprintf(f->error, sizeof(f->error),
			 "the server sent bytes that do not match its %s %s twice: corrupt, not "
			 "placed",
			 f->is_lfs ? "sha256" : "git oid", f->cid);
		fail(f, FETCH_BAD_HASH, f->error);
	} else if (fi.fetch_failures) {
		/* The engine spent its retries on it (an hour for transient failures). */
		fail(f, fi.fetch_reason, f->error);
	} else if (p->info.offline) {
		fail(f, FETCH_OFFLINE,
		     "not (fully) in the cache, and offline mode (HF_HUB_OFFLINE) forbids fetching "
		     "it");
	} else {
		f->state = !strcmp(fi.state, "complete") ? PULL_VERIFYING :
			   f->done			 ? PULL_FETCHING :
							   PULL_QUEUED;
		if (fi.hash_failures) {
			f->reason = FETCH_BAD_HASH;
			snprintf(f->error, sizeof(f->error),
				 "its bytes did not match its %s once: fetching it again",
				 f->is_lfs ? "sha256" : "git oid");
		}
	}
}

/* One look at every file; returns true when every one is DONE or FAILED. */
static bool tick(struct pull *p)
{
	struct prefetch_stats ps = { 0 };
	struct xfer_stats xs;
	uint64_t now = now_usec(), dt = p->last_tick ? now - p->last_tick : 0;
	bool all = true;

	if (p->pf)
		prefetch_get_stats(p->pf, &ps);
	p->pr.ndone = p->pr.nfailed = 0;
	p->pr.bytes_done = 0;
	for (size_t i = 0; i < p->pr.nfiles; i++) {
		struct pull_file *f = &p->files[i];

		if (!is_final(f->state))
			update_file(p, i, dt);
		if (f->state == PULL_PLACING)
			place(p, f);
		/* Completion cannot go on within the cache's limits: nothing will come. */
		if (!is_final(f->state) && p->pf && ps.phase == PREFETCH_PAUSED)
			fail(f, FETCH_DISK_FULL, ps.paused);
		p->pr.ndone += f->state == PULL_DONE;
		p->pr.nfailed += f->state == PULL_FAILED;
		p->pr.bytes_done += f->done;
		all = all && is_final(f->state);
	}
	xfer_get_stats(p->x, &xs);
	p->pr.fetched = xs.bytes; /* the engine is the pull's own */
	if (dt)
		p->pr.rate = (p->pr.rate * 3 + (xs.bytes - p->last_bytes) * USEC_PER_SEC / dt) / 4;
	p->last_bytes = xs.bytes;
	p->last_tick = now;
	p->pr.retrying[0] = '\0';
	if (xs.last_retry_reason != FETCH_OK &&
	    now_realtime_usec() - xs.last_retry_at < RETRY_SHOWN_USEC)
		snprintf(p->pr.retrying, sizeof(p->pr.retrying), "%s", xs.last_retry);
	return all;
}

/* The wanted files of the snapshot, in the tree's order. */
static int pick_files(struct pull *p, const struct prefetch_opts *po)
{
	size_t n = inode_count(p->t);

	p->files = calloc(n + 1, sizeof(*p->files));
	p->inodes = calloc(n + 1, sizeof(*p->inodes));
	if (!p->files || !p->inodes)
		return -ENOMEM;
	for (uint64_t ino = 1; ino <= n; ino++) {
		const struct inode *e = inode_get(p->t, ino);
		struct pull_file *f = &p->files[p->pr.nfiles];

		if (e->is_dir || !prefetch_wants(po, e->path))
			continue;
		*f = (struct pull_file){
			.path = e->path, .cid = e->cid, .size = e->size, .is_lfs = e->is_lfs
		};
		p->inodes[p->pr.nfiles++] = e;
		p->pr.bytes_total += e->size;
	}
	p->pr.files = p->files;
	return 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		break; /* a signal: the loop looks at the stop flag */
}

/* From the snapshot on: the engine, the record, the watch, and everything down in order. */
static int run(struct pull *p, struct hub_config *cfg, struct snapshot *snap, struct hub_error *err)
{
	const struct pull_opts *o = p->o;
	struct cache_db *db = cache_index(p->cache);
	struct prefetch_opts po = {
		.include = o->include,
		.ninclude = o->ninclude,
		.exclude = o->exclude,
		.nexclude = o->nexclude,
		.max_inflight = o->connections ? o->connections : 16,
	};
	struct xfer_opts xo = { .connections = o->connections,
				.max_rate = o->max_rate,
				.range_align = o->range_align,
				.offline = cfg->offline };
	struct budget_opts bo = { .limits = { .max_size = EVICT_NO_LIMIT,
					      .min_free = o->min_free } };
	struct sched_opts so = {
		.cache = p->cache, .cfg = cfg, .repo = &snap->repo, .commit = snap->commit
	};
	struct live_opts lo;
	struct db_mount rec = { .pid = getpid(),
				.started = now_realtime_usec(),
				.flags = DB_MOUNT_PULL };
	int lock_fd = -1, r;

	r = inode_table_new(&snap->tree, &p->t);
	if (r < 0) {
		hub_error_set(err, FETCH_PROTOCOL, 0, "cannot build the file tree of '%s': %s",
			      snap->repo.id, strerror(-r));
		return r;
	}
	hub_tree_done(&snap->tree);
	(void)snapshot_store_tree(db, snap, p->t);
	r = pick_files(p, &po);
	if (r < 0)
		return r;
	p->info = (struct pull_info){ .repo = &snap->repo,
				      .revision = snap->revision,
				      .commit = snap->commit,
				      .offline = cfg->offline };
	r = o->begin ? o->begin(o->ud, &p->info, &p->pr) : 0;
	if (r)
		return r;
	r = xfer_new(cfg, &xo, &p->x);
	if (r < 0)
		goto out;
	bo.own = p->t;
	r = budget_new(&bo, p->cache, &p->bu);
	if (r < 0)
		goto out;
	so.budget = p->bu;
	/* As a mount: from registering the blobs until the record pins them, no eviction. */
	lock_fd = evict_lock(o->cache_dir, false);
	if (lock_fd < 0) {
		r = lock_fd;
		goto out;
	}
	r = sched_new(&so, p->x, p->t, &p->s);
	if (r < 0)
		goto out;
	snprintf(rec.mountpoint, sizeof(rec.mountpoint), "pull:%.900s (pid %d)", o->destination,
		 (int)rec.pid);
	snprintf(rec.repo_key, sizeof(rec.repo_key), "%s", snap->repo_key);
	snprintf(rec.revision, sizeof(rec.revision), "%s", snap->revision);
	snprintf(rec.commit, sizeof(rec.commit), "%s", snap->commit);
	snprintf(rec.endpoint, sizeof(rec.endpoint), "%s", cfg->endpoint);
	if (db_mount_put(db, &rec) < 0)
		log_debug("pull: no record for 'hffs status'");
	close(lock_fd);
	lock_fd = -1;
	if (!cfg->offline) {
		r = prefetch_start(p->s, p->t, &po, &p->pf);
		if (r < 0)
			goto out_record;
	}
	lo = (struct live_opts){ .db = db,
				 .rec = &rec,
				 .cache_dir = o->cache_dir,
				 .x = p->x,
				 .s = p->s,
				 .p = p->pf,
				 .b = p->bu,
				 .t = p->t };
	if (live_start(&lo, &p->lp) < 0)
		log_debug("pull: no live figures for 'hffs status'");
	while (!tick(p)) {
		if (o->progress)
			o->progress(o->ud, &p->pr, false);
		if (o->stop && *o->stop) {
			r = -ECANCELED;
			break;
		}
		sleep_ms(o->tick_ms ? o->tick_ms : 200);
	}
out_record:
	p->lp = live_stop(p->lp);
	p->pf = prefetch_stop(p->pf);
	p->x = xfer_free(p->x);
	p->s = sched_free(p->s); /* commits what landed: the next pull resumes from there */
	(void)db_mount_del(db, rec.mountpoint);
	if (o->progress)
		o->progress(o->ud, &p->pr, true);
out:
	if (lock_fd >= 0)
		close(lock_fd);
	if (r < 0 && r != -ECANCELED && !err->message[0])
		hub_error_set(err, FETCH_IO, 0, "cannot start the download: %s", strerror(-r));
	return r;
}

int pull_run(const struct pull_opts *o, struct hub_error *err)
{
	struct hub_config cfg = { 0 };
	struct pull p = { .o = o };
	struct snapshot snap;
	int r;

	memset(err, 0, sizeof(*err));
	/* Before the first thread, as a mount: only the live publisher takes status's signal. */
	live_block_signal();
	r = hub_config_init(&cfg, o->endpoint);
	if (r < 0)
		return r;
	r = cache_open(o->cache_dir, &p.cache);
	if (r < 0) {
		if (r == -EPROTONOSUPPORT)
			hub_error_set(
				err, FETCH_IO, 0,
				"the cache index in '%s' was written by another version of "
				"hffs (schema %u); use another --cache-dir or remove that one",
				o->cache_dir, (unsigned)DB_SCHEMA_VERSION);
		else
			hub_error_set(err, FETCH_IO, 0, "cannot open the cache index in '%s': %s",
				      o->cache_dir, strerror(-r));
		goto out;
	}
	r = snapshot_load(&cfg, cache_index(p.cache), o->repo, o->revision, 0, &snap, err);
	if (r >= 0)
		r = run(&p, &cfg, &snap, err);
	snapshot_done(&snap);
out:
	p.x = xfer_free(p.x);
	p.s = sched_free(p.s);
	p.bu = budget_free(p.bu);
	inode_table_free(p.t);
	free(p.files);
	free(p.inodes);
	p.cache = cache_close(p.cache);
	hub_config_done(&cfg);
	return r;
}
