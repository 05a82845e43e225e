/* prom.h: mounts' figures in the Prometheus text exposition format (version 0.0.4), for
 * `hffs status --prometheus` and the daemon's --metrics-file alike: one family per metric,
 * HELP and TYPE first, a series per mount labelled by mountpoint, repo and revision (label
 * values escaped as the format says), counters named *_total, bytes and seconds as units, the
 * read latency a histogram. Knows the figures of struct live, not how they are measured.
 * Any thread; docs/metrics.md lists every metric. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cache/db.h"
#include "fs/live.h"

/* One mount: its record, its daemon's live figures and its coverage. Borrowed views. */
struct prom_mount {
	const struct db_mount *m;
	const char *cache_dir;
	const struct live *live; /* NULL: the daemon has not published yet */
	size_t files, files_complete;
	uint64_t bytes_total, bytes_cached; /* of the mount's files */
};

/* Writes every family that has a series for v[0..n) to f. */
void prom_print(FILE *f, const struct prom_mount *v, size_t n);
/* Writes the report-wide gauges of `hffs status`: live mounts, mounts whose daemon is gone. */
void prom_print_totals(FILE *f, size_t mounts, size_t dead);
