/* session.h: one FUSE session: mount read-only, serve with a bounded multi-threaded loop until
 * unmounted or signalled (SIGINT, SIGTERM, SIGHUP), then unmount. */
#pragma once

#include <stdbool.h>

#include "fs/ops.h"

struct session_opts {
	const char *mountpoint; /* absolute */
	const char *fsname; /* shown in /proc/mounts, e.g. "hffs:org/name" */
	unsigned max_threads; /* FUSE workers; 0 -> 16 */
	bool debug; /* libfuse request tracing on stderr */
	/* Called once, from a helper thread, when the mount answers (a stat of the mountpoint
	 * succeeded and the kernel read-ahead is set). May be NULL. */
	void (*ready)(void *ud);
	void *ready_ud;
};

/* Mounts, serves, unmounts. Returns 0 after a clean unmount, -errno when mounting failed
 * (-ENOTCONN: a dead mount is in the way; -EBUSY, -EACCES, -ENOENT, ...), logged. */
int session_run(const struct session_opts *o, struct mount_ctx *m);
