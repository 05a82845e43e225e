/* tree.h: the cache's record of a repo's file tree at one commit, as the index stores it:
 * the commit's date, and for each entry its path, whether it is a directory and, for a file,
 * its size, content id and hash kind. The format is the cache's own (a version byte, then counted little-endian
 * fields), so offline tools read a tree with cache/ alone; fs/snapshot.c writes it from the
 * Hub's listing. The codec is pure (any thread, caller-owned memory); tree_get/tree_put are
 * one index transaction each. The decoder takes untrusted bytes (tests/fuzz/fuzz_db_tree.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/blob.h"
#include "cache/db.h"
#include "cache/verify.h"

/* The first byte of a record. Version 1 had no commit date (it reads as 0); indexes written
 * before the record existed hold the Hub's JSON under the same key, which starts with '['
 * (tree_is_legacy()). */
#define TREE_REC_VERSION 2
/* Longest path a record holds (a repo path is at most 4095 bytes, HUB_PROTOCOL.md 10). */
#define TREE_PATH_MAX 4095

/* Invariants: path is non-empty, without NUL, at most TREE_PATH_MAX bytes; a directory has
 * size 0 and cid ""; a file's cid is valid for its hash kind (64 hex digits for sha256, 40 for
 * a git sha1). Paths are not checked further: the reader that builds a file system from them
 * validates them (fs/snapshot.c). */
struct tree_entry {
	char *path;
	uint64_t size;
	bool is_dir;
	uint8_t hash; /* enum blob_hash of cid; files only */
	char cid[CID_MAX];
};

struct tree {
	struct tree_entry *v;
	size_t n, cap;
	uint64_t commit_time; /* the commit's date, unix seconds; 0: unknown (a version 1 record) */
};

/* Appends a directory (cid NULL) or a file, copying path and cid. -EINVAL when the entry
 * breaks the invariants above, -ENOMEM. */
int tree_push(struct tree *t, const char *path, bool is_dir, uint64_t size, enum blob_hash hash,
	      const char *cid);
/* Frees every entry and the array; t is empty afterwards. */
void tree_done(struct tree *t);
/* Whether e is a file with bytes to cache (directories and empty files have no data file). */
bool tree_entry_has_data(const struct tree_entry *e);

/* The record of t, malloc'd (the caller frees), its length in *ret_len. NULL on OOM. */
uint8_t *tree_encode(const struct tree *t, size_t *ret_len);
/* Decodes a record (this version or 1) into an empty *ret. -EBADMSG: another version (a
 * legacy JSON tree included), a field that overruns the record, an entry that breaks the invariants, an
 * entry count the bytes cannot hold, or bytes left over; -ENOMEM. *ret is empty on failure. */
int tree_decode(const void *data, size_t len, struct tree *ret);
/* Whether data is a tree as indexes before TREE_REC_VERSION stored it (the Hub's JSON). */
bool tree_is_legacy(const void *data, size_t len);

/* The tree of repo_key at commit, decoded into an empty *ret. -ENOENT, -EBADMSG (also for a
 * legacy tree not converted yet), -ENOMEM, or the index's -errno. */
int tree_get(struct cache_db *db, const char *repo_key, const char *commit, struct tree *ret);
/* Stores t as the tree of repo_key at commit, replacing any. -ENOMEM, the index's -errno. */
int tree_put(struct cache_db *db, const char *repo_key, const char *commit, const struct tree *t);
