/* test_hf_manifest.c: the record of what a mount added to a Hugging Face cache, in a temporary
 * directory: undo takes out our links and only them (a changed entry, a cancelled line and
 * another client's files stay), the snapshot links clients made to removed blobs, refs back
 * to their old content, empty directories; the sweep leaves a locked manifest and cleans one
 * whose mount is gone; a line cut by a kill is ignored. */
#include "cache/hf_manifest.h"

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

#include "cache/hf_layout.h"
#include "tests/unit/check.h"

#define C1 "0123456789abcdef0123456789abcdef01234567"
#define C0 "89abcdef0123456789abcdef0123456789abcdef"
#define E1 "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
#define E2 "cd0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
#define E3 "ef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"

static char tmp[] = "/tmp/hffs-test-hf-manifest-XXXXXX";
static char cache[256], root[256], repo[320], mnt[256];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static bool lexists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

static void put_file(const char *p, const char *text)
{
	FILE *f;

	ASSERT_OK(hf_layout_mkdirs(p));
	f = fopen(p, "w");
	ASSERT_NOT_NULL(f);
	fputs(text, f);
	fclose(f);
}

/* What a mount adds for path with etag: blob -> mnt/path, snapshot link -> blob. */
static void add_pair(struct hf_manifest *m, const char *path, const char *etag)
{
	char blob[PATH_MAX], snap[PATH_MAX], target[PATH_MAX + 256], rel[PATH_MAX];

	ASSERT_OK(hf_layout_blob_path(repo, etag, blob, sizeof(blob)));
	ASSERT_OK(hf_layout_snapshot_path(repo, C1, path, snap, sizeof(snap)));
	ASSERT_OK(hf_layout_blob_link(path, etag, rel, sizeof(rel)));
	snprintf(target, sizeof(target), "%s/%s", mnt, path);
	ASSERT_OK(hf_manifest_add_link(m, blob, target, true));
	ASSERT_EQ(hf_layout_symlink(target, blob), 1);
	ASSERT_OK(hf_manifest_add_link(m, snap, rel, false));
	ASSERT_EQ(hf_layout_symlink(rel, snap), 1);
}

static void test_undo(void)
{
	struct hf_manifest *m;
	char p[PATH_MAX], q[PATH_MAX], ref[PATH_MAX], old[41];

	ASSERT_OK(hf_manifest_new(cache, mnt, repo, &m));
	ASSERT_TRUE(strstr(hf_manifest_path(m), "/hf-cache/") != NULL);
	add_pair(m, "a/w.bin", E1);
	add_pair(m, "config.json", E2);
	/* Another client's blob (a file) and its link in another snapshot: never touched. */
	snprintf(p, sizeof(p), "%s/blobs/" E3, repo);
	put_file(p, "data");
	snprintf(q, sizeof(q), "%s/snapshots/" C0 "/old.bin", repo);
	ASSERT_EQ(hf_layout_symlink("../../blobs/" E3, q), 1);
	/* A line written, then another client won: cancelled. */
	snprintf(p, sizeof(p), "%s/snapshots/" C1 "/theirs.txt", repo);
	ASSERT_OK(hf_manifest_add_link(m, p, "../../blobs/" E3, false));
	ASSERT_EQ(hf_layout_symlink("../../blobs/" E3, p), 1); /* as if the client made it */
	ASSERT_OK(hf_manifest_cancel_link(m, p));
	/* A client (the JS one) linked our blob E1 from the file's last-commit snapshot. */
	snprintf(p, sizeof(p), "%s/snapshots/" C0 "/a/w.bin", repo);
	ASSERT_EQ(hf_layout_symlink("../../../blobs/" E1, p), 1);
	/* And replaced our config.json blob link by the real file (it found it dangling). */
	snprintf(p, sizeof(p), "%s/blobs/" E2, repo);
	ASSERT_OK(unlink(p));
	put_file(p, "{}");
	/* The ref moved to our commit; it held C0. */
	ASSERT_OK(hf_layout_ref_path(repo, "main", ref, sizeof(ref)));
	ASSERT_EQ(hf_layout_write_ref(repo, "main", C0, HF_LAYOUT_REF_KEEP, NULL), 1);
	ASSERT_OK(hf_manifest_add_ref(m, ref, C1, C0));
	ASSERT_EQ(hf_layout_write_ref(repo, "main", C1, HF_LAYOUT_REF_UPDATE, old), 1);
	ASSERT_OK(hf_manifest_sync(m));

	/* Removed: our links, the client's link to our removed blob. Kept: the rest. */
	ASSERT_EQ(hf_manifest_undo(m), 4);
	snprintf(p, sizeof(p), "%s/blobs/" E1, repo);
	ASSERT_FALSE(lexists(p));
	snprintf(p, sizeof(p), "%s/snapshots/" C0 "/a", repo);
	ASSERT_FALSE(lexists(p)); /* the client's dangling link, and its empty directory */
	snprintf(p, sizeof(p), "%s/blobs/" E2, repo);
	ASSERT_TRUE(lexists(p));
	snprintf(p, sizeof(p), "%s/snapshots/" C1 "/theirs.txt", repo);
	ASSERT_TRUE(lexists(p));
	ASSERT_TRUE(lexists(q));
	snprintf(p, sizeof(p), "%s/snapshots/" C1 "/config.json", repo);
	ASSERT_FALSE(lexists(p));
	/* snapshots/C1 still holds the other client's link: the ref keeps naming C1. */
	ASSERT_OK(hf_layout_read_ref(repo, "main", old));
	ASSERT_STR_EQ(old, C1);
	ASSERT_EQ(hf_manifest_sweep(cache), 0); /* the manifest is gone */
}

