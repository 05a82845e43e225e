/* hf_bridge.h: `hffs mount --hf-cache`: the mounted commit made visible in the Hugging Face hub
 * cache (docs/design.md "The HF cache bridge"), so code that loads by repo id finds every file
 * there and reads it through the mount. It adds blobs/<etag> -> <mountpoint>/<path>,
 * snapshots/<commit>/<path> -> ../../blobs/<etag> (the official clients' link) and
 * refs/<revision> -> commit, never over an entry another client stored, each recorded in a
 * manifest first (cache/hf_manifest.h); a watchdog process takes them out if the daemon dies.
 * The mount's main thread; blocking file system calls. */
#pragma once

#include "cache/hf_manifest.h"
#include "fs/inode.h"

struct hf_bridge_opts {
	const char *cache_dir; /* hffs's cache: the manifests live there */
	const char *mountpoint; /* absolute */
	const char *hf_root; /* the HF hub cache; NULL: hf_layout_root() */
	const struct hub_repo *repo;
	const char *revision; /* as asked; a ref is written unless it is a commit id */
	const char *commit;
};

/* Starts the watchdog of a --hf-cache mount: a child process that waits until this process
 * is gone, however it ends (kill -9 included), then takes out the entries of every manifest
 * under cache_dir that no live mount holds, so a dead daemon's links into its mount do not
 * outlive it, and exits. Call before any thread or LMDB handle exists (it forks). The child
 * closes ready_fd (>= 0: the pipe the starting command waits on) and writes its one line to
 * log_path (NULL: /dev/null). 0 in this process, -errno when it could not start. */
int hf_bridge_watch(const char *cache_dir, const char *log_path, int ready_fd);

/* Takes out what --hf-cache mounts that ended without cleaning up left in the Hugging Face
 * cache (hf_manifest_sweep() of cache_dir), logging it. Any mount calls it: whichever comes
 * next repairs. */
void hf_bridge_sweep(const char *cache_dir);

/* Cleans what mounts that ended without cleaning left (hf_manifest_sweep()), then adds the
 * entries of every file of t and logs what it did. *ret gets the manifest, for
 * hf_manifest_undo() at unmount. -EINVAL (a repo id or revision the layout cannot hold),
 * -errno of the HF cache (then everything added so far is taken out again, and it says why). */
int hf_bridge_add(const struct hf_bridge_opts *o, const struct inode_table *t,
		  struct hf_manifest **ret);
