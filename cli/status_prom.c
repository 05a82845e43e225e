/* status_prom.c: the Prometheus text format of `hffs status` (see status_prom.h). Knows the
 * figures of struct live and nothing of how they are measured. */
#include "cli/status_prom.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/timeutil.h"

enum prom_id {
	PROM_INFO,
	PROM_STARTED,
	PROM_FILES,
	PROM_FILES_COMPLETE,
	PROM_SIZE,
	PROM_CACHED,
	PROM_COVERAGE,
	PROM_FETCHED,
	PROM_RATE,
	PROM_ACTIVE,
	PROM_QUEUED,
	PROM_RETRIES,
	PROM_STALLS,
	PROM_FAILURES,
	PROM_VERIFY_FAILURES,
	PROM_STALLED,
	PROM_PAUSED,
	PROM_ETA,
	PROM_DISK_FREE,
	PROM_MAX_SIZE,
	PROM_MIN_FREE,
	PROM_EVICTED_BYTES,
	PROM_EVICTED_FILES,
	PROM_UPDATED,
};

static const struct prom_family {
	enum prom_id id;
	const char *name, *type, *help;
} families[] = {
	{ PROM_INFO, "hffs_mount_info", "gauge",
	  "A live mount (1), labelled with its revision, commit, cache directory and daemon pid." },
	{ PROM_STARTED, "hffs_mount_start_time_seconds", "gauge",
	  "When the mount started, in Unix seconds." },
	{ PROM_FILES, "hffs_files", "gauge", "Files in the mounted commit." },
	{ PROM_FILES_COMPLETE, "hffs_files_complete", "gauge",
	  "Files of the mount whose every block is cached." },
	{ PROM_SIZE, "hffs_size_bytes", "gauge", "Bytes of the files in the mounted commit." },
	{ PROM_CACHED, "hffs_cached_bytes", "gauge", "Bytes of the mount's files in the cache." },
	{ PROM_COVERAGE, "hffs_coverage_ratio", "gauge",
	  "hffs_cached_bytes / hffs_size_bytes (1 for an empty repo)." },
	{ PROM_FETCHED, "hffs_fetched_bytes_total", "counter",
	  "Bytes received from the Hub since the mount started." },
	{ PROM_RATE, "hffs_fetch_rate_bytes_per_second", "gauge",
	  "Download rate over the last 5 seconds." },
	{ PROM_ACTIVE, "hffs_transfers_active", "gauge", "Transfers on the wire." },
	{ PROM_QUEUED, "hffs_transfers_queued", "gauge", "Transfers waiting for a connection." },
	{ PROM_RETRIES, "hffs_retries_total", "counter", "Transfers retried." },
	{ PROM_STALLS, "hffs_stalls_total", "counter",
	  "Transfers retried after no byte came for --stall-timeout." },
	{ PROM_FAILURES, "hffs_fetch_failures_total", "counter",
	  "Ranges that failed after their retries (their reads got EIO)." },
	{ PROM_VERIFY_FAILURES, "hffs_verify_failures_total", "counter",
	  "Files whose bytes did not match their content hash (dropped and fetched again)." },
	{ PROM_STALLED, "hffs_stalled", "gauge",
	  "1 when work is pending and no byte came for 30 seconds." },
	{ PROM_PAUSED, "hffs_completion_paused", "gauge",
	  "1 when background completion is paused for lack of cache space." },
	{ PROM_ETA, "hffs_eta_seconds", "gauge",
	  "Seconds to complete what is wanted at the current rate (absent when unknown)." },
	{ PROM_DISK_FREE, "hffs_cache_disk_free_bytes", "gauge",
	  "Bytes free on the cache's file system." },
	{ PROM_MAX_SIZE, "hffs_cache_max_size_bytes", "gauge",
	  "--cache-max-size (absent when there is no limit)." },
	{ PROM_MIN_FREE, "hffs_cache_min_free_bytes", "gauge", "--min-free, in bytes." },
	{ PROM_EVICTED_BYTES, "hffs_evicted_bytes_total", "counter",
	  "Bytes this mount evicted from the cache to stay within its limits." },
	{ PROM_EVICTED_FILES, "hffs_evicted_files_total", "counter",
	  "Cached files (contents) this mount evicted." },
	{ PROM_UPDATED, "hffs_live_updated_timestamp_seconds", "gauge",
	  "When the daemon last published these figures, in Unix seconds." },
};

int status_prom_add(struct status_prom *p, const char *cache_dir, const struct db_mount *m,
		    const struct live *l, size_t files, size_t files_complete, uint64_t total,
		    uint64_t cached)
{
	struct status_prom_mount *v = realloc(p->v, (p->n + 1) * sizeof(*v)), *e;

	if (!v)
		return -ENOMEM;
	p->v = v;
	e = &v[p->n];
	*e = (struct status_prom_mount){ .m = *m,
					 .has_live = l != NULL,
					 .files = files,
					 .files_complete = files_complete,
					 .bytes_total = total,
					 .bytes_cached = cached };
	if (l)
		e->live = *l;
	e->cache_dir = strdup(cache_dir);
	if (!e->cache_dir)
		return -ENOMEM;
	p->n++;
	return 0;
}

