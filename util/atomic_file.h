/* atomic_file.h: replacing a file's contents so that a reader sees the old file or the new
 * one, never a part: the new contents go to a temporary file in the same directory, which is
 * then renamed over the path (rename(2) is atomic within a file system). For files other
 * programs poll, such as node_exporter's textfile collector. Any thread; blocking (disk). */
#pragma once

#include <stdio.h>
#include <sys/types.h>

/* Calls fill(f, ud) to write the new contents of path to a stream, then gives the file mode
 * (exactly: the umask is not applied) and renames it over path. fill returns 0 or -errno. A failure leaves path as
 * it was and removes the temporary file. -errno: of fill, of the writes (e.g. -ENOSPC), of
 * creating the temporary file in path's directory or of the rename. */
int atomic_file_write(const char *path, mode_t mode, int (*fill)(FILE *f, void *ud), void *ud);
