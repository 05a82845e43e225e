/* fuzz_hub_json.c: untrusted Hub JSON into hub_json.h's parsers: a tree page (then its dump must
 * read back to the same entries and dump to the same text, and validation must not crash), a
 * revision reply and an error body. Invariants abort; memory errors are the sanitizers'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/hub_json.h"
#include "fetch/hub_tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_same(const struct hub_tree *a, const struct hub_tree *b)
{
	if (a->n != b->n)
		abort();
	for (size_t i = 0; i < a->n; i++) {
		const struct hub_entry *x = &a->v[i], *y = &b->v[i];

		if (strcmp(x->path, y->path) || x->size != y->size || x->is_dir != y->is_dir ||
		    x->is_lfs != y->is_lfs || strcmp(x->oid, y->oid) ||
		    strcmp(x->sha256, y->sha256))
			abort();
	}
}

static void round_trip(const struct hub_tree *t)
{
	struct hub_tree back = { 0 };
	size_t len = 0, len2 = 0;
	char *json = hub_json_tree_dump(t, &len), *json2;

	if (!json)
		return; /* OOM */
	if (hub_json_tree_page(json, len, &back) != 0)
		abort();
	check_same(t, &back);
	json2 = hub_json_tree_dump(&back, &len2);
	if (json2 && (len != len2 || memcmp(json, json2, len)))
		abort();
	free(json2);
	free(json);
	hub_tree_done(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *json = (const char *)data;
	struct hub_tree t = { 0 };
	struct hub_error err;
	char sha[41], msg[128], name[16];
	bool priv, gated;

	if (hub_json_tree_page(json, size, &t) == 0) {
		round_trip(&t);
		(void)hub_tree_validate(&t, &err);
	} else if (t.n != 0) {
		abort(); /* a refused page leaves nothing behind */
	}
	hub_tree_done(&t);
	if (hub_json_revision(json, size, sha) == 0 && strlen(sha) != 40)
		abort();
	(void)hub_json_repo_flags(json, size, &priv, &gated);
	if (hub_json_whoami(json, size, name, sizeof(name)) == 0 && strlen(name) >= sizeof(name))
		abort();
	if (hub_json_error_message(json, size, msg, sizeof(msg)) == 0) {
		if (!msg[0] || strlen(msg) >= sizeof(msg) || strchr(msg, '\n'))
			abort();
	}
	return 0;
}
