/* evict.c: the cache's budget: least recently used blobs out until the data files fit, and
 * orphans (files without records, records claiming blocks of files that are gone) out.
 * Runs on the caller's thread and blocks on the file system; holds no state. Knows blobs by
 * their records and files only: which ones live mounts use comes in as pins. */
#include "cache/evict.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cache/db.h"
#include "util/cleanup.h"
#include "util/log.h"

/* ---- pins ---- */

static int cid_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

int evict_pins_add(struct evict_pins *p, const char *cid)
{
	if (!blob_cid_is_valid(cid))
		return -EINVAL;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		char(*v)[CID_MAX] = reallocarray(p->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->v = v;
		p->cap = cap;
	}
	memcpy(p->v[p->n++], cid, strlen(cid) + 1);
	p->sorted = false;
	return 0;
}

static void pins_sort(struct evict_pins *p)
{
	size_t k = 0;

	if (p->sorted)
		return;
	qsort(p->v, p->n, sizeof(*p->v), cid_cmp);
	/* Mounts of two revisions share most of their blobs: keep each once. */
	for (size_t i = 0; i < p->n; i++)
		if (k == 0 || strcmp(p->v[k - 1], p->v[i]))
			memmove(p->v[k++], p->v[i], sizeof(*p->v));
	p->n = k;
	p->sorted = true;
}

bool evict_pins_has(struct evict_pins *p, const char *cid)
{
	if (!p || !p->n)
		return false;
	pins_sort(p);
	return bsearch(cid, p->v, p->n, sizeof(*p->v), cid_cmp) != NULL;
}

void evict_pins_done(struct evict_pins *p)
{
	free(p->v);
	*p = (struct evict_pins){ .sorted = false };
}

/* ---- budget math ---- */

int evict_fs_space(const char *cache_dir, uint64_t *ret_total, uint64_t *ret_avail)
{
	struct statvfs sv;

	if (statvfs(cache_dir, &sv) < 0)
		return -errno;
	*ret_total = (uint64_t)sv.f_blocks * sv.f_frsize;
	*ret_avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

uint64_t evict_default_min_free(uint64_t fs_total)
{
	/* Split so that neither part overflows nor loses the remainder. */
	uint64_t pct = fs_total / 100 * EVICT_MIN_FREE_PCT_DEFAULT +
		       fs_total % 100 * EVICT_MIN_FREE_PCT_DEFAULT / 100;

	return pct < EVICT_MIN_FREE_CAP_DEFAULT ? pct : EVICT_MIN_FREE_CAP_DEFAULT;
}

uint64_t evict_need(const struct evict_limits *b, uint64_t usage, uint64_t avail)
{
	uint64_t over = usage > b->max_size ? usage - b->max_size : 0;
	uint64_t under = b->min_free > avail ? b->min_free - avail : 0;

	return over > under ? over : under;
}

/* ---- plan ---- */

struct cand {
	char cid[CID_MAX];
	uint64_t last_access;
	uint64_t disk;
	bool pinned;
};

struct cand_list {
	struct cand *v;
	size_t n, cap;
};

static int collect_cand(void *ud, const char *cid, const struct blob_rec *rec)
{
	struct cand_list *l = ud;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct cand *v = reallocarray(l->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
	memcpy(l->v[l->n].cid, cid, strlen(cid) + 1);
	l->v[l->n++].last_access = rec->last_access;
	return 0;
}

/* Least recently used first; a cid breaks ties so that a plan does not depend on the order
 * records were read. */
static int lru_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->last_access != y->last_access)
		return x->last_access < y->last_access ? -1 : 1;
	return strcmp(x->cid, y->cid);
}

/* Chooses from l (sorted by lru_cmp) the unpinned blobs with data until need is met. */
static int choose(const struct cand_list *l, struct evict_plan *p)
{
	for (size_t i = 0; i < l->n && p->freed < p->need; i++) {
		const struct cand *c = &l->v[i];

		if (c->pinned || c->disk == 0)
			continue;
		if (!p->v) {
			p->v = calloc(l->n, sizeof(*p->v)); /* at most every candidate */
			if (!p->v)
				return -ENOMEM;
		}
		memcpy(p->v[p->n].cid, c->cid, sizeof(c->cid));
		p->v[p->n].disk = c->disk;
		p->v[p->n++].last_access = c->last_access;
		p->freed += c->disk;
	}
	p->met = p->freed >= p->need;
	return 0;
}