static void test_ref_restored_and_dirs_pruned(void)
{
	struct hf_manifest *m;
	char ref[PATH_MAX], got[41], p[PATH_MAX];

	ASSERT_OK(nftw(repo, rm_one, 16, FTW_DEPTH | FTW_PHYS));
	ASSERT_OK(hf_manifest_new(cache, mnt, repo, &m));
	add_pair(m, "x/y/z.bin", E1);
	ASSERT_OK(hf_layout_ref_path(repo, "refs/pr/1", ref, sizeof(ref)));
	ASSERT_OK(hf_manifest_add_ref(m, ref, C1, ""));
	ASSERT_EQ(hf_layout_write_ref(repo, "refs/pr/1", C1, HF_LAYOUT_REF_KEEP, NULL), 1);
	ASSERT_OK(hf_layout_ref_path(repo, "main", ref, sizeof(ref)));
	ASSERT_OK(hf_manifest_add_ref(m, ref, C1, C0));
	ASSERT_EQ(hf_layout_write_ref(repo, "main", C1, HF_LAYOUT_REF_UPDATE, NULL), 1);
	ASSERT_EQ(hf_manifest_undo(m), 4);
	ASSERT_OK(hf_layout_read_ref(repo, "main", got));
	ASSERT_STR_EQ(got, C0);
	ASSERT_EQ(hf_layout_read_ref(repo, "refs/pr/1", got), -ENOENT);
	snprintf(p, sizeof(p), "%s/refs/refs", repo);
	ASSERT_FALSE(lexists(p));
	snprintf(p, sizeof(p), "%s/snapshots", repo);
	ASSERT_FALSE(lexists(p));
	snprintf(p, sizeof(p), "%s/blobs", repo);
	ASSERT_FALSE(lexists(p));
	ASSERT_TRUE(lexists(root)); /* the HF cache root itself stays */
}

static void test_sweep(void)
{
	struct hf_manifest *m;
	char blob[PATH_MAX], path[PATH_MAX];
	int fd;
	FILE *f;

	ASSERT_OK(hf_manifest_new(cache, mnt, repo, &m));
	add_pair(m, "w.bin", E1);
	snprintf(path, sizeof(path), "%s", hf_manifest_path(m));
	/* A live mount holds the lock: its entries stay. */
	ASSERT_EQ(hf_manifest_sweep(cache), 0);
	snprintf(blob, sizeof(blob), "%s/blobs/" E1, repo);
	ASSERT_TRUE(lexists(blob));
	/* Killed mid-line: the cut line made no entry and is not read. */
	f = fopen(path, "a");
	ASSERT_NOT_NULL(f);
	fputs("S\t/etc/passwd\t../x", f);
	fclose(f);
	m = hf_manifest_free(m);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_TRUE(fd >= 0);
	ASSERT_OK(flock(fd, LOCK_SH)); /* a reader's lock also keeps the sweep away */
	ASSERT_EQ(hf_manifest_sweep(cache), 0);
	close(fd);
	ASSERT_EQ(hf_manifest_sweep(cache), 1);
	ASSERT_FALSE(lexists(blob));
	ASSERT_FALSE(lexists(path));
	ASSERT_EQ(access("/etc/passwd", F_OK), 0);
	/* Empty: a manifest being created (or whose creator died before its first line). */
	snprintf(path, sizeof(path), "%s/hf-cache/new.manifest", cache);
	put_file(path, "");
	ASSERT_EQ(hf_manifest_sweep(cache), 0);
	ASSERT_TRUE(lexists(path));
	ASSERT_OK(unlink(path));
	/* Not a manifest: refused, kept. */
	snprintf(path, sizeof(path), "%s/hf-cache/junk.manifest", cache);
	put_file(path, "hello, this is no manifest\n");
	ASSERT_EQ(hf_manifest_sweep(cache), -EBADMSG);
	ASSERT_TRUE(lexists(path));
	ASSERT_OK(unlink(path));
}

int main(void)
{
	ASSERT_NOT_NULL(mkdtemp(tmp));
	snprintf(cache, sizeof(cache), "%s/hffs", tmp);
	snprintf(root, sizeof(root), "%s/hf", tmp);
	snprintf(mnt, sizeof(mnt), "%s/mnt", tmp);
	ASSERT_OK(mkdir(cache, 0700));
	ASSERT_OK(mkdir(root, 0700));
	ASSERT_OK(mkdir(mnt, 0700));
	ASSERT_OK(hf_layout_repo_dir(root, "models", "org/name", repo, sizeof(repo)));
	ASSERT_EQ(hf_manifest_sweep(cache), 0); /* no hf-cache/ yet */
	RUN(test_undo);
	RUN(test_ref_restored_and_dirs_pruned);
	RUN(test_sweep);
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
