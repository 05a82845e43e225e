/* pull_place.c: placing `hffs pull`'s verified files: the shared-or-copied write to a
 * temporary name and the rename, the local dir with its huggingface_hub metadata, and the hub
 * cache through cache/hf_layout. Caller's thread. */
#include "cli/pull_place.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/hf_layout.h"
#include "cli/cli.h"
#include "util/cleanup.h"

int pull_place_clone(int src, uint64_t len, const char *path, bool *ret_cloned)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	uint64_t done = 0;
	loff_t in = 0;
	int r = 0;

	*ret_cloned = false;
	if (fd < 0)
		return -errno;
	if (len && src >= 0 && ioctl(fd, FICLONE, src) == 0)
		*ret_cloned = true;
	else
		while (done < len) {
			ssize_t n =
				copy_file_range(src, &in, fd, NULL, MIN(len - done, 1U << 30), 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				r = n < 0 ? -errno : -EIO; /* 0: the source is shorter than len */
				break;
			}
			done += (uint64_t)n;
		}
	/* The rename that follows must never publish a name whose bytes a crash could lose. */
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (r < 0)
		(void)unlink(path);
	return r;
}

/* A temporary name in path's folder: "<dir>/.hffs-<key>.tmp", short whatever path's own name
 * (a name near NAME_MAX has no room for a suffix), and the same at the next pull, which
 * replaces one a kill left. key is the content id of what is written. */
