/* readahead.h: sequential-read detection per open file, and a read-ahead window that grows
 * while reads stay sequential and resets on a seek (as mountpoint-s3 does). Pure arithmetic on
 * caller-owned state; the caller serializes calls for one open file. */
#pragma once

#include <stdint.h>

struct readahead {
	uint64_t next; /* where the next sequential read is expected */
	uint64_t issued; /* read-ahead has been asked up to here */
	uint64_t window; /* current window, 0 before the first sequential read */
	unsigned streak; /* sequential reads in a row */
};

struct readahead_limits {
	uint64_t min_window; /* first window */
	uint64_t max_window; /* the window doubles up to this */
	uint64_t slack; /* reads this far around `next` still count as sequential (the
			      * kernel's async reads arrive slightly out of order) */
	uint64_t step; /* the window is topped up once this much of it is consumed (at most
			* half of it; 0: half): asked in steps, its ranges end at different times
			* and the link stays busy, where half windows go in bursts with gaps */
};

/* Records a read of [offset, offset+len) of a file of size. Returns in *ret_len > 0 the range
 * [*ret_offset, *ret_offset + *ret_len) to fetch ahead now, else *ret_len = 0. A window is
 * asked again only when the reader has consumed a step of what was asked. */
void readahead_update(struct readahead *ra, const struct readahead_limits *lim, uint64_t offset,
		      uint64_t len, uint64_t size, uint64_t *ret_offset, uint64_t *ret_len);
