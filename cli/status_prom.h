/* status_prom.h: `hffs status --prometheus`: the mounts status saw, written in the Prometheus
 * text exposition format by fs/prom.h, with the report's totals (mounts, dead mounts). Main
 * thread only; docs/metrics.md lists every metric. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cache/db.h"
#include "fs/live.h"

/* One mount as status saw it: its record, the daemon's live figures and the coverage the
 * index says now. */
struct status_prom_mount {
	struct db_mount m;
	char *cache_dir; /* owned */
	struct live live;
	bool has_live; /* no live record: the daemon has not published yet */
	size_t files, files_complete;
	uint64_t bytes_total, bytes_cached;
};

/* The mounts of one report, in order; zero-initialised is empty. */
struct status_prom {
	struct status_prom_mount *v;
	size_t n;
};

/* Appends a copy of one mount (l NULL: no live figures). 0 or -ENOMEM. */
int status_prom_add(struct status_prom *p, const char *cache_dir, const struct db_mount *m,
		    const struct live *l, size_t files, size_t files_complete, uint64_t total,
		    uint64_t cached);
/* Writes every family to f, then the count of dead mounts (their daemon gone). Out of
 * memory, only the totals. */
void status_prom_print(const struct status_prom *p, size_t dead, FILE *f);
/* Frees what status_prom_add() copied; p is empty after. */
void status_prom_done(struct status_prom *p);
