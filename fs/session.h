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
	bool allow_other; /* FUSE allow_other (fusermount3 checks /etc/fuse.conf) */
	/* Called once, from a helper thread, when the mount answers (a stat of the mountpoint
	 * succeeded and the kernel read-ahead is set). May be NULL. */
	void (*ready)(void *ud);
	void *ready_ud;
	/* Called once, on the mount thread, after the loop ended and the mountpoint is unmounted
	 * but before the session is destroyed: it must stop every thread that may still answer a
	 * request (a parked read is answered through the session, so the session outlives them).
	 * May be NULL. Not called when mounting failed (no request was taken). */
	void (*stopped)(void *ud);
	void *stopped_ud;
};

/* Mounts, serves, unmounts. Returns 0 after a clean unmount, -errno when mounting failed
 * (-ENOTCONN: a dead mount is in the way; -EBUSY, -EACCES, -ENOENT, ...), logged. */
int session_run(const struct session_opts *o, struct mount_ctx *m);
