/* test_hf_layout.c: the Hugging Face cache layout in a temporary directory: the root from the
 * environment, repo folders, hostile paths and ids refused, the relative link shape at each
 * depth, refs written atomically and kept or updated, symlinks that never replace another
 * client's entry, placing a finished file without replacing, removal of our links only, and
 * pruning empty directories. */
#include "cache/hf_layout.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/check.h"

#define C1 "0123456789abcdef0123456789abcdef01234567"
#define C2 "89abcdef0123456789abcdef0123456789abcdef"
#define SHA "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"

static char tmp[] = "/tmp/hffs-test-hf-layout-XXXXXX";

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	ASSERT_TRUE(fd >= 0);
	n = read(fd, buf, len - 1);
	ASSERT_TRUE(n >= 0);
	buf[n] = '\0';
	close(fd);
}

static void test_root(void)
{
	char *r;

	unsetenv("HF_HUB_CACHE");
	unsetenv("HUGGINGFACE_HUB_CACHE");
	unsetenv("HF_HOME");
	unsetenv("XDG_CACHE_HOME");
	setenv("HOME", "/home/u", 1);
	r = hf_layout_root();
	ASSERT_STR_EQ(r, "/home/u/.cache/huggingface/hub");
	free(r);
	setenv("XDG_CACHE_HOME", "/x", 1);
	r = hf_layout_root();
	ASSERT_STR_EQ(r, "/x/huggingface/hub");
	free(r);
	setenv("HF_HOME", "~/hf", 1);
	r = hf_layout_root();
	ASSERT_STR_EQ(r, "/home/u/hf/hub");
	free(r);
	setenv("HUGGINGFACE_HUB_CACHE", "/legacy", 1);
	r = hf_layout_root();
	ASSERT_STR_EQ(r, "/legacy");
	free(r);
	setenv("HF_HUB_CACHE", "/hc", 1);
	r = hf_layout_root();
	ASSERT_STR_EQ(r, "/hc");
	free(r);
	unsetenv("HF_HUB_CACHE");
	unsetenv("HUGGINGFACE_HUB_CACHE");
	unsetenv("HF_HOME");
	unsetenv("XDG_CACHE_HOME");
	unsetenv("HOME");
	ASSERT_NULL(hf_layout_root());
}

static void test_names(void)
{
	char b[PATH_MAX];

	ASSERT_OK(hf_layout_repo_dir("/r", "models", "org/name", b, sizeof(b)));
	ASSERT_STR_EQ(b, "/r/models--org--name");
	ASSERT_OK(hf_layout_repo_dir("/r", "models", "gpt2", b, sizeof(b)));
	ASSERT_STR_EQ(b, "/r/models--gpt2");
	ASSERT_OK(hf_layout_repo_dir("/r", "datasets", "o/d.v-1_x", b, sizeof(b)));
	ASSERT_STR_EQ(b, "/r/datasets--o--d.v-1_x");
	ASSERT_OK(hf_layout_repo_dir("/r", "spaces", "o/s", b, sizeof(b)));
	ASSERT_STR_EQ(b, "/r/spaces--o--s");
	ASSERT_EQ(hf_layout_repo_dir("/r", "model", "o/n", b, sizeof(b)), -EINVAL);
	ASSERT_EQ(hf_layout_repo_dir("/r", "models", "o/n/x", b, sizeof(b)), -EINVAL);
	ASSERT_EQ(hf_layout_repo_dir("/r", "models", "../n", b, sizeof(b)), -EINVAL);
	ASSERT_EQ(hf_layout_repo_dir("/r", "models", "o/..", b, sizeof(b)), -EINVAL);
	ASSERT_EQ(hf_layout_repo_dir("/r", "models", "/n", b, sizeof(b)), -EINVAL);
	ASSERT_EQ(hf_layout_repo_dir("/r", "models", "", b, sizeof(b)), -EINVAL);
	ASSERT_EQ(hf_layout_repo_dir("/r", "models", "o/n", b, 10), -ENAMETOOLONG);

	ASSERT_OK(hf_layout_ref_path("/r/m", "main", b, sizeof(b)));
	ASSERT_STR_EQ(b, "/r/m/refs/main");
	ASSERT_OK(hf_layout_ref_path("/r/m", "refs/pr/1", b, sizeof(b)));
	ASSERT_STR_EQ(b, "/r/m/refs/refs/pr/1");
	ASSERT_EQ(hf_layout_ref_path("/r/m", "../main", b, sizeof(b)), -EINVAL);
	ASSERT_OK(hf_layout_snapshot_path("/r/m", C1, "a/b.txt", b, sizeof(b)));
	ASSERT_STR_EQ(b, "/r/m/snapshots/" C1 "/a/b.txt");
	ASSERT_OK(hf_layout_snapshot_dir("/r/m", C1, b, sizeof(b)));
	ASSERT_STR_EQ(b, "/r/m/snapshots/" C1);
	ASSERT_EQ(hf_layout_snapshot_path("/r/m", "main", "a", b, sizeof(b)), -EINVAL);
	ASSERT_EQ(hf_layout_snapshot_path("/r/m", C1, "/etc/passwd", b, sizeof(b)), -EINVAL);
	ASSERT_OK(hf_layout_blob_path("/r/m", SHA, b, sizeof(b)));
	ASSERT_STR_EQ(b, "/r/m/blobs/" SHA);
	ASSERT_EQ(hf_layout_blob_path("/r/m", "../x", b, sizeof(b)), -EINVAL);
	ASSERT_EQ(hf_layout_blob_path("/r/m", C1 "0", b, sizeof(b)), -EINVAL);

	ASSERT_OK(hf_layout_blob_link("config.json", C1, b, sizeof(b)));
	ASSERT_STR_EQ(b, "../../blobs/" C1);
	ASSERT_OK(hf_layout_blob_link("a/b/w.bin", SHA, b, sizeof(b)));
	ASSERT_STR_EQ(b, "../../../../blobs/" SHA);
	ASSERT_EQ(hf_layout_blob_link("a/b/w.bin", SHA, b, 20), -ENAMETOOLONG);
	ASSERT_EQ(hf_layout_blob_link("a/../w", SHA, b, sizeof(b)), -EINVAL);
}

