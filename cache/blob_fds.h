/* blob_fds.h: a bounded set of open blob data files. A repo may hold more distinct contents
 * than a process may open files (RLIMIT_NOFILE), so a data file is opened when it is used and
 * the least recently used ones are closed past a maximum. A user holds a reference between
 * get and put; a referenced file is never closed, so an fd handed to a reply (a splice) stays
 * valid until the reply is written. Any thread; one mutex, innermost: no open or close runs
 * under it, and nothing else is taken under it. */
#pragma once

#include <stdint.h>

#include "cache/blob.h"

struct blob_fds;

/* One blob's entry, embedded in its owner's record. cid and size are set by
 * blob_fd_slot_init() and never change; the other fields are the set's, under its lock. */
struct blob_fd_slot {
	const char *cid; /* borrowed: outlives the slot */
	uint64_t size;
	int fd; /* -1: closed */
	unsigned refs; /* users between get and put */
	struct blob_fd_slot *prev, *next; /* on the open list, most recently used first */
	uint64_t dev, ino, born; /* the file opened first (ino 0: never opened), its birth
				  * time in ns (0: not recorded by its file system) */
};

/* The most data files a process may keep open: its RLIMIT_NOFILE soft limit less reserve
 * (the fds of everything else: sockets, the index, FUSE, pipes), capped at 4096 (opening a
 * file costs microseconds; thousands of open files cost kernel memory), at least 8. */
unsigned blob_fds_limit(unsigned reserve);

/* A set of files under cache_dir (copied) that keeps at most max_open open while none is
 * referenced beyond that. NULL on out of memory. */
struct blob_fds *blob_fds_new(const char *cache_dir, unsigned max_open);
/* Closes every open file and frees the set; no slot may be referenced. Takes NULL, returns
 * NULL. */
struct blob_fds *blob_fds_free(struct blob_fds *p);

/* Sets up a slot for blob cid (borrowed) of size bytes, closed. */
void blob_fd_slot_init(struct blob_fd_slot *slot, const char *cid, uint64_t size);

/* An fd of the slot's data file, referenced until blob_fds_put(): opened (created and sized
 * as blob_open() does) when it is closed, and then the least recently used unreferenced files
 * past the maximum are closed. Returns the fd, or -errno: blob_open()'s errors, and -ESTALE
 * when the file is not the one first opened for the slot (removed or replaced behind the
 * set's back: its bytes are not the ones its owner knows of). */
int blob_fds_get(struct blob_fds *p, struct blob_fd_slot *slot);
/* Drops a reference blob_fds_get() gave. */
void blob_fds_put(struct blob_fds *p, struct blob_fd_slot *slot);

/* Files open now (for tests and figures). */
unsigned blob_fds_open_count(struct blob_fds *p);
