/* test_xet.c: the Xet metadata exchanges against a scripted server: the resolve probe in the
 * JS form (2xx of the xet content type) and the Python form (a 3xx with X-Xet-Hash), a plain
 * file, a Xet reply missing its headers; the read token (the Hub token to the Hub's origin
 * only), kept until its last minute and fetched again after a refusal; the reconstruction
 * query on /v2 with the Xet token and the file range, /v1 when /v2 is missing, a refused
 * token, a malformed plan. */
#include "fetch/xet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/unit/check.h"
#include "tests/unit/minihttp.h"

#define TOKEN "hf_test_token"
#define COMMIT "0123456789abcdef0123456789abcdef01234567"
#define FH "1f6a2b8e9d3c4075a2e8c5fd4f0b763e6f3c1d7a9b2e6487de3f91ab7c6d5401"
#define FH_V1 "7c94fe2a38bdcf9b4d2a6f7e1e08ac35bc24a7903d6f5a0e7d1c2b93e5f748de"
#define FH_BAD "cfd18a92e0743bb09e56dbf76ea2c34d99b5a0cf271f8d429b6cd148203df061"
#define XA "e38d7c09a21b4cf8d0f92b3a85e6df19f7c20435e0b1c78a9d635f7b8c2e4da1"

static struct minihttp hub;
static char tmpdir[64], endpoint[64];
/* The token's lifetime the server gives, from now, in seconds. */
static const char *token_exp_file;

static void reply_json(struct mh_reply *rep, const char *body)
{
	mh_header(rep, "Content-Type: application/json");
	rep->body = body;
}

/* Xet headers as the Hub sends them, pointing back at this server. */
static void xet_headers(const struct mh_request *req, struct mh_reply *rep, const char *hash)
{
	mh_header(rep, "X-Xet-Hash: %s", hash);
	mh_header(rep, "X-Linked-Size: 1234");
	mh_header(rep, "X-Linked-Etag: \"abc\"");
	mh_header(rep,
		  "Link: <http://127.0.0.1:%d/api/models/org/model/xet-read-token/" COMMIT
		  ">; rel=\"xet-auth\", <http://127.0.0.1:%d/v1/reconstructions/%s>; "
		  "rel=\"xet-reconstruction-info\"",
		  req->port, req->port, hash);
}

