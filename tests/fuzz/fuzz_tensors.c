/* fuzz_tensors.c: untrusted safetensors headers into tensors_parse_safetensors(), then the
 * window of a read at every tensor's start. Accepted spans are sorted and lie in the file;
 * invariants abort. */
#include <stdint.h>
#include <stdlib.h>

#include "fs/tensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint64_t start = 8 + size, file_size = start + (1ULL << 30);
	struct tensor_span *v = NULL;
	size_t n = 0;

	if (tensors_parse_safetensors((const char *)data, size, start, file_size, &v, &n) < 0) {
		if (v || n)
			abort();
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t off, len;

		if (v[i].begin < start || v[i].begin >= v[i].end || v[i].end > file_size ||
		    (i && v[i - 1].begin > v[i].begin))
			abort();
		if (tensors_window(v, n, v[i].begin, 1, 1ULL << 25, 1ULL << 29, &off, &len) &&
		    (off != v[i].begin + 1 || !len || len > 1ULL << 29 || off + len > file_size))
			abort();
	}
	free(v);
	return 0;
}