static void test_hostile(void)
{
	static const char *bad[] = { "",     "/abs",  "a/",   "a//b", ".",	"..",	  "a/..",
				     "../a", "a/./b", "a\\b", "a\nb", "tab\tx", "del\x7f" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (hf_layout_path_is_safe(bad[i]))
			CHECK_FAIL("unsafe path accepted: \"%s\"", bad[i]);
	}
	ASSERT_FALSE(hf_layout_path_is_safe(NULL));
	ASSERT_TRUE(hf_layout_path_is_safe("a"));
	ASSERT_TRUE(hf_layout_path_is_safe("..a/b..c/.d/é ü"));
	ASSERT_TRUE(hf_layout_is_commit(C1));
	ASSERT_FALSE(hf_layout_is_commit(SHA));
	ASSERT_FALSE(hf_layout_is_commit("0123456789ABCDEF0123456789abcdef01234567"));
}

static void test_refs(void)
{
	char repo[256], path[PATH_MAX], old[41], got[41], buf[64];
	struct stat st;

	snprintf(repo, sizeof(repo), "%s/models--o--n", tmp);
	ASSERT_EQ(hf_layout_read_ref(repo, "main", got), -ENOENT);
	ASSERT_EQ(hf_layout_write_ref(repo, "main", C1, HF_LAYOUT_REF_KEEP, old), 1);
	ASSERT_STR_EQ(old, "");
	snprintf(path, sizeof(path), "%s/refs/main", repo);
	slurp(path, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, C1); /* no newline, as the official clients write it */
	ASSERT_OK(stat(path, &st));
	ASSERT_EQ(st.st_nlink, 1); /* the temporary name is gone */
	ASSERT_OK(hf_layout_read_ref(repo, "main", got));
	ASSERT_STR_EQ(got, C1);
	/* The same commit again: untouched. Another: kept, or replaced when asked. */
	ASSERT_EQ(hf_layout_write_ref(repo, "main", C1, HF_LAYOUT_REF_KEEP, old), 0);
	ASSERT_EQ(hf_layout_write_ref(repo, "main", C2, HF_LAYOUT_REF_KEEP, old), -EEXIST);
	ASSERT_STR_EQ(old, C1);
	slurp(path, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, C1);
	ASSERT_EQ(hf_layout_write_ref(repo, "main", C2, HF_LAYOUT_REF_UPDATE, old), 1);
	ASSERT_STR_EQ(old, C1);
	slurp(path, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, C2);
	/* A nested ref, and one written by a client with a trailing newline. */
	ASSERT_EQ(hf_layout_write_ref(repo, "refs/pr/1", C1, HF_LAYOUT_REF_KEEP, NULL), 1);
	ASSERT_OK(hf_layout_read_ref(repo, "refs/pr/1", got));
	ASSERT_STR_EQ(got, C1);
	snprintf(path, sizeof(path), "%s/refs/v1", repo);
	FILE *f = fopen(path, "w");
	ASSERT_NOT_NULL(f);
	fputs(C2 "\n", f);
	fclose(f);
	ASSERT_OK(hf_layout_read_ref(repo, "v1", got));
	ASSERT_STR_EQ(got, C2);
	ASSERT_EQ(hf_layout_write_ref(repo, "v1", C2, HF_LAYOUT_REF_KEEP, NULL), 0);
	/* Garbage is another client's business: kept, unless the caller updates. */
	f = fopen(path, "w");
	ASSERT_NOT_NULL(f);
	fputs("garbage", f);
	fclose(f);
	ASSERT_EQ(hf_layout_read_ref(repo, "v1", got), -EBADMSG);
	ASSERT_EQ(hf_layout_write_ref(repo, "v1", C1, HF_LAYOUT_REF_KEEP, old), -EEXIST);
	ASSERT_EQ(hf_layout_write_ref(repo, "..", C1, HF_LAYOUT_REF_KEEP, old), -EINVAL);
	ASSERT_EQ(hf_layout_write_ref(repo, "main", "main", HF_LAYOUT_REF_KEEP, old), -EINVAL);
}

