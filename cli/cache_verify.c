/* cache_verify.c: `hffs cache verify [REPO[@REV]]`, and through it `hffs verify`: rehashes
 * the complete blobs (all, or those of REPO[@REV]'s trees) against their cids, then drops the
 * blocks of the bad ones no live mount uses, under the eviction lock, so they are fetched
 * again. Single thread; the hashing takes no lock (it can take minutes). */
#include "cli/cache_verify.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/blob.h"
#include "cache/db.h"
#include "cache/evict.h"
#include "cache/verify.h"
#include "cache/pins.h"
#include "util/cleanup.h"
#include "util/jsonw.h"
#include "util/log.h"
#include "util/parse.h"

enum bad_kind {
	BAD_MISMATCH, /* hashes to something else */
	BAD_SHORT, /* the data file is shorter than the blob */
	BAD_MISSING, /* the data file is gone */
};

static const char *const bad_kind_str[] = {
	[BAD_MISMATCH] = "mismatch",
	[BAD_SHORT] = "short",
	[BAD_MISSING] = "missing",
};

struct bad_blob {
	const struct cache_view_blob *row;
	enum bad_kind kind;
	char actual[CID_MAX];
	const struct db_mount *in_use; /* set: left as is */
	bool dropped;
};

struct verify_ctx {
	struct cache_view *v;
	struct evict_pins only; /* with REPO[@REV]: the blobs to check */
	bool selected;
	size_t checked, good, partial, errors;
	size_t retried; /* bad blobs with no block left, released for another fetch */
	uint64_t bytes;
	struct bad_blob *bad;
	size_t nbad;
};

/* Hashes one complete blob. 0 good, 1 bad (filled in), -errno when it could not be read. */
static int verify_one(const struct verify_ctx *c, const struct cache_view_blob *b,
		      struct bad_blob *ret)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->row = b;
	r = cache_blob_path(c->v->cache, b->cid, path, sizeof(path));
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		ret->kind = BAD_MISSING;
		return 1;
	}
	if (fd < 0)
		return -errno;
	r = verify_fd(fd, b->rec.size, (enum blob_hash)b->rec.hash, b->cid, ret->actual);
	if (r == -EIO) {
		ret->kind = ret->actual[0] ? BAD_MISMATCH : BAD_SHORT;
		return 1;
	}
	return r;
}

static bool verify_wanted(struct verify_ctx *c, const struct cache_view_blob *b)
{
	if (c->selected && !evict_pins_has(&c->only, b->cid))
		return false;
	return b->rec.size > 0;
}

static int verify_all(struct verify_ctx *c)
{
	c->bad = calloc(c->v->nblobs + 1, sizeof(*c->bad));
	if (!c->bad)
		return -ENOMEM;
	for (size_t i = 0; i < c->v->nblobs; i++) {
		const struct cache_view_blob *b = &c->v->blobs[i];
		int r;

		if (!verify_wanted(c, b))
			continue;
		/* Failed its hash before (a mount may have given it up after two failures):
		 * nothing to hash; it may be fetched again, by a live mount too. */
		if (b->rec.state == BLOB_BAD && !b->rec.blocks_present) {
			r = db_blob_set_state(c->v->db, b->cid, BLOB_PARTIAL);
			if (r < 0)
				log_err("cannot release %s for another fetch: %s", b->cid,
					strerror(-r));
			else
				c->retried++;
			continue;
		}
		if (b->rec.state != BLOB_COMPLETE && b->rec.state != BLOB_VERIFIED) {
			c->partial += b->rec.state == BLOB_PARTIAL && b->rec.blocks_present > 0;
			continue;
		}
		r = verify_one(c, b, &c->bad[c->nbad]);
		c->checked++;
		c->bytes += b->rec.size;
		if (r == 1) {
			c->nbad++;
		} else if (r < 0) {
			log_err("cannot verify %s: %s", b->cid, strerror(-r));
			c->errors++;
		} else {
			c->good++;
			if (b->rec.state == BLOB_COMPLETE)
				(void)db_blob_set_state(c->v->db, b->cid, BLOB_VERIFIED);
		}
	}
	return 0;
}

/* The live mount (fresh from the index) whose blobs include cid, or NULL. */
static const struct db_mount *verify_user(struct cache_view *v, const char *cid)
{
	for (size_t i = 0; i < v->nmounts; i++) {
		const struct db_mount *m = &v->mounts[i];
		const struct cache_view_tree *t = cache_view_find_tree(v, m->repo_key, m->commit);

		if (!t || t->unreadable)
			return m; /* unknown: treat as used */
		for (size_t k = 0; k < t->tree.n; k++)
			if (tree_entry_has_data(&t->tree.v[k]) && !strcmp(t->tree.v[k].cid, cid))
				return m;
	}
	return NULL;
}

/* Drops the bits of each bad blob no live mount uses (the blocks are fetched again when
 * read), then frees its disk space: bits before bytes, so no bit claims a punched block. A
 * live mount serves from its own view of the bits, so its blobs are left for it. */
static int verify_drop(struct verify_ctx *c)
{
	int fd = evict_lock(c->v->dir, true), r = 0;

	if (fd < 0) {
		log_err("cannot take the eviction lock of '%s': %s", c->v->dir, strerror(-fd));
		return fd;
	}
	r = cache_view_load(c->v);
	for (size_t i = 0; r >= 0 && i < c->nbad; i++) {
		struct bad_blob *b = &c->bad[i];
		char path[PATH_MAX];
		int bfd;

		b->in_use = verify_user(c->v, b->row->cid);
		if (b->in_use)
			continue;
		r = db_blob_set_state(c->v->db, b->row->cid, BLOB_BAD);
		if (r < 0) {
			log_err("cannot mark %s bad: %s", b->row->cid, strerror(-r));
			break;
		}
		b->dropped = true;
		if (cache_blob_path(c->v->cache, b->row->cid, path, sizeof(path)) < 0)
			continue;
		bfd = open(path, O_WRONLY | O_CLOEXEC);
		if (bfd >= 0) {
			(void)blob_punch(bfd, 0, b->row->rec.size);
			close(bfd);
		}
	}
	close(fd);
	return r;
}

