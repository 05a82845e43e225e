/* mounts.c: finding hffs mounts through the mount table and their roots' attributes. */
#include "cli/mounts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/xattr.h>

#include "util/cleanup.h"
#include "util/mountinfo.h"

#define HFFS_FSTYPE "fuse.hffs"

char *cli_mount_cache_dir(const char *mp)
{
	char buf[4096];
	ssize_t n = getxattr(mp, "user.hffs.cache_dir", buf, sizeof(buf) - 1);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

struct list_ctx {
	struct cli_mount *v;
	size_t n, cap;
};

static int add_mount(void *ud, const char *mountpoint, const struct mountinfo_entry *e)
{
	struct list_ctx *c = ud;
	struct cli_mount *m;
	struct statfs sfs;

	if (strcmp(e->fstype, HFFS_FSTYPE))
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		struct cli_mount *v = realloc(c->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	m = &c->v[c->n];
	*m = (struct cli_mount){ .mountpoint = strdup(mountpoint), .source = strdup(e->source) };
	if (!m->mountpoint || !m->source) {
		free(m->mountpoint);
		free(m->source);
		return -ENOMEM;
	}
	/* statfs always reaches the daemon (a dead one: ENOTCONN). */
	m->dead = statfs(mountpoint, &sfs) < 0 && errno == ENOTCONN;
	if (!m->dead)
		m->cache_dir = cli_mount_cache_dir(mountpoint);
	c->n++;
	return 0;
}

int cli_mounts_list(struct cli_mount **ret, size_t *ret_n)
{
	struct list_ctx c = { 0 };
	int r = mountinfo_each(add_mount, &c);

	if (r < 0) {
		cli_mounts_free(c.v, c.n);
		return r;
	}
	*ret = c.v;
	*ret_n = c.n;
	return 0;
}

void cli_mounts_free(struct cli_mount *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].mountpoint);
		free(v[i].source);
		free(v[i].cache_dir);
	}
	free(v);
}
