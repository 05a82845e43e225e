/* snapshot.c: revision -> commit -> tree, from the Hub or the cache index, and the one place
 * that writes the cache's tree record (from the inode table of a listed tree; it converts
 * trees older indexes stored as JSON too). Mount thread. */
#include "fs/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/tree.h"
#include "fetch/hub_json.h"
#include "util/cleanup.h"
#include "util/log.h"

static bool is_commit_sha(const char *s)
{
	size_t n = strspn(s, "0123456789abcdef");

	return n == 40 && !s[n];
}

/* Failures after which a cached commit may stand in (the Hub said nothing about the repo). */
static bool is_unreachable(enum fetch_reason r)
{
	switch (r) {
	case FETCH_DNS:
	case FETCH_CONNECT:
	case FETCH_TLS:
	case FETCH_TIMEOUT:
	case FETCH_STALL:
	case FETCH_SERVER:
	case FETCH_RATE_LIMITED:
	case FETCH_OFFLINE:
		return true;
	default:
		return false;
	}
}

static int resolve_commit(const struct hub_config *cfg, struct cache_db *db, struct snapshot *s,
			  struct hub_error *err)
{
	int r = -ENETDOWN;

	if (!cfg->offline) {
		struct hub_repo_info info;

		r = hub_repo_info(cfg, &s->repo, s->revision, &info, err);
		if (r >= 0) {
			memcpy(s->commit, info.commit, sizeof(s->commit));
			s->commit_time = info.last_modified;
			(void)db_ref_put(db, s->repo_key, s->revision, s->commit);
			return 0;
		}
		if (!is_unreachable(err->reason))
			return r;
	} else {
		err->reason = FETCH_OFFLINE;
		snprintf(err->message, sizeof(err->message), "offline mode (HF_HUB_OFFLINE)");
	}
	/* A full sha needs no ref; a branch maps to the last commit seen for it. */
	if (is_commit_sha(s->revision)) {
		memcpy(s->commit, s->revision, sizeof(s->commit));
	} else if (db_ref_get(db, s->repo_key, s->revision, s->commit) < 0) {
		char why[sizeof(err->message)];

		snprintf(why, sizeof(why), "%s", err->message);
		snprintf(err->message, sizeof(err->message),
			 "%.200s, and revision '%.80s' of '%.96s' was never resolved in this cache",
			 why, s->revision, s->repo.id);
		return r < 0 ? r : -ENETDOWN;
	}
	s->ref_from_cache = true;
	if (!cfg->offline)
		log_warn(
			"the Hub cannot be reached (%s); using commit %.12s of '%s', last seen for "
			"revision '%s'",
			err->message, s->commit, s->repo.id, s->revision);
	return 0;
}

/* Gated repos list their tree to anyone; their files need an approved account. One HEAD of
 * the smallest file says so before anything is mounted, instead of EIO on every read. */
static int check_access(const struct hub_config *cfg, const struct snapshot *s,
			struct hub_error *err)
{
	const struct hub_entry *probe = NULL;
	int r;

	for (size_t i = 0; i < s->tree.n; i++) {
		const struct hub_entry *e = &s->tree.v[i];

		if (hub_entry_has_data(e) && (!probe || e->size < probe->size))
			probe = e;
	}
	if (!probe)
		return 0;
	r = hub_check_access(cfg, &s->repo, s->commit, probe->path, err);
	if (r < 0 && fetch_reason_is_transient(err->reason)) {
		/* Only a refusal stops the mount; reads retry what is passing. */
		log_warn("could not check access to the files of '%s' (%s); mounting anyway",
			 s->repo.id, err->message);
		return 0;
	}
	return r;
}

/* The cache's record of a validated Hub tree. -ENOMEM, -EINVAL (an entry the record cannot
 * hold). */
