/* readahead.c: the read-ahead window. Pure. */
#include "fs/readahead.h"

#include <stdbool.h>

#include "util/cleanup.h"

void readahead_update(struct readahead *ra, const struct readahead_limits *lim, uint64_t offset,
		      uint64_t len, uint64_t size, uint64_t *ret_offset, uint64_t *ret_len)
{
	uint64_t end = offset + len, from, want;
	bool sequential = offset + lim->slack >= ra->next && offset <= ra->next + lim->slack;

	*ret_offset = *ret_len = 0;
	if (!sequential) {
		/* A seek: start over from here. */
		*ra = (struct readahead){ .next = end, .streak = 1 };
		return;
	}
	ra->streak++;
	ra->next = MAX(ra->next, end);
	if (ra->streak < 2)
		return;
	if (!ra->window) {
		ra->window = lim->min_window;
	} else {
		/* Ask again only once a step of the last window has been consumed. */
		uint64_t step = lim->step ? MIN(lim->step, ra->window / 2) : ra->window / 2;

		if (ra->issued > ra->next && ra->issued - ra->next > ra->window - step)
			return;
		ra->window = MIN(ra->window * 2, lim->max_window);
	}
	from = MAX(ra->issued, ra->next);
	want = MIN(size, ra->next + ra->window);
	if (want <= from)
		return;
	*ret_offset = from;
	*ret_len = want - from;
	ra->issued = want;
}
