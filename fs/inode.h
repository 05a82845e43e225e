/* inode.h: the repo's tree at one commit as inodes. Built once from a validated hub_tree and
 * never changed afterwards (a commit is immutable), so every thread reads it without locks.
 * Directories the tree implies but does not list are created. Inode 1 is the root.
 *
 * Its memory does not grow with the tree beyond the bytes it must keep: fixed records in one
 * array, every path and content id in one string pool, every directory's children in one
 * index array; no allocation per entry (a 200,000-file tree takes ~25 MB, docs/design.md). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch/hub.h"

/* Every pointer points into the table, valid for its life. */
struct inode {
	const char *path; /* "" for the root, else the repo path */
	const char *name; /* last component of path (points into it) */
	const char *cid; /* content id (files); "" for directories */
	const uint32_t *children; /* directories: child inode numbers sorted by name (strcmp) */
	uint64_t size; /* 0 for directories */
	uint32_t ino;
	uint32_t parent; /* the root is its own parent */
	uint32_t nchildren;
	bool is_dir;
	bool is_lfs;
};

struct inode_table;

/* Builds the table from tree (borrowed; the table copies what it keeps, so tree may be freed
 * afterwards). tree must have passed hub_tree_validate(). -ENOMEM, -EBADMSG (a path both a
 * file and a directory), -EFBIG (more than UINT32_MAX - 1 inodes). */
int inode_table_new(const struct hub_tree *tree, struct inode_table **ret);
struct inode_table *inode_table_free(struct inode_table *t);

/* NULL when ino is unknown. */
const struct inode *inode_get(const struct inode_table *t, uint64_t ino);
/* The child of directory parent called name, or NULL. O(log children). */
const struct inode *inode_lookup(const struct inode_table *t, uint64_t parent, const char *name);
/* Number of inodes, the root included; inodes are numbered 1..count. */
size_t inode_count(const struct inode_table *t);
/* Whether f is a file with bytes to cache (directories and empty files have no data file). */
bool inode_has_data(const struct inode *f);
