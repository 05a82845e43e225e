/* prom.c: the Prometheus text format of mounts' figures (see prom.h). */
#include "fs/prom.h"

#include <stdbool.h>
#include <string.h>

#include "fetch/xfer.h"
#include "fs/readstats.h"
#include "util/cleanup.h"
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
	PROM_READS,
	PROM_READ_BYTES,
	PROM_READ_ERRORS,
	PROM_READ_DURATION,
	PROM_STALLED,
	PROM_PAUSED,
	PROM_ETA,
	PROM_CACHE_USED,
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
	  "A live mount (1), labelled with its commit, cache directory and daemon pid." },
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
	  "Bytes received from the network since the mount started, by origin: hub (the "
	  "endpoint) or cdn (where its redirects led)." },
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
	{ PROM_READS, "hffs_reads_total", "counter",
	  "Reads answered with bytes: cache=hit served from the cache alone, cache=miss waited "
	  "for the network." },
	{ PROM_READ_BYTES, "hffs_read_bytes_total", "counter",
	  "Bytes of the reads answered, by cache=hit or miss as in hffs_reads_total." },
	{ PROM_READ_ERRORS, "hffs_read_errors_total", "counter",
	  "Reads answered with an error (EIO, ENOSPC, ...)." },
	{ PROM_READ_DURATION, "hffs_read_duration_seconds", "histogram",
	  "Time from a read's arrival at the daemon to its reply, for every read answered." },
	{ PROM_STALLED, "hffs_stalled", "gauge",
	  "1 when work is pending and no byte came for 30 seconds." },
	{ PROM_PAUSED, "hffs_completion_paused", "gauge",
	  "1 when background completion is paused for lack of cache space." },
	{ PROM_ETA, "hffs_eta_seconds", "gauge",
	  "Seconds to complete what is wanted at the current rate (absent when unknown)." },
	{ PROM_CACHE_USED, "hffs_cache_used_bytes", "gauge",
	  "Bytes the cache's data files occupy on disk (all repos; absent until measured)." },
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

/* One family being written: its header goes out before its first sample, if any. */
struct prom_out {
	FILE *f;
	const struct prom_family *fam;
	bool header;
};

/* A label value: backslash, double quote and newline escaped, as the format requires. */
static void put_label(FILE *f, const char *name, const char *value, bool first)
{
	fprintf(f, "%s%s=\"", first ? "" : ",", name);
	for (const char *c = value; *c; c++) {
		if (*c == '\n')
			fputs("\\n", f);
		else if (*c == '\\' || *c == '"')
			fprintf(f, "\\%c", *c);
		else
			fputc(*c, f);
	}
	fputc('"', f);
}

/* HELP and TYPE, once, before the family's first sample. */
static void header(struct prom_out *o)
{
	if (!o->header)
		fprintf(o->f, "# HELP %s %s\n# TYPE %s %s\n", o->fam->name, o->fam->help,
			o->fam->name, o->fam->type);
	o->header = true;
}

/* A sample of the family: its name + suffix, the mount's labels, then label="label_value"
 * when label is not NULL. %.17g: integers up to 2^53 exactly, and ratios without loss. */
static void sample(struct prom_out *o, const struct prom_mount *e, const char *suffix,
		   const char *label, const char *label_value, double v)
{
	FILE *f = o->f;

	header(o);
	fprintf(f, "%s%s{", o->fam->name, suffix);
	put_label(f, "mountpoint", e->m->mountpoint, true);
	put_label(f, "repo", e->m->repo_key, false);
	put_label(f, "revision", e->m->revision, false);
	if (label)
		put_label(f, label, label_value, false);
	fprintf(f, "} %.17g\n", v);
}

static void info(struct prom_out *o, const struct prom_mount *e)
{
	char pid[16];

	snprintf(pid, sizeof(pid), "%d", (int)e->m->pid);
	header(o);
	fprintf(o->f, "%s{", o->fam->name);
	put_label(o->f, "mountpoint", e->m->mountpoint, true);
	put_label(o->f, "repo", e->m->repo_key, false);
	put_label(o->f, "revision", e->m->revision, false);
	put_label(o->f, "commit", e->m->commit, false);
	put_label(o->f, "cache_dir", e->cache_dir, false);
	put_label(o->f, "pid", pid, false);
	put_label(o->f, "offline", e->m->flags & DB_MOUNT_OFFLINE ? "true" : "false", false);
	fputs("} 1\n", o->f);
}

/* The read latency: cumulative buckets, +Inf last, then the sum and the count (+Inf's). */
static void histogram(struct prom_out *o, const struct prom_mount *e)
{
	const struct readstats_figs *r = &e->live->reads;
	uint64_t cum = 0;

	for (unsigned i = 0; i < READSTATS_BUCKETS; i++) {
		cum += r->buckets[i];
		sample(o, e, "_bucket", "le", i < READSTATS_BOUNDS ? readstats_bound_le[i] : "+Inf",
		       (double)cum);
	}
	sample(o, e, "_sum", NULL, NULL, (double)r->usec_sum / (double)USEC_PER_SEC);
	sample(o, e, "_count", NULL, NULL, (double)cum);
}

