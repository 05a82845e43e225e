/* hf_bridge.c: the entries `hffs mount --hf-cache` adds to the Hugging Face hub cache, on the
 * mount's main thread before the mount answers, and the watchdog process that takes them out
 * if the daemon dies. It decides which entries; the layout and the safe writes are
 * cache/hf_layout.c's, the record and the removal cache/hf_manifest.c's. */
#include "fs/hf_bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/hf_layout.h"
#include "util/cleanup.h"
#include "util/log.h"

struct counts {
	size_t files; /* files whose snapshot entry is there now */
	size_t kept; /* entries another client stored, left as they were */
	size_t skipped; /* paths the layout cannot hold (a backslash) */
};

/* Makes link -> target unless something is there already: the manifest names it first, and
 * is told when another client won the race. 1 made, 0 left as it was, -errno. */
static int add_link(struct hf_manifest *m, const char *link, const char *target, bool blob)
{
	struct stat st;
	int r;

	if (lstat(link, &st) == 0)
		return 0;
	r = hf_manifest_add_link(m, link, target, blob);
	if (r < 0)
		return r;
	r = hf_layout_symlink(target, link);
	if (r == 1)
		return 1;
	if (r == 0 || r == -EEXIST)
		return hf_manifest_cancel_link(m, link);
	return r;
}

static int add_file(struct hf_manifest *m, const struct hf_bridge_opts *o, const char *repo_dir,
		    const struct inode *f, struct counts *c)
{
	char blob[PATH_MAX], snap[PATH_MAX], target[PATH_MAX], rel[PATH_MAX];
	int r;

	if (!hf_layout_path_is_safe(f->path)) {
		c->skipped++;
		return 0;
	}
	if (hf_layout_blob_path(repo_dir, f->cid, blob, sizeof(blob)) < 0 ||
	    hf_layout_snapshot_path(repo_dir, o->commit, f->path, snap, sizeof(snap)) < 0 ||
	    hf_layout_blob_link(f->path, f->cid, rel, sizeof(rel)) < 0 ||
	    snprintf(target, sizeof(target), "%s/%s", o->mountpoint, f->path) >=
		    (int)sizeof(target))
		return -ENAMETOOLONG;
	/* A blob another client stored (a real file) holds the same bytes: its etag is their
	 * hash. Several paths of one content share one blob, linked to the first path. */
	r = add_link(m, blob, target, true);
	if (r < 0)
		return r;
	r = add_link(m, snap, rel, false);
	if (r < 0)
		return r;
	c->files++;
	c->kept += r == 0;
	return 0;
}

/* refs/<revision> names the commit, as the official clients leave it after resolving the
 * branch: Python's offline lookup goes through it. The old content is recorded for unmount. */
static int add_ref(struct hf_manifest *m, const struct hf_bridge_opts *o, const char *repo_dir)
{
	char path[PATH_MAX], old[41] = "";
	int r;

	if (hf_layout_is_commit(o->revision))
		return 0;
	r = hf_layout_ref_path(repo_dir, o->revision, path, sizeof(path));
	if (r < 0)
		return r;
	r = hf_layout_read_ref(repo_dir, o->revision, old);
	if (r == 0 && !strcmp(old, o->commit))
		return 0;
	if (r < 0 && r != -ENOENT)
		old[0] = '\0'; /* unreadable: replaced like the official clients would, and removed
				  at unmount */
	r = hf_manifest_add_ref(m, path, o->commit, old);
	if (r < 0)
		return r;
	r = hf_layout_write_ref(repo_dir, o->revision, o->commit, HF_LAYOUT_REF_UPDATE, NULL);
	return r < 0 ? r : 0;
}

void hf_bridge_sweep(const char *cache_dir)
{
	int r = hf_manifest_sweep(cache_dir);

	if (r > 0)
		log_info("took out the Hugging Face cache entries of %d mount%s that ended without "
			 "cleaning up",
			 r, r == 1 ? "" : "s");
	else if (r < 0)
		log_warn("cannot clean what an earlier mount left in the Hugging Face cache: %s",
			 strerror(-r));
}

