/* snapshot.h: the pinned snapshot of a repo: the commit a revision resolves to and the tree
 * at that commit. It asks the Hub when it may and can, and falls back on the cache index
 * (refs and trees) when offline or when the Hub cannot be reached, as the official client
 * serves cached files (HUB_PROTOCOL.md 5, 8). Mount thread only; blocks on the network. */
#pragma once

#include <stdbool.h>

#include "cache/db.h"
#include "fetch/hub.h"
#include "fs/inode.h"

struct snapshot {
	struct hub_repo repo;
	char repo_key[160]; /* "models/org/name" */
	char revision[256]; /* as asked */
	char commit[41];
	struct hub_tree tree; /* validated */
	bool ref_from_cache; /* the commit came from the cache: offline, or the Hub unreachable */
	bool tree_from_cache;
	/* The commit's date (unix seconds; 0: unknown): from the cached tree record, else the
	 * Hub's revision reply; every file's mtime, the same at every mount of the commit. */
	uint64_t commit_time;
	bool record_lacks_time; /* the cached record predates the date: store it again */
};

/* Resolves revision of repo_spec and loads its tree, recording the commit in db (the tree is
 * recorded by snapshot_store_tree()). Trees an older hffs stored as the Hub's JSON are
 * converted to records on the way, every one in the index, once. page_limit > 0 asks the Hub
 * for tree pages of that size. Errors: -EINVAL (bad repo id), the Hub's errno
 * (-ENOENT, -EACCES, ...) or, offline with nothing cached, -ENETDOWN; err says it in words. */
int snapshot_load(const struct hub_config *cfg, struct cache_db *db, const char *repo_spec,
		  const char *revision, unsigned page_limit, struct snapshot *ret,
		  struct hub_error *err);
void snapshot_done(struct snapshot *s);
/* Records the tree of a snapshot listed from the Hub in db as the cache's record
 * (cache/tree.h), with the commit's date, from t, the inode table built from it: stored once
 * the listing is freed, a huge tree is never held three times (listing, record, encoding).
 * Nothing for a tree that came from the cache, unless its record lacked the date the Hub
 * gave now. Logs a failure (the mount goes on: the next one lists again). -ENOMEM,
 * the index's -errno. */
int snapshot_store_tree(struct cache_db *db, const struct snapshot *s, const struct inode_table *t);