static void handler(const struct mh_request *req, struct mh_reply *rep)
{
	static char body[4096];
	const char *t = req->target;

	if (strstr(t, "/resolve/" COMMIT "/model.bin")) {
		rep->status = 200;
		mh_header(rep, "Content-Type: " XET_FILEINFO_TYPE);
		xet_headers(req, rep, FH);
		rep->body = "{}";
	} else if (strstr(t, "/resolve/" COMMIT "/py.bin")) {
		rep->status = 302;
		mh_header(rep, "Location: https://cas-bridge.example.org/x");
		xet_headers(req, rep, FH);
	} else if (strstr(t, "/resolve/" COMMIT "/plain.txt")) {
		rep->status = 206;
		mh_header(rep, "Content-Range: bytes 0-0/5");
		rep->body = "h";
	} else if (strstr(t, "/resolve/" COMMIT "/lfs.bin")) {
		rep->status = 302;
		mh_header(rep, "Location: https://cdn.example.org/x");
	} else if (strstr(t, "/resolve/" COMMIT "/broken.bin")) {
		mh_header(rep, "Content-Type: " XET_FILEINFO_TYPE);
		mh_header(rep, "X-Xet-Hash: %s", FH);
		mh_header(rep, "X-Linked-Size: 1234");
	} else if (strstr(t, "/resolve/")) {
		rep->status = 404;
		mh_header(rep, "X-Error-Code: EntryNotFound");
	} else if (strstr(t, "/xet-read-token/")) {
		FILE *f = fopen(token_exp_file, "r");
		long life = 3600;
		static int n;

		if (f) {
			if (fscanf(f, "%ld", &life) != 1)
				life = 3600;
			fclose(f);
		}
		snprintf(body, sizeof(body),
			 "{\"accessToken\":\"xet_%d\",\"casUrl\":\"http://127.0.0.1:%d/\","
			 "\"exp\":%lld}",
			 ++n, req->port, (long long)time(NULL) + life);
		reply_json(rep, body);
	} else if (strstr(t, "/v2/reconstructions/" FH_V1) || strstr(t, "/v3/")) {
		rep->status = 404;
	} else if (strstr(t, "/reconstructions/" FH_BAD)) {
		reply_json(rep, "{\"offset_into_first_range\":0,\"terms\":[{\"hash\":\"" XA
				"\",\"unpacked_length\":10,\"range\":{\"start\":0,\"end\":1}}],"
				"\"xorbs\":{}}");
	} else if (strstr(t, "/reconstructions/")) {
		if (strcmp(req->authorization, "Bearer xet_expired") == 0) {
			rep->status = 401;
			return;
		}
		snprintf(body, sizeof(body),
			 "{\"offset_into_first_range\":0,\"terms\":[{\"hash\":\"" XA
			 "\",\"unpacked_length\":1234,\"range\":{\"start\":0,\"end\":1}}],"
			 "\"%s\":{\"" XA "\":[{\"url\":\"http://127.0.0.1:%d/xorb/" XA "\","
			 "%s}]}}",
			 strstr(t, "/v1/") ? "fetch_info" : "xorbs", req->port,
			 strstr(t, "/v1/") ?
				 "\"range\":{\"start\":0,\"end\":1},\"url_range\":{\"start\":0,"
				 "\"end\":99}" :
				 "\"ranges\":[{\"chunks\":{\"start\":0,\"end\":1},\"bytes\":{"
				 "\"start\":0,\"end\":99}}]");
		reply_json(rep, body);
	} else {
		rep->status = 404;
	}
}

static void cfg_init(struct hub_config *cfg, const char *ep)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->endpoint = (char *)ep;
	cfg->token = (char *)TOKEN;
	cfg->token_source = (char *)"HF_TOKEN";
	cfg->user_agent = (char *)"hffs/test";
	cfg->timeout_s = 5;
}

static int probe(const char *path, struct xet_file *f, struct hub_error *err)
{
	struct hub_config cfg;
	struct hub_repo repo = { .type = HUB_REPO_MODEL };

	cfg_init(&cfg, endpoint);
	strcpy(repo.id, "org/model");
	return xet_probe(&cfg, &repo, COMMIT, path, f, err);
}

static void test_probe(void)
{
	struct xet_file f;
	struct hub_error err;
	char want[256];

	minihttp_clear(&hub);
	ASSERT_OK(probe("model.bin", &f, &err));
	ASSERT_TRUE(f.is_xet);
	ASSERT_STR_EQ(f.hash, FH);
	ASSERT_U64_EQ(f.size, 1234);
	snprintf(want, sizeof(want), "http://127.0.0.1:%d/v1/reconstructions/" FH, hub.port);
	ASSERT_STR_EQ(f.recon_url, want);
	ASSERT_TRUE(strstr(f.auth_url, "/api/models/org/model/xet-read-token/" COMMIT) != NULL);
	xet_file_done(&f);
	/* The JS client's request: the Hub token, one byte, the xet type first. */
	ASSERT_EQ(minihttp_count(&hub,
				 "GET /org/model/resolve/" COMMIT "/model.bin auth=Bearer " TOKEN),
		  1);
	ASSERT_EQ(minihttp_count(&hub, "range=bytes=0-0 accept=" XET_FILEINFO_TYPE ", */*"), 1);

	/* The Python form: the 302 itself carries the Xet headers; not followed. */
	ASSERT_OK(probe("py.bin", &f, &err));
	ASSERT_TRUE(f.is_xet);
	ASSERT_STR_EQ(f.hash, FH);
	xet_file_done(&f);
	/* Plain files: a 206, and an LFS redirect without Xet headers. */
	ASSERT_OK(probe("plain.txt", &f, &err));
	ASSERT_FALSE(f.is_xet);
	ASSERT_OK(probe("lfs.bin", &f, &err));
	ASSERT_FALSE(f.is_xet);
	/* Xet, but no Link: refused with words. */
	ASSERT_EQ(probe("broken.bin", &f, &err), -EBADMSG);
	ASSERT_TRUE(strstr(err.message, "rel=\"xet-auth\"") != NULL);
	ASSERT_NULL(f.auth_url);
	ASSERT_EQ(probe("absent.bin", &f, &err), -ENOENT);
}

