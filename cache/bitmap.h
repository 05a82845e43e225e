/* bitmap.h: block presence bitmaps and block math. Pure functions on caller-owned memory;
 * any thread, no locking (callers lock). Bit i is bit (i % 8) of byte i / 8. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_BLOCK_SIZE_DEFAULT (1U << 20)

/* Number of blocks of a blob: ceil(size / block_size); 0 for an empty blob. */
uint64_t block_count(uint64_t size, uint32_t block_size);
/* Bytes of block i of a blob of that size (the last one may be short). */
uint64_t block_len(uint64_t size, uint32_t block_size, uint64_t i);
/* The blocks [*ret_first, *ret_last] that hold bytes [offset, offset+len) clipped to size.
 * Returns false (and leaves the outputs alone) when the clipped range is empty. */
bool block_span(uint64_t size, uint32_t block_size, uint64_t offset, uint64_t len,
		uint64_t *ret_first, uint64_t *ret_last);

/* Bytes needed for nbits bits. */
size_t bitmap_bytes(uint64_t nbits);
bool bitmap_test(const uint8_t *map, uint64_t bit);
void bitmap_set(uint8_t *map, uint64_t bit);
void bitmap_clear(uint8_t *map, uint64_t bit);
/* Sets bits [first, first + n). */
void bitmap_set_range(uint8_t *map, uint64_t first, uint64_t n);
/* Number of set bits among the first nbits. */
uint64_t bitmap_count(const uint8_t *map, uint64_t nbits);
/* First clear (resp. set) bit in [from, to), or to when there is none. */
uint64_t bitmap_next_clear(const uint8_t *map, uint64_t from, uint64_t to);
uint64_t bitmap_next_set(const uint8_t *map, uint64_t from, uint64_t to);
/* True when bits [first, first + n) are all set. */
bool bitmap_all_set(const uint8_t *map, uint64_t first, uint64_t n);
/* Invariant check for assert(): no bit at or past nbits is set in the last byte. */
bool bitmap_is_sane(const uint8_t *map, uint64_t nbits);
