/* xattr.c: names and values of the user.hffs.* attributes (see xattr.h). Reads the mount's
 * strings and, for a file, the scheduler's view of its bytes. */
#include "fs/xattr.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/cleanup.h"

#define PREFIX "user.hffs."

static const char *const file_names[] = { "content_id", "state", "bytes_cached", "coverage" };
static const char *const root_names[] = { "repo", "revision", "commit", "endpoint", "cache_dir" };

static bool is_root(const struct inode *e)
{
	return e->ino == 1;
}

size_t xattr_list(const struct mount_ctx *m, const struct inode *e, char *buf, size_t len)
{
	const char *const *names = is_root(e) ? root_names : file_names;
	size_t n = is_root(e) ? ARRAY_SIZE(root_names) : e->is_dir ? 0 : ARRAY_SIZE(file_names);
	size_t need = 0;

	(void)m;
	for (size_t i = 0; i < n; i++)
		need += strlen(PREFIX) + strlen(names[i]) + 1;
	if (!buf || need > len)
		return need;
	for (size_t i = 0; i < n; i++)
		buf += sprintf(buf, PREFIX "%s", names[i]) + 1;
	return need;
}

/* The value of one attribute into val (at least 128 bytes, or the string it names). */
static const char *value_of(const struct mount_ctx *m, const struct inode *e, const char *key,
			    char *val, size_t len)
{
	struct sched_file_info fi;

	if (is_root(e)) {
		const char *const vals[] = { m->repo, m->revision, m->commit, m->endpoint,
					     m->cache_dir };

		for (size_t i = 0; i < ARRAY_SIZE(root_names); i++)
			if (!strcmp(key, root_names[i]))
				return vals[i] ? vals[i] : "";
		return NULL;
	}
	if (e->is_dir)
		return NULL;
	if (!strcmp(key, "content_id"))
		return e->cid;
	sched_file_info(m->sched, e, &fi);
	if (!strcmp(key, "state"))
		return fi.state;
	if (!strcmp(key, "bytes_cached"))
		snprintf(val, len, "%" PRIu64, fi.bytes_cached);
	else if (!strcmp(key, "coverage"))
		snprintf(val, len, "%.1f",
			 e->size ? 100.0 * (double)fi.bytes_cached / (double)e->size : 100.0);
	else
		return NULL;
	return val;
}

int xattr_get(const struct mount_ctx *m, const struct inode *e, const char *name, char *buf,
	      size_t len)
{
	char tmp[64];
	const char *v;
	size_t n;

	if (strncmp(name, PREFIX, strlen(PREFIX)))
		return -ENODATA;
	v = value_of(m, e, name + strlen(PREFIX), tmp, sizeof(tmp));
	if (!v)
		return -ENODATA;
	n = strlen(v);
	if (!buf)
		return (int)n;
	if (n > len)
		return -ERANGE;
	memcpy(buf, v, n);
	return (int)n;
}