/* The series of the family for the mount's coverage (no live figures needed). */
static void coverage(struct prom_out *o, const struct prom_mount *e)
{
	switch (o->fam->id) {
	case PROM_INFO:
		info(o, e);
		break;
	case PROM_STARTED:
		sample(o, e, "", NULL, NULL, (double)(e->m->started / USEC_PER_SEC));
		break;
	case PROM_FILES:
		sample(o, e, "", NULL, NULL, (double)e->files);
		break;
	case PROM_FILES_COMPLETE:
		sample(o, e, "", NULL, NULL, (double)e->files_complete);
		break;
	case PROM_SIZE:
		sample(o, e, "", NULL, NULL, (double)e->bytes_total);
		break;
	case PROM_CACHED:
		sample(o, e, "", NULL, NULL, (double)e->bytes_cached);
		break;
	case PROM_COVERAGE:
		sample(o, e, "", NULL, NULL,
		       e->bytes_total ? (double)e->bytes_cached / (double)e->bytes_total : 1);
		break;
	default:
		break;
	}
}

/* A family with one series of the live figure v, absent when has is false. */
static void live1(struct prom_out *o, const struct prom_mount *e, bool has, double v)
{
	if (has)
		sample(o, e, "", NULL, NULL, v);
}

/* The series of the family from the daemon's live figures. */
static void live(struct prom_out *o, const struct prom_mount *e)
{
	const struct live *l = e->live;

	switch (o->fam->id) {
	case PROM_FETCHED:
		sample(o, e, "", "source", xfer_source_str(XFER_SOURCE_HUB), (double)l->bytes_hub);
		sample(o, e, "", "source", xfer_source_str(XFER_SOURCE_CDN), (double)l->bytes_cdn);
		break;
	case PROM_READS:
	case PROM_READ_BYTES: {
		const uint64_t *v = o->fam->id == PROM_READS ? l->reads.reads : l->reads.bytes;

		sample(o, e, "", "cache", "hit", (double)v[READSTATS_HIT]);
		sample(o, e, "", "cache", "miss", (double)v[READSTATS_MISS]);
		break;
	}
	case PROM_READ_DURATION:
		histogram(o, e);
		break;
	case PROM_RATE:
		live1(o, e, true, (double)l->rate);
		break;
	case PROM_ACTIVE:
		live1(o, e, true, l->active);
		break;
	case PROM_QUEUED:
		live1(o, e, true, l->queued);
		break;
	case PROM_RETRIES:
		live1(o, e, true, (double)l->retries);
		break;
	case PROM_STALLS:
		live1(o, e, true, (double)l->stalls);
		break;
	case PROM_FAILURES:
		live1(o, e, true, (double)l->failures);
		break;
	case PROM_VERIFY_FAILURES:
		live1(o, e, true, (double)l->verify_failures);
		break;
	case PROM_READ_ERRORS:
		live1(o, e, true, (double)l->reads.errors);
		break;
	case PROM_STALLED:
		live1(o, e, true, l->stalled);
		break;
	case PROM_PAUSED:
		live1(o, e, true, l->paused[0] != '\0');
		break;
	case PROM_ETA:
		live1(o, e, l->eta_s >= 0, (double)l->eta_s);
		break;
	case PROM_CACHE_USED:
		live1(o, e, l->cache_used_known, (double)l->cache_used);
		break;
	case PROM_DISK_FREE:
		live1(o, e, true, (double)l->disk_free);
		break;
	case PROM_MAX_SIZE:
		live1(o, e, l->cache_max_size != 0, (double)l->cache_max_size);
		break;
	case PROM_MIN_FREE:
		live1(o, e, true, (double)l->min_free);
		break;
	case PROM_EVICTED_BYTES:
		live1(o, e, true, (double)l->evicted_bytes);
		break;
	case PROM_EVICTED_FILES:
		live1(o, e, true, (double)l->evicted_blobs);
		break;
	case PROM_UPDATED:
		live1(o, e, true, (double)(l->updated / USEC_PER_SEC));
		break;
	default:
		break;
	}
}

void prom_print(FILE *f, const struct prom_mount *v, size_t n)
{
	for (size_t k = 0; k < ARRAY_SIZE(families); k++) {
		struct prom_out o = { .f = f, .fam = &families[k] };

		for (size_t i = 0; i < n; i++) {
			if (families[k].id <= PROM_COVERAGE)
				coverage(&o, &v[i]);
			else if (v[i].live)
				live(&o, &v[i]);
		}
	}
}

void prom_print_totals(FILE *f, size_t mounts, size_t dead)
{
	fprintf(f,
		"# HELP hffs_mounts Live hffs mounts reported.\n# TYPE hffs_mounts gauge\n"
		"hffs_mounts %zu\n",
		mounts);
	fprintf(f,
		"# HELP hffs_dead_mounts Mounts whose daemon is gone ('hffs unmount' clears "
		"them).\n# TYPE hffs_dead_mounts gauge\nhffs_dead_mounts %zu\n",
		dead);
}
