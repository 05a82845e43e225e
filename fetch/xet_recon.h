/* xet_recon.h: a file's reconstruction as a Xet CAS answers /v1/reconstructions (terms and
 * fetch_info) or /v2/reconstructions (terms and xorbs, several byte ranges per signed URL),
 * in one form: ordered terms (a xorb's chunk range), each served by one fetch (a byte range
 * of a signed URL holding a chunk range); and the read token. The JSON is parsed by
 * hub_json.c; this file holds the types, the checks that make a parsed plan safe to follow,
 * and its lookups. Pure; any thread. Hashes stay in their text form here: fetch/ passes them
 * to URLs and back, the cache checks them. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* 64 lowercase hex digits and a NUL: a Xet hash's text form. */
#define XET_HEX_LEN 65

/* One byte range of a xorb to GET, holding chunks [chunk_start, chunk_end). */
struct xet_fetch {
	char xorb[XET_HEX_LEN];
	size_t url; /* index into xet_recon.urls */
	uint64_t chunk_start, chunk_end;
	uint64_t byte_first, byte_last; /* inclusive: the Range header's bytes=first-last */
};

/* Chunks [chunk_start, chunk_end) of a xorb, unpacked_len bytes once decoded. */
struct xet_term {
	char xorb[XET_HEX_LEN];
	uint64_t chunk_start, chunk_end;
	uint64_t unpacked_len;
	size_t fetch; /* the fetch that serves it: index into xet_recon.fetches */
};

/* Invariants once xet_recon_check() passed: every term's fetch has its xorb and covers its
 * chunks; every fetch's url is an index into urls; offset_into_first_range is below the
 * first term's unpacked_len (or 0 without terms). */
struct xet_recon {
	uint64_t offset_into_first_range; /* bytes of the first term before the asked range */
	struct xet_term *terms;
	size_t n_terms;
	struct xet_fetch *fetches;
	size_t n_fetches;
	char **urls; /* signed, absolute http(s); never sent Authorization */
	size_t n_urls;
};

/* The read token of /api/{type}s/{repo}/xet-read-token/{revision}. */
struct xet_token {
	char *access_token; /* Bearer for the CAS */
	char *cas_url; /* the CAS endpoint, absolute http(s), no trailing slash */
	int64_t exp; /* unix seconds at which it expires */
};

/* Frees r's arrays and strings and zeroes it; r may be reused. Takes NULL. */
void xet_recon_done(struct xet_recon *r);
/* Frees t's strings and zeroes it. Takes NULL. */
void xet_token_done(struct xet_token *t);

/* Makes a freshly parsed plan safe to follow: for each term, the first fetch of its xorb
 * (in the order the reply listed them) whose chunks contain the term's becomes its fetch,
 * as both official clients choose. -EBADMSG, with *ret_why saying what, when a term has no
 * such fetch, a range is empty, reversed or past a xorb's 8192 chunks, a fetch's byte range cannot hold its chunks
 * (more than 8 + 128 KiB a chunk, or fewer than 9 bytes), offset_into_first_range is not
 * inside the first term, or a term's unpacked_len is 0 or more than 128 KiB a chunk. */
int xet_recon_check(struct xet_recon *r, const char **ret_why);

/* The sum of the terms' unpacked lengths less offset_into_first_range: the bytes the plan
 * yields. */
uint64_t xet_recon_len(const struct xet_recon *r);
