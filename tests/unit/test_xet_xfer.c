/* test_xet_xfer.c: Xet fetches on the transfer engine against a scripted xorb server: a range
 * of four chunks (LZ4, none, byte grouping) decoded into the xorb's chunk indices; a body cut
 * short mid-chunk resumed by the engine with no chunk twice; a corrupt chunk and a range
 * short of its chunks failed with words; a refused signed URL (-EACCES); no Authorization at
 * the xorb URL. Every wait has a deadline. */
#include "fetch/xet_xfer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lz4frame.h>

#include "tests/unit/check.h"
#include "tests/unit/minihttp.h"

#define XA "e38d7c09a21b4cf8d0f92b3a85e6df19f7c20435e0b1c78a9d635f7b8c2e4da1"
/* The xorb holds chunks 0..5; the fetches ask for chunks 1..5 (4 chunks). */
#define N_CHUNKS 6

static struct minihttp srv;
static char tmpdir[64];
static uint8_t xorb[N_CHUNKS * (8 + 70000)], raw[N_CHUNKS][65536];
static size_t xorb_len, chunk_off[N_CHUNKS + 1], raw_len[N_CHUNKS];

static void put_header(uint8_t *p, uint32_t stored, uint8_t scheme, uint32_t n)
{
	p[0] = 0;
	p[1] = (uint8_t)stored, p[2] = (uint8_t)(stored >> 8), p[3] = (uint8_t)(stored >> 16);
	p[4] = scheme;
	p[5] = (uint8_t)n, p[6] = (uint8_t)(n >> 8), p[7] = (uint8_t)(n >> 16);
}

static void make_xorb(void)
{
	for (int c = 0; c < N_CHUNKS; c++) {
		uint8_t *p = xorb + xorb_len, scheme = (uint8_t)(c % 3);
		size_t n = 30000 + (size_t)c * 5000, stored;

		for (size_t i = 0; i < n; i++)
			raw[c][i] = (uint8_t)((i / (c + 3)) ^ (i % 4 ? 0 : 0x55));
		raw_len[c] = n;
		chunk_off[c] = xorb_len;
		if (scheme == 0) {
			memcpy(p + 8, raw[c], n);
			stored = n;
		} else {
			uint8_t grouped[65536];
			const uint8_t *src = raw[c];

			if (scheme == 2) {
				size_t o = 0;

				for (size_t k = 0; k < 4; k++)
					for (size_t i = k; i < n; i += 4)
						grouped[o++] = raw[c][i];
				src = grouped;
			}
			stored = LZ4F_compressFrame(p + 8, sizeof(xorb) - xorb_len - 8, src, n,
						    NULL);
			ASSERT_FALSE(LZ4F_isError(stored));
		}
		put_header(p, (uint32_t)stored, scheme, (uint32_t)n);
		xorb_len += 8 + stored;
	}
	chunk_off[N_CHUNKS] = xorb_len;
}

/* In the child: the range asked of the xorb, with faults by path. */
static void handler(const struct mh_request *req, struct mh_reply *rep)
{
	static uint8_t body[sizeof(xorb)];
	static int cut_seen;
	unsigned long long a, b;

	if (strstr(req->target, "/forbidden")) {
		rep->status = 403;
		return;
	}
	if (sscanf(req->range, "bytes=%llu-%llu", &a, &b) != 2 || b >= xorb_len || a > b) {
		rep->status = 416;
		return;
	}
	memcpy(body, xorb, xorb_len);
	if (strstr(req->target, "/corrupt"))
		body[chunk_off[3]] = 1; /* chunk 3's header: version 1 */
	rep->status = 206;
	mh_header(rep, "Content-Range: bytes %llu-%llu/%zu", a, b, xorb_len);
	rep->body = (const char *)body + a;
	rep->body_len = (size_t)(b - a + 1);
	/* The first request for /cut dies in the middle of chunk 2. */
	if (strstr(req->target, "/cut") && !cut_seen++)
		rep->cut_at = (chunk_off[2] + 1000) - (size_t)a;
}

struct result {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int err;
	enum fetch_reason reason;
	char why[256];
	uint64_t next; /* the chunk index expected next */
	bool bytes_ok;
};

static int on_chunk(void *ud, uint64_t index, const uint8_t *data, size_t len)
{
	struct result *res = ud;

	pthread_mutex_lock(&res->lock);
	if (index != res->next || index >= N_CHUNKS || len != raw_len[index] ||
	    memcmp(data, raw[index], len) != 0)
		res->bytes_ok = false;
	res->next++;
	pthread_mutex_unlock(&res->lock);
	return 0;
}