void status_prom_done(struct status_prom *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].cache_dir);
	free(p->v);
	*p = (struct status_prom){ 0 };
}

/* A label value: backslash, double quote and newline escaped, as the format requires. */
static void put_label(FILE *f, const char *name, const char *value, bool first)
{
	fprintf(f, "%s%s=\"", first ? "" : ",", name);
	for (const char *c = value; *c; c++) {
		if (*c == '\\' || *c == '"')
			fputc('\\', f);
		if (*c == '\n')
			fputs("\\n", f);
		else
			fputc(*c, f);
	}
	fputc('"', f);
}

/* The value of family id for mount e into *ret; false when e has none. */
static bool value(const struct status_prom_mount *e, enum prom_id id, double *ret)
{
	const struct live *l = &e->live;

	switch (id) {
	case PROM_INFO:
		*ret = 1;
		return true;
	case PROM_STARTED:
		*ret = (double)(e->m.started / USEC_PER_SEC);
		return true;
	case PROM_FILES:
		*ret = (double)e->files;
		return true;
	case PROM_FILES_COMPLETE:
		*ret = (double)e->files_complete;
		return true;
	case PROM_SIZE:
		*ret = (double)e->bytes_total;
		return true;
	case PROM_CACHED:
		*ret = (double)e->bytes_cached;
		return true;
	case PROM_COVERAGE:
		*ret = e->bytes_total ? (double)e->bytes_cached / (double)e->bytes_total : 1;
		return true;
	default:
		break;
	}
	if (!e->has_live)
		return false;
	switch (id) {
	case PROM_FETCHED:
		*ret = (double)l->bytes_fetched;
		break;
	case PROM_RATE:
		*ret = (double)l->rate;
		break;
	case PROM_ACTIVE:
		*ret = l->active;
		break;
	case PROM_QUEUED:
		*ret = l->queued;
		break;
	case PROM_RETRIES:
		*ret = (double)l->retries;
		break;
	case PROM_STALLS:
		*ret = (double)l->stalls;
		break;
	case PROM_FAILURES:
		*ret = (double)l->failures;
		break;
	case PROM_VERIFY_FAILURES:
		*ret = (double)l->verify_failures;
		break;
	case PROM_STALLED:
		*ret = l->stalled;
		break;
	case PROM_PAUSED:
		*ret = l->paused[0] != '\0';
		break;
	case PROM_ETA:
		*ret = (double)l->eta_s;
		return l->eta_s >= 0;
	case PROM_DISK_FREE:
		*ret = (double)l->disk_free;
		break;
	case PROM_MAX_SIZE:
		*ret = (double)l->cache_max_size;
		return l->cache_max_size != 0;
	case PROM_MIN_FREE:
		*ret = (double)l->min_free;
		break;
	case PROM_EVICTED_BYTES:
		*ret = (double)l->evicted_bytes;
		break;
	case PROM_EVICTED_FILES:
		*ret = (double)l->evicted_blobs;
		break;
	case PROM_UPDATED:
		*ret = (double)(l->updated / USEC_PER_SEC);
		break;
	default:
		return false;
	}
	return true;
}

void status_prom_print(const struct status_prom *p, size_t dead, FILE *f)
{
	for (size_t k = 0; k < sizeof(families) / sizeof(families[0]); k++) {
		const struct prom_family *fam = &families[k];
		bool header = false;
		double v;

		for (size_t i = 0; i < p->n; i++) {
			const struct status_prom_mount *e = &p->v[i];

			if (!value(e, fam->id, &v))
				continue;
			if (!header)
				fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help,
					fam->name, fam->type);
			header = true;
			fprintf(f, "%s{", fam->name);
			put_label(f, "mountpoint", e->m.mountpoint, true);
			put_label(f, "repo", e->m.repo_key, false);
			if (fam->id == PROM_INFO) {
				char pid[16];

				snprintf(pid, sizeof(pid), "%d", (int)e->m.pid);
				put_label(f, "revision", e->m.revision, false);
				put_label(f, "commit", e->m.commit, false);
				put_label(f, "cache_dir", e->cache_dir, false);
				put_label(f, "pid", pid, false);
				put_label(f, "offline",
					  e->m.flags & DB_MOUNT_OFFLINE ? "true" : "false", false);
			}
			/* %.17g: integers up to 2^53 exactly, and ratios without loss. */
			fprintf(f, "} %.17g\n", v);
		}
	}
	fprintf(f,
		"# HELP hffs_mounts Live hffs mounts reported.\n# TYPE hffs_mounts gauge\n"
		"hffs_mounts %zu\n",
		p->n);
	fprintf(f,
		"# HELP hffs_dead_mounts Mounts whose daemon is gone ('hffs unmount' clears "
		"them).\n# TYPE hffs_dead_mounts gauge\nhffs_dead_mounts %zu\n",
		dead);
}