static void test_token(void)
{
	struct hub_config cfg;
	struct xet_token t;
	struct hub_error err;
	char url[256], other[64];

	minihttp_clear(&hub);
	cfg_init(&cfg, endpoint);
	snprintf(url, sizeof(url), "%s/api/models/org/model/xet-read-token/" COMMIT, endpoint);
	ASSERT_OK(xet_token_fetch(&cfg, url, &t, &err));
	ASSERT_TRUE(!strncmp(t.access_token, "xet_", 4));
	snprintf(other, sizeof(other), "http://127.0.0.1:%d", hub.port);
	ASSERT_STR_EQ(t.cas_url, other);
	ASSERT_TRUE(t.exp > time(NULL) + 3000);
	xet_token_done(&t);
	ASSERT_EQ(minihttp_count(&hub, "xet-read-token/" COMMIT " auth=Bearer " TOKEN), 1);
	/* The Hub token never leaves the Hub's origin: the same server under another name. */
	snprintf(other, sizeof(other), "http://localhost:%d", hub.port);
	cfg.endpoint = other;
	ASSERT_OK(xet_token_fetch(&cfg, url, &t, &err));
	xet_token_done(&t);
	ASSERT_EQ(minihttp_count(&hub, "xet-read-token/" COMMIT " auth=-"), 1);
}

static void set_life(long s)
{
	FILE *f = fopen(token_exp_file, "w");

	ASSERT_NOT_NULL(f);
	fprintf(f, "%ld\n", s);
	fclose(f);
}

static void test_auth_refresh(void)
{
	struct hub_config cfg;
	struct xet_auth a;
	struct xet_token t;
	struct hub_error err;
	uint64_t gen, gen2;
	char url[256];
	int64_t now = time(NULL);

	minihttp_clear(&hub);
	cfg_init(&cfg, endpoint);
	snprintf(url, sizeof(url), "%s/api/models/org/model/xet-read-token/" COMMIT, endpoint);
	ASSERT_OK(xet_auth_init(&a, url));
	set_life(3600);
	ASSERT_OK(xet_auth_get(&a, &cfg, now, &t, &gen, &err));
	xet_token_done(&t);
	/* Kept while more than a minute is left. */
	ASSERT_OK(xet_auth_get(&a, &cfg, now + 3600 - 61 - 5, &t, &gen2, &err));
	xet_token_done(&t);
	ASSERT_EQ(gen, gen2);
	ASSERT_EQ(minihttp_count(&hub, "xet-read-token"), 1);
	/* In its last minute it is fetched again. */
	ASSERT_OK(xet_auth_get(&a, &cfg, now + 3600, &t, &gen2, &err));
	xet_token_done(&t);
	ASSERT_EQ(minihttp_count(&hub, "xet-read-token"), 2);
	ASSERT_TRUE(gen2 != gen);
	/* Refused by the CAS: forgotten, fetched at the next use; a stale refusal (an older
	 * generation) forgets nothing. */
	xet_auth_refused(&a, gen);
	ASSERT_OK(xet_auth_get(&a, &cfg, now, &t, &gen, &err));
	xet_token_done(&t);
	ASSERT_EQ(minihttp_count(&hub, "xet-read-token"), 2);
	xet_auth_refused(&a, gen);
	ASSERT_OK(xet_auth_get(&a, &cfg, now, &t, &gen, &err));
	xet_token_done(&t);
	ASSERT_EQ(minihttp_count(&hub, "xet-read-token"), 3);
	xet_auth_done(&a);
}

