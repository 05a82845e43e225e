/* fuzz_db_tree.c: untrusted tree records into cache/tree.h's decoder. A record that decodes
 * holds entries that keep tree_entry's invariants, and encodes back to the very same bytes
 * (one layout per tree; a version 1 record to the same with version 2's head: its date 0);
 * anything else is -EBADMSG. Invariants abort. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entry(const struct tree_entry *e)
{
	size_t n = strlen(e->path);

	if (n == 0 || n > TREE_PATH_MAX)
		abort();
	if (e->is_dir ? e->size || e->cid[0] :
			!blob_cid_is_valid(e->cid) ||
				strlen(e->cid) != (e->hash == BLOB_HASH_SHA256 ? 64U : 40U))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tree t;
	uint8_t *back;
	size_t len;
	int r = tree_decode(data, size, &t);

	if (r == -EBADMSG) {
		if (t.n || t.v)
			abort();
		return 0;
	}
	if (r != 0)
		abort();
	for (size_t i = 0; i < t.n; i++)
		check_entry(&t.v[i]);
	back = tree_encode(&t, &len);
	if (!back)
		abort();
	if (data[0] == 1) { /* version 1: the date is 8 zero bytes after the count */
		static const uint8_t zero[8];

		if (t.commit_time || len != size + 8 || back[0] != TREE_REC_VERSION ||
		    memcmp(back + 1, data + 1, 4) || memcmp(back + 5, zero, 8) ||
		    memcmp(back + 13, data + 5, size - 5))
			abort();
	} else if (len != size || memcmp(back, data, size)) {
		abort();
	}
	free(back);
	tree_done(&t);
	return 0;
}
