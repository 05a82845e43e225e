/* hf_manifest.c: the record of what a mount added to the Hugging Face hub cache, and its
 * removal. A text file, one entry a line, fields split by tabs (hf_layout refuses paths with
 * control characters, so no field can hold one):
 *   hffs-hf-cache 1
 *   M <mountpoint>            P <repo folder>
 *   S|B <link> <target>       R <ref path> <commit> <old commit or nothing>
 *   X <link>                  (the S or B line of link was written, but another client made
 *                              the entry first: it is not ours)
 * Each line reaches the file (write(2), no user-space buffer) before its entry is made, so a
 * kill -9 never leaves an entry the manifest does not name. */
#include "cache/hf_manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/blob.h"
#include "cache/hf_layout.h"
#include "util/cleanup.h"

#define MANIFEST_MAGIC "hffs-hf-cache 1\n"
#define MANIFEST_SUFFIX ".manifest"

struct hf_manifest {
	int fd; /* locked LOCK_EX for the manifest's life */
	char path[PATH_MAX];
};

static bool has_sep(const char *s)
{
	return strpbrk(s, "\t\n") != NULL;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int put_line(int fd, const char *kind, const char *a, const char *b, const char *c)
{
	_cleanup_free_ char *line = NULL;
	int n;

	if (has_sep(a) || (b && has_sep(b)) || (c && has_sep(c)))
		return -EINVAL;
	n = asprintf(&line, "%s\t%s%s%s%s%s\n", kind, a, b ? "\t" : "", b ? b : "", c ? "\t" : "",
		     c ? c : "");
	if (n < 0)
		return -ENOMEM;
	return write_all(fd, line, (size_t)n);
}

int hf_manifest_new(const char *cache_dir, const char *mountpoint, const char *repo_dir,
		    struct hf_manifest **ret)
{
	_cleanup_free_ struct hf_manifest *m = calloc(1, sizeof(*m));
	char dir[PATH_MAX];
	int r;

	if (!m)
		return -ENOMEM;
	m->fd = -1;
	if (has_sep(mountpoint) || has_sep(repo_dir))
		return -EINVAL;
	if (snprintf(dir, sizeof(dir), "%s/hf-cache", cache_dir) >= (int)sizeof(dir) ||
	    snprintf(m->path, sizeof(m->path), "%s/mount-XXXXXX" MANIFEST_SUFFIX, dir) >=
		    (int)sizeof(m->path))
		return -ENAMETOOLONG;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	m->fd = mkostemps(m->path, (int)strlen(MANIFEST_SUFFIX), O_CLOEXEC);
	if (m->fd < 0)
		return -errno;
	/* Nobody else can know the name yet: the lock is ours at once. */
	r = flock(m->fd, LOCK_EX) < 0 ? -errno : 0;
	if (!r)
		r = write_all(m->fd, MANIFEST_MAGIC, strlen(MANIFEST_MAGIC));
	if (!r)
		r = put_line(m->fd, "M", mountpoint, NULL, NULL);
	if (!r)
		r = put_line(m->fd, "P", repo_dir, NULL, NULL);
	if (r < 0) {
		(void)unlink(m->path);
		close(m->fd);
		return r;
	}
	*ret = TAKE_PTR(m);
	return 0;
}

const char *hf_manifest_path(const struct hf_manifest *m)
{
	return m->path;
}

int hf_manifest_add_link(struct hf_manifest *m, const char *link, const char *target, bool blob)
{
	return put_line(m->fd, blob ? "B" : "S", link, target, NULL);
}

int hf_manifest_cancel_link(struct hf_manifest *m, const char *link)
{
	return put_line(m->fd, "X", link, NULL, NULL);
}

int hf_manifest_add_ref(struct hf_manifest *m, const char *ref_path, const char *commit,
			const char *old)
{
	return put_line(m->fd, "R", ref_path, commit, old);
}

int hf_manifest_sync(struct hf_manifest *m)
{
	return fdatasync(m->fd) < 0 ? -errno : 0;
}

struct hf_manifest *hf_manifest_free(struct hf_manifest *m)
{
	if (!m)
		return NULL;
	if (m->fd >= 0)
		close(m->fd);
	free(m);
	return NULL;
}

int hf_manifest_undo(struct hf_manifest *m)
{
	int r;

	if (!m)
		return 0;
	r = hf_manifest_undo_file(m->path);
	if (r >= 0)
		(void)unlink(m->path);
	hf_manifest_free(m);
	return r;
}

struct undo {
	char root[PATH_MAX]; /* the HF cache root: pruning stops there */
	char repo[PATH_MAX];
	char (*gone)[CID_MAX]; /* etags of the blob links removed, sorted before the scan */
	size_t ngone, cap;
	char **cancelled; /* X lines' links, sorted */
	size_t ncancelled, ccap;
	int removed;
};

static void prune_above(const struct undo *u, const char *file)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", file);
	slash = strrchr(dir, '/');
	if (!slash || !u->root[0])
		return;
	*slash = '\0';
	(void)hf_layout_prune(dir, u->root);
}

