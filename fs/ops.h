/* ops.h: the FUSE low-level operations of a mounted commit, and the state they share.
 * Thin handlers: they look up inodes, ask sched for bytes, and reply. FUSE worker threads;
 * no handler waits on the network (a miss is parked in sched and answered from there). */
#pragma once

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/inode.h"
#include "fs/readahead.h"
#include "fs/readstats.h"
#include "fs/sched.h"
#include "fs/tensors.h"

struct fuse_lowlevel_ops;
struct fuse_session;

struct mount_ctx {
	const struct inode_table *t; /* immutable */
	struct sched *sched;
	uint32_t block_size;
	uint64_t mtime; /* every inode's times: the commit's date (unix seconds; 0: unknown) */
	uid_t uid;
	gid_t gid;
	uint64_t total_size; /* sum of file sizes, for statfs */
	unsigned readahead_kb; /* kernel read-ahead asked for (conn->max_readahead) */
	struct readahead_limits ra; /* our own read-ahead per open file; max_window 0: off */
	uint64_t ra_fetch; /* bytes per read-ahead fetch */
	/* For the root's user.hffs.* attributes (borrowed, for the life of the mount). */
	const char *repo, *revision, *commit, *endpoint, *cache_dir;
	struct tensors *tensors; /* tensor-aware read-ahead; NULL: none */
	struct readstats reads; /* what the reads met (atomics) */
	pthread_mutex_t se_lock; /* guards se */
	struct fuse_session *se; /* se_lock: the session, while it runs (NULL before, after) */
};

/* Sets (or clears, se NULL) the session that ops_drop_inode() notifies. */
void ops_set_session(struct mount_ctx *m, struct fuse_session *se);
/* sched's on_drop (ud: the mount_ctx): invalidates the kernel's page cache of ino. Blocks
 * while reads in flight hold its pages; never call it from a FUSE handler. */
void ops_drop_inode(void *ud, uint64_t ino);

extern const struct fuse_lowlevel_ops ops_lowlevel;
