/* mountinfo.h: what the kernel says is mounted at a path (/proc/self/mountinfo), so that
 * commands act only on hffs's own mounts. Mechanism only: it knows no file system. */
#pragma once

#include <stddef.h>
#include <stdio.h>

struct mountinfo_entry {
	char fstype[64]; /* e.g. "fuse.hffs", "tmpfs" */
	char source[256]; /* e.g. "hffs:org/name" */
};

/* The entry of the topmost mount at mountpoint (absolute, as the kernel shows it, without
 * escapes) in f (a mountinfo file), into *ret. 0 found; -ENOENT when nothing is mounted
 * there; -EBADMSG for a line that is not mountinfo. */
int mountinfo_find_in(FILE *f, const char *mountpoint, struct mountinfo_entry *ret);
/* The same for /proc/self/mountinfo; -errno when it cannot be read. */
int mountinfo_find(const char *mountpoint, struct mountinfo_entry *ret);
/* Calls fn for every mount of f in order (mount points unescaped); fn returns < 0 to stop,
 * and that is returned. -EBADMSG for a line that is not mountinfo. */
int mountinfo_each_in(FILE *f,
		      int (*fn)(void *ud, const char *mountpoint, const struct mountinfo_entry *e),
		      void *ud);
/* The same for /proc/self/mountinfo. */
int mountinfo_each(int (*fn)(void *ud, const char *mountpoint, const struct mountinfo_entry *e),
		   void *ud);
