/* transfer_args.c: the transfer engine's flags as `hffs mount` and `hffs pull` take them
 * (--connections, --max-rate, --range-align): one reading and one message each. */
#include "cli/cli.h"

#include "util/log.h"
#include "util/parse.h"

int cli_connections_arg(const char *arg, unsigned *ret)
{
	uint64_t v;

	if (parse_uint(arg, 256, &v) < 0 || !v) {
		log_err("--connections takes a number from 1 to 256, not '%s'", arg);
		return 2;
	}
	*ret = (unsigned)v;
	return 0;
}

int cli_max_rate_arg(const char *arg, uint64_t *ret)
{
	if (parse_size(arg, ret) < 0) {
		log_err("--max-rate takes bytes per second (e.g. 50M), not '%s'", arg);
		return 2;
	}
	return 0;
}

int cli_range_align_arg(const char *arg, uint64_t *ret)
{
	if (parse_size(arg, ret) < 0 || *ret < 4096 || *ret > (1ULL << 30)) {
		log_err("--range-align takes a size from 4K to 1G (the mirror's slice size, e.g. "
			"1M), not '%s'",
			arg);
		return 2;
	}
	return 0;
}