static void test_reconstruct(void)
{
	struct hub_config cfg;
	struct xet_token tok = { .access_token = (char *)"xet_good", .exp = 0 };
	struct xet_recon r;
	struct hub_error err;
	char cas[64], link[256];

	minihttp_clear(&hub);
	cfg_init(&cfg, endpoint);
	snprintf(cas, sizeof(cas), "http://127.0.0.1:%d", hub.port);
	tok.cas_url = cas;
	/* The Link's /v1/ URL is asked as /v2/, with the Xet token and the file range only. */
	snprintf(link, sizeof(link), "%s/v1/reconstructions/" FH, cas);
	ASSERT_OK(xet_reconstruct(&cfg, &tok, link, FH, 0, 1233, &r, &err));
	ASSERT_EQ(r.n_terms, 1);
	ASSERT_U64_EQ(r.fetches[0].byte_last, 99);
	xet_recon_done(&r);
	ASSERT_EQ(
		minihttp_count(&hub,
			       "GET /v2/reconstructions/" FH
			       " auth=Bearer xet_good ua=hffs/test ae=identity range=bytes=0-1233"),
		1);
	ASSERT_EQ(minihttp_count(&hub, TOKEN), 0);
	/* No Link: {casUrl}/v2/...; a CAS without /v2 (404) is asked /v1 once. */
	ASSERT_OK(xet_reconstruct(&cfg, &tok, NULL, FH_V1, 5, 9, &r, &err));
	ASSERT_EQ(r.n_fetches, 1);
	xet_recon_done(&r);
	ASSERT_EQ(minihttp_count(&hub, "GET /v2/reconstructions/" FH_V1), 1);
	ASSERT_EQ(minihttp_count(&hub, "GET /v1/reconstructions/" FH_V1 " auth=Bearer xet_good"),
		  1);
	/* A Link that is not a /v1/ URL is asked as it is, and its 404 stands. */
	snprintf(link, sizeof(link), "%s/v3/reconstructions/" FH, cas);
	ASSERT_EQ(xet_reconstruct(&cfg, &tok, link, FH, 0, 1, &r, &err), -ENOENT);
	/* A refused token is -EACCES: the caller renews it. */
	tok.access_token = (char *)"xet_expired";
	ASSERT_EQ(xet_reconstruct(&cfg, &tok, NULL, FH, 0, 1, &r, &err), -EACCES);
	tok.access_token = (char *)"xet_good";
	/* A plan whose term no fetch serves is refused, with the plan's words. */
	ASSERT_EQ(xet_reconstruct(&cfg, &tok, NULL, FH_BAD, 0, 1, &r, &err), -EBADMSG);
	ASSERT_TRUE(strstr(err.message, "no fetch entry covers") != NULL);
	/* Offline: nothing is asked. */
	cfg.offline = true;
	minihttp_clear(&hub);
	ASSERT_EQ(xet_reconstruct(&cfg, &tok, NULL, FH, 0, 1, &r, &err), -ENETDOWN);
	ASSERT_EQ(minihttp_count(&hub, "GET"), 0);
}

int main(void)
{
	static char expf[128];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_xet.XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(tmpdir));
	snprintf(expf, sizeof(expf), "%s/token_life", tmpdir);
	token_exp_file = expf;
	minihttp_start(&hub, handler, tmpdir);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", hub.port);
	RUN(test_probe);
	RUN(test_token);
	RUN(test_auth_refresh);
	RUN(test_reconstruct);
	minihttp_stop(&hub);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		ASSERT_EQ(system(cmd), 0);
	}
	return 0;
}
