/* fuzz_xet_recon.c: untrusted CAS replies into hub_json_xet_recon() (/v1 and /v2
 * reconstructions) and hub_json_xet_token(). Invariants abort: an accepted plan's every term
 * has a fetch of its own xorb that covers its chunks, with a URL in the plan; its offset lies
 * in the first term; a refusal has words and leaves the plan empty; an accepted token has a
 * non-empty access token and an http(s) CAS URL with no trailing slash. Memory errors are the
 * sanitizers'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/hub_json.h"
#include "fetch/xet_recon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_plan(const struct xet_recon *r)
{
	for (size_t i = 0; i < r->n_terms; i++) {
		const struct xet_term *t = &r->terms[i];
		const struct xet_fetch *f;

		if (t->fetch >= r->n_fetches)
			abort();
		f = &r->fetches[t->fetch];
		if (strcmp(f->xorb, t->xorb) || f->chunk_start > t->chunk_start ||
		    f->chunk_end < t->chunk_end || t->chunk_start >= t->chunk_end)
			abort();
	}
	for (size_t i = 0; i < r->n_fetches; i++)
		if (r->fetches[i].url >= r->n_urls ||
		    r->fetches[i].byte_first > r->fetches[i].byte_last)
			abort();
	if (r->n_terms && r->offset_into_first_range >= r->terms[0].unpacked_len)
		abort();
	if (xet_recon_len(r) > (uint64_t)1 << 62)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xet_recon r = { .n_terms = 0 };
	struct xet_token t = { .exp = 0 };
	const char *why = NULL;
	int rc = hub_json_xet_recon((const char *)data, size, &r, &why);

	if (rc == 0)
		check_plan(&r);
	else if (!why || r.n_terms || r.n_fetches || r.n_urls || r.terms || r.urls)
		abort();
	xet_recon_done(&r);
	if (hub_json_xet_token((const char *)data, size, &t) == 0) {
		size_t n = strlen(t.cas_url);

		if (!*t.access_token ||
		    (strncmp(t.cas_url, "http://", 7) && strncmp(t.cas_url, "https://", 8)) ||
		    t.cas_url[n - 1] == '/')
			abort();
		xet_token_done(&t);
	}
	return 0;
}