static void test_links(void)
{
	char repo[256], link[PATH_MAX], blob[PATH_MAX], target[PATH_MAX], cur[PATH_MAX];
	ssize_t n;

	snprintf(repo, sizeof(repo), "%s/models--o--l", tmp);
	ASSERT_OK(hf_layout_snapshot_path(repo, C1, "a/b/w.bin", link, sizeof(link)));
	ASSERT_OK(hf_layout_blob_link("a/b/w.bin", SHA, target, sizeof(target)));
	ASSERT_EQ(hf_layout_symlink(target, link), 1);
	ASSERT_EQ(hf_layout_symlink(target, link), 0);
	ASSERT_EQ(hf_layout_symlink("../../blobs/other", link), -EEXIST);
	n = readlink(link, cur, sizeof(cur) - 1);
	ASSERT_TRUE(n > 0);
	cur[n] = '\0';
	ASSERT_STR_EQ(cur, target);
	/* The relative link resolves to blobs/<etag> of the same repo. */
	ASSERT_OK(hf_layout_blob_path(repo, SHA, blob, sizeof(blob)));
	ASSERT_OK(hf_layout_mkdirs(blob));
	FILE *f = fopen(blob, "w");
	ASSERT_NOT_NULL(f);
	fputs("x", f);
	fclose(f);
	ASSERT_OK(access(link, R_OK));
	/* A regular file another client stored is never replaced nor removed. */
	ASSERT_OK(hf_layout_snapshot_path(repo, C1, "c.txt", link, sizeof(link)));
	f = fopen(link, "w");
	ASSERT_NOT_NULL(f);
	fclose(f);
	ASSERT_EQ(hf_layout_symlink("../../blobs/" SHA, link), -EEXIST);
	ASSERT_EQ(hf_layout_unlink_link(link, "../../blobs/" SHA), 0);
	ASSERT_OK(access(link, F_OK));
	/* Only the link with our target goes. */
	ASSERT_OK(hf_layout_snapshot_path(repo, C1, "a/b/w.bin", link, sizeof(link)));
	ASSERT_EQ(hf_layout_unlink_link(link, "../../blobs/other"), 0);
	ASSERT_OK(access(link, F_OK));
	ASSERT_EQ(hf_layout_unlink_link(link, target), 1);
	ASSERT_EQ(hf_layout_unlink_link(link, target), 0);
	/* A file where a directory must be. */
	ASSERT_OK(hf_layout_snapshot_path(repo, C1, "c.txt/x", link, sizeof(link)));
	ASSERT_EQ(hf_layout_symlink("t", link), -ENOTDIR);
}

static void test_place_prune(void)
{
	char repo[256], part[PATH_MAX + 32], blob[PATH_MAX], dir[PATH_MAX], buf[16];
	FILE *f;

	snprintf(repo, sizeof(repo), "%s/models--o--p", tmp);
	ASSERT_OK(hf_layout_blob_path(repo, SHA, blob, sizeof(blob)));
	ASSERT_OK(hf_layout_mkdirs(blob));
	snprintf(part, sizeof(part), "%s.0000abcd.incomplete", blob);
	f = fopen(part, "w");
	ASSERT_NOT_NULL(f);
	fputs("new", f);
	fclose(f);
	ASSERT_EQ(hf_layout_place(part, blob), 1);
	ASSERT_EQ(access(part, F_OK), -1);
	slurp(blob, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "new");
	/* One already there is kept; ours is dropped. */
	f = fopen(part, "w");
	ASSERT_NOT_NULL(f);
	fputs("other", f);
	fclose(f);
	ASSERT_EQ(hf_layout_place(part, blob), 0);
	ASSERT_EQ(access(part, F_OK), -1);
	slurp(blob, buf, sizeof(buf));
	ASSERT_STR_EQ(buf, "new");
	ASSERT_EQ(hf_layout_place(part, blob), -ENOENT);

	/* Pruning stops at the first non-empty directory and never removes stop. */
	snprintf(dir, sizeof(dir), "%s/snapshots/" C1 "/a/b", repo);
	ASSERT_OK(hf_layout_mkdirs(dir));
	ASSERT_OK(mkdir(dir, 0777));
	ASSERT_OK(hf_layout_prune(dir, repo));
	snprintf(dir, sizeof(dir), "%s/snapshots", repo);
	ASSERT_EQ(access(dir, F_OK), -1);
	ASSERT_OK(access(repo, F_OK)); /* blobs/ keeps it */
	ASSERT_OK(hf_layout_prune(dir, repo)); /* missing: not an error */
	ASSERT_OK(hf_layout_prune(repo, repo));
	ASSERT_OK(access(repo, F_OK));
}

int main(void)
{
	ASSERT_NOT_NULL(mkdtemp(tmp));
	RUN(test_names);
	RUN(test_hostile);
	RUN(test_refs);
	RUN(test_links);
	RUN(test_place_prune);
	RUN(test_root);
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
