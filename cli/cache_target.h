/* cache_target.h: REPO[@REV] as `hffs cache rm` and `hffs cache verify` take it: parsed, and
 * which refs and trees of a cache view it selects. No I/O but the log line saying what is
 * wrong with a bad one; any thread. */
#pragma once

#include <stdbool.h>

#include "cli/cache_view.h"

/* Not to be copied: rev points into spec. */
struct cache_target {
	char repo_key[256];
	const char *rev; /* NULL: every revision */
	char spec[512]; /* as given, for messages */
};

/* Parses REPO[@REV] into t. 0, or 2 (bad usage: said why). */
int cache_target_parse(const char *spec, struct cache_target *t);

/* Whether t selects the ref r: every ref of its repo; with a revision, the ref of that name
 * and those naming that commit. */
bool cache_target_has_ref(const struct cache_target *t, const struct cache_view_ref *r);
/* Whether t selects the tree tr: every tree of its repo; with a revision, the commit it names
 * (a ref's of v, or the commit itself). */
bool cache_target_has_tree(const struct cache_target *t, const struct cache_view *v,
			   const struct cache_view_tree *tr);
