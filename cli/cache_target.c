/* cache_target.c: REPO[@REV] of `hffs cache rm` and `hffs cache verify`: the repo id parsed
 * as fetch/hub understands it, and the refs and trees of a cache view it selects. */
#include "cli/cache_target.h"

#include <stdio.h>
#include <string.h>

#include "fetch/hub.h"
#include "util/log.h"

int cache_target_parse(const char *spec, struct cache_target *t)
{
	struct hub_repo repo;
	struct hub_error err;
	char *at;

	memset(t, 0, sizeof(*t));
	if (snprintf(t->spec, sizeof(t->spec), "%s", spec) >= (int)sizeof(t->spec)) {
		log_err("'%.64s...' is too long for REPO[@REV]", spec);
		return 2;
	}
	at = strchr(t->spec, '@');
	if (at)
		*at = '\0';
	if (hub_repo_parse(t->spec, &repo, &err) < 0) {
		log_err("%s", err.message);
		return 2;
	}
	if (hub_repo_key(&repo, t->repo_key, sizeof(t->repo_key)) < 0) {
		log_err("'%s': the repo id is too long", t->spec);
		return 2;
	}
	if (at) {
		*at = '@';
		t->rev = at + 1;
		if (!*t->rev) {
			log_err("'%s': the revision after '@' is empty", spec);
			return 2;
		}
	}
	return 0;
}

bool cache_target_has_ref(const struct cache_target *t, const struct cache_view_ref *r)
{
	return !strcmp(r->repo_key, t->repo_key) &&
	       (!t->rev || !strcmp(r->revision, t->rev) || !strcmp(r->commit, t->rev));
}

bool cache_target_has_tree(const struct cache_target *t, const struct cache_view *v,
			   const struct cache_view_tree *tr)
{
	if (strcmp(tr->repo_key, t->repo_key))
		return false;
	if (!t->rev || !strcmp(tr->commit, t->rev))
		return true;
	for (size_t i = 0; i < v->nrefs; i++)
		if (cache_target_has_ref(t, &v->refs[i]) && !strcmp(v->refs[i].commit, tr->commit))
			return true;
	return false;
}
