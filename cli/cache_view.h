/* cache_view.h: what the `hffs cache` subcommands read of a cache directory: its index, opened
 * without creating one; its refs, trees and live mounts, read once; its blob records, when
 * asked; the pins of the live mounts (cache/pins). Single thread; blocking (LMDB, /proc). Logs
 * what it could not read; prints nothing else and knows no subcommand. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/blob.h"
#include "cache/cache.h"
#include "cache/db.h"
#include "cache/evict.h"
#include "cache/tree.h"

/* A ref of the index: revision of repo_key names commit. */
struct cache_view_ref {
	char *repo_key;
	char *revision;
	char commit[41];
};

/* The cached tree (file list) of repo_key at commit. A tree this build cannot read is kept,
 * marked: what uses it is left alone. */
struct cache_view_tree {
	char *repo_key;
	char commit[41];
	struct tree tree; /* empty when unreadable */
	bool unreadable;
};

/* A blob record. */
struct cache_view_blob {
	char cid[CID_MAX];
	struct blob_rec rec;
};

/* The refs, trees and live mounts of the index, read once; refs and trees come in repo key
 * order, as the index keeps them. Blob records only after cache_view_load_blobs(). */
struct cache_view {
	const char *dir; /* borrowed */
	struct cache *cache;
	struct cache_db *db; /* cache_index(cache) */
	struct cache_view_ref *refs;
	size_t nrefs;
	struct cache_view_tree *trees;
	size_t ntrees;
	struct db_mount *mounts; /* only those whose daemon is alive */
	size_t nmounts;
	struct cache_view_blob *blobs; /* in cid order (the index's key order is strcmp order) */
	size_t nblobs, blobs_cap;
};

/* Opens the index of dir (borrowed; it must outlive v) into a zeroed v, without creating one.
 * 1 when opened, 0 when there is none (the caller says so), -errno with the reason logged
 * (-EPROTONOSUPPORT: another version's index, left untouched). */
int cache_view_open(struct cache_view *v, const char *dir);
/* Frees what v read and closes its index; also takes a zeroed v. */
void cache_view_done(struct cache_view *v);

/* Reads refs, trees and live mounts, replacing what an earlier call read (pointers into that
 * go stale); the blob records, and pointers into them, stay as they are. 0, or -errno
 * (-ENOMEM, the index's) with the reason logged. */
int cache_view_load(struct cache_view *v);
/* Reads every blob record; once. 0, or -errno (-ENOMEM, the index's) with the reason logged. */
int cache_view_load_blobs(struct cache_view *v);

/* The tree of repo_key at commit, or NULL. */
const struct cache_view_tree *cache_view_find_tree(const struct cache_view *v, const char *repo_key,
						   const char *commit);
/* The live mount of repo_key at commit (any commit when NULL), or NULL. */
const struct db_mount *cache_view_find_mount(const struct cache_view *v, const char *repo_key,
					     const char *commit);
/* The blob record of cid, or NULL. */
const struct cache_view_blob *cache_view_find_blob(const struct cache_view *v, const char *cid);

/* Adds the blobs of every live mount to pins, as the index holds them now. -EBADMSG when it
 * cannot be told what a mount uses (the caller removes nothing), -ENOMEM, or the index's
 * -errno; logged. */
int cache_view_pins(struct cache_view *v, struct evict_pins *pins);

/* "models/org/name" -> "org/name": the form people type. Points into repo_key. */
const char *cache_view_repo_display(const char *repo_key);