static void on_done(void *ud, int err, enum fetch_reason reason, const char *why)
{
	struct result *res = ud;

	pthread_mutex_lock(&res->lock);
	res->done = true;
	res->err = err;
	res->reason = reason;
	snprintf(res->why, sizeof(res->why), "%s", why ? why : "");
	pthread_cond_signal(&res->cond);
	pthread_mutex_unlock(&res->lock);
}

/* Fetches chunks [1, 5) (or [1, chunks_end) said, the bytes of [1, 5)) from path. */
static void fetch(struct xfer *x, const char *path, uint64_t chunks_end, struct result *res)
{
	char url[256];
	char *urls[1] = { url };
	struct xet_fetch f = {
		.xorb = XA,
		.url = 0,
		.chunk_start = 1,
		.chunk_end = chunks_end,
		.byte_first = chunk_off[1],
		.byte_last = chunk_off[5] - 1,
	};
	struct xet_recon r = { .fetches = &f, .n_fetches = 1, .urls = urls, .n_urls = 1 };
	struct xet_xfer_cb cb = { .chunk = on_chunk, .done = on_done, .ud = res };
	struct timespec deadline;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/xorb/%s?sig=1", srv.port, path);
	memset(res, 0, sizeof(*res));
	pthread_mutex_init(&res->lock, NULL);
	pthread_cond_init(&res->cond, NULL);
	res->next = 1;
	res->bytes_ok = true;
	ASSERT_OK(xet_xfer_submit(x, &r, 0, XFER_PRIO_DEMAND, &cb, NULL));
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 30;
	pthread_mutex_lock(&res->lock);
	while (!res->done)
		if (pthread_cond_timedwait(&res->cond, &res->lock, &deadline) == ETIMEDOUT)
			CHECK_FAIL("fetch of %s did not finish in 30 s", path);
	pthread_mutex_unlock(&res->lock);
}

static void test_fetches(void)
{
	struct hub_config cfg = {
		/* Another origin than the xorb server's: the Hub token must not go there. */
		.endpoint = (char *)"http://127.0.0.2:9",
		.token = (char *)"hf_secret",
		.user_agent = (char *)"hffs/test",
		.timeout_s = 5,
	};
	struct xfer_opts opts = { .connections = 2, .max_retries = 3, .backoff_max_s = 1 };
	struct xfer *x = NULL;
	struct result res;

	ASSERT_OK(xfer_new(&cfg, &opts, &x));
	fetch(x, "ok", 5, &res);
	ASSERT_EQ(res.err, 0);
	ASSERT_TRUE(res.bytes_ok);
	ASSERT_U64_EQ(res.next, 5);
	ASSERT_EQ(minihttp_count(&srv, "auth=-"), 1);
	ASSERT_EQ(minihttp_count(&srv, "hf_secret"), 0);

	/* Cut mid-chunk: resumed after the bytes taken; every chunk once, in order. */
	fetch(x, "cut", 5, &res);
	ASSERT_EQ(res.err, 0);
	ASSERT_TRUE(res.bytes_ok);
	ASSERT_U64_EQ(res.next, 5);
	ASSERT_EQ(minihttp_count(&srv, "GET /xorb/cut"), 2);

	fetch(x, "corrupt", 5, &res);
	ASSERT_EQ(res.err, -EBADMSG);
	ASSERT_EQ(res.reason, FETCH_PROTOCOL);
	ASSERT_TRUE(strstr(res.why, "xorb " XA " sent") && strstr(res.why, "version"));
	ASSERT_U64_EQ(res.next, 3); /* chunks 1 and 2 came before the bad one */

	/* The plan says 5 chunks where the bytes hold 4. */
	fetch(x, "ok", 6, &res);
	ASSERT_EQ(res.err, -EBADMSG);
	ASSERT_TRUE(strstr(res.why, "short of its chunks") != NULL);

	fetch(x, "forbidden", 5, &res);
	ASSERT_EQ(res.err, -EACCES);
	ASSERT_EQ(res.reason, FETCH_FORBIDDEN);
	xfer_free(x);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_xet_xfer.XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(tmpdir));
	make_xorb();
	minihttp_start(&srv, handler, tmpdir);
	RUN(test_fetches);
	minihttp_stop(&srv);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		ASSERT_EQ(system(cmd), 0);
	}
	return 0;
}
