/* fuzz_tree.c: untrusted trees into hub_tree_validate() and then inode_table_new(). An input
 * that starts with '[' is a tree as the cache stores it (tree JSON, read by hub_json.h); any
 * other is a path list, one entry a line: 'd' (directory), 'f' (file) or 'l' (LFS file), then
 * the path. For a path list, validation must agree with an independent statement of the rules
 * (HUB_PROTOCOL.md 10, as hub.h words them). Whatever validation accepts must build a table in
 * which every path looks up, segment by segment, to an inode of that path, kind, size and
 * content id, and every inode is reachable from its parent by its name. Invariants abort. */
#include <stdbool.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/hub.h"
#include "fetch/hub_json.h"
#include "fs/inode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PATH_MAX_BYTES 4095 /* hub.h: a path over 4095 bytes is refused */
#define SEGMENT_MAX_BYTES 255
#define OID "0123456789abcdef0123456789abcdef01234567"
#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* The path rules of hub.h, written again without looking at hub.c's code. */
static bool path_is_safe(const char *path)
{
	size_t len = strlen(path), start = 0;

	if (len == 0 || len > PATH_MAX_BYTES || path[0] == '/')
		return false;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)path[i];

		if (i < len && (c < 0x20 || c == 0x7f || c == '\\'))
			return false;
		if (i == len || c == '/') {
			size_t n = i - start;

			if (n == 0 || n > SEGMENT_MAX_BYTES)
				return false;
			if ((n == 1 && path[start] == '.') ||
			    (n == 2 && path[start] == '.' && path[start + 1] == '.'))
				return false;
			start = i + 1;
		}
	}
	return true;
}

/* The tree rules: safe paths, none listed twice, no entry below a file. O(n^2): inputs are
 * small. */
static bool tree_is_safe(const struct hub_tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const char *p = t->v[i].path;

		if (!path_is_safe(p))
			return false;
		for (size_t j = 0; j < t->n; j++) {
			const char *q = t->v[j].path;
			size_t lq = strlen(q);

			if (j != i && !strcmp(p, q))
				return false;
			if (j != i && !t->v[j].is_dir && !strncmp(p, q, lq) && p[lq] == '/')
				return false;
		}
	}
	return true;
}

/* Looks path up from the root, one segment at a time. */
static const struct inode *walk(const struct inode_table *it, const char *path)
{
	const struct inode *d = inode_get(it, 1);
	char *copy = strdup(path), *save = NULL;

	if (!copy)
		abort();
	for (char *seg = strtok_r(copy, "/", &save); seg && d; seg = strtok_r(NULL, "/", &save))
		d = inode_lookup(it, d->ino, seg);
	free(copy);
	return d;
}

static void check_table(const struct hub_tree *t)
{
	struct inode_table *it = NULL;
	int r = inode_table_new(t, &it);

	if (r == -ENOMEM)
		return;
	if (r != 0)
		abort(); /* validation let through what the table cannot hold */
	for (size_t i = 0; i < t->n; i++) {
		const struct hub_entry *e = &t->v[i];
		const struct inode *in = walk(it, e->path);

		if (!in || strcmp(in->path, e->path) || in->is_dir != e->is_dir)
			abort();
		if (!e->is_dir && (in->size != e->size || strcmp(in->cid, hub_entry_cid(e))))
			abort();
	}
	for (uint64_t ino = 1; ino <= inode_count(it); ino++) {
		const struct inode *in = inode_get(it, ino), *parent;

		if (!in || in->ino != ino)
			abort();
		for (size_t c = 1; c < in->nchildren; c++)
			if (strcmp(inode_get(it, in->children[c - 1])->name,
				   inode_get(it, in->children[c])->name) >= 0)
				abort();
		if (ino == 1)
			continue;
		parent = inode_get(it, in->parent);
		if (!parent || !parent->is_dir || inode_lookup(it, parent->ino, in->name) != in ||
		    !path_is_safe(in->path) || walk(it, in->path) != in)
			abort();
	}
	if (inode_get(it, 0) || inode_get(it, inode_count(it) + 1))
		abort();
	inode_table_free(it);
}

/* A path list into t; false on OOM. */
static bool parse_list(const char *text, struct hub_tree *t)
{
	char *copy = strdup(text), *save = NULL;
	bool ok = copy != NULL;

	for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line && ok;
	     line = strtok_r(NULL, "\n", &save)) {
		struct hub_entry e = { .is_dir = line[0] == 'd', .is_lfs = line[0] == 'l' };

		if (!e.is_dir) {
			memcpy(e.oid, OID, sizeof(OID));
			e.size = strlen(line);
		}
		if (e.is_lfs)
			memcpy(e.sha256, SHA, sizeof(SHA));
		e.path = strdup(line + 1);
		ok = e.path && hub_tree_push(t, &e) == 0;
		if (!ok)
			free(e.path);
	}
	free(copy);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct hub_tree t = { 0 };
	struct hub_error err;
	bool json = size > 0 && data[0] == '[';
	int r;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (json ? hub_json_tree_page(text, size, &t) < 0 : !parse_list(text, &t))
		goto out;
	r = hub_tree_validate(&t, &err);
	if (r == -ENOMEM)
		goto out;
	/* Tree JSON also brings oids, which a path list never gets wrong. */
	if (r == 0 ? !tree_is_safe(&t) : !json && tree_is_safe(&t))
		abort();
	if (r != 0 && (!err.message[0] || strchr(err.message, '\n')))
		abort();
	if (r == 0)
		check_table(&t);
out:
	hub_tree_done(&t);
	free(text);
	return 0;
}
