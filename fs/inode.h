/* inode.h: the repo's tree at one commit as inodes. Built once from a validated hub_tree and
 * never changed afterwards (a commit is immutable), so every thread reads it without locks.
 * Directories the tree implies but does not list are created. Inode 1 is the root. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch/hub.h"

struct inode {
	uint64_t ino;
	uint64_t parent;
	char *path; /* "" for the root, else the repo path */
	const char *name; /* last component of path (points into it) */
	bool is_dir;
	bool is_lfs;
	uint64_t size; /* 0 for directories */
	char cid[65]; /* content id (files); "" for directories */
	uint64_t *children; /* directories: child inode numbers sorted by name */
	size_t nchildren;
};

struct inode_table;

/* Builds the table from tree (borrowed; the table copies what it keeps). tree must have
 * passed hub_tree_validate(). -ENOMEM, -EBADMSG (a path both a file and a directory). */
int inode_table_new(const struct hub_tree *tree, struct inode_table **ret);
struct inode_table *inode_table_free(struct inode_table *t);

/* NULL when ino is unknown. */
const struct inode *inode_get(const struct inode_table *t, uint64_t ino);
/* The child of directory parent called name, or NULL. */
const struct inode *inode_lookup(const struct inode_table *t, uint64_t parent, const char *name);
/* Number of inodes, the root included; inodes are numbered 1..count. */
size_t inode_count(const struct inode_table *t);
