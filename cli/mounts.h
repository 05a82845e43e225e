/* mounts.h: the hffs mounts of this machine as the kernel lists them (fuse.hffs in
 * /proc/self/mountinfo), whatever cache directory each uses: a live mount's root tells its
 * cache directory (user.hffs.cache_dir), a dead one (its daemon gone) answers ENOTCONN. So
 * `hffs status`, `verify` and `unmount` find a mount without being told --cache-dir. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct cli_mount {
	char *mountpoint;
	char *source; /* "hffs:org/name" */
	char *cache_dir; /* NULL when dead, or when the daemon does not say */
	bool dead; /* its daemon is gone: "Transport endpoint is not connected" */
};

/* Every fuse.hffs mount, in mount order, into *ret (malloc'd, *ret_n entries); free with
 * cli_mounts_free(). 0, or -errno when the mount table cannot be read. */
int cli_mounts_list(struct cli_mount **ret, size_t *ret_n);
void cli_mounts_free(struct cli_mount *v, size_t n);
/* The cache directory of the live hffs mount at mp (malloc'd), or NULL. */
char *cli_mount_cache_dir(const char *mp);
