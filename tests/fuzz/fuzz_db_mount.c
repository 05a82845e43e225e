/* fuzz_db_mount.c: untrusted mount records (what `hffs status` and `hffs unmount` read from
 * the index) into db_codec.h. An accepted record has a mountpoint, strings that fit their
 * fields, and encodes back to the same bytes. Invariants abort. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/db_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t back[DB_MOUNT_REC_MAX];
	struct db_mount m;
	int r = db_codec_mount_decode(data, size, &m);

	if (r == -EBADMSG)
		return 0;
	if (r != 0 || !m.mountpoint[0] || strnlen(m.mountpoint, DB_MOUNT_STR) == DB_MOUNT_STR ||
	    strnlen(m.repo_key, sizeof(m.repo_key)) == sizeof(m.repo_key) ||
	    strnlen(m.revision, sizeof(m.revision)) == sizeof(m.revision) ||
	    strnlen(m.commit, sizeof(m.commit)) == sizeof(m.commit) ||
	    strnlen(m.endpoint, DB_MOUNT_STR) == DB_MOUNT_STR)
		abort();
	if (db_codec_mount_encode(&m, back) != size || memcmp(back, data, size))
		abort();
	return 0;
}