static int note_gone(struct undo *u, const char *blob)
{
	const char *etag = strrchr(blob, '/');

	etag = etag ? etag + 1 : blob;
	if (!blob_cid_is_valid(etag))
		return 0;
	if (u->ngone == u->cap) {
		size_t cap = u->cap ? 2 * u->cap : 256;
		void *p = reallocarray(u->gone, cap, sizeof(*u->gone));

		if (!p)
			return -ENOMEM;
		u->gone = p;
		u->cap = cap;
	}
	memcpy(u->gone[u->ngone++], etag, strlen(etag) + 1);
	return 0;
}

static int cmp_cid(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int note_cancelled(struct undo *u, const char *link)
{
	if (u->ncancelled == u->ccap) {
		size_t cap = u->ccap ? 2 * u->ccap : 16;
		void *p = reallocarray(u->cancelled, cap, sizeof(*u->cancelled));

		if (!p)
			return -ENOMEM;
		u->cancelled = p;
		u->ccap = cap;
	}
	if (!(u->cancelled[u->ncancelled] = strdup(link)))
		return -ENOMEM;
	u->ncancelled++;
	return 0;
}

static bool is_cancelled(const struct undo *u, const char *link)
{
	return u->ncancelled &&
	       bsearch(&link, u->cancelled, u->ncancelled, sizeof(*u->cancelled), cmp_str);
}

/* nftw() has no user pointer: the walk is per thread. */
static _Thread_local struct undo *walk_undo;

/* A client's snapshot link into a removed blob: "…/blobs/<etag>" with etag one we removed,
 * and nothing behind it any more (stat fails: gone, or the dead mount's ENOTCONN). */
static int walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	struct undo *u = walk_undo;
	char target[PATH_MAX], *etag;
	struct stat tst;
	ssize_t n;

	(void)st;
	(void)ftw;
	if (flag != FTW_SL)
		return 0;
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return 0;
	target[n] = '\0';
	etag = strrchr(target, '/');
	if (!etag || etag - target < 5 || strncmp(etag - 5, "blobs", 5) ||
	    (etag - target > 5 && etag[-6] != '/'))
		return 0;
	etag++;
	if (!bsearch(etag, u->gone, u->ngone, sizeof(*u->gone), cmp_cid) || stat(path, &tst) == 0)
		return 0;
	if (unlink(path) == 0) {
		u->removed++;
		prune_above(u, path);
	}
	return 0;
}

/* R: restore a ref that still names the mount's commit, unless another client's files keep
 * the commit's snapshot alive (then the ref is right as it is). */