int hf_bridge_add(const struct hf_bridge_opts *o, const struct inode_table *t,
		  struct hf_manifest **ret)
{
	_cleanup_free_ char *root = o->hf_root ? strdup(o->hf_root) : hf_layout_root();
	char repo_dir[PATH_MAX];
	struct hf_manifest *m = NULL;
	struct counts c = { 0 };
	const char *what = "";
	int r;

	if (!root) {
		log_err("--hf-cache: cannot tell where the Hugging Face cache is (set HF_HUB_CACHE, "
			"HF_HOME or HOME)");
		return -ENOENT;
	}
	hf_bridge_sweep(o->cache_dir);
	r = hf_layout_repo_dir(root, hub_repo_type_plural(o->repo->type), o->repo->id, repo_dir,
			       sizeof(repo_dir));
	if (r < 0) {
		log_err("--hf-cache: '%s' has no folder in the Hugging Face cache '%s': %s",
			o->repo->id, root, strerror(-r));
		return r;
	}
	r = hf_manifest_new(o->cache_dir, o->mountpoint, repo_dir, &m);
	if (r < 0) {
		log_err("--hf-cache: cannot create a manifest under '%s/hf-cache': %s",
			o->cache_dir, strerror(-r));
		return r;
	}
	for (uint64_t ino = 1; ino <= inode_count(t) && r >= 0; ino++) {
		const struct inode *f = inode_get(t, ino);

		if (!f->is_dir)
			r = add_file(m, o, repo_dir, f, &c);
		if (r < 0)
			what = f->path;
	}
	if (r >= 0) {
		r = add_ref(m, o, repo_dir);
		what = o->revision;
	}
	if (r >= 0) {
		r = hf_manifest_sync(m);
		what = hf_manifest_path(m);
	}
	if (r < 0) {
		log_err("--hf-cache: cannot add '%s' to the Hugging Face cache '%s': %s", what,
			repo_dir, strerror(-r));
		(void)hf_manifest_undo(m);
		return r;
	}
	log_info("the Hugging Face cache '%s' shows the %zu files of commit %s%s", repo_dir,
		 c.files, o->commit, c.kept ? " (some entries other clients stored are kept)" : "");
	if (c.skipped)
		log_warn("--hf-cache: %zu file%s whose path the Hugging Face cache cannot hold (a "
			 "backslash) %s only in the mount",
			 c.skipped, c.skipped == 1 ? "" : "s", c.skipped == 1 ? "is" : "are");
	*ret = m;
	return 0;
}

int hf_bridge_watch(const char *cache_dir, const char *log_path, int ready_fd)
{
	int p[2], out, r;
	char b;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid > 0) {
		/* The write end lives as long as this process: its end is the child's EOF. */
		close(p[0]);
		return 0;
	}
	close(p[1]);
	if (ready_fd >= 0)
		close(ready_fd);
	(void)prctl(PR_SET_NAME, "hffs-hf-watch");
	/* Ctrl-C of a foreground mount reaches the whole group: the daemon cleans up itself
	 * then, and this process must still outlive it in case it cannot. */
	signal(SIGINT, SIG_IGN);
	/* Holds no terminal, pipe or mount busy: a caller waiting for EOF on the command's
	 * output, or an unmount, does not wait for it. */
	out = open(log_path ? log_path : "/dev/null", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
		   0644);
	if (out < 0)
		out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	dup2(out, STDOUT_FILENO);
	dup2(out, STDERR_FILENO);
	if (out > STDERR_FILENO)
		close(out);
	(void)!chdir("/");
	while (read(p[0], &b, 1) < 0 && errno == EINTR)
		;
	r = hf_manifest_sweep(cache_dir);
	if (r > 0)
		log_warn("the mount daemon ended without cleaning up: took its entries out of the "
			 "Hugging Face cache");
	else if (r < 0)
		log_warn("the mount daemon ended without cleaning up, and its entries cannot be "
			 "taken out of the Hugging Face cache: %s; the next hffs mount or unmount "
			 "tries again",
			 strerror(-r));
	_exit(0);
}
