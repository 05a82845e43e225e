/* db_codec.h: the record codecs of the index (cache/db_codec.c), without LMDB: what a
 * record's bytes mean and when they are malformed. db_blob.c and db_ref.c call them on the
 * bytes LMDB holds; the fuzz targets call them directly (tests/fuzz/fuzz_db_*.c). Pure functions on caller-owned memory; any thread. A
 * decoder reads nothing outside [data, data + len) and answers -EBADMSG for a record this build
 * cannot read: wrong length or version, a field out of range, or a disagreement with the
 * record it belongs to. Product code outside cache/ goes through db.h. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/db.h"

#define DB_REC_VERSION 1 /* the first byte of blob and mount records */
/* Keys longer than LMDB's limit (511 bytes) are stored as this byte and the hex sha256 of
 * the key; no raw key starts with it (paths start with '/', repo keys with a letter). */
#define DB_HASHED_KEY_MARK '\x01'

#define DB_BLOB_REC_LEN 39 /* ver, size 8, bs 4, hash, state, present 8, access 8, bad 8 */
#define DB_KEY_BUF 512 /* longest key LMDB takes (511) and one spare */
/* version, then five (u16 length, bytes) strings, then pid i32, started u64, flags u32 */
#define DB_MOUNT_REC_MAX (1 + 5 * 2 + 2 * DB_MOUNT_STR + 256 + 256 + 41 + 4 + 8 + 4)

/* n-byte little-endian fields (n <= 8). */
void db_codec_put_le(uint8_t *p, uint64_t v, unsigned n);
uint64_t db_codec_get_le(const uint8_t *p, unsigned n);

/* A blob record: DB_BLOB_REC_LEN bytes into buf. */
void db_codec_blob_rec_encode(const struct blob_rec *rec, uint8_t *buf);
/* -EBADMSG: not DB_BLOB_REC_LEN bytes, another version, block size 0, unknown hash or state,
 * more blocks present than the blob has. */
int db_codec_blob_rec_decode(const void *data, size_t len, struct blob_rec *ret);
/* Whether data is a readable bitmap of rec: bitmap_bytes(block count) bytes, no bit set past
 * the last block, and as many bits set as rec->blocks_present says. 0 or -EBADMSG. */
int db_codec_bitmap_check(const struct blob_rec *rec, const void *data, size_t len);
/* Whether s is a commit: 40 lowercase hex digits. */
bool db_codec_is_commit(const char *s);
/* A ref's value: 40 lowercase hex digits into ret_commit (41 bytes). -EBADMSG. */
int db_codec_ref_decode(const void *data, size_t len, char *ret_commit);
/* Splits a "a\0b" key (refs, trees) into a and b, each NUL-terminated in buf (DB_KEY_BUF + 1
 * bytes). 1 when split, 0 for a key stored under its hash (its parts are gone), -EBADMSG for
 * a key of neither form (empty, too long, without its NUL, an empty part, a second NUL). */
int db_codec_key_split(const void *data, size_t len, char *buf, const char **ret_a,
		       const char **ret_b);
/* A mount record into buf (DB_MOUNT_REC_MAX bytes); returns its length. m's strings must be
 * NUL-terminated within their fields. */
size_t db_codec_mount_encode(const struct db_mount *m, uint8_t *buf);
/* -EBADMSG: another version, a string that overruns the record, does not fit its field or
 * holds a NUL, an empty mountpoint, or bytes left over. *ret is zeroed first. */
int db_codec_mount_decode(const void *data, size_t len, struct db_mount *ret);
