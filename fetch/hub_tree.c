/* hub_tree.c: a repo's file tree at a commit (the entries the Hub lists, HUB_PROTOCOL.md 3)
 * as a growable array, and the check that refuses a hostile one before anything uses its
 * paths (HUB_PROTOCOL.md 10). Pure; any thread, one tree per thread. */
#include "fetch/hub_tree.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"

#define HUB_PATH_MAX 4095
#define HUB_SEGMENT_MAX 255

const char *hub_entry_cid(const struct hub_entry *e)
{
	return e->is_lfs ? e->sha256 : e->oid;
}

bool hub_entry_has_data(const struct hub_entry *e)
{
	return !e->is_dir && e->size > 0;
}

int hub_tree_push(struct hub_tree *tree, const struct hub_entry *e)
{
	if (tree->n == tree->cap) {
		size_t cap = tree->cap ? tree->cap * 2 : 256;
		struct hub_entry *v;

		if (cap > SIZE_MAX / sizeof(*v))
			return -ENOMEM;
		v = realloc(tree->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		tree->v = v;
		tree->cap = cap;
	}
	tree->v[tree->n++] = *e;
	return 0;
}

void hub_tree_truncate(struct hub_tree *tree, size_t n)
{
	while (tree->n > n)
		free(tree->v[--tree->n].path);
}

void hub_tree_done(struct hub_tree *tree)
{
	hub_tree_truncate(tree, 0);
	free(tree->v);
	memset(tree, 0, sizeof(*tree));
}

static bool is_lower_hex(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
	return true;
}

/* Why path is unsafe, or NULL (HUB_PROTOCOL.md 10, and what a FUSE name may be). */
static const char *path_problem(const char *path)
{
	size_t len = strlen(path);
	const char *seg = path;

	if (len == 0)
		return "an empty path";
	if (len > HUB_PATH_MAX)
		return "a path longer than 4095 bytes";
	if (path[0] == '/')
		return "an absolute path";
	for (const char *p = path; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return "a control character";
		if (*p == '\\')
			return "a backslash";
	}
	for (;;) {
		size_t n = strcspn(seg, "/");

		if (n == 0)
			return "an empty segment";
		if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return "a '.' or '..' segment";
		if (n > HUB_SEGMENT_MAX)
			return "a name longer than 255 bytes";
		if (!seg[n])
			return NULL;
		seg += n + 1;
	}
}

/* Why entry e is unacceptable apart from its path, or NULL. */
static const char *entry_problem(const struct hub_entry *e)
{
	if (e->is_dir)
		return e->oid[0] && !is_lower_hex(e->oid, 40) ? "a git oid that is not 40 hex" :
								NULL;
	/* An LFS file's content id is its sha256; a tree from the cache keeps no pointer oid. */
	if ((!e->is_lfs || e->oid[0]) && !is_lower_hex(e->oid, 40))
		return "a git oid that is not 40 hex";
	if (e->is_lfs && !is_lower_hex(e->sha256, 64))
		return "an LFS sha256 that is not 64 hex";
	return NULL;
}

static int cmp_entry_path(const void *a, const void *b)
{
	const struct hub_entry *const *x = a, *const *y = b;

	return strcmp((*x)->path, (*y)->path);
}

static int cmp_key_entry(const void *key, const void *b)
{
	const struct hub_entry *const *y = b;

	return strcmp(key, (*y)->path);
}

/* Writes path into buf for a message: quotes kept out, odd bytes as \xNN, bounded. */
static void quote_path(char *buf, size_t len, const char *path)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)path; *p && o + 5 < len; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\'' || *p == '\\')
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
		else
			buf[o++] = (char)*p;
	}
	if (o + 5 >= len && o >= 3)
		memcpy(buf + o - 3, "...", 3);
	buf[o] = '\0';
}

static int refuse(struct hub_error *err, const char *path, const char *why)
{
	char q[220];

	quote_path(q, sizeof(q), path ? path : "");
	hub_error_set(err, FETCH_PROTOCOL, 0,
		      "refusing the repo's file list: unsafe path '%s' (%s)", q, why);
	return -EBADMSG;
}

/* The parent of each entry must not be a file ("a" file and "a/b" both listed). */
static int check_parents(const struct hub_entry **sorted, size_t n, struct hub_error *err)
{
	_cleanup_free_ char *buf = NULL;

	for (size_t i = 0; i < n; i++) {
		const char *path = sorted[i]->path;
		size_t len = strlen(path);
		char *slash;

		free(buf);
		buf = strdup(path);
		if (!buf)
			return -ENOMEM;
		while ((slash = memrchr(buf, '/', len))) {
			const struct hub_entry **hit;

			*slash = '\0';
			len = (size_t)(slash - buf);
			hit = bsearch(buf, sorted, n, sizeof(*sorted), cmp_key_entry);
			if (hit && !(*hit)->is_dir)
				return refuse(err, path, "its parent is a file");
		}
	}
	return 0;
}

int hub_tree_validate(const struct hub_tree *tree, struct hub_error *err)
{
	_cleanup_free_ const struct hub_entry **sorted = NULL;

	for (size_t i = 0; i < tree->n; i++) {
		const struct hub_entry *e = &tree->v[i];
		const char *why = e->path ? path_problem(e->path) : "no path";

		if (!why)
			why = entry_problem(e);
		if (why)
			return refuse(err, e->path, why);
	}
	if (tree->n == 0)
		return 0;
	sorted = malloc(tree->n * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	for (size_t i = 0; i < tree->n; i++)
		sorted[i] = &tree->v[i];
	qsort(sorted, tree->n, sizeof(*sorted), cmp_entry_path);
	for (size_t i = 1; i < tree->n; i++)
		if (!strcmp(sorted[i]->path, sorted[i - 1]->path))
			return refuse(err, sorted[i]->path, "listed twice");
	return check_parents(sorted, tree->n, err);
}
