/* fuzz_db_ref.c: untrusted keys and values of the refs and trees databases into db_codec.h:
 * the input as a key ("repo_key\0revision", "repo_key\0commit", or a hashed long key) and as a
 * ref's value (a commit). A split key gives back two non-empty parts that make up the whole
 * input; a decoded commit is the input, 40 lowercase hex digits. Invariants abort. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/db_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[DB_KEY_BUF + 1], commit[41];
	const char *a = NULL, *b = NULL;
	int r = db_codec_key_split(data, size, buf, &a, &b);

	if (r == 1) {
		size_t la = strlen(a), lb = strlen(b);

		if (!la || !lb || la + 1 + lb != size || memcmp(a, data, la) ||
		    memcmp(b, data + la + 1, lb))
			abort();
	} else if (r == 0) {
		if (size == 0 || size > DB_KEY_BUF || data[0] != 0x01)
			abort();
	} else if (r != -EBADMSG) {
		abort();
	}
	r = db_codec_ref_decode(data, size, commit);
	if (r == 0) {
		if (size != 40 || strlen(commit) != 40 || memcmp(commit, data, 40) ||
		    strspn(commit, "0123456789abcdef") != 40)
			abort();
	} else if (r != -EBADMSG) {
		abort();
	}
	return 0;
}