static int undo_ref(struct undo *u, const char *ref, const char *commit, const char *old)
{
	char snap[PATH_MAX], cur[41] = "", tmp[PATH_MAX + 16];
	_cleanup_close_ int fd = open(ref, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;
	int r;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = read(fd, cur, 40);
	if (n != 40 || strncmp(cur, commit, 40))
		return 0;
	if (snprintf(snap, sizeof(snap), "%s/snapshots/%s", u->repo, commit) >= (int)sizeof(snap))
		return -ENAMETOOLONG;
	if (access(snap, F_OK) == 0)
		return 0;
	if (!old[0]) {
		if (unlink(ref) < 0)
			return errno == ENOENT ? 0 : -errno;
		u->removed++;
		prune_above(u, ref);
		return 0;
	}
	if (!hf_layout_is_commit(old))
		return 0;
	/* Written beside it and renamed over, as hf_layout_write_ref() does. */
	snprintf(tmp, sizeof(tmp), "%s.hffs-XXXXXX", ref);
	_cleanup_close_ int tfd = mkostemp(tmp, O_CLOEXEC);
	if (tfd < 0)
		return -errno;
	mode_t um = umask(0);

	umask(um);
	r = fchmod(tfd, 0666 & ~um) < 0 || write(tfd, old, 40) != 40 || rename(tmp, ref) < 0 ?
		    -(errno ? errno : EIO) :
		    0;
	if (r < 0)
		(void)unlink(tmp);
	else
		u->removed++;
	return r;
}

/* One pass over the manifest, acting on the lines of kind. */
static int undo_pass(struct undo *u, FILE *f, char kind)
{
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int r = 0;

	rewind(f);
	if (getline(&line, &cap, f) < 0 || strcmp(line, MANIFEST_MAGIC))
		return -EBADMSG;
	while ((n = getline(&line, &cap, f)) > 0) {
		char *a, *b, *c, *save = NULL;
		int x = 0;

		if (line[n - 1] != '\n')
			break; /* the last line of a mount killed mid-write: no entry was made */
		line[n - 1] = '\0';
		if (line[0] != kind || line[1] != '\t')
			continue;
		a = strtok_r(line + 2, "\t", &save);
		b = strtok_r(NULL, "\t", &save);
		c = strtok_r(NULL, "\t", &save);
		if (!a)
			continue;
		switch (kind) {
		case 'P':
			snprintf(u->repo, sizeof(u->repo), "%s", a);
			snprintf(u->root, sizeof(u->root), "%s", a);
			if (strrchr(u->root, '/'))
				*strrchr(u->root, '/') = '\0';
			break;
		case 'X':
			x = note_cancelled(u, a);
			break;
		case 'S':
		case 'B':
			if (!b || is_cancelled(u, a))
				break;
			x = hf_layout_unlink_link(a, b);
			if (x > 0) {
				u->removed++;
				prune_above(u, a);
				if (kind == 'B')
					x = note_gone(u, a);
			}
			break;
		case 'R':
			x = b ? undo_ref(u, a, b, c ? c : "") : 0;
			break;
		}
		if (kind != 'P' && x < 0 && !r)
			r = x;
	}
	return r;
}

int hf_manifest_undo_file(const char *path)
{
	FILE *f = fopen(path, "re");
	struct undo u = { .removed = 0 };
	char snaps[PATH_MAX + 16];
	int r;

	if (!f)
		return -errno;
	r = undo_pass(&u, f, 'P');
	if (r < 0) {
		fclose(f);
		return r;
	}
	r = undo_pass(&u, f, 'X');
	if (r >= 0 && u.ncancelled)
		qsort(u.cancelled, u.ncancelled, sizeof(*u.cancelled), cmp_str);
	if (r >= 0)
		r = undo_pass(&u, f, 'S');
	if (r >= 0)
		r = undo_pass(&u, f, 'B');
	if (r >= 0 && u.ngone && u.repo[0]) {
		qsort(u.gone, u.ngone, sizeof(*u.gone), cmp_cid);
		snprintf(snaps, sizeof(snaps), "%s/snapshots", u.repo);
		walk_undo = &u;
		(void)nftw(snaps, walk_one, 16, FTW_PHYS);
		walk_undo = NULL;
	}
	if (r >= 0)
		r = undo_pass(&u, f, 'R');
	fclose(f);
	free(u.gone);
	for (size_t i = 0; i < u.ncancelled; i++)
		free(u.cancelled[i]);
	free(u.cancelled);
	return r < 0 ? r : u.removed;
}

int hf_manifest_sweep(const char *cache_dir)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int n = 0, r = 0;

	snprintf(dir, sizeof(dir), "%s/hf-cache", cache_dir);
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len <= strlen(MANIFEST_SUFFIX) ||
		    strcmp(de->d_name + len - strlen(MANIFEST_SUFFIX), MANIFEST_SUFFIX))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		_cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
			continue; /* a live mount holds it */
		/* Deleted between our readdir and our lock by the mount that cleaned it; or being
		 * created (a new mount locks it right after creating it, then writes the magic):
		 * an empty manifest names no entry, and is never deleted under its creator. */
		if (fstat(fd, &st) < 0 || st.st_nlink == 0 ||
		    st.st_size < (off_t)strlen(MANIFEST_MAGIC))
			continue;
		int x = hf_manifest_undo_file(path);

		if (x < 0) {
			if (!r)
				r = x;
			continue;
		}
		(void)unlink(path);
		n++;
	}
	closedir(d);
	return r < 0 ? r : n;
}