static int tree_from_hub(const struct hub_tree *h, struct tree *ret)
{
	int r = 0;

	/* Sized at once: doubling would hold up to twice the entries of a huge tree. */
	*ret = (struct tree){ .v = reallocarray(NULL, h->n ? h->n : 1, sizeof(*ret->v)),
			      .cap = h->n };
	if (!ret->v)
		return -ENOMEM;
	for (size_t i = 0; r >= 0 && i < h->n; i++) {
		const struct hub_entry *e = &h->v[i];

		r = tree_push(ret, e->path, e->is_dir, e->size,
			      e->is_lfs ? BLOB_HASH_SHA256 : BLOB_HASH_GITSHA1,
			      e->is_dir ? NULL : hub_entry_cid(e));
	}
	if (r < 0)
		tree_done(ret);
	return r;
}

/* A Hub tree from the cache's record, for the inode table and the path checks: an LFS
 * file's content id is its sha256, the pointer's git oid is not kept. The paths move from
 * the record (taken from t, which is freed), so a huge tree is not held twice. -ENOMEM. */
static int tree_to_hub(struct tree *t, struct hub_tree *ret)
{
	int r = 0;

	ret->v = reallocarray(NULL, t->n ? t->n : 1, sizeof(*ret->v));
	ret->cap = t->n;
	for (size_t i = 0; ret->v && i < t->n; i++) {
		struct tree_entry *e = &t->v[i];
		struct hub_entry h = { .size = e->size, .is_dir = e->is_dir, .path = e->path };

		h.is_lfs = !e->is_dir && e->hash == BLOB_HASH_SHA256;
		if (h.is_lfs)
			snprintf(h.sha256, sizeof(h.sha256), "%s", e->cid);
		else
			snprintf(h.oid, sizeof(h.oid), "%.40s", e->cid);
		ret->v[ret->n++] = h;
		e->path = NULL;
	}
	if (!ret->v) {
		ret->cap = 0;
		r = -ENOMEM;
	}
	tree_done(t);
	return r;
}

struct legacy_list {
	char (*keys)[2][256];
	size_t n;
};

