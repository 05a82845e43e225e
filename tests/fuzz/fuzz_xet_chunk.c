/* fuzz_xet_chunk.c: untrusted xorb bytes (a CAS's reply to a range) into xet_chunk.h's
 * decoder, chunk after chunk, until the input ends or a chunk is refused; then the same bytes
 * through a chunk stream in pieces whose size the first byte picks. Invariants abort: a
 * decoded chunk stays within the input and the spec's limit, a refusal always has words, and
 * the stream accepts the bytes exactly when chunk-by-chunk decoding consumed them all, with
 * the same chunks. Memory errors are the sanitizers'. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "fetch/xet_chunk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	uint64_t chunks;
	size_t bytes;
};

static int count(void *ud, uint64_t index, const uint8_t *raw, size_t len)
{
	struct seen *s = ud;

	(void)raw;
	if (index != s->chunks || len == 0 || len > XET_CHUNK_MAX)
		abort();
	s->chunks++;
	s->bytes += len;
	return 0;
}

/* The stream over the same bytes agrees with the chunk-by-chunk walk. */
static void check_stream(const uint8_t *data, size_t size, uint64_t n, size_t raw, bool whole)
{
	struct xet_chunk_stream *st = NULL;
	struct seen seen = { 0 };
	size_t piece = size ? (size_t)data[0] % 97 + 1 : 1;
	const char *why = NULL;
	int r = 0;

	if (n == 0 || xet_chunk_stream_new(n, count, &seen, &st) < 0)
		return;
	for (size_t off = 0; off < size && r == 0; off += piece)
		r = xet_chunk_stream_feed(st, data + off, size - off < piece ? size - off : piece,
					  &why);
	if (r == 0)
		r = xet_chunk_stream_end(st, &why);
	if ((r == 0) != whole || (r == 0 && (seen.chunks != n || seen.bytes != raw)) ||
	    (r != 0 && r != -EBADMSG))
		abort();
	xet_chunk_stream_free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t n = 0;
	size_t raw_total = 0;
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
		n++;
		raw_total += raw;
	}
	xet_chunk_decoder_free(d);
	check_stream(data, size, n, raw_total, off == size);
	return 0;
}
