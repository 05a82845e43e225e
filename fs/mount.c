/* mount.c: the life of one mount, on the process's main thread. */
#include "fs/mount.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/bitmap.h"
#include "cache/blob_fds.h"
#include "cache/cache.h"
#include "cache/db.h"
#include "fetch/hub.h"
#include "cache/evict.h"
#include "fetch/xfer.h"
#include "fs/budget.h"
#include "fs/hf_bridge.h"
#include "fs/inode.h"
#include "fs/live.h"
#include "fs/ops.h"
#include "fs/prefetch.h"
#include "fs/sched.h"
#include "fs/session.h"
#include "fs/snapshot.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/notify.h"
#include "util/timeutil.h"

struct ready_ud {
	const struct mount_opts *o;
};

static void on_ready(void *ud)
{
	const struct mount_opts *o = ((struct ready_ud *)ud)->o;
	int fd;

	if (o->log_path) {
		fd = open(o->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		/* The file has the lines of the start already: no more copies. */
		log_set_copy_fd(-1);
	}
	if (o->ready_fd >= 0) {
		char ok = 0;

		(void)!write(o->ready_fd, &ok, 1);
		close(o->ready_fd);
	}
	/* Under systemd (Type=notify, `hffs mount --foreground`): the unit is started now. */
	if (notify_send("READY=1") < 0)
		log_warn("cannot tell the service manager the mount is ready ($NOTIFY_SOCKET)");
}

/* An offline mount, or one the Hub did not answer, serves only what is cached: says how much
 * is not, as a partly fetched online mount would learn at its first miss. */
static void warn_uncached(const struct inode_table *t, struct sched *s, bool offline)
{
	size_t files = 0, missing = 0;

	for (uint64_t ino = 1; ino <= inode_count(t); ino++) {
		const struct inode *f = inode_get(t, ino);

		if (f->is_dir)
			continue;
		files++;
		missing += !sched_is_complete(s, f);
	}
	if (missing)
		log_warn("%zu of %zu files are not fully cached: their uncached reads will fail%s",
			 missing, files, offline ? " (offline mode)" : " until the Hub answers");
}

static uint64_t tree_total_size(const struct inode_table *t)
{
	uint64_t sum = 0;

	for (size_t ino = 1; ino <= inode_count(t); ino++)
		sum += inode_get(t, ino)->size;
	return sum;
}

/* Whatever may still answer a FUSE request or feed what does, stopped by serve_stop(). */
struct serve_threads {
	struct live_pub *lp;
	struct prefetch *pf;
	struct xfer *x;
	struct sched *s;
};

/* Stops the threads of st (those set), in an order where nothing feeds a stopped part; safe
 * to call again. Runs before the FUSE session is destroyed: the engine's cancellations and
 * sched_free() answer parked requests through it. */
static void serve_stop(void *ud)
{
	struct serve_threads *st = ud;

	st->lp = live_stop(st->lp);
	st->pf = prefetch_stop(st->pf);
	/* Nothing submits to the engine once it is freed: the Xet workers stop first. Then the
	 * engine: its cancellations answer the scheduler's fetches. */
	if (st->s)
		sched_stop_fetching(st->s);
	st->x = xfer_free(st->x);
	st->s = sched_free(st->s);
}

static int serve(const struct mount_opts *o, struct hub_config *cfg, struct cache *cache,
		 struct snapshot *snap)
{
	struct cache_db *db = cache_index(cache);
	struct inode_table *t = NULL;
	struct serve_threads st = { 0 };
	struct budget *bu = NULL;
	struct budget_opts bo = {
		.limits = { .max_size = o->cache_max_size, .min_free = o->min_free },
	};
	struct prefetch_opts po = {
		.include = o->include,
		.ninclude = o->ninclude,
		.exclude = o->exclude,
		.nexclude = o->nexclude,
		.max_inflight = o->connections ? o->connections : 16,
	};
	struct xfer_opts xo = {
		.connections = o->connections,
		.max_rate = o->max_rate,
		.stall_timeout_s = o->stall_timeout_s,
		.io_timeout_s = o->io_timeout_s,
		.range_align = o->range_align,
		.offline = cfg->offline,
	};
	struct sched_opts so = {
		.cache = cache,
		.cfg = cfg,
		.repo = &snap->repo,
		.commit = snap->commit,
		.verify_strict = o->verify_strict,
		/* HF_HUB_DISABLE_XET (as the official client) and offline mode speak no Xet. */
		.xet = cfg->disable_xet || cfg->offline ? XET_MODE_OFF : o->xet,
		.on_drop = ops_drop_inode,
		/* Left for the rest of the daemon: the engine's sockets (one per connection and
		 * as many cached), FUSE workers' splice pipes, the index, logs. */
		.max_open_files = blob_fds_limit(128 + 2 * (o->connections ? o->connections : 16)),
	};
	struct mount_ctx m = {
		.block_size = CACHE_BLOCK_SIZE_DEFAULT,
		.mtime = snap->commit_time,
		.uid = getuid(),
		.gid = getgid(),
		.readahead_kb = 16384,
		.ra = { .min_window = 4ULL << 20,
			.max_window = 128ULL << 20,
			.slack = 2ULL << 20,
			.step = 4ULL << 20 },
		.ra_fetch = 4ULL << 20,
		.repo = snap->repo_key,
		.revision = snap->revision,
		.commit = snap->commit,
		.endpoint = cfg->endpoint,
		.cache_dir = o->cache_dir,
	};
	struct db_mount rec = { .pid = getpid(), .started = now_realtime_usec() };
	struct live_opts lo;
	char fsname[200];
	struct ready_ud rud = { .o = o };
	struct session_opts se = {
		.mountpoint = o->mountpoint,
		.fsname = fsname,
		.debug = o->debug,
		.allow_other = o->allow_other,
		.ready = on_ready,
		.ready_ud = &rud,
		.stopped = serve_stop,
		.stopped_ud = &st,
	};
	struct hf_manifest *hf = NULL;
	struct hf_bridge_opts ho = {
		.cache_dir = o->cache_dir,
		.mountpoint = o->mountpoint,
		.hf_root = o->hf_root,
		.repo = &snap->repo,
		.revision = snap->revision,
		.commit = snap->commit,
	};
	int lock_fd = -1, r;

	pthread_mutex_init(&m.se_lock, NULL);
	so.drop_ud = &m;
	r = inode_table_new(&snap->tree, &t);
	if (r < 0) {
		log_err("cannot build the file tree of '%s': %s", snap->repo.id, strerror(-r));
		goto out;
	}
	/* The table holds all the mount needs of the Hub's listing: a huge tree is not kept
	 * twice. */
	hub_tree_done(&snap->tree);
	(void)snapshot_store_tree(db, snap, t);
	malloc_trim(0);
	bo.own = t;
	m.total_size = tree_total_size(t);
	r = xfer_new(cfg, &xo, &st.x);
	if (r < 0) {
		log_err("cannot start the transfer engine: %s", strerror(-r));
		goto out;
	}
	r = budget_new(&bo, cache, &bu);
	if (r < 0) {
		log_err("cannot read the free space of '%s': %s", o->cache_dir, strerror(-r));
		goto out;
	}
	so.budget = bu;
	po.budget = bu;
	/* From registering the blobs until the mount record pins them, no eviction may run. */
	lock_fd = evict_lock(o->cache_dir, false);
	if (lock_fd < 0) {
		r = lock_fd;
		log_err("cannot take the eviction lock of '%s': %s", o->cache_dir, strerror(-r));
		goto out;
	}
	r = sched_new(&so, st.x, t, &st.s);
	if (r < 0)
		goto out;
	m.t = t;
	m.sched = st.s;
	m.tensors = tensors_new(st.s, NULL); /* NULL (out of memory): reads go without it */
	po.tensors = m.tensors;
	snprintf(fsname, sizeof(fsname), "hffs:%s", snap->repo.id);
	snprintf(rec.mountpoint, sizeof(rec.mountpoint), "%s", o->mountpoint);
	snprintf(rec.repo_key, sizeof(rec.repo_key), "%s", snap->repo_key);
	snprintf(rec.revision, sizeof(rec.revision), "%s", snap->revision);
	snprintf(rec.commit, sizeof(rec.commit), "%s", snap->commit);
	snprintf(rec.endpoint, sizeof(rec.endpoint), "%s", cfg->endpoint);
	rec.flags = (snap->ref_from_cache ? DB_MOUNT_OFFLINE : 0) | DB_MOUNT_FLUSHES;
	r = db_mount_put(db, &rec);
	if (r < 0)
		log_warn("cannot record the mount for 'hffs status': %s", strerror(-r));
	close(lock_fd);
	lock_fd = -1;
	log_info("serving '%s' revision '%s' (commit %s) at '%s'", snap->repo.id, snap->revision,
		 snap->commit, o->mountpoint);
	if (!snap->commit_time)
		log_info(
			"the date of commit %.12s is not known (the Hub did not say, or its cached "
			"file list predates hffs keeping it): files show 1970-01-01 as their time",
			snap->commit);
	if (cfg->offline || snap->ref_from_cache)
		warn_uncached(t, st.s, cfg->offline);
	if (o->prefetch && !cfg->offline) {
		r = prefetch_start(st.s, t, &po, &st.pf);
		if (r < 0)
			log_warn("background completion did not start (%s); files are fetched as "
				 "they are read",
				 strerror(-r));
	}
	lo = (struct live_opts){ .db = db,
				 .rec = &rec,
				 .cache_dir = o->cache_dir,
				 .x = st.x,
				 .s = st.s,
				 .p = st.pf,
				 .b = bu,
				 .reads = &m.reads,
				 .t = t,
				 .metrics_file = o->metrics_file };
	if (live_start(&lo, &st.lp) < 0)
		log_warn("live figures will not be published for 'hffs status'%s",
			 o->metrics_file ? " nor written to the metrics file" : "");
	/* Before the mount answers, so a script that waits for `hffs mount` finds the files. */
	if (o->hf_cache && (r = hf_bridge_add(&ho, t, &hf)) < 0) {
		(void)db_mount_del(db, o->mountpoint);
		goto out;
	}
	r = session_run(&se, &m);
	log_info("unmounted '%s'", o->mountpoint);
	if (hf) {
		int x = hf_manifest_undo(TAKE_PTR(hf));

		if (x < 0)
			log_warn("cannot take every entry of this mount out of the Hugging Face "
				 "cache (%s); the next hffs mount or unmount does",
				 strerror(-x));
		else
			log_info("took the %d entries of this mount out of the Hugging Face cache",
				 x);
	}
	(void)db_mount_del(db, o->mountpoint);
out:
	if (lock_fd >= 0)
		close(lock_fd);
	serve_stop(&st); /* session_run() stopped them already unless it failed to mount */
	m.tensors = tensors_free(m.tensors); /* no read nor completion uses it now */
	bu = budget_free(bu);
	inode_table_free(t);
	pthread_mutex_destroy(&m.se_lock);
	return r;
}

int mount_run(const struct mount_opts *o)
{
	struct hub_config cfg = { 0 };
	struct cache *cache = NULL;
	struct snapshot snap;
	struct hub_error err;
	int early_log = -1, r;

	/* Before the first thread: only the live publisher ever takes status's signal. */
	live_block_signal();
	/* Buffers of 256 KiB and more (curl's 512 KiB receive buffer per transfer, the
	 * verifier's 1 MiB, FUSE's request buffers) are mapped for their life and unmapped when
	 * freed, rather than left in the engine's and verifier's arenas after a burst: glibc
	 * otherwise raises this threshold to the largest block freed. */
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	/* Also before the first thread or LMDB handle: it forks. */
	if (o->hf_cache && (r = hf_bridge_watch(o->cache_dir, o->log_path, o->ready_fd)) < 0) {
		log_err("--hf-cache: cannot start the process that cleans up after a crash: %s",
			strerror(-r));
		return r;
	}
	/* Until the mount answers, lines go to the terminal that started it; the log file gets
	 * them too, so it begins with the mount's start and its warnings. */
	if (o->log_path) {
		early_log = open(o->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (early_log >= 0)
			log_set_copy_fd(early_log);
	}
	/* The --hf-cache entries of a mount that died with its watchdog: any next mount repairs. */
	if (!o->hf_cache)
		hf_bridge_sweep(o->cache_dir);
	r = hub_config_init(&cfg, o->endpoint);
	if (r < 0) {
		log_err("out of memory");
		return r;
	}
	r = cache_open(o->cache_dir, &cache);
	if (r < 0) {
		if (r == -EPROTONOSUPPORT)
			log_err("the cache index in '%s' was written by another version of hffs "
				"(schema %u); use another --cache-dir or remove that one",
				o->cache_dir, (unsigned)DB_SCHEMA_VERSION);
		else
			log_err("cannot open the cache index in '%s': %s", o->cache_dir,
				strerror(-r));
		goto out;
	}
	r = snapshot_load(&cfg, cache_index(cache), o->repo, o->revision, o->page_limit, &snap,
			  &err);
	if (r < 0) {
		log_err("%s", err.message[0] ? err.message : strerror(-r));
		snapshot_done(&snap);
		goto out;
	}
	if (snap.ref_from_cache && !cfg.offline) {
		/* The Hub was unreachable when the mount began: serve what is cached and say so. */
		log_warn("uncached data cannot be fetched until the Hub answers again");
	}
	r = serve(o, &cfg, cache, &snap);
	snapshot_done(&snap);
out:
	cache = cache_close(cache);
	hub_config_done(&cfg);
	log_set_copy_fd(-1);
	if (early_log >= 0)
		close(early_log);
	return r;
}
