/* doctor_xet.c: the `xet` check of `hffs doctor` (doctor_xet.h): the JS client's probe of the
 * file, its read token, the CAS's reconstruction of its first 4 MiB (/v2, /v1 if need be),
 * and the first fetch of that plan made and decoded chunk by chunk. Each failing step FAILs
 * the line with its words and what to do. */
#include "cli/doctor_xet.h"

#include <stdio.h>
#include <time.h>

#include "fetch/http.h"
#include "fetch/xet.h"
#include "util/cleanup.h"

#define XET_PROBE_BYTES (4ULL << 20)

void doctor_check_xet(struct doctor *d, const struct hub_config *cfg, const struct hub_repo *repo,
		      const char *commit, const struct hub_entry *file)
{
	_cleanup_(xet_file_done) struct xet_file xf = { .is_xet = false };
	_cleanup_(xet_token_done) struct xet_token tok = { .exp = 0 };
	_cleanup_(xet_recon_done) struct xet_recon r = { .n_terms = 0 };
	struct hub_error err = { 0 };
	struct xet_fetched got;
	const char *fix;
	char cas[128];
	uint64_t last;
	double secs;

	if (cfg->disable_xet) {
		doctor_add(
			d, "xet", DOCTOR_OK, NULL,
			"not checked: HF_HUB_DISABLE_XET is set, so the Xet protocol is not used");
		return;
	}
	if (!file) {
		doctor_add(d, "xet", DOCTOR_OK, NULL, "no LFS file: nothing is stored on Xet");
		return;
	}
	fix = "the Hub must answer the Xet probe of a file it serves";
	if (xet_probe(cfg, repo, commit, file->path, &xf, &err) < 0)
		goto fail;
	if (!xf.is_xet) {
		doctor_add(d, "xet", DOCTOR_OK, NULL, "'%s' is not stored on Xet", file->path);
		return;
	}
	fix = "the Hub must hand out a Xet read token for the repo: check the token's access to "
	      "it (the `access` line)";
	if (xet_token_fetch(cfg, xf.auth_url, &tok, &err) < 0)
		goto fail;
	if (xf.size == 0) {
		doctor_add(d, "xet", DOCTOR_OK, NULL, "'%s' is on Xet and empty: nothing to read",
			   file->path);
		return;
	}
	last = (xf.size < XET_PROBE_BYTES ? xf.size : XET_PROBE_BYTES) - 1;
	fix = "the Xet CAS must be reachable: let its host through the firewall or proxy; if it "
	      "answered an error, try again later";
	if (xet_reconstruct(cfg, &tok, xf.recon_url, xf.hash, 0, last, &r, &err) < 0)
		goto fail;
	if (!r.n_terms) {
		doctor_add(d, "xet", DOCTOR_FAIL, "report it: the Hub's Xet CAS sent an empty plan",
			   "the reconstruction of '%s' (%llu bytes) has no terms", file->path,
			   (unsigned long long)xf.size);
		return;
	}
	fix = "the Xet storage host must be reachable: let it through the firewall or proxy; if "
	      "it answered an error, try again later";
	if (xet_fetch_once(cfg, &r, r.terms[0].fetch, &got, &err) < 0)
		goto fail;
	http_url_host(tok.cas_url, cas, sizeof(cas));
	secs = got.total_us > 0 ? (double)got.total_us / 1e6 : 1e-6;
	doctor_add(d, "xet", DOCTOR_OK, NULL,
		   "'%s' is on Xet (%.12s...): a read token valid %lld s, %s planned its first "
		   "%llu bytes in %zu term%s, %s sent %llu chunks (%llu bytes, %llu decoded) in "
		   "%.2f s",
		   file->path, xf.hash, (long long)(tok.exp - time(NULL)), cas,
		   (unsigned long long)last + 1, r.n_terms, r.n_terms == 1 ? "" : "s", got.host,
		   (unsigned long long)got.chunks, (unsigned long long)got.bytes,
		   (unsigned long long)got.raw_bytes, secs);
	return;
fail:
	doctor_add(d, "xet", DOCTOR_FAIL, fix, "%s", err.message);
}
