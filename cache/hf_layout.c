/* hf_layout.c: paths and safe writes in the Hugging Face hub cache (HUB_PROTOCOL.md 8). Any
 * thread; no state. It knows the foreign layout only, not hffs's index or mounts. */
#include "cache/hf_layout.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/blob.h"
#include "util/cleanup.h"

static char *env_dir(const char *name)
{
	const char *v = secure_getenv(name);
	const char *home = secure_getenv("HOME");
	char *r;

	if (!v || !*v)
		return NULL;
	/* "~" is expanded as Python's expanduser does; the JS client takes the value verbatim. */
	if (v[0] == '~' && (v[1] == '/' || !v[1]) && home && *home) {
		if (asprintf(&r, "%s%s", home, v + 1) < 0)
			return NULL;
		return r;
	}
	return strdup(v);
}

char *hf_layout_root(void)
{
	const char *direct[] = { "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE" };
	_cleanup_free_ char *base = NULL;
	const char *home = secure_getenv("HOME");
	char *r;

	for (size_t i = 0; i < ARRAY_SIZE(direct); i++) {
		if ((r = env_dir(direct[i])))
			return r;
	}
	if ((base = env_dir("HF_HOME")))
		return asprintf(&r, "%s/hub", base) < 0 ? NULL : r;
	if ((base = env_dir("XDG_CACHE_HOME")))
		return asprintf(&r, "%s/huggingface/hub", base) < 0 ? NULL : r;
	if (home && *home)
		return asprintf(&r, "%s/.cache/huggingface/hub", home) < 0 ? NULL : r;
	return NULL;
}

bool hf_layout_path_is_safe(const char *path)
{
	const char *p = path, *seg;
	size_t n;

	if (!path || !*path || strlen(path) >= 4096)
		return false;
	for (const char *c = path; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\')
			return false;
	}
	for (;;) {
		seg = p;
		while (*p && *p != '/')
			p++;
		n = (size_t)(p - seg);
		if (!n || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		if (!*p)
			return true;
		p++;
	}
}

bool hf_layout_is_commit(const char *s)
{
	return blob_cid_is_valid(s) && strlen(s) == 40;
}

static int fmt(char *buf, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));