static int collect_legacy(void *ud, const char *repo_key, const char *commit, const void *data,
			  size_t len)
{
	struct legacy_list *l = ud;
	char(*p)[2][256];

	if (!tree_is_legacy(data, len) || strlen(repo_key) >= 256 || strlen(commit) >= 256)
		return 0;
	p = reallocarray(l->keys, l->n + 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	l->keys = p;
	snprintf(l->keys[l->n][0], 256, "%s", repo_key);
	snprintf(l->keys[l->n][1], 256, "%s", commit);
	l->n++;
	return 0;
}

/* One tree stored as the Hub's JSON rewritten as the cache's record. A tree that does not
 * parse is left as it is: a mount of it lists it again, and overwrites it. */
static int convert_legacy(struct cache_db *db, const char *repo_key, const char *commit)
{
	_cleanup_free_ char *json = NULL;
	struct hub_tree h = { 0 };
	struct tree t = { 0 };
	size_t len;
	int r = db_tree_get(db, repo_key, commit, &json, &len);

	if (r == 0 && tree_is_legacy(json, len) && hub_json_tree_page(json, len, &h) == 0 &&
	    tree_from_hub(&h, &t) == 0)
		r = tree_put(db, repo_key, commit, &t);
	hub_tree_done(&h);
	tree_done(&t);
	return r;
}

/* Indexes written before the cache had its own tree record hold the Hub's JSON under the
 * same key (its first byte tells). They are converted here, once, rather than refused: the
 * blobs a populated cache holds stay valid, and offline mounts keep working. Only fs/ can do
 * it: cache/ does not read JSON. */
static void convert_legacy_trees(struct cache_db *db)
{
	struct legacy_list l = { 0 };
	size_t done = 0;

	if (db_tree_foreach(db, collect_legacy, &l) >= 0)
		for (size_t i = 0; i < l.n; i++)
			done += convert_legacy(db, l.keys[i][0], l.keys[i][1]) == 0;
	if (done)
		log_info("converted %zu cached file lists to this version's format", done);
	free(l.keys);
}

static int load_tree(const struct hub_config *cfg, struct cache_db *db, unsigned page_limit,
		     struct snapshot *s, struct hub_error *err)
{
	struct tree rec;
	int r;

	convert_legacy_trees(db);
	r = tree_get(db, s->repo_key, s->commit, &rec);
	if (r >= 0) {
		/* The record's date first: every mount of the commit shows the same times. */
		s->record_lacks_time = !rec.commit_time && s->commit_time;
		if (rec.commit_time)
			s->commit_time = rec.commit_time;
		r = tree_to_hub(&rec, &s->tree);
		if (r < 0)
			return r;
		s->tree_from_cache = true;
		return 0;
	}
	if (r != -ENOENT)
		log_warn("the cached tree of %.12s is unreadable (%s); listing it again", s->commit,
			 strerror(-r));
	if (cfg->offline || s->ref_from_cache) {
		err->reason = cfg->offline ? FETCH_OFFLINE : err->reason;
		snprintf(err->message, sizeof(err->message),
			 "the file list of '%s' at %.12s is not in the cache and the Hub %s",
			 s->repo.id, s->commit,
			 cfg->offline ? "may not be used (offline mode)" : "cannot be reached");
		return -ENETDOWN;
	}
	r = hub_list_tree(cfg, &s->repo, s->commit, page_limit, &s->tree, err);
	if (r < 0)
		return r;
	/* The listing grew by doubling; give back what it did not use. */
	if (s->tree.n && s->tree.n < s->tree.cap) {
		struct hub_entry *v = reallocarray(s->tree.v, s->tree.n, sizeof(*v));

		if (v) {
			s->tree.v = v;
			s->tree.cap = s->tree.n;
		}
	}
	r = hub_tree_validate(&s->tree, err);
	if (r < 0)
		return r;
	r = check_access(cfg, s, err);
	if (r < 0)
		return r;
	return 0;
}

int snapshot_store_tree(struct cache_db *db, const struct snapshot *s, const struct inode_table *t)
{
	struct tree rec = { .v = reallocarray(NULL, inode_count(t), sizeof(*rec.v)),
			    .cap = inode_count(t),
			    .commit_time = s->commit_time };
	int r = rec.v ? 0 : -ENOMEM;

	if (s->tree_from_cache && !s->record_lacks_time) {
		free(rec.v);
		return 0;
	}
	/* In inode order, the root left out: the table built from this record numbers its
	 * inodes as this one does. */
	for (size_t ino = 2; r >= 0 && ino <= inode_count(t); ino++) {
		const struct inode *e = inode_get(t, ino);

		r = tree_push(&rec, e->path, e->is_dir, e->size,
			      e->is_lfs ? BLOB_HASH_SHA256 : BLOB_HASH_GITSHA1,
			      e->is_dir ? NULL : e->cid);
	}
	if (r >= 0)
		r = tree_put(db, s->repo_key, s->commit, &rec);
	tree_done(&rec);
	if (r < 0)
		log_warn("cannot store the file list of %.12s in the cache: %s", s->commit,
			 strerror(-r));
	return r;
}

int snapshot_load(const struct hub_config *cfg, struct cache_db *db, const char *repo_spec,
		  const char *revision, unsigned page_limit, struct snapshot *ret,
		  struct hub_error *err)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	memset(err, 0, sizeof(*err));
	r = hub_repo_parse(repo_spec, &ret->repo, err);
	if (r < 0)
		return r;
	r = hub_repo_key(&ret->repo, ret->repo_key, sizeof(ret->repo_key));
	if (r < 0)
		return r;
	if (snprintf(ret->revision, sizeof(ret->revision), "%s", revision) >=
	    (int)sizeof(ret->revision)) {
		snprintf(err->message, sizeof(err->message), "revision name too long");
		return -EINVAL;
	}
	r = resolve_commit(cfg, db, ret, err);
	if (r < 0)
		return r;
	r = load_tree(cfg, db, page_limit, ret, err);
	if (r < 0)
		return r;
	/* A cached tree is checked too: the index is a file on disk like any other. */
	return hub_tree_validate(&ret->tree, err);
}

void snapshot_done(struct snapshot *s)
{
	hub_tree_done(&s->tree);
}
