/* cmd_verify.c: `hffs verify [REPO[@REV]|MOUNTPOINT]`: rehash on demand. A mountpoint names
 * the repo and commit it serves; the work is `hffs cache verify`'s. */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache/db.h"
#include "util/cleanup.h"
#include "util/log.h"

static const char verify_usage[] =
	"Usage: hffs verify [REPO[@REV] | MOUNTPOINT] [--json] [--cache-dir DIR]\n"
	"\n"
	"Rehashes the complete files of the cache (all, one repo or revision, or what a mount\n"
	"serves) against their content ids; a file that does not match is dropped, to be\n"
	"fetched again, and reported. Exit 1 if any was bad. Same as 'hffs cache verify'.\n";

/* "models/org/name@<commit>" when path is the mountpoint of a recorded mount, else NULL. */
static char *mount_spec(const char *cache_dir, const char *path)
{
	_cleanup_free_ char *abs = cli_abspath(path);
	struct cache_db *db = NULL;
	struct db_mount m;
	struct stat st;
	char *spec = NULL;

	if (!abs || stat(abs, &st) < 0 || !S_ISDIR(st.st_mode) || db_open(cache_dir, &db) < 0)
		return NULL;
	if (db_mount_get(db, abs, &m) >= 0 && asprintf(&spec, "%s@%s", m.repo_key, m.commit) < 0)
		spec = NULL;
	db_close(db);
	return spec;
}

int cmd_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "cache-dir", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	_cleanup_free_ char *cache_dir = NULL, *spec = NULL;
	const char *cache_arg = NULL;
	char *args[8];
	int n = 0, c;
	bool json = false;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'C':
			cache_arg = optarg;
			break;
		case 'h':
			fputs(verify_usage, stdout);
			return 0;
		default:
			fputs("see 'hffs verify --help'\n", stderr);
			return 2;
		}
	}
	if (argc - optind > 1) {
		fputs(verify_usage, stderr);
		return 2;
	}
	cache_dir = cli_cache_dir_for(cache_arg, argc - optind == 1 ? argv[optind] : NULL);
	if (!cache_dir)
		return 1;
	if (argc - optind == 1)
		spec = mount_spec(cache_dir, argv[optind]);
	args[n++] = (char *)"cache";
	args[n++] = (char *)"verify";
	if (argc - optind == 1)
		args[n++] = spec ? spec : argv[optind];
	args[n++] = (char *)"--cache-dir";
	args[n++] = cache_dir;
	if (json)
		args[n++] = (char *)"--json";
	args[n] = NULL;
	optind = 0; /* the next getopt_long() starts over */
	return cmd_cache(n, args);
}
