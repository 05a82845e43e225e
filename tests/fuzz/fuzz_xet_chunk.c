/* fuzz_xet_chunk.c: untrusted xorb bytes (a CAS's reply to a range) into xet_chunk.h's
 * decoder, chunk after chunk as the read path walks them, until the input ends or a chunk is
 * refused. Invariants abort: a decoded chunk stays within the input and the spec's limit, a
 * refusal always has words, an incomplete chunk is only ever the last. Memory errors are the
 * sanitizers'. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "fetch/xet_chunk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[XET_CHUNK_MAX];
	struct xet_chunk_decoder *d = NULL;
	size_t off = 0;

	if (xet_chunk_decoder_new(&d) < 0)
		return 0;
	/* Each chunk consumes at least its header: bounded by size / 8 passes. */
	while (off < size) {
		size_t used = 0, raw = 0;
		const char *why = NULL;
		int r = xet_chunk_decode(d, data + off, size - off, out, sizeof(out), &used, &raw,
					 &why);

		if (r == -EAGAIN)
			break;
		if (r == -EBADMSG) {
			if (!why)
				abort();
			break;
		}
		if (r != 0)
			abort();
		if (used <= XET_CHUNK_HEADER_LEN || used > size - off || raw == 0 ||
		    raw > XET_CHUNK_MAX)
			abort();
		off += used;
	}
	xet_chunk_decoder_free(d);
	return 0;
}