/* "models/org/name: path" of the first tree file whose content is cid, into buf. */
static const char *blob_name(const struct cache_view *v, const char *cid, char *buf, size_t len)
{
	for (size_t i = 0; i < v->ntrees; i++) {
		const struct cache_view_tree *t = &v->trees[i];

		for (size_t k = 0; k < t->tree.n; k++) {
			if (!tree_entry_has_data(&t->tree.v[k]) || strcmp(t->tree.v[k].cid, cid))
				continue;
			snprintf(buf, len, "%s: %s", cache_view_repo_display(t->repo_key),
				 t->tree.v[k].path);
			return buf;
		}
	}
	snprintf(buf, len, "(no file list names it)");
	return buf;
}

static void verify_bad_text(const struct verify_ctx *c, const struct bad_blob *b)
{
	const char *kind = b->row->rec.hash == BLOB_HASH_SHA256 ? "sha256" : "git sha1";
	char name[512];

	printf("bad: %s (%s %s): ", blob_name(c->v, b->row->cid, name, sizeof(name)), kind,
	       b->row->cid);
	if (b->kind == BAD_MISMATCH)
		printf("the data hashes to %s", b->actual);
	else if (b->kind == BAD_SHORT)
		printf("the data file is shorter than the file");
	else
		printf("the data file is missing");
	if (b->dropped)
		printf("; its blocks were dropped and will be fetched again\n");
	else if (b->in_use)
		printf("; left as is, the mount at '%s' uses it: unmount it and verify again\n",
		       b->in_use->mountpoint);
	else
		putchar('\n');
}

static void verify_report_json(const struct verify_ctx *c)
{
	struct jsonw w;
	char name[512];

	jsonw_init(&w, stdout);
	jsonw_begin_object(&w, NULL);
	jsonw_string(&w, "cache_dir", c->v->dir);
	jsonw_uint(&w, "checked", c->checked);
	jsonw_uint(&w, "bytes_checked", c->bytes);
	jsonw_uint(&w, "good", c->good);
	jsonw_uint(&w, "partial_skipped", c->partial);
	jsonw_uint(&w, "errors", c->errors);
	jsonw_uint(&w, "retried", c->retried);
	jsonw_begin_array(&w, "bad");
	for (size_t i = 0; i < c->nbad; i++) {
		const struct bad_blob *b = &c->bad[i];

		jsonw_begin_object(&w, NULL);
		jsonw_string(&w, "cid", b->row->cid);
		jsonw_string(&w, "file", blob_name(c->v, b->row->cid, name, sizeof(name)));
		jsonw_string(&w, "reason", bad_kind_str[b->kind]);
		jsonw_string(&w, "actual", b->kind == BAD_MISMATCH ? b->actual : NULL);
		jsonw_bool(&w, "dropped", b->dropped);
		jsonw_string(&w, "in_use_by", b->in_use ? b->in_use->mountpoint : NULL);
		jsonw_end_object(&w);
	}
	jsonw_end_array(&w);
	jsonw_end_object(&w);
}

static void verify_report(const struct verify_ctx *c, bool json)
{
	char a[32];

	if (json) {
		verify_report_json(c);
		return;
	}
	for (size_t i = 0; i < c->nbad; i++)
		verify_bad_text(c, &c->bad[i]);
	printf("checked %zu blob%s (%s): %zu good, %zu bad", c->checked, c->checked == 1 ? "" : "s",
	       format_size(c->bytes, a, sizeof(a)), c->good, c->nbad);
	if (c->errors)
		printf(", %zu unreadable", c->errors);
	if (c->partial)
		printf("; %zu partial blob%s not checked", c->partial, c->partial == 1 ? "" : "s");
	if (c->retried)
		printf("; %zu blob%s that failed a hash before will be fetched again", c->retried,
		       c->retried == 1 ? "" : "s");
	putchar('\n');
}

/* With REPO[@REV]: the blobs of its trees. */
static int verify_select(struct verify_ctx *c, const struct cache_target *t)
{
	bool any = false;

	for (size_t i = 0; i < c->v->ntrees; i++) {
		const struct cache_view_tree *tr = &c->v->trees[i];
		int r;

		if (!cache_target_has_tree(t, c->v, tr))
			continue;
		any = true;
		r = pins_add_tree(&c->only, &tr->tree);
		if (r < 0)
			return r;
	}
	if (!any) {
		log_err("%s is not in the cache at %s", t->spec, c->v->dir);
		return -ENOENT;
	}
	c->selected = true;
	return 0;
}

int cli_cache_verify(struct cache_view *v, const struct cache_target *t, bool json)
{
	struct verify_ctx c = { .v = v };
	int r = t ? verify_select(&c, t) : 0;

	if (r >= 0)
		r = cache_view_load_blobs(v);
	if (r >= 0)
		r = verify_all(&c);
	if (r >= 0 && c.nbad)
		r = verify_drop(&c);
	if (r >= 0)
		verify_report(&c, json);
	free(c.bad);
	evict_pins_done(&c.only);
	return r < 0 || c.nbad || c.errors ? 1 : 0;
}
