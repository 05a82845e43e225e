/* fuzz_db_blob.c: untrusted blob records and bitmaps (what a damaged or foreign index holds)
 * into db_codec.h. The whole input is decoded as a blob record; an input longer than a record
 * is also read as a record followed by its bitmap. An accepted record encodes back to the same
 * bytes and is in range; an accepted bitmap has the record's length, no bit past its last
 * block and the record's count of set bits. Invariants abort. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/bitmap.h"
#include "cache/db_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rec(const uint8_t *data, size_t size, const struct blob_rec *rec)
{
	uint8_t back[DB_BLOB_REC_LEN];

	if (size != DB_BLOB_REC_LEN || rec->block_size == 0 || rec->state > BLOB_BAD ||
	    rec->blocks_present > block_count(rec->size, rec->block_size))
		abort();
	db_codec_blob_rec_encode(rec, back);
	if (memcmp(back, data, size))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct blob_rec rec;
	uint8_t *map;
	size_t len;
	uint64_t n;

	if (db_codec_blob_rec_decode(data, size, &rec) == 0)
		check_rec(data, size, &rec);
	if (size < DB_BLOB_REC_LEN || db_codec_blob_rec_decode(data, DB_BLOB_REC_LEN, &rec) < 0)
		return 0;
	/* An exact-size copy of the bitmap, so that a read past it is caught. */
	len = size - DB_BLOB_REC_LEN;
	map = malloc(len ? len : 1);
	if (!map)
		return 0;
	memcpy(map, data + DB_BLOB_REC_LEN, len);
	if (db_codec_bitmap_check(&rec, map, len) == 0) {
		n = block_count(rec.size, rec.block_size);
		if (len != bitmap_bytes(n) || !bitmap_is_sane(map, n) ||
		    bitmap_count(map, n) != rec.blocks_present ||
		    (bitmap_next_clear(map, 0, n) == n) != (rec.blocks_present == n))
			abort();
	}
	free(map);
	return 0;
}
