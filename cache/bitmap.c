/* bitmap.c: block math and presence bitmaps (bit i is bit i % 8 of byte i / 8).
 * Pure functions on caller-owned memory; any thread, the caller locks. Scans skip whole bytes
 * (a 100 GB blob at 1 MiB blocks is a 12.5 KB map), so no word-sized tricks are needed. */
#include "cache/bitmap.h"

#include <assert.h>
#include <string.h>

uint64_t block_count(uint64_t size, uint32_t block_size)
{
	assert(block_size > 0);
	return size / block_size + (size % block_size != 0);
}

uint64_t block_len(uint64_t size, uint32_t block_size, uint64_t i)
{
	uint64_t start;

	assert(block_size > 0);
	if (i >= block_count(size, block_size))
		return 0;
	start = i * block_size;
	return size - start < block_size ? size - start : block_size;
}

bool block_span(uint64_t size, uint32_t block_size, uint64_t offset, uint64_t len,
		uint64_t *ret_first, uint64_t *ret_last)
{
	uint64_t end;

	assert(block_size > 0);
	if (len == 0 || offset >= size)
		return false;
	/* Written so that offset + len cannot overflow. */
	end = len > size - offset ? size : offset + len;
	*ret_first = offset / block_size;
	*ret_last = (end - 1) / block_size;
	return true;
}

size_t bitmap_bytes(uint64_t nbits)
{
	return (size_t)(nbits / 8 + (nbits % 8 != 0));
}

bool bitmap_test(const uint8_t *map, uint64_t bit)
{
	return map[bit / 8] & (1U << (bit % 8));
}

void bitmap_set(uint8_t *map, uint64_t bit)
{
	map[bit / 8] |= (uint8_t)(1U << (bit % 8));
}

void bitmap_clear(uint8_t *map, uint64_t bit)
{
	map[bit / 8] &= (uint8_t) ~(1U << (bit % 8));
}

/* Mask of bits [lo, hi) of one byte, 0 <= lo <= hi <= 8. */
static uint8_t byte_mask(unsigned lo, unsigned hi)
{
	return (uint8_t)(((1U << hi) - 1) & ~((1U << lo) - 1));
}

void bitmap_set_range(uint8_t *map, uint64_t first, uint64_t n)
{
	uint64_t end = first + n;
	uint64_t b0 = first / 8, b1 = end / 8;

	if (n == 0)
		return;
	if (b0 == b1) {
		map[b0] |= byte_mask(first % 8, end % 8);
		return;
	}
	map[b0] |= byte_mask(first % 8, 8);
	memset(map + b0 + 1, 0xff, (size_t)(b1 - b0 - 1));
	if (end % 8)
		map[b1] |= byte_mask(0, end % 8);
}

uint64_t bitmap_count(const uint8_t *map, uint64_t nbits)
{
	uint64_t full = nbits / 8, n = 0;

	for (uint64_t i = 0; i < full; i++)
		n += (uint64_t)__builtin_popcount(map[i]);
	if (nbits % 8)
		n += (uint64_t)__builtin_popcount(map[full] & byte_mask(0, nbits % 8));
	return n;
}

/* First bit in [from, to) whose value is want, or to. Bytes equal to skip hold no such bit. */
static uint64_t next_bit(const uint8_t *map, uint64_t from, uint64_t to, bool want)
{
	const uint8_t skip = want ? 0x00 : 0xff;
	uint64_t i = from;

	/* Bit by bit up to a byte boundary, then byte by byte, then bit by bit in the byte that
	 * holds the answer. */
	while (i < to && i % 8) {
		if (bitmap_test(map, i) == want)
			return i;
		i++;
	}
	while (i + 8 <= to && map[i / 8] == skip)
		i += 8;
	for (; i < to; i++)
		if (bitmap_test(map, i) == want)
			return i;
	return to;
}

uint64_t bitmap_next_clear(const uint8_t *map, uint64_t from, uint64_t to)
{
	return next_bit(map, from, to, false);
}

uint64_t bitmap_next_set(const uint8_t *map, uint64_t from, uint64_t to)
{
	return next_bit(map, from, to, true);
}

bool bitmap_all_set(const uint8_t *map, uint64_t first, uint64_t n)
{
	return bitmap_next_clear(map, first, first + n) == first + n;
}

bool bitmap_is_sane(const uint8_t *map, uint64_t nbits)
{
	if (nbits % 8 == 0)
		return true;
	return (map[nbits / 8] & byte_mask(nbits % 8, 8)) == 0;
}