int evict_plan(struct cache *cache, const struct evict_limits *b, struct evict_pins *pins,
	       struct evict_plan *ret)
{
	struct cand_list l = { 0 };
	int r;

	*ret = (struct evict_plan){ .met = true };
	r = evict_fs_space(cache_dir(cache), &ret->fs_total, &ret->avail);
	if (r < 0)
		return r;
	r = db_blob_foreach(cache_index(cache), collect_cand, &l);
	if (r < 0) {
		free(l.v);
		return r;
	}
	/* Stats outside the walk: its read transaction stays short. */
	for (size_t i = 0; i < l.n; i++) {
		struct cand *c = &l.v[i];

		c->disk = blob_disk_usage(cache_dir(cache), c->cid);
		c->pinned = evict_pins_has(pins, c->cid);
		ret->usage += c->disk;
		if (c->pinned && c->disk) {
			ret->pinned += c->disk;
			ret->npinned++;
		}
	}
	ret->blobs = l.n;
	ret->need = evict_need(b, ret->usage, ret->avail);
	qsort(l.v, l.n, sizeof(*l.v), lru_cmp);
	r = choose(&l, ret);
	free(l.v);
	log_debug("evict: %llu blobs use %llu bytes, %llu available, %llu to free: %zu chosen "
		  "(%llu bytes)%s",
		  (unsigned long long)ret->blobs, (unsigned long long)ret->usage,
		  (unsigned long long)ret->avail, (unsigned long long)ret->need, ret->n,
		  (unsigned long long)ret->freed, ret->met ? "" : ", not enough");
	return r;
}

void evict_plan_done(struct evict_plan *p)
{
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

/* ---- removal ---- */

int evict_remove(struct cache *cache, const char *cid, uint64_t *ret_freed)
{
	uint64_t disk;
	int r, u;

	if (!blob_cid_is_valid(cid))
		return -EINVAL;
	/* The record goes first: from then on no bit claims the file's bytes, and a crash
	 * before the unlink leaves an orphan file, which evict_orphans() removes. */
	r = db_blob_delete(cache_index(cache), cid);
	if (r < 0 && r != -ENOENT) {
		log_debug("evict: cannot drop the record of '%s': %s", cid, strerror(-r));
		return r;
	}
	disk = blob_disk_usage(cache_dir(cache), cid);
	u = blob_unlink(cache_dir(cache), cid);
	if (u < 0 && u != -ENOENT) {
		log_debug("evict: cannot remove the data file of '%s': %s", cid, strerror(-u));
		return u;
	}
	if (r == -ENOENT && u == -ENOENT)
		return -ENOENT;
	if (ret_freed)
		*ret_freed = u == 0 ? disk : 0;
	return 0;
}

int evict_run(struct cache *cache, const struct evict_plan *plan, struct evict_result *ret)
{
	struct evict_result res = { 0 };
	int r = 0;

	for (size_t i = 0; i < plan->n; i++) {
		uint64_t freed = 0;

		r = evict_remove(cache, plan->v[i].cid, &freed);
		if (r == -ENOENT) {
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		res.removed++;
		res.freed += freed;
	}
	if (ret)
		*ret = res;
	return r;
}

int evict_to_budget(struct cache *cache, const struct evict_limits *b, struct evict_pins *pins,
		    struct evict_plan *ret_plan, struct evict_result *ret_res)
{
	struct evict_plan plan;
	int r;

	if (ret_res)
		*ret_res = (struct evict_result){ 0 };
	r = evict_plan(cache, b, pins, &plan);
	if (r == 0)
		r = evict_run(cache, &plan, ret_res);
	if (ret_plan)
		*ret_plan = plan;
	else
		evict_plan_done(&plan);
	return r;
}

/* ---- orphans ---- */

/* Removes the files of one fan-out directory (<blobs>/<xx>) whose cid has no record. */
static int orphan_files_in(struct cache *cache, const char *sub, struct evict_pins *pins,
			   struct evict_orphans *ret)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int r = 0;

	r = blob_dir(cache_dir(cache), sub, path, sizeof(path));
	if (r < 0)
		return r;
	d = opendir(path);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	while ((de = readdir(d))) {
		struct blob_rec rec;
		uint64_t disk;
		int g, u;

		/* Only files hffs would have written: a cid in the directory of its prefix. */
		if (!blob_cid_is_valid(de->d_name) || strncmp(de->d_name, sub, 2))
			continue;
		g = db_blob_get(cache_index(cache), de->d_name, &rec, NULL);
		if (g != -ENOENT || evict_pins_has(pins, de->d_name)) {
			if (g < 0 && g != -ENOENT && r == 0)
				r = g;
			continue;
		}
		disk = blob_disk_usage(cache_dir(cache), de->d_name);
		u = blob_unlink(cache_dir(cache), de->d_name);
		if (u == 0) {
			ret->files++;
			ret->file_bytes += disk;
		} else if (u != -ENOENT && r == 0) {
			r = u;
		}
	}
	closedir(d);
	return r;
}

/* "00" to "ff": the directories blob_path() makes. */
static bool is_fanout_name(const char *name)
{
	static const char hex[] = "0123456789abcdef";

	return name[0] && name[1] && !name[2] && strchr(hex, name[0]) && strchr(hex, name[1]);
}

static int orphan_files(struct cache *cache, struct evict_pins *pins, struct evict_orphans *ret)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int r = 0;

	r = blob_dir(cache_dir(cache), NULL, path, sizeof(path));
	if (r < 0)
		return r;
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		int s;

		if (!is_fanout_name(de->d_name))
			continue;
		s = orphan_files_in(cache, de->d_name, pins, ret);
		if (s < 0 && r == 0)
			r = s;
	}
	closedir(d);
	return r;
}

