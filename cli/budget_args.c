/* budget_args.c: the cache limits as `hffs mount` and `hffs cache gc` take them. */
#include "cli/cli.h"

#include <stdio.h>

#include "util/log.h"
#include "util/parse.h"

int cli_budget(const char *max_flag, const char *max_size, const char *min_free, const char *dir,
	       struct evict_limits *b)
{
	uint64_t total = 0, avail = 0;
	unsigned pct;

	b->max_size = EVICT_NO_LIMIT;
	if (max_size && parse_size(max_size, &b->max_size) < 0) {
		log_err("%s takes a size (e.g. 200G), not '%s'", max_flag, max_size);
		return 2;
	}
	if (evict_fs_space(dir, &total, &avail) < 0)
		total = 0;
	if (!min_free) {
		b->min_free = evict_default_min_free(total);
	} else if (parse_percent(min_free, &pct) == 0) {
		b->min_free = total / 100 * pct + total % 100 * pct / 100;
	} else if (parse_size(min_free, &b->min_free) < 0) {
		log_err("--min-free takes a size (e.g. 10G) or a percentage (e.g. 5%%), not '%s'",
			min_free);
		return 2;
	}
	return 0;
}
