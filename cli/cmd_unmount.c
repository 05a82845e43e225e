/* cmd_unmount.c: `hffs unmount MOUNTPOINT`: asks the kernel to unmount, then waits (bounded)
 * for the daemon to commit what it fetched and exit, so a following mount or status sees
 * a settled cache. A mount whose daemon died is detached lazily, and what it had added to the
 * Hugging Face cache (--hf-cache) is taken out. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "cache/db.h"
#include "cache/hf_manifest.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/mountinfo.h"
#include "util/parse.h"
#include "util/proc.h"

static const char unmount_usage[] =
	"Usage: hffs unmount MOUNTPOINT [--cache-dir DIR] [--timeout S]\n"
	"\n"
	"Unmounts an hffs mount and waits up to S seconds (default 30) for its daemon to\n"
	"record what it fetched and exit. A mount whose daemon died is detached, and the\n"
	"entries it had added to the Hugging Face cache (--hf-cache) are taken out.\n";

static pid_t mount_pid(const char *cache_dir, const char *mountpoint)
{
	struct cache_db *db = NULL;
	struct db_mount m;
	pid_t pid = 0;

	if (db_open(cache_dir, &db) < 0)
		return 0;
	if (db_mount_get(db, mountpoint, &m) >= 0)
		pid = m.pid;
	db_close(db);
	return pid;
}

/* 0 when an hffs mount is at mp; else says why not and returns -1. A dead hffs mount is
 * still in the mount table as fuse.hffs. */
static int is_hffs_mount(const char *mp)
{
	struct mountinfo_entry e;
	int r = mountinfo_find(mp, &e);

	if (r == -ENOENT) {
		log_err("'%s' is not a mount point", mp);
		return -1;
	}
	if (r < 0) {
		log_err("cannot read the mount table (/proc/self/mountinfo): %s", strerror(-r));
		return -1;
	}
	if (strcmp(e.fstype, "fuse.hffs")) {
		log_err("'%s' is a %s mount (%s), not an hffs mount: hffs unmounts only its own "
			"mounts",
			mp, e.fstype, e.source[0] ? e.source : "no source");
		return -1;
	}
	return 0;
}

static bool wait_exit(pid_t pid, unsigned timeout_s)
{
	struct timespec ts = { .tv_nsec = 50 * 1000 * 1000 };

	for (unsigned i = 0; pid > 0 && i < timeout_s * 20; i++) {
		if (!proc_hffs_alive(pid))
			return true;
		nanosleep(&ts, NULL);
	}
	return pid <= 0;
}

int cmd_unmount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cache-dir", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	_cleanup_free_ char *mp = NULL, *cache_dir = NULL;
	const char *cache_arg = NULL;
	uint64_t timeout_s = 30;
	struct statfs sfs;
	pid_t pid;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'C':
			cache_arg = optarg;
			break;
		case 't':
			if (parse_uint(optarg, 3600, &timeout_s) < 0) {
				log_err("--timeout takes seconds, not '%s'", optarg);
				return 2;
			}
			break;
		case 'h':
			fputs(unmount_usage, stdout);
			return 0;
		default:
			fputs("see 'hffs unmount --help'\n", stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		fputs(unmount_usage, stderr);
		return 2;
	}
	mp = cli_abspath(argv[optind]);
	cache_dir = cli_cache_dir_for(cache_arg, argv[optind]);
	if (!mp || !cache_dir)
		return 1;
	r = is_hffs_mount(mp);
	if (r < 0)
		return 1;
	pid = mount_pid(cache_dir, mp);
	/* statfs always reaches the daemon; stat of the root may come from the kernel's cache. */
	if (statfs(mp, &sfs) < 0 && errno == ENOTCONN) {
		log_warn("the daemon of '%s' is gone; detaching the dead mount", mp);
		r = cli_fusermount("-uz", mp);
	} else {
		r = cli_fusermount("-u", mp);
	}
	if (r != 0) {
		log_err("could not unmount '%s' (see the message above; is a process still using "
			"it? 'fuser -vm %s' lists them)",
			mp, mp);
		return 1;
	}
	if (!wait_exit(pid, (unsigned)timeout_s)) {
		log_err("unmounted '%s', but its daemon (pid %d) is still finishing after %u s", mp,
			(int)pid, (unsigned)timeout_s);
		return 1;
	}
	/* A daemon that exited cleaned its own entries; one that died left its manifest. */
	r = hf_manifest_sweep(cache_dir);
	if (r < 0)
		log_warn("cannot take a dead mount's entries out of the Hugging Face cache: %s",
			 strerror(-r));
	return 0;
}
