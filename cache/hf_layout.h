/* hf_layout.h: the Hugging Face hub cache's layout (HUB_PROTOCOL.md 8), the one place hffs names
 * its paths and writes into it: the root, a repo's folder, refs/<revision>,
 * snapshots/<commit>/<path> and blobs/<etag>, the relative link the official clients write, the
 * checks that refuse hostile names, and writes that never replace what another client stored.
 * Any thread; plain file system calls that may block on the disk. No FUSE, no network, no index:
 * the HF cache is a foreign format, shared with every other client on the machine. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The hub cache root: $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE (legacy), else $HF_HOME/hub,
 * else $XDG_CACHE_HOME/huggingface/hub, else $HOME/.cache/huggingface/hub; a leading "~/" is
 * expanded with $HOME, as the Python client does. Not required to exist. malloc'd; NULL on OOM
 * or when no variable gives a root. */
char *hf_layout_root(void);

/* True for a repo-relative path the layout may hold: not empty, no leading or trailing "/",
 * no empty, "." or ".." component, no control character or backslash, under 4096 bytes. A
 * revision that names a ref (refs/pr/1 nests directories under refs/) obeys the same rule. */
bool hf_layout_path_is_safe(const char *path);
/* True when s is a commit id: 40 lowercase hex digits (what refs/ files hold). */
bool hf_layout_is_commit(const char *s);

/* root + "/" + the repo's folder: "<type>--" + repo_id with each "/" as "--" (HUB_PROTOCOL.md
 * 8), type being "models", "datasets" or "spaces". repo_id is "name" or "org/name" of
 * [A-Za-z0-9._-], no part "." or "..". -EINVAL for another type or id, -ENAMETOOLONG when buf
 * (len bytes) is short. */
int hf_layout_repo_dir(const char *root, const char *type, const char *repo_id, char *buf,
		       size_t len);
/* repo_dir/refs/<rev>. -EINVAL for an unsafe rev, -ENAMETOOLONG. */
int hf_layout_ref_path(const char *repo_dir, const char *rev, char *buf, size_t len);
/* repo_dir/snapshots/<commit>/<path>. -EINVAL for a commit that is not one or an unsafe path,
 * -ENAMETOOLONG. */
int hf_layout_snapshot_path(const char *repo_dir, const char *commit, const char *path, char *buf,
			    size_t len);
/* repo_dir/snapshots/<commit>. Errors as hf_layout_snapshot_path(). */
int hf_layout_snapshot_dir(const char *repo_dir, const char *commit, char *buf, size_t len);
/* repo_dir/blobs/<etag>; etag is 40 or 64 lowercase hex (git sha1 or sha256). -EINVAL,
 * -ENAMETOOLONG. */
int hf_layout_blob_path(const char *repo_dir, const char *etag, char *buf, size_t len);
/* The target of the link snapshots/<commit>/<path> as the official clients write it:
 * "../../blobs/<etag>" with one more "../" per "/" in path. -EINVAL, -ENAMETOOLONG. */
int hf_layout_blob_link(const char *path, const char *etag, char *buf, size_t len);

/* Creates the missing directories above the file path file (mode 0777 less the umask, as the
 * official clients' makedirs). 0 or -errno (-ENOTDIR when a component is not a directory). */
int hf_layout_mkdirs(const char *file);

enum hf_layout_ref_mode {
	HF_LAYOUT_REF_KEEP, /* never replace: another commit there is -EEXIST */
	HF_LAYOUT_REF_UPDATE, /* replace another commit atomically, as the official clients do
				 when they learn a branch moved */
};

/* Reads refs/<rev> (40 hex, a trailing newline tolerated). 0; -ENOENT when absent; -EBADMSG
 * when it holds something else; -EINVAL for an unsafe rev; other -errno. */
int hf_layout_read_ref(const char *repo_dir, const char *rev, char ret_commit[41]);
/* Makes refs/<rev> hold commit (no newline), parents created. It is written to a temporary
 * file beside it, then linked in (KEEP: link(), which never replaces) or renamed over the old
 * one (UPDATE), so a reader sees the old or the new content, never a part. ret_old (NULL or 41
 * bytes) gets what the file held before, "" when it was absent. 1 written; 0 when it already
 * held commit (left untouched); -EEXIST (KEEP) when it holds another commit or something
 * unreadable; -EINVAL for an unsafe rev or a commit that is not one; other -errno. */
int hf_layout_write_ref(const char *repo_dir, const char *rev, const char *commit,
			enum hf_layout_ref_mode mode, char ret_old[41]);

/* Creates the symbolic link link -> target, its directories included, never replacing an
 * entry. 1 created; 0 when a symlink with exactly that target is already there; -EEXIST when
 * anything else is there (left alone); other -errno. */
int hf_layout_symlink(const char *target, const char *link);
/* Removes link if it is a symlink whose target is exactly target, else leaves it. 1 removed,
 * 0 absent or not that link; -errno. (Between the readlink and the unlink another client could
 * swap the entry; clients only ever create links, so this is not guarded further.) */
int hf_layout_unlink_link(const char *link, const char *target);
/* Gives the finished file tmp the name final without replacing anything there: link() then
 * unlink(tmp); where the file system has no hard links, renameat2(RENAME_NOREPLACE). A blob is
 * named by its content, so one already at final is kept. 1 placed; 0 when final already
 * existed (tmp removed); -errno with tmp left in place. */
int hf_layout_place(const char *tmp, const char *final);
/* Removes dir and then each parent while they are empty, stopping at stop (a prefix of dir,
 * never removed) or at the first one that is not empty. 0 or -errno (a non-empty or missing
 * directory is not an error). */
int hf_layout_prune(const char *dir, const char *stop);