static int fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, len, f, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static bool is_id_part(const char *s, size_t n)
{
	if (!n || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int hf_layout_repo_dir(const char *root, const char *type, const char *repo_id, char *buf,
		       size_t len)
{
	const char *slash = repo_id ? strchr(repo_id, '/') : NULL;

	if (!root || !*root || !type || !repo_id)
		return -EINVAL;
	if (strcmp(type, "models") && strcmp(type, "datasets") && strcmp(type, "spaces"))
		return -EINVAL;
	if (!slash)
		return is_id_part(repo_id, strlen(repo_id)) ?
			       fmt(buf, len, "%s/%s--%s", root, type, repo_id) :
			       -EINVAL;
	if (!is_id_part(repo_id, (size_t)(slash - repo_id)) ||
	    !is_id_part(slash + 1, strlen(slash + 1)))
		return -EINVAL;
	return fmt(buf, len, "%s/%s--%.*s--%s", root, type, (int)(slash - repo_id), repo_id,
		   slash + 1);
}

int hf_layout_ref_path(const char *repo_dir, const char *rev, char *buf, size_t len)
{
	if (!hf_layout_path_is_safe(rev))
		return -EINVAL;
	return fmt(buf, len, "%s/refs/%s", repo_dir, rev);
}

int hf_layout_snapshot_dir(const char *repo_dir, const char *commit, char *buf, size_t len)
{
	if (!hf_layout_is_commit(commit))
		return -EINVAL;
	return fmt(buf, len, "%s/snapshots/%s", repo_dir, commit);
}

int hf_layout_snapshot_path(const char *repo_dir, const char *commit, const char *path, char *buf,
			    size_t len)
{
	if (!hf_layout_is_commit(commit) || !hf_layout_path_is_safe(path))
		return -EINVAL;
	return fmt(buf, len, "%s/snapshots/%s/%s", repo_dir, commit, path);
}

int hf_layout_blob_path(const char *repo_dir, const char *etag, char *buf, size_t len)
{
	if (!blob_cid_is_valid(etag))
		return -EINVAL;
	return fmt(buf, len, "%s/blobs/%s", repo_dir, etag);
}

int hf_layout_blob_link(const char *path, const char *etag, char *buf, size_t len)
{
	size_t at = 0;

	if (!hf_layout_path_is_safe(path) || !blob_cid_is_valid(etag))
		return -EINVAL;
	/* snapshots/<commit>/ is two levels, then one per directory of path. */
	for (const char *c = path; *c; c++) {
		if (*c != '/')
			continue;
		if (len - at < 4)
			return -ENAMETOOLONG;
		memcpy(buf + at, "../", 3);
		at += 3;
	}
	return fmt(buf + at, len - at, "../../blobs/%s", etag);
}

int hf_layout_mkdirs(const char *file)
{
	char buf[PATH_MAX];
	char *end;
	struct stat st;

	if (fmt(buf, sizeof(buf), "%s", file) < 0)
		return -ENAMETOOLONG;
	end = strrchr(buf, '/');
	if (!end || end == buf)
		return 0;
	*end = '\0';
	if (stat(buf, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0777) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0777) < 0 && errno != EEXIST)
		return -errno;
	if (stat(buf, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* Reads the file at path as a commit id. 0, -ENOENT, -EBADMSG, -errno. */
static int read_commit(const char *path, char ret[41])
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char buf[43];
	ssize_t n;

	if (fd < 0)
		return errno == ELOOP ? -EBADMSG : -errno;
	n = read(fd, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	if (n == 41 && buf[40] == '\n')
		n = 40;
	if (n != 40)
		return -EBADMSG;
	buf[40] = '\0';
	if (!hf_layout_is_commit(buf))
		return -EBADMSG;
	memcpy(ret, buf, 41);
	return 0;
}

int hf_layout_read_ref(const char *repo_dir, const char *rev, char ret_commit[41])
{
	char path[PATH_MAX];
	int r = hf_layout_ref_path(repo_dir, rev, path, sizeof(path));

	return r < 0 ? r : read_commit(path, ret_commit);
}

/* Writes commit to a new temporary file beside path; its name goes to tmp. 0 or -errno. */
static int write_tmp(const char *path, const char *commit, char *tmp, size_t len)
{
	_cleanup_close_ int fd = -1;
	int r;

	r = fmt(tmp, len, "%s.hffs-XXXXXX", path);
	if (r < 0)
		return r;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* mkostemp makes it 0600; a ref is as readable as a file the clients create. */
	mode_t um = umask(0);

	umask(um);
	if (fchmod(fd, 0666 & ~um) < 0 || write(fd, commit, 40) != 40) {
		r = errno ? -errno : -EIO;
		(void)unlink(tmp);
		return r;
	}
	return 0;
}

int hf_layout_write_ref(const char *repo_dir, const char *rev, const char *commit,
			enum hf_layout_ref_mode mode, char ret_old[41])
{
	char path[PATH_MAX], tmp[PATH_MAX + 16], old[41] = "";
	int r;

	if (!hf_layout_is_commit(commit))
		return -EINVAL;
	r = hf_layout_ref_path(repo_dir, rev, path, sizeof(path));
	if (r < 0)
		return r;
	r = read_commit(path, old);
	if (r < 0 && r != -ENOENT && r != -EBADMSG)
		return r;
	if (ret_old)
		memcpy(ret_old, r < 0 ? "" : old, r < 0 ? 1 : 41);
	if (r == 0 && !strcmp(old, commit))
		return 0;
	if (r == -EBADMSG && mode == HF_LAYOUT_REF_KEEP)
		return -EEXIST;
	if (r == 0 && mode == HF_LAYOUT_REF_KEEP)
		return -EEXIST;
	r = hf_layout_mkdirs(path);
	if (r < 0)
		return r;
	r = write_tmp(path, commit, tmp, sizeof(tmp));
	if (r < 0)
		return r;
	if (mode == HF_LAYOUT_REF_UPDATE) {
		r = rename(tmp, path) < 0 ? -errno : 1;
	} else if (link(tmp, path) == 0) {
		r = 1;
	} else {
		/* Another writer got there between our read and the link. */
		r = -errno;
		if (r == -EEXIST && read_commit(path, old) == 0 && !strcmp(old, commit))
			r = 0;
	}
	(void)unlink(tmp);
	return r;
}

int hf_layout_symlink(const char *target, const char *link)
{
	char cur[PATH_MAX];
	ssize_t n;
	int r = hf_layout_mkdirs(link);

	if (r < 0)
		return r;
	if (symlink(target, link) == 0)
		return 1;
	if (errno != EEXIST)
		return -errno;
	n = readlink(link, cur, sizeof(cur) - 1);
	if (n < 0)
		return errno == EINVAL ? -EEXIST : -errno;
	cur[n] = '\0';
	return strcmp(cur, target) ? -EEXIST : 0;
}

int hf_layout_unlink_link(const char *link, const char *target)
{
	char cur[PATH_MAX];
	ssize_t n = readlink(link, cur, sizeof(cur) - 1);

	if (n < 0)
		return errno == ENOENT || errno == EINVAL || errno == ENOTDIR ? 0 : -errno;
	cur[n] = '\0';
	if (strcmp(cur, target))
		return 0;
	if (unlink(link) < 0)
		return errno == ENOENT ? 0 : -errno;
	return 1;
}

int hf_layout_place(const char *tmp, const char *final)
{
	if (link(tmp, final) == 0) {
		(void)unlink(tmp);
		return 1;
	}
	if (errno == EEXIST) {
		(void)unlink(tmp);
		return 0;
	}
	/* vfat, some FUSE and network file systems: no hard links. */
	if (errno != EPERM && errno != EOPNOTSUPP && errno != EMLINK)
		return -errno;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0)
		return 1;
	if (errno == EEXIST) {
		(void)unlink(tmp);
		return 0;
	}
	return -errno;
}

int hf_layout_prune(const char *dir, const char *stop)
{
	char buf[PATH_MAX];
	size_t stop_len = strlen(stop);
	char *slash;

	if (fmt(buf, sizeof(buf), "%s", dir) < 0)
		return -ENAMETOOLONG;
	while (strlen(buf) > stop_len && !strncmp(buf, stop, stop_len) && buf[stop_len] == '/') {
		if (rmdir(buf) < 0) {
			if (errno == ENOTEMPTY || errno == EEXIST)
				return 0;
			if (errno != ENOENT)
				return -errno;
		}
		slash = strrchr(buf, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
	return 0;
}
