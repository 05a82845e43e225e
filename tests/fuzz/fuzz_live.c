/* fuzz_live.c: untrusted live records (what `hffs status` reads of a running mount) into
 * live_decode(). An accepted record encodes into the documented 4 KiB and decodes back to the
 * same figures. Invariants abort. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs/live.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Zeroes what follows a string's NUL: a key given twice leaves the longer value's tail there,
 * which no reader sees, so the comparison below must not either. */
static void scrub(char *s, size_t size)
{
	size_t n = strnlen(s, size);

	memset(s + n, 0, size - n);
}

static void scrub_all(struct live *l)
{
	scrub(l->phase, sizeof(l->phase));
	scrub(l->last_error, sizeof(l->last_error));
	scrub(l->paused, sizeof(l->paused));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct live a, b;
	char buf[4096];
	size_t len;
	int r = live_decode((const char *)data, size, &a);

	if (r == -EBADMSG || r == -ENOMEM)
		return 0;
	if (r != 0 || strnlen(a.phase, sizeof(a.phase)) == sizeof(a.phase) ||
	    strnlen(a.last_error, sizeof(a.last_error)) == sizeof(a.last_error) ||
	    strnlen(a.paused, sizeof(a.paused)) == sizeof(a.paused))
		abort();
	len = live_encode(&a, buf, sizeof(buf));
	if (len >= sizeof(buf) - 1) /* truncated: "4 KiB holds every field" broke */
		abort();
	if (live_decode(buf, len, &b) != 0)
		abort();
	scrub_all(&a);
	scrub_all(&b);
	if (memcmp(&a, &b, sizeof(a)))
		abort();
	return 0;
}
