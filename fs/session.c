/* session.c: the FUSE session of a mount. Runs on the mount thread; a helper thread reports
 * readiness once the kernel answers for the mountpoint. */
#include "fs/session.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <fcntl.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/log.h"

struct ready_ctx {
	const struct session_opts *o;
	unsigned readahead_kb;
};

/* The kernel caps FUSE read-ahead at the bdi's read_ahead_kb (128 KiB by default), whatever
 * max_readahead says; root may raise it. Loaders that mmap safetensors fault pages in at
 * the pace of that window. */
static void set_bdi_readahead(dev_t dev, unsigned kb)
{
	static const char *const fmts[] = { "/sys/class/bdi/%u:%u/read_ahead_kb",
					    "/sys/class/bdi/%u:%u-fuseblk/read_ahead_kb" };
	char path[96], val[24];

	for (size_t i = 0; i < ARRAY_SIZE(fmts); i++) {
		_cleanup_close_ int fd = -1;
		int n;

		snprintf(path, sizeof(path), fmts[i], major(dev), minor(dev));
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = snprintf(val, sizeof(val), "%u", kb);
		if (write(fd, val, (size_t)n) == n)
			log_debug("kernel read-ahead of the mount set to %u KiB", kb);
		return;
	}
	log_debug("kernel read-ahead left at its default (no writable bdi entry)");
}

static void *ready_main(void *arg)
{
	struct ready_ctx *rc = arg;
	struct stat st;

	/* Answered by our own loop: returns once INIT and GETATTR went through. */
	if (stat(rc->o->mountpoint, &st) < 0) {
		log_debug("mountpoint did not answer: %s", strerror(errno));
		return NULL;
	}
	set_bdi_readahead(st.st_dev, rc->readahead_kb);
	if (rc->o->ready)
		rc->o->ready(rc->o->ready_ud);
	return NULL;
}

int session_run(const struct session_opts *o, struct mount_ctx *m)
{
	char opts[1200];
	const char *argv[] = { "hffs", "-o", opts, o->debug ? "-d" : NULL, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(o->debug ? 4 : 3, (char **)argv);
	struct fuse_session *se;
	struct fuse_loop_config *cfg;
	struct ready_ctx rc = { .o = o, .readahead_kb = m->readahead_kb };
	pthread_t ready_thread;
	bool ready_started = false;
	int r;

	/* fsname is user text: libfuse splits on ',' and '\\', so those are replaced. */
	int n = snprintf(opts, sizeof(opts), "ro,default_permissions,subtype=hffs,%sfsname=",
			 o->allow_other ? "allow_other," : "");

	snprintf(opts + n, sizeof(opts) - (size_t)n, "%s", o->fsname);
	for (char *p = opts + n; *p; p++)
		if (*p == ',' || *p == '\\')
			*p = '_';
	se = fuse_session_new(&args, &ops_lowlevel, sizeof(ops_lowlevel), m);
	/* libfuse copies the arguments when it adds its own; the session keeps none of them. */
	fuse_opt_free_args(&args);
	if (!se) {
		log_err("cannot start a FUSE session (is /dev/fuse available?)");
		return -EIO;
	}
	if (fuse_set_signal_handlers(se) < 0) {
		fuse_session_destroy(se);
		return -EIO;
	}
	r = fuse_session_mount(se, o->mountpoint);
	if (r != 0) {
		log_err("cannot mount on '%s' (see the line above; is fuse3 installed and is the "
			"mountpoint an empty directory?)",
			o->mountpoint);
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
		return -EIO;
	}
	ops_set_session(m, se);
	if (pthread_create(&ready_thread, NULL, ready_main, &rc) == 0)
		ready_started = true;
	cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(cfg, o->max_threads ? o->max_threads : 16);
	fuse_loop_cfg_set_idle_threads(cfg, 4);
	r = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	/* The loop resets the session's exit flag as it returns; set again, it keeps libfuse
	 * from printing "fuse: writing device: Bad file descriptor" for every read that was
	 * parked when the kernel went away: serve_stop() answers them after the unmount below
	 * closed the device, and nobody is there to receive the answer. */
	fuse_session_exit(se);
	ops_set_session(m, NULL);
	/* Unmount first: a stat still in flight then falls through to the directory below. */
	fuse_session_unmount(se);
	if (ready_started)
		pthread_join(ready_thread, NULL);
	if (o->stopped)
		o->stopped(o->stopped_ud);
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
	return r < 0 ? r : 0;
}
