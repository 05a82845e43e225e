/* pull_progress.h: what `hffs pull` shows while it runs. On a terminal (stderr), a bar per
 * active file and a total line with rate and ETA, redrawn in place; elsewhere a line every
 * few seconds on stderr; with --json one JSON object per line on stdout (the fields are a
 * contract: docs/cli.md, "hffs pull --json"); quiet shows nothing. Failed files are said once
 * each, on stderr (or as their JSON line). Caller's thread. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "fs/pull.h"

enum pull_progress_mode {
	PULL_PROGRESS_TTY,
	PULL_PROGRESS_LINES,
	PULL_PROGRESS_JSON,
	PULL_PROGRESS_QUIET,
};

struct pull_view {
	enum pull_progress_mode mode;
	FILE *out; /* stderr for TTY and LINES, stdout for JSON */
	unsigned lines_drawn; /* TTY: lines of the last drawing, to go back over */
	uint64_t last_line; /* LINES, JSON totals: monotonic usec of the last one */
	uint64_t *sent; /* JSON: per file, done bytes last sent (UINT64_MAX: never) */
	uint8_t *sent_state; /* JSON: per file, the state last sent */
	bool *said; /* per file: its failure was said */
	size_t n;
};

/* Chooses the mode from the flags and whether stderr is a terminal; 0 or -ENOMEM. */
int pull_view_init(struct pull_view *v, bool json, bool quiet, size_t nfiles);
void pull_view_done(struct pull_view *v);
/* Shows p (final: the last time, after which only the result is written). */
void pull_view_show(struct pull_view *v, const struct pull_progress *p, bool final);
/* The state word of the JSON contract: queued, downloading, verifying, placing, verified,
 * failed. */
const char *pull_state_str(enum pull_state st);
/* Seconds left at rate, -1 when unknown. */
int64_t pull_eta(uint64_t left, uint64_t rate);
