/* hub_tree.h: a repo's file tree at a commit, as the Hub lists it (HUB_PROTOCOL.md 3), and
 * the check that refuses a hostile one (HUB_PROTOCOL.md 10). A value type; pure; any thread,
 * one tree per thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch/hub_error.h"

struct hub_entry {
	char *path; /* full path from the repo root, validated by hub_tree_validate() */
	uint64_t size;
	bool is_dir;
	bool is_lfs;
	char oid[41]; /* git oid (LFS: of the pointer, "" from the cache); "" for some directories */
	char sha256[65]; /* lfs.oid, when is_lfs */
};

struct hub_tree {
	struct hub_entry *v;
	size_t n, cap;
};

/* Rejects hostile trees (HUB_PROTOCOL.md 10): empty, absolute, '\\'-containing, ".." or "."
 * or empty segments (so no trailing '/'), control characters (0x01-0x1f, 0x7f), a segment over
 * 255 bytes or a path over 4095, duplicate paths (a file and a directory of one path too), a
 * file whose parent is a file, an LFS entry without a valid sha256, a file oid that is not 40
 * lowercase hex (a directory's, or an LFS file's, may be "": a tree from the cache keeps only
 * content ids). An empty tree is valid. -EBADMSG with the offending
 * path, quoted and escaped to one line, in err; -ENOMEM. O(n log n). */
int hub_tree_validate(const struct hub_tree *tree, struct hub_error *err);
/* Content id of an entry: sha256 for LFS, else the git oid. */
const char *hub_entry_cid(const struct hub_entry *e);
/* Whether e is a file with bytes to cache (directories and empty files have no data file). */
bool hub_entry_has_data(const struct hub_entry *e);
/* Appends *e, taking e->path on success. -ENOMEM (then e->path is still the caller's). */
int hub_tree_push(struct hub_tree *tree, const struct hub_entry *e);
/* Frees the entries from index n on (n <= tree->n): undoes pushes after a failure. */
void hub_tree_truncate(struct hub_tree *tree, size_t n);
/* Frees every entry and the array; tree is empty afterwards. */
void hub_tree_done(struct hub_tree *tree);
