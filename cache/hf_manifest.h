/* hf_manifest.h: what one hffs mount added to the Hugging Face hub cache, and taking it out
 * again. A manifest is a file under <hffs cache>/hf-cache/, written line by line *before*
 * each entry is made, and locked (flock) by its mount for the mount's life: a manifest nobody
 * holds belongs to a mount that ended without cleaning up (kill -9, a crash), and
 * hf_manifest_sweep() takes its entries out. Removal takes out only entries that are still
 * exactly what hffs wrote, and the snapshot links clients made to blobs it removes (they would
 * dangle). Any thread (one manifest per thread); blocking file system calls. */
#pragma once

#include <stdbool.h>

struct hf_manifest;

/* Creates a manifest in cache_dir/hf-cache/ (made 0700 if missing) for the mount at
 * mountpoint, whose entries live in repo_dir (the repo's folder in the HF cache), and locks
 * it. -errno. */
int hf_manifest_new(const char *cache_dir, const char *mountpoint, const char *repo_dir,
		    struct hf_manifest **ret);
/* The manifest's path (valid for its life). */
const char *hf_manifest_path(const struct hf_manifest *m);

/* Records a link about to be created. blob: a blobs/<etag> entry (when removed, the snapshot
 * links that pointed to it go too); else a snapshots/ link. link is an absolute path, target
 * the link's exact text; neither may hold a tab or a newline (-EINVAL). -errno when the line
 * cannot be written (then do not make the entry). */
int hf_manifest_add_link(struct hf_manifest *m, const char *link, const char *target, bool blob);
/* Records that the entry at link, whose line hf_manifest_add_link() wrote, was made by another
 * client first (hf_layout_symlink() did not return 1): removal leaves it. -errno. */
int hf_manifest_cancel_link(struct hf_manifest *m, const char *link);
/* Records that refs/<rev> at ref_path now holds commit, where it held old ("" when absent).
 * -errno. */
int hf_manifest_add_ref(struct hf_manifest *m, const char *ref_path, const char *commit,
			const char *old);
/* Makes the lines written so far durable (fdatasync). -errno. */
int hf_manifest_sync(struct hf_manifest *m);

/* Takes every recorded entry out of the HF cache (hf_manifest_undo_file()), then deletes the
 * manifest and frees m. NULL is accepted. Returns the number of entries removed, or -errno of
 * the first failure (the manifest is then kept for a later sweep). */
int hf_manifest_undo(struct hf_manifest *m);
/* Frees m and unlocks the manifest, leaving the entries and the file (a later sweep takes
 * them out). NULL is accepted; returns NULL. */
struct hf_manifest *hf_manifest_free(struct hf_manifest *m);

/* Removes the entries the manifest at path records, in order: snapshot links still holding
 * their recorded target; blob links still holding theirs; then the links under the repo's
 * snapshots/ that named a removed blob and no longer resolve (another client made them
 * while the mount lived); each ref still holding the recorded commit goes back to its old
 * content (or away when it had none) unless the snapshot of that commit still holds other
 * clients' files; last, directories left empty up to the HF cache root. Anything else is
 * left as it is. The number of entries removed, or -errno (-EBADMSG: not a manifest). */
int hf_manifest_undo_file(const char *path);
/* Undoes and deletes every manifest under cache_dir/hf-cache/ that no live mount holds (its
 * lock is free). The number of manifests cleaned, or -errno of the first failure; a missing
 * directory is 0. */
int hf_manifest_sweep(const char *cache_dir);