static int tmp_beside(const char *path, const char *key, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	int n = slash ? snprintf(buf, len, "%.*s/.hffs-%s.tmp", (int)(slash - path), path, key) :
			snprintf(buf, len, ".hffs-%s.tmp", key);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int mkdir_parent(const char *path)
{
	_cleanup_free_ char *dir = strdup(path);
	char *slash = dir ? strrchr(dir, '/') : NULL;

	if (!dir)
		return -ENOMEM;
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	return cli_mkdir_p(dir);
}

/* fd's bytes (-1: none) at path, through a temporary name, replacing what is there (the
 * user asked for the file there, as `hf download --local-dir` replaces it). Counts how in pp. */
static int put(struct pull_place *pp, int fd, uint64_t size, const char *path, const char *key)
{
	char tmp[PATH_MAX];
	bool cloned;
	int r = mkdir_parent(path);

	if (r >= 0)
		r = tmp_beside(path, key, tmp, sizeof(tmp));
	if (r >= 0)
		r = pull_place_clone(fd, size, tmp, &cloned);
	if (r < 0)
		return r;
	if (rename(tmp, path) < 0) {
		r = -errno;
		(void)unlink(tmp);
		return r;
	}
	if (cloned)
		pp->reflinked++;
	else if (size)
		pp->copied++;
	return 0;
}

static int metadata_path(const struct pull_place *pp, const char *file, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/.cache/huggingface/download/%s.metadata", pp->local_dir,
			 file);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* huggingface_hub's rule (_local_folder.py read_download_metadata): metadata for commit and
 * etag, and the file not modified after it was written (1 s of slack), say it is up to date. */
static bool local_is_current(const struct pull_place *pp, const struct pull_info *i,
			     const struct pull_file *f, const char *path)
{
	char meta[PATH_MAX], commit[64] = "", etag[80] = "";
	double ts = 0;
	struct stat st;
	FILE *m;
	bool ok;

	if (metadata_path(pp, f->path, meta, sizeof(meta)) < 0 || stat(path, &st) < 0 ||
	    (uint64_t)st.st_size != f->size)
		return false;
	m = fopen(meta, "re");
	if (!m)
		return false;
	ok = fscanf(m, "%63s %79s %lf", commit, etag, &ts) == 3;
	fclose(m);
	return ok && !strcmp(commit, i->commit) && !strcmp(etag, f->cid) &&
	       (double)st.st_mtim.tv_sec - 1 <= ts;
}

/* The metadata huggingface_hub writes beside a file it downloaded into a local dir: three
 * lines, commit, etag, the time it was written (after the file, so that it is up to date). */
static int write_metadata(const struct pull_place *pp, const struct pull_info *i,
			  const struct pull_file *f)
{
	char meta[PATH_MAX], tmp[PATH_MAX];
	struct timespec now;
	FILE *m;
	int r = metadata_path(pp, f->path, meta, sizeof(meta));

	if (r >= 0)
		r = mkdir_parent(meta);
	if (r >= 0)
		r = tmp_beside(meta, "metadata", tmp, sizeof(tmp));
	if (r < 0)
		return r;
	m = fopen(tmp, "we");
	if (!m)
		return -errno;
	clock_gettime(CLOCK_REALTIME, &now);
	fprintf(m, "%s\n%s\n%lld.%06ld\n", i->commit, f->cid, (long long)now.tv_sec,
		now.tv_nsec / 1000);
	if (fclose(m) != 0 || rename(tmp, meta) < 0) {
		r = -errno;
		(void)unlink(tmp);
	}
	return r;
}

static int place_local(struct pull_place *pp, const struct pull_info *i, struct pull_file *f,
		       int fd)
{
	_cleanup_free_ char *path = NULL;
	int r;

	if (!hf_layout_path_is_safe(f->path)) {
		snprintf(f->error, sizeof(f->error),
			 "the repo names it with a path that would leave '%s'; not written",
			 pp->local_dir);
		return -EINVAL;
	}
	if (asprintf(&path, "%s/%s", pp->local_dir, f->path) < 0)
		return -ENOMEM;
	if (local_is_current(pp, i, f, path)) {
		pp->kept++;
		return 0;
	}
	r = put(pp, fd, f->size, path, f->cid);
	if (r < 0) {
		snprintf(f->error, sizeof(f->error), "cannot write '%s': %s", path, strerror(-r));
		return r;
	}
	/* A name too long for a ".metadata" suffix has none (huggingface_hub fails there): the
	 * file is in place all the same, and hf download --local-dir would fetch it again. */
	r = write_metadata(pp, i, f);
	if (r == -ENAMETOOLONG)
		return 0;
	if (r < 0)
		snprintf(
			f->error, sizeof(f->error),
			"cannot write the download metadata of '%s' under '%s/.cache/huggingface': "
			"%s",
			f->path, pp->local_dir, strerror(-r));
	return r;
}

/* The folder huggingface_hub ignores in git, as it creates it. */
static int local_begin(const struct pull_place *pp)
{
	_cleanup_free_ char *dir = NULL, *ignore = NULL;
	FILE *g;
	int r;

	if (asprintf(&dir, "%s/.cache/huggingface", pp->local_dir) < 0 ||
	    asprintf(&ignore, "%s/.gitignore", dir) < 0)
		return -ENOMEM;
	r = cli_mkdir_p(dir);
	if (r < 0 || access(ignore, F_OK) == 0)
		return r;
	g = fopen(ignore, "we");
	if (!g)
		return -errno;
	fputs("*", g);
	return fclose(g) == 0 ? 0 : -errno;
}

/* blobs/<etag>, then the link snapshots/<commit>/<path> to it; either one already there (the
 * same content, by its name) is kept. */
static int place_hub(struct pull_place *pp, const struct pull_info *i, struct pull_file *f, int fd)
{
	char blob[PATH_MAX], tmp[PATH_MAX], link[PATH_MAX], target[PATH_MAX];
	bool cloned = false;
	struct stat st;
	int r;

	r = hf_layout_snapshot_path(pp->repo_dir, i->commit, f->path, link, sizeof(link));
	if (r >= 0)
		r = hf_layout_blob_path(pp->repo_dir, f->cid, blob, sizeof(blob));
	if (r >= 0)
		r = hf_layout_blob_link(f->path, f->cid, target, sizeof(target));
	if (r < 0) {
		snprintf(f->error, sizeof(f->error), "%s",
			 r == -EINVAL ? "the repo names it with a path the hub cache cannot hold "
					"safely; not written" :
					"its path in the hub cache is too long");
		return r;
	}
	if (lstat(blob, &st) == 0) {
		pp->kept++;
	} else {
		r = hf_layout_mkdirs(blob);
		if (r >= 0)
			r = tmp_beside(blob, f->cid, tmp, sizeof(tmp));
		if (r >= 0)
			r = pull_place_clone(fd, f->size, tmp, &cloned);
		if (r >= 0) {
			r = hf_layout_place(tmp, blob);
			if (r < 0)
				(void)unlink(tmp);
		}
		if (r < 0) {
			snprintf(f->error, sizeof(f->error), "cannot write '%.200s': %s", blob,
				 strerror(-r));
			return r;
		}
		if (r == 0)
			pp->kept++;
		else if (cloned)
			pp->reflinked++;
		else if (f->size)
			pp->copied++;
	}
	r = hf_layout_symlink(target, link);
	if (r < 0 && r != -EEXIST) {
		snprintf(f->error, sizeof(f->error), "cannot link '%.200s' to its blob: %s", link,
			 strerror(-r));
		return r;
	}
	return 0;
}

static int hub_begin(struct pull_place *pp, const struct pull_info *i, char *why, size_t len)
{
	int r = hf_layout_repo_dir(pp->hub_cache, hub_repo_type_plural(i->repo->type), i->repo->id,
				   pp->repo_dir, sizeof(pp->repo_dir));

	if (r < 0) {
		snprintf(why, len, "'%s' has no folder in the hub cache '%s': %s", i->repo->id,
			 pp->hub_cache, strerror(-r));
		return r;
	}
	r = cli_mkdir_p(pp->repo_dir);
	if (r < 0)
		snprintf(why, len, "cannot create '%s': %s", pp->repo_dir, strerror(-r));
	return r;
}

int pull_place_finish(struct pull_place *pp, const struct pull_info *i, char *why, size_t len)
{
	char old[41], dir[PATH_MAX];
	int r;

	if (pp->local_dir)
		return 0;
	/* The snapshot folder exists even when no file was selected: it is the path printed. */
	r = hf_layout_snapshot_dir(pp->repo_dir, i->commit, dir, sizeof(dir));
	if (r >= 0)
		r = cli_mkdir_p(dir);
	if (r < 0) {
		snprintf(why, len, "cannot create the snapshot folder of %s in '%s': %s", i->commit,
			 pp->repo_dir, strerror(-r));
		return r;
	}
	if (!strcmp(i->revision, i->commit))
		return 0;
	r = hf_layout_write_ref(pp->repo_dir, i->revision, i->commit, HF_LAYOUT_REF_UPDATE, old);
	if (r < 0)
		snprintf(why, len, "cannot record revision '%s' in '%s/refs': %s", i->revision,
			 pp->repo_dir, strerror(-r));
	return r < 0 ? r : 0;
}

int pull_place_begin(struct pull_place *pp, const struct pull_info *i, char *why, size_t len)
{
	int r;

	if (pp->local_dir) {
		r = local_begin(pp);
		if (r < 0)
			snprintf(why, len, "cannot create '%s/.cache/huggingface': %s",
				 pp->local_dir, strerror(-r));
		return r;
	}
	return hub_begin(pp, i, why, len);
}

int pull_place_file(struct pull_place *pp, const struct pull_info *i, struct pull_file *f, int fd)
{
	return pp->local_dir ? place_local(pp, i, f, fd) : place_hub(pp, i, f, fd);
}

char *pull_place_root(const struct pull_place *pp, const struct pull_info *i)
{
	char dir[PATH_MAX];

	if (pp->local_dir)
		return strdup(pp->local_dir);
	return hf_layout_snapshot_dir(pp->repo_dir, i->commit, dir, sizeof(dir)) < 0 ? NULL :
										       strdup(dir);
}
