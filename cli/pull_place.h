/* pull_place.h: where `hffs pull` puts a verified file. Each lands at its final path whole or
 * not at all: its bytes go to a temporary name in the same directory, are synced, then renamed
 * (a temporary left by a kill is overwritten by the next pull of that file). The bytes are
 * shared with hffs's cache where the file system can (a reflink, FICLONE), else copied in the
 * kernel (copy_file_range); never hard-linked (docs/design.md, "hffs pull").
 * Two layouts:
 * - local: DIR/<path>, with the download metadata huggingface_hub writes there
 *   (DIR/.cache/huggingface/download/<path>.metadata: commit, etag, time), so a later
 *   `hf download --local-dir DIR` finds the files up to date;
 * - hub: the Hugging Face hub cache as `hf download` leaves it (cache/hf_layout.h): the blob
 *   under blobs/<etag>, the relative link snapshots/<commit>/<path>, and refs/<revision> once
 *   every file is in place; what another client stored there is never replaced.
 * Caller's thread; blocking (disk). */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/pull.h"

struct pull_place {
	const char *local_dir; /* absolute; NULL: the hub cache */
	const char *hub_cache; /* absolute: the hub cache root (hub layout) */
	unsigned reflinked, copied, kept; /* files shared by reflink, copied, already there */
	char repo_dir[PATH_MAX]; /* hub layout: the repo's folder, set by pull_place_begin() */
};

/* Creates the folder the layout needs for i (the repo's folder in the hub cache, or the local
 * dir with its .cache/huggingface). 0, or -errno with the words in why. */
int pull_place_begin(struct pull_place *pp, const struct pull_info *i, char *why, size_t len);
/* Once every file is in place, hub layout: the snapshot folder exists (also when no file was
 * selected), and refs/<revision> holds the commit when the revision is not that commit (a
 * branch that moved is updated, as the official clients do). 0, or -errno with the words in
 * why. */
int pull_place_finish(struct pull_place *pp, const struct pull_info *i, char *why, size_t len);
/* Puts f, whose verified bytes fd holds (-1: empty), at its final place for i. 0, or -errno
 * with the words in f->error. */
int pull_place_file(struct pull_place *pp, const struct pull_info *i, struct pull_file *f, int fd);
/* The folder the pull delivers into: the snapshot folder (hub) or the local dir. After
 * pull_place_begin(); malloc'd, NULL on OOM. */
char *pull_place_root(const struct pull_place *pp, const struct pull_info *i);

/* Writes the len bytes of src into a new file at path (mode 0644 less the umask; replacing a
 * leftover there), sharing them by FICLONE when the file system can, else copying them in the
 * kernel; syncs it. Sets *ret_cloned. 0 or -errno (the file is removed then). */
int pull_place_clone(int src, uint64_t len, const char *path, bool *ret_cloned);
