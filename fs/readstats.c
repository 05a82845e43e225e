/* readstats.c: the read counters of a mount (see readstats.h). Relaxed atomics only: the
 * figures are counts, read for reports, and order nothing. */
#include "fs/readstats.h"

#include "util/timeutil.h"

/* From 50 us (a read of a cached block, splice included) to a minute (a demand read that
 * waited out retries); roughly 1-2.5-5 a decade. */
const uint64_t readstats_bound_usec[READSTATS_BOUNDS] = {
	50,	100,	250,	500,	 1000,	  2500,	   5000,     10000,    25000,	 50000,
	100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
};

const char *const readstats_bound_le[READSTATS_BOUNDS] = {
	"0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
	"0.01",	   "0.025",  "0.05",	"0.1",	  "0.25",  "0.5",    "1",
	"2.5",	   "5",	     "10",	"30",	  "60",
};

unsigned readstats_bucket(uint64_t usec)
{
	unsigned i = 0;

	while (i < READSTATS_BOUNDS && usec > readstats_bound_usec[i])
		i++;
	return i;
}

void readstats_count(struct readstats *rs, uint64_t start_usec, enum readstats_kind kind,
		     uint64_t bytes, int err)
{
	uint64_t now = now_usec(), usec = now > start_usec ? now - start_usec : 0;

	if (!rs)
		return;
	if (err) {
		atomic_fetch_add_explicit(&rs->errors, 1, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&rs->reads[kind], 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&rs->bytes[kind], bytes, memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&rs->usec_sum, usec, memory_order_relaxed);
	atomic_fetch_add_explicit(&rs->buckets[readstats_bucket(usec)], 1, memory_order_relaxed);
}

void readstats_get(struct readstats *rs, struct readstats_figs *ret)
{
	for (int k = 0; k < READSTATS_KINDS; k++) {
		ret->reads[k] = atomic_load_explicit(&rs->reads[k], memory_order_relaxed);
		ret->bytes[k] = atomic_load_explicit(&rs->bytes[k], memory_order_relaxed);
	}
	ret->errors = atomic_load_explicit(&rs->errors, memory_order_relaxed);
	ret->usec_sum = atomic_load_explicit(&rs->usec_sum, memory_order_relaxed);
	for (int i = 0; i < READSTATS_BUCKETS; i++)
		ret->buckets[i] = atomic_load_explicit(&rs->buckets[i], memory_order_relaxed);
}