struct claim_list {
	char (*v)[CID_MAX];
	size_t n, cap;
};

static int collect_claims(void *ud, const char *cid, const struct blob_rec *rec)
{
	struct claim_list *l = ud;

	if (rec->blocks_present == 0)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		char(*v)[CID_MAX] = reallocarray(l->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	memcpy(l->v[l->n++], cid, strlen(cid) + 1);
	return 0;
}

/* Drops the records whose bits claim blocks of a data file that is gone. */
static int orphan_records(struct cache *cache, struct evict_pins *pins, struct evict_orphans *ret)
{
	struct claim_list l = { 0 };
	int r = db_blob_foreach(cache_index(cache), collect_claims, &l);

	for (size_t i = 0; r == 0 && i < l.n; i++) {
		char path[PATH_MAX];
		struct stat st;

		if (evict_pins_has(pins, l.v[i]))
			continue;
		r = blob_path(cache_dir(cache), l.v[i], path, sizeof(path));
		if (r < 0 || stat(path, &st) == 0 || errno != ENOENT)
			continue;
		r = db_blob_delete(cache_index(cache), l.v[i]);
		if (r == 0)
			ret->records++;
		else if (r == -ENOENT)
			r = 0; /* removed meanwhile */
	}
	free(l.v);
	return r;
}

int evict_orphans(struct cache *cache, struct evict_pins *pins, struct evict_orphans *ret)
{
	int r, s;

	*ret = (struct evict_orphans){ 0 };
	r = orphan_files(cache, pins, ret);
	s = orphan_records(cache, pins, ret);
	log_debug("evict: %zu orphan files (%llu bytes) removed, %zu orphan records dropped",
		  ret->files, (unsigned long long)ret->file_bytes, ret->records);
	return r < 0 ? r : s;
}

/* ---- lock ---- */

int evict_lock(const char *cache_dir, bool exclusive)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;

	if (snprintf(path, sizeof(path), "%s/evict.lock", cache_dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 && errno == EACCES)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return TAKE_FD(fd);
}
