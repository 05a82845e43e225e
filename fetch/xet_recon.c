/* xet_recon.c: the checks and lookups of a Xet reconstruction plan (xet_recon.h), written
 * from xet-core's spec/download_protocol.md and api.md. Pure; any thread; no JSON, no HTTP. */
#include "fetch/xet_recon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The spec's chunk limits (xorb.md): a chunk is an 8-byte header and 1..128 KiB stored, and
 * decodes to 1..128 KiB. */
#define CHUNK_RAW_MAX (128U * 1024)
#define CHUNK_STORED_MAX (8U + CHUNK_RAW_MAX)
#define CHUNK_STORED_MIN 9U
/* A xorb holds at most 8192 chunks (xorb.md): with 128 KiB each, a term is at most 1 GiB, and
 * sums over the terms a 64 MiB reply can list stay far from overflow. */
#define XORB_CHUNKS_MAX 8192U

void xet_recon_done(struct xet_recon *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_urls; i++)
		free(r->urls[i]);
	free(r->urls);
	free(r->terms);
	free(r->fetches);
	memset(r, 0, sizeof(*r));
}

void xet_token_done(struct xet_token *t)
{
	if (!t)
		return;
	free(t->access_token);
	free(t->cas_url);
	memset(t, 0, sizeof(*t));
}

static int fetch_check(const struct xet_recon *r, const struct xet_fetch *f, const char **why)
{
	uint64_t chunks, bytes;

	if (f->url >= r->n_urls) {
		*why = "a fetch entry without a URL";
		return -EBADMSG;
	}
	if (f->chunk_start >= f->chunk_end || f->chunk_end > XORB_CHUNKS_MAX) {
		*why = "a fetch entry with an empty or reversed chunk range, or one past 8192 chunks";
		return -EBADMSG;
	}
	if (f->byte_first > f->byte_last) {
		*why = "a fetch entry with a reversed byte range";
		return -EBADMSG;
	}
	chunks = f->chunk_end - f->chunk_start;
	bytes = f->byte_last - f->byte_first + 1;
	/* Divisions, not products: the values are up to 2^53 and must not overflow. */
	if (bytes / chunks > CHUNK_STORED_MAX ||
	    (bytes / chunks == CHUNK_STORED_MAX && bytes % chunks) ||
	    bytes / CHUNK_STORED_MIN < chunks) {
		*why = "a fetch entry whose byte range cannot hold its chunks";
		return -EBADMSG;
	}
	return 0;
}

/* The first fetch of t's xorb whose chunks contain t's, or -1. */
static long term_fetch(const struct xet_recon *r, const struct xet_term *t)
{
	for (size_t i = 0; i < r->n_fetches; i++) {
		const struct xet_fetch *f = &r->fetches[i];

		if (!strcmp(f->xorb, t->xorb) && f->chunk_start <= t->chunk_start &&
		    f->chunk_end >= t->chunk_end)
			return (long)i;
	}
	return -1;
}

int xet_recon_check(struct xet_recon *r, const char **ret_why)
{
	for (size_t i = 0; i < r->n_fetches; i++) {
		int e = fetch_check(r, &r->fetches[i], ret_why);

		if (e < 0)
			return e;
	}
	for (size_t i = 0; i < r->n_terms; i++) {
		struct xet_term *t = &r->terms[i];
		long f;

		if (t->chunk_start >= t->chunk_end || t->chunk_end > XORB_CHUNKS_MAX) {
			*ret_why =
				"a term with an empty or reversed chunk range, or one past 8192 chunks";
			return -EBADMSG;
		}
		if (t->unpacked_len == 0 ||
		    t->unpacked_len / (t->chunk_end - t->chunk_start) > CHUNK_RAW_MAX ||
		    (t->unpacked_len / (t->chunk_end - t->chunk_start) == CHUNK_RAW_MAX &&
		     t->unpacked_len % (t->chunk_end - t->chunk_start)) ||
		    t->unpacked_len < t->chunk_end - t->chunk_start) {
			*ret_why = "a term whose unpacked length its chunks cannot have";
			return -EBADMSG;
		}
		f = term_fetch(r, t);
		if (f < 0) {
			*ret_why = "a term that no fetch entry covers";
			return -EBADMSG;
		}
		t->fetch = (size_t)f;
	}
	if (r->n_terms ? r->offset_into_first_range >= r->terms[0].unpacked_len :
			 r->offset_into_first_range != 0) {
		*ret_why = "an offset_into_first_range outside the first term";
		return -EBADMSG;
	}
	return 0;
}

uint64_t xet_recon_len(const struct xet_recon *r)
{
	uint64_t n = 0;

	for (size_t i = 0; i < r->n_terms; i++)
		n += r->terms[i].unpacked_len;
	return n - r->offset_into_first_range;
}
