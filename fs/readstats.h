/* readstats.h: what the mount's FUSE reads met: how many were served from the cache alone
 * (hits) and how many waited for the network (misses), their bytes, the failed ones, and a
 * histogram of their latency from arrival to reply. Lock-free (relaxed atomics): any thread
 * that replies to a read counts it, the live publisher copies the counters; a copy taken
 * while reads are counted may be a read apart between fields, never torn within one. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The histogram's upper bounds in microseconds; a last bucket takes the rest (+Inf). */
#define READSTATS_BOUNDS 19
#define READSTATS_BUCKETS (READSTATS_BOUNDS + 1)
extern const uint64_t readstats_bound_usec[READSTATS_BOUNDS];
/* The same bounds as Prometheus `le` label values, in seconds ("0.00005" ... "60"). */
extern const char *const readstats_bound_le[READSTATS_BOUNDS];

enum readstats_kind {
	READSTATS_HIT, /* every byte was in the cache when the read arrived (it may have waited
			* for the file's hash, never for the network) */
	READSTATS_MISS, /* it waited for bytes from the network */
	READSTATS_KINDS,
};

struct readstats {
	_Atomic uint64_t reads[READSTATS_KINDS]; /* answered with bytes */
	_Atomic uint64_t bytes[READSTATS_KINDS];
	_Atomic uint64_t errors; /* answered with an error */
	_Atomic uint64_t usec_sum; /* latency of every answered read */
	_Atomic uint64_t buckets[READSTATS_BUCKETS]; /* not cumulative */
};

/* A plain copy of the counters. */
struct readstats_figs {
	uint64_t reads[READSTATS_KINDS];
	uint64_t bytes[READSTATS_KINDS];
	uint64_t errors;
	uint64_t usec_sum;
	uint64_t buckets[READSTATS_BUCKETS];
};

/* Counts a read that arrived at start_usec (monotonic) and was answered now: with bytes
 * (err 0) of kind, or with an error (err != 0, kind ignored). Any thread; NULL rs: nothing. */
void readstats_count(struct readstats *rs, uint64_t start_usec, enum readstats_kind kind,
		     uint64_t bytes, int err);
/* Copies the counters into *ret. Any thread. */
void readstats_get(struct readstats *rs, struct readstats_figs *ret);
/* The bucket a latency falls in (READSTATS_BOUNDS: above every bound). */
unsigned readstats_bucket(uint64_t usec);
