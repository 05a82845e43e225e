/* xattr.h: the user.hffs.* extended attributes of a mount, as text, for scripts
 * (`getfattr -d -m user.hffs FILE`). A file has user.hffs.content_id (the LFS sha256 or git
 * blob sha1), user.hffs.state (missing, partial, complete, verified, bad: the words of
 * `hffs status`), user.hffs.bytes_cached and user.hffs.coverage (percent cached, one decimal);
 * the root has user.hffs.repo, user.hffs.revision, user.hffs.commit, user.hffs.endpoint and
 * user.hffs.cache_dir. Other directories have none. Values are read at the call: they are
 * never cached by the kernel. */
#pragma once

#include <stddef.h>

#include "fs/inode.h"
#include "fs/ops.h"

/* The NUL-terminated names of e's attributes, one after the other, into buf (len bytes; buf
 * may be NULL with len 0 to ask the size). Returns the length the list needs; when that is
 * more than len, buf is left alone. */
size_t xattr_list(const struct mount_ctx *m, const struct inode *e, char *buf, size_t len);
/* The value of attribute name of e (no NUL) into buf (len bytes; NULL with len 0 asks the
 * size). Returns the value's length, -ENODATA when e has no such attribute, -ERANGE when it
 * does not fit in len. */
int xattr_get(const struct mount_ctx *m, const struct inode *e, const char *name, char *buf,
	      size_t len);
