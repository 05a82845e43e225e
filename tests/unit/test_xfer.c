/* test_xfer.c: the transfer engine. Its pure parts (the signed-URL cache, reply
 * interpretation, the retry policy, the id table) directly; the engine itself against the fake
 * Hub (tests/fakehub, a python3 child on 127.0.0.1 and 127.0.0.2, from $FAKEHUB): one resolve
 * per blob for many ranges, the token never at the CDN, the 307 of regular files; a table of
 * fault cases, one range each: 200 for a range, 503 runs, 429 + Retry-After, resets and short
 * bodies resumed after the bytes the sink took, stalls, spent retries, sink errors; then
 * signed URLs refused (403) or near expiry, 404, DNS and TLS failures, priorities, cancels
 * (racing intake too), xfer_free with work pending, offline mode, invalid requests refused and
 * the rate cap. Each sink counts every byte it gets and is compared with the source blob;
 * every wait has a deadline. */
#include "fetch/xfer.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "fetch/resolve.h"
#include "fetch/xfer_priv.h"
#include "tests/unit/check.h"
#include "util/cleanup.h"
#include "util/timeutil.h"

static size_t discard(char *data, size_t size, size_t n, void *ud)
{
	(void)data;
	(void)ud;
	return size * n;
}

static void test_refresh_at(void)
{
	const uint64_t now = 1700000000ULL * USEC_PER_SEC;
	const uint64_t now_s = now / USEC_PER_SEC;

	/* An S3 URL valid for an hour: dropped 61 s before it expires (60 s, and 1 s for the
	 * whole-second dates). */
	ASSERT_U64_EQ(resolve_refresh_at(now_s + 3600, now_s, now), now + 3539 * USEC_PER_SEC);
	/* A short life: a quarter of it is the margin. */
	ASSERT_U64_EQ(resolve_refresh_at(now_s + 8, now_s, now), now + 5 * USEC_PER_SEC);
	ASSERT_U64_EQ(resolve_refresh_at(now_s + 1, now_s, now), now);
	/* Our clock 2 h ahead of the server's: the URL still has its hour, by our clock. */
	ASSERT_U64_EQ(resolve_refresh_at(now_s - 7200 + 3600, now_s - 7200, now),
		      now + 3539 * USEC_PER_SEC);
	/* Without the server's Date our clock is the reference. */
	ASSERT_U64_EQ(resolve_refresh_at(now_s + 100, 0, now), now + 74 * USEC_PER_SEC);
	/* Expired by the server's clock: not used again. By ours only: trust the CDN to say. */
	ASSERT_U64_EQ(resolve_refresh_at(now_s - 5, now_s, now), now);
	ASSERT_U64_EQ(resolve_refresh_at(now_s - 5, 0, now), 0);
}

static void test_resolve_cache(void)
{
	struct resolve_cache *c = resolve_cache_new(2);
	struct resolve_entry *a, *b, *d, *a2;
	const uint64_t now = 1700000000ULL * USEC_PER_SEC;
	char url[256];

	ASSERT_NOT_NULL(c);
	a = resolve_get(c, "aaaa");
	a2 = resolve_get(c, "aaaa");
	ASSERT_TRUE(a == a2 && a->refs == 2);
	ASSERT_NULL(resolve_target(a, now));
	/* 20231114T221320Z is 1700000000: valid 100 s, so used until 74 s from now. */
	snprintf(url, sizeof(url),
		 "https://cdn.example/x?X-Amz-Date=20231114T221320Z&X-Amz-Expires=100&sig=1");
	ASSERT_OK(resolve_set_target(a, url, 1700000000, now));
	ASSERT_STR_EQ(resolve_target(a, now + 73 * USEC_PER_SEC), url);
	ASSERT_NULL(resolve_target(a, now + 74 * USEC_PER_SEC));
	/* gen moves with every change, so a refusal of an old target spares a new one. */
	uint64_t gen = a->gen;
	ASSERT_OK(resolve_set_target(a, "http://127.0.0.1:1/api/resolve-cache/x?etag=1", 0, now));
	ASSERT_TRUE(a->gen > gen && a->refresh_at == 0);
	ASSERT_NOT_NULL(resolve_target(a, now + 1000000 * USEC_PER_SEC));
	resolve_put(c, a);
	resolve_put(c, a2);
	/* Idle entries stay cached, up to max_idle; the least recently used goes first. */
	b = resolve_get(c, "bbbb");
	resolve_put(c, b);
	ASSERT_EQ(resolve_cache_count(c), 2);
	d = resolve_get(c, "dddd"); /* held: never evicted */
	ASSERT_EQ(resolve_cache_count(c), 3);
	a = resolve_get(c, "aaaa"); /* still there, with its target */
	ASSERT_NOT_NULL(a->target);
	resolve_put(c, a);
	resolve_put(c, d);
	ASSERT_EQ(resolve_cache_count(c), 2);
	b = resolve_get(c, "bbbb"); /* was the oldest idle one: a fresh entry */
	ASSERT_NULL(b->target);
	resolve_put(c, b);
	/* Many keys: the table grows and finds them all. */
	for (int i = 0; i < 500; i++) {
		snprintf(url, sizeof(url), "key%d", i);
		ASSERT_NOT_NULL(resolve_get(c, url));
	}
	for (int i = 0; i < 500; i++) {
		snprintf(url, sizeof(url), "key%d", i);
		a = resolve_get(c, url);
		ASSERT_EQ(a->refs, 2);
		resolve_put(c, a);
		resolve_put(c, a);
	}
	ASSERT_EQ(resolve_cache_count(c), 2);
	resolve_cache_free(c);
}

static struct xreply feed(struct xreply_buf *rb, const char *const *lines)
{
	for (; *lines; lines++)
		(void)xreply_feed(rb, *lines, strlen(*lines));
	return xreply_view(rb);
}

static void test_reply_headers(void)
{
	static const char *const lines[] = {
		"HTTP/1.1 100 Continue\r\n",
		"Location: /not/this/one\r\n",
		"\r\n",
		"HTTP/2 206 \r\n",
		"content-range: bytes 10-19/100\r\n",
		"Content-Length:    10  \r\n",
		"X-Error-Code: Odd\r\n",
		"X-Nothing: 1\r\n",
		NULL,
	};
	struct xreply_buf rb = { 0 };
	char big[300];
	struct xreply rep;

	rep = feed(&rb, lines);
	ASSERT_EQ(rep.status, 206);
	ASSERT_STR_EQ(rep.content_range, "bytes 10-19/100");
	ASSERT_STR_EQ(rep.content_length, "10");
	ASSERT_STR_EQ(rep.x_error_code, "Odd");
	ASSERT_NULL(rep.location); /* the 100's headers were dropped */
	ASSERT_NULL(rep.retry_after);
	ASSERT_EQ(xreply_feed(&rb, "\r\n", 2), XREPLY_END);
	/* A value longer than its field is replaced by a marker no parser accepts. */
	memset(big, '7', sizeof(big));
	memcpy(big, "Retry-After: ", 13);
	memcpy(big + sizeof(big) - 3, "\r\n", 3);
	ASSERT_EQ(xreply_feed(&rb, big, strlen(big)), XREPLY_HEADER);
	ASSERT_STR_EQ(rb.retry_after, "!");
	ASSERT_EQ(xreply_feed(&rb, "HTTP/1.1 302 Found\r\n", 20), XREPLY_STATUS);
	ASSERT_EQ(rb.status, 302);
	ASSERT_EQ(rb.content_range[0], '\0');
	ASSERT_EQ(xreply_feed(&rb, "Location: https://cdn/x?a=1\r\n", 29), XREPLY_HEADER);
	ASSERT_STR_EQ(rb.location, "https://cdn/x?a=1");
	ASSERT_EQ(xreply_feed(&rb, "HTTP/1.1 2\r\n", 12), XREPLY_STATUS);
	ASSERT_EQ(rb.status, 0);
	xreply_buf_done(&rb);
}

static void test_reply_body(void)
{
	struct xreply rep = { .status = 206, .content_range = "bytes 100-199/1000" };
	const char *u = "https://cdn.example/blob";
	struct xfailure f;
	uint64_t skip = 99;

	ASSERT_OK(xreply_check_body(&rep, u, 100, 199, 1000, &skip, &f));
	ASSERT_U64_EQ(skip, 0);
	/* Shorter than asked is taken (the rest comes next attempt), longer is cut. */
	rep.content_range = "bytes 100-149/1000";
	ASSERT_OK(xreply_check_body(&rep, u, 100, 199, 1000, &skip, &f));
	rep.content_range = "bytes 100-999/*";
	ASSERT_OK(xreply_check_body(&rep, u, 100, 199, 1000, &skip, &f));
	/* Wrong start, wrong size, no Content-Range: a protocol error, not retried. */
	rep.content_range = "bytes 0-99/1000";
	ASSERT_EQ(xreply_check_body(&rep, u, 100, 199, 1000, &skip, &f), -EBADMSG);
	ASSERT_EQ(f.reason, FETCH_PROTOCOL);
	ASSERT_FALSE(f.transient);
	ASSERT_STR_EQ(f.why, "cdn.example:443 sent bytes 0-99 for 100-199");
	rep.content_range = "bytes 100-199/999";
	ASSERT_EQ(xreply_check_body(&rep, u, 100, 199, 1000, &skip, &f), -EBADMSG);
	ASSERT_TRUE(strstr(f.why, "999") != NULL);
	rep.content_range = NULL;
	ASSERT_EQ(xreply_check_body(&rep, u, 100, 199, 1000, &skip, &f), -EBADMSG);
	/* A 200 is the whole blob: skip what precedes the range. */
	rep = (struct xreply){ .status = 200, .content_length = "1000" };
	ASSERT_OK(xreply_check_body(&rep, u, 100, 199, 1000, &skip, &f));
	ASSERT_U64_EQ(skip, 100);
	rep.content_length = "1001";
	ASSERT_EQ(xreply_check_body(&rep, u, 100, 199, 1000, &skip, &f), -EBADMSG);
	/* Encoded bodies are not the blob's bytes. */
	rep = (struct xreply){ .status = 206,
			       .content_range = "bytes 100-199/1000",
			       .content_encoding = "gzip" };
	ASSERT_EQ(xreply_check_body(&rep, u, 100, 199, 1000, &skip, &f), -EBADMSG);
	ASSERT_TRUE(strstr(f.why, "gzip") != NULL);
	rep.content_encoding = "identity";
	ASSERT_OK(xreply_check_body(&rep, u, 100, 199, 1000, &skip, &f));
	rep = (struct xreply){ .status = 204 };
	ASSERT_EQ(xreply_check_body(&rep, u, 100, 199, 1000, &skip, &f), -EBADMSG);
}

static void test_reply_classify(void)
{
	const char *hub = "http://127.0.0.1:4711/org/x/resolve/main/f";
	struct xreply rep = { .status = 302, .location = "https://cdn/x" };
	struct xfailure f;

	ASSERT_EQ(xreply_classify(&rep, hub, false, &f), XVERDICT_REDIRECT);
	rep.location = NULL;
	ASSERT_EQ(xreply_classify(&rep, hub, false, &f), XVERDICT_FAIL);
	ASSERT_EQ(f.reason, FETCH_PROTOCOL);
	ASSERT_FALSE(f.transient);
	/* A refusal by the CDN is answered by a resolve; by the Hub it is final. */
	rep = (struct xreply){ .status = 403 };
	ASSERT_EQ(xreply_classify(&rep, "https://cdn/x", true, &f), XVERDICT_RERESOLVE);
	ASSERT_EQ(xreply_classify(&rep, "https://cdn/x", true, &f), XVERDICT_RERESOLVE);
	rep = (struct xreply){ .status = 400 };
	ASSERT_EQ(xreply_classify(&rep, "https://cdn/x", true, &f), XVERDICT_RERESOLVE);
	rep = (struct xreply){ .status = 403,
			       .x_error_code = "GatedRepo",
			       .x_error_message = "Access restricted" };
	ASSERT_EQ(xreply_classify(&rep, hub, false, &f), XVERDICT_FAIL);
	ASSERT_EQ(f.reason, FETCH_GATED);
	ASSERT_FALSE(f.transient);
	ASSERT_STR_EQ(f.why, "HTTP 403 from 127.0.0.1:4711 (GatedRepo: Access restricted)");
	rep = (struct xreply){ .status = 404, .x_error_code = "EntryNotFound" };
	ASSERT_EQ(xreply_classify(&rep, hub, false, &f), XVERDICT_FAIL);
	ASSERT_EQ(f.reason, FETCH_NOT_FOUND);
	ASSERT_FALSE(f.transient);
	rep = (struct xreply){ .status = 404 };
	ASSERT_EQ(xreply_classify(&rep, "https://cdn/x", true, &f), XVERDICT_FAIL);
	ASSERT_EQ(f.reason, FETCH_NOT_FOUND);
	rep = (struct xreply){ .status = 416 };
	ASSERT_EQ(xreply_classify(&rep, hub, false, &f), XVERDICT_FAIL);
	ASSERT_EQ(f.reason, FETCH_PROTOCOL);
	ASSERT_FALSE(f.transient);
	/* Transient statuses, with the server's wait when it names one. */
	rep = (struct xreply){ .status = 503, .retry_after = "2" };
	ASSERT_EQ(xreply_classify(&rep, hub, false, &f), XVERDICT_FAIL);
	ASSERT_EQ(f.reason, FETCH_SERVER);
	ASSERT_TRUE(f.transient && f.has_server_delay);
	ASSERT_U64_EQ(f.server_delay_usec, 3 * USEC_PER_SEC);
	rep = (struct xreply){ .status = 429, .ratelimit = "\"resolvers\";r=0;t=4" };
	ASSERT_EQ(xreply_classify(&rep, hub, false, &f), XVERDICT_FAIL);
	ASSERT_EQ(f.reason, FETCH_RATE_LIMITED);
	ASSERT_TRUE(f.transient && f.has_server_delay);
	ASSERT_U64_EQ(f.server_delay_usec, 5 * USEC_PER_SEC);
	rep = (struct xreply){ .status = 502 };
	ASSERT_EQ(xreply_classify(&rep, hub, false, &f), XVERDICT_FAIL);
	ASSERT_TRUE(f.transient && !f.has_server_delay);
	rep = (struct xreply){ .status = 408 };
	ASSERT_EQ(xreply_classify(&rep, hub, false, &f), XVERDICT_FAIL);
	ASSERT_TRUE(f.transient);
}

static void test_origin(void)
{
	char b[128];

	ASSERT_STR_EQ(xreply_origin("https://cdn.example/x:y", b, sizeof(b)), "cdn.example:443");
	ASSERT_STR_EQ(xreply_origin("http://127.0.0.1:4711/a?b=c:d", b, sizeof(b)),
		      "127.0.0.1:4711");
	ASSERT_STR_EQ(xreply_origin("http://user:pw@host/x", b, sizeof(b)), "host:80");
	ASSERT_STR_EQ(xreply_origin("http://[::1]:8080/x", b, sizeof(b)), "[::1]:8080");
	ASSERT_STR_EQ(xreply_origin("http://[::1]/x", b, sizeof(b)), "[::1]:80");
	ASSERT_STR_EQ(xreply_origin("nonsense", b, sizeof(b)), "?");
}

static void test_policy(void)
{
	struct xfer_opts o = { .max_retries = 2, .backoff_max_s = 4 };
	struct xfailure t = { .reason = FETCH_SERVER, .transient = true };
	struct xreq r = { .prio = XFER_PRIO_DEMAND };
	struct backoff_rng rng;
	struct xpolicy p;
	uint64_t d = 0;

	backoff_rng_init(&rng, 1);
	xpolicy_init(&p, &o);
	snprintf(t.why, sizeof(t.why), "HTTP 503 from h:1");
	/* Two retries, then spent: the words count the attempts. */
	r.attempts = 1;
	ASSERT_TRUE(xpolicy_after_failure(&p, &r, &t, 0, &rng, &d));
	ASSERT_TRUE(d <= 1 * USEC_PER_SEC);
	r.attempts = 2;
	ASSERT_TRUE(xpolicy_after_failure(&p, &r, &t, 0, &rng, &d));
	ASSERT_TRUE(d <= 2 * USEC_PER_SEC);
	r.attempts = 3;
	ASSERT_FALSE(xpolicy_after_failure(&p, &r, &t, 0, &rng, &d));
	ASSERT_STR_EQ(r.why, "HTTP 503 from h:1 after 3 attempts");
	/* Bytes arrived: the streak starts over. */
	r = (struct xreq){ .prio = XFER_PRIO_DEMAND };
	for (int i = 0; i < 6; i++) {
		t.progressed = true;
		ASSERT_TRUE(xpolicy_after_failure(&p, &r, &t, 0, &rng, &d));
	}
	/* ... but not forever: 4 x (retries + 1) failures in all. */
	for (int i = 0; i < 6; i++)
		ASSERT_TRUE(xpolicy_after_failure(&p, &r, &t, 0, &rng, &d));
	ASSERT_FALSE(xpolicy_after_failure(&p, &r, &t, 0, &rng, &d));
	t.progressed = false;
	/* Permanent: at once, with the reply's own words. */
	r = (struct xreq){ .prio = XFER_PRIO_DEMAND };
	t.transient = false;
	ASSERT_FALSE(xpolicy_after_failure(&p, &r, &t, 0, &rng, &d));
	ASSERT_STR_EQ(r.why, "HTTP 503 from h:1");
	t.transient = true;
	/* The server's wait is honoured exactly, unless a reader cannot wait that long. */
	r = (struct xreq){ .prio = XFER_PRIO_DEMAND };
	t.has_server_delay = true;
	t.server_delay_usec = 7 * USEC_PER_SEC;
	ASSERT_TRUE(xpolicy_after_failure(&p, &r, &t, 0, &rng, &d));
	ASSERT_U64_EQ(d, 7 * USEC_PER_SEC);
	ASSERT_TRUE(r.server_wait);
	t.server_delay_usec = 120 * USEC_PER_SEC;
	ASSERT_FALSE(xpolicy_after_failure(&p, &r, &t, 0, &rng, &d));
	ASSERT_TRUE(strstr(r.why, "asks to wait 120 s") != NULL);
	r = (struct xreq){ .prio = XFER_PRIO_BACKGROUND };
	ASSERT_TRUE(xpolicy_after_failure(&p, &r, &t, 0, &rng, &d));
	t.has_server_delay = false;
	/* Background: no count, an hour of failing; its sleeps reach 7.5x the cap. */
	r = (struct xreq){ .prio = XFER_PRIO_BACKGROUND };
	uint64_t most = 0;
	for (int i = 0; i < 200; i++) {
		ASSERT_TRUE(
			xpolicy_after_failure(&p, &r, &t, (uint64_t)i * USEC_PER_SEC, &rng, &d));
		ASSERT_TRUE(d <= 30 * USEC_PER_SEC);
		most = MAX(most, d);
	}
	ASSERT_TRUE(most > 20 * USEC_PER_SEC);
	ASSERT_FALSE(xpolicy_after_failure(&p, &r, &t, 3600 * USEC_PER_SEC, &rng, &d));
}

static void test_id_table(void)
{
	struct xreq_table t = { 0 };
	static struct xreq v[1000];

	for (int i = 0; i < 1000; i++) {
		v[i].id = (uint64_t)i + 1;
		ASSERT_OK(xreq_table_insert(&t, &v[i]));
	}
	ASSERT_EQ(t.count, 1000);
	ASSERT_TRUE(xreq_table_find(&t, 500) == &v[499]);
	ASSERT_NULL(xreq_table_find(&t, 1001));
	for (int i = 0; i < 1000; i += 2)
		xreq_table_remove(&t, &v[i]);
	ASSERT_EQ(t.count, 500);
	ASSERT_NULL(xreq_table_find(&t, 1));
	ASSERT_TRUE(xreq_table_find(&t, 2) == &v[1]);
	xreq_table_done(&t);
	ASSERT_NULL(xreq_table_find(&t, 2));
}

/* The engine against the fake Hub (tests/fakehub): a child python3 process serving a generated
 * repo on 127.0.0.1 (API) and 127.0.0.2 (CDN), with scripted faults and a request log. */

#define TOKEN "hf_xfer_test_token"
#define REPO "org/model"
#define WAIT_S 30

struct file {
	char path[128];
	uint64_t size;
	char sha256[65];
	bool lfs;
	uint8_t *data;
};

static struct {
	char dir[64]; /* mkdtemp */
	char fakehub[512];
	pid_t pid;
	char api_url[64];
	char log_path[128];
	struct file files[64];
	size_t nfiles;
} hub;

struct logent {
	char host[8], path[512], auth[96], range[64], fault[64];
	bool has_auth;
	long status;
	double t;
	uint64_t first, last;
};

static int run_child(char *const argv[], const char *out_path)
{
	pid_t pid = fork();
	int status;

	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		if (out_path) {
			int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

			if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
				_exit(126);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rbe");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	ASSERT_NOT_NULL(buf);
	ASSERT_EQ(fread(buf, 1, (size_t)n, f), n);
	buf[n] = '\0';
	fclose(f);
	if (ret_len)
		*ret_len = (size_t)n;
	return buf;
}

static const struct file *file_of(const char *path)
{
	for (size_t i = 0; i < hub.nfiles; i++)
		if (strcmp(hub.files[i].path, path) == 0)
			return &hub.files[i];
	CHECK_FAIL("no file '%s' in the generated repo", path);
}

/* Generates the repo and reads back each file's size, sha256, LFS flag and bytes. */
static void hub_generate(void)
{
	char data[128], list[128], gen[600], script[1024];
	char *argv_gen[] = { (char *)"/usr/bin/python3",
			     gen,
			     data,
			     (char *)"--repo",
			     (char *)REPO,
			     (char *)"--shards",
			     (char *)"2",
			     (char *)"--shard-size",
			     (char *)"1048576",
			     NULL };
	char *argv_list[] = {
		(char *)"/usr/bin/python3", (char *)"-c", script, hub.fakehub, data, NULL
	};
	_cleanup_free_ char *text = NULL;
	char *line, *save = NULL;

	snprintf(data, sizeof(data), "%s/data", hub.dir);
	snprintf(list, sizeof(list), "%s/files.tsv", hub.dir);
	snprintf(gen, sizeof(gen), "%s/genrepo.py", hub.fakehub);
	snprintf(script, sizeof(script),
		 "import sys; sys.path.insert(0, sys.argv[1]); import repostore, genrepo\n"
		 "for p, s in sorted(repostore.content_sha256s(sys.argv[2], '%s').items()):\n"
		 "    n = len(open(repostore.blob_path(sys.argv[2], s), 'rb').read())\n"
		 "    if '\\t' not in p and len(p) < 120:\n"
		 "        print(f'{p}\\t{n}\\t{s}\\t{int(genrepo.is_lfs(p, n))}')\n",
		 REPO);
	ASSERT_EQ(run_child(argv_gen, "/dev/null"), 0);
	ASSERT_EQ(run_child(argv_list, list), 0);
	text = slurp(list, NULL);
	ASSERT_NOT_NULL(text);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct file *f = &hub.files[hub.nfiles];
		char blob[256];
		int lfs;
		size_t n;

		ASSERT_TRUE(hub.nfiles < ARRAY_SIZE(hub.files));
		ASSERT_EQ(sscanf(line, "%127[^\t]\t%" SCNu64 "\t%64s\t%d", f->path, &f->size,
				 f->sha256, &lfs),
			  4);
		f->lfs = lfs;
		snprintf(blob, sizeof(blob), "%s/blobs/%.2s/%s", data, f->sha256, f->sha256);
		f->data = (uint8_t *)slurp(blob, &n);
		ASSERT_U64_EQ(n, f->size);
		hub.nfiles++;
	}
	ASSERT_TRUE(file_of("model-00001-of-00002.safetensors")->lfs);
	ASSERT_FALSE(file_of("tokenizer.json")->lfs);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Stops the fake Hub by its PID: SIGTERM, then SIGKILL after 10 s. */
static void hub_kill(void)
{
	uint64_t deadline = now_usec() + 10 * USEC_PER_SEC;
	int status;

	if (hub.pid <= 0)
		return;
	kill(hub.pid, SIGTERM);
	while (waitpid(hub.pid, &status, WNOHANG) == 0) {
		if (now_usec() > deadline) {
			kill(hub.pid, SIGKILL);
			(void)waitpid(hub.pid, &status, 0);
			break;
		}
		usleep(20000);
	}
	hub.pid = 0;
}

static void hub_stop(void)
{
	hub_kill();
	for (size_t i = 0; i < hub.nfiles; i++)
		free(hub.files[i].data);
	if (hub.dir[0])
		(void)nftw(hub.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Starts fakehub.py on the generated data (ttl: --url-ttl, NULL for its default) and waits,
 * bounded, for its port file. */
static void hub_spawn(const char *ttl)
{
	char data[128], ports[128], tokens[128], script[600], errlog[128];
	char *argv[] = { (char *)"/usr/bin/python3",
			 script,
			 (char *)"--data",
			 data,
			 (char *)"--port-file",
			 ports,
			 (char *)"--log",
			 hub.log_path,
			 (char *)"--tokens",
			 tokens,
			 (char *)"--url-ttl",
			 (char *)ttl,
			 NULL };
	uint64_t deadline = now_usec() + 20 * USEC_PER_SEC;
	_cleanup_free_ char *text = NULL;
	const char *p;

	snprintf(script, sizeof(script), "%s/fakehub.py", hub.fakehub);
	snprintf(data, sizeof(data), "%s/data", hub.dir);
	snprintf(ports, sizeof(ports), "%s/ports.json", hub.dir);
	snprintf(tokens, sizeof(tokens), "%s/tokens.json", hub.dir);
	snprintf(errlog, sizeof(errlog), "%s/fakehub.stderr", hub.dir);
	if (!ttl)
		argv[10] = NULL;
	(void)unlink(ports);
	hub.pid = fork();
	ASSERT_TRUE(hub.pid >= 0);
	if (hub.pid == 0) {
		int fd = open(errlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		/* Not on the test's pipes (meson waits for them to close), and gone with the
		 * test even when it dies without running atexit (a sanitizer abort). */
		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0 ||
		    prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	while (!(text = slurp(ports, NULL))) {
		int status;

		if (waitpid(hub.pid, &status, WNOHANG) == hub.pid)
			CHECK_FAIL("the fake Hub exited (status %d)", status);
		if (now_usec() > deadline)
			CHECK_FAIL("the fake Hub wrote no port file within 20 s");
		usleep(20000);
	}
	p = strstr(text, "\"api_url\": \"");
	ASSERT_NOT_NULL(p);
	ASSERT_EQ(sscanf(p + 12, "%63[^\"]", hub.api_url), 1);
}

static void hub_start(void)
{
	const char *env = getenv("FAKEHUB");
	char script[600], tokens[128];
	FILE *f;

	snprintf(hub.fakehub, sizeof(hub.fakehub), "%s", env ? env : "tests/fakehub");
	snprintf(script, sizeof(script), "%s/fakehub.py", hub.fakehub);
	if (access(script, R_OK) != 0)
		CHECK_FAIL("no fake Hub at '%s': set FAKEHUB to the tests/fakehub directory",
			   script);
	snprintf(hub.dir, sizeof(hub.dir), "/tmp/test_xfer.XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(hub.dir));
	/* A failed check exits: the server and the files go with the test (children _exit()). */
	atexit(hub_stop);
	hub_generate();
	snprintf(tokens, sizeof(tokens), "%s/tokens.json", hub.dir);
	snprintf(hub.log_path, sizeof(hub.log_path), "%s/requests.jsonl", hub.dir);
	f = fopen(tokens, "we");
	ASSERT_NOT_NULL(f);
	fprintf(f, "{\"%s\": {\"user\": \"tester\"}}\n", TOKEN);
	fclose(f);
	hub_spawn(NULL);
}

static void hub_post(const char *path, const char *json)
{
	char url[256];
	CURL *c = curl_easy_init();
	long status = 0;

	snprintf(url, sizeof(url), "%s%s", hub.api_url, path);
	ASSERT_NOT_NULL(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	ASSERT_EQ(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	ASSERT_EQ(status, 200);
}

/* Replaces the fault rules (a JSON list; "[]" for none). */
static void hub_faults(const char *json)
{
	hub_post("/_fake/faults", json);
}

/* Where the request log ends now: what a test reads from. */
static size_t log_offset(void)
{
	struct stat st;

	return stat(hub.log_path, &st) == 0 ? (size_t)st.st_size : 0;
}

static bool json_str(const char *line, const char *key, char *buf, size_t len)
{
	char pat[64];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	p = strstr(line, pat);
	if (!p)
		return false;
	p += strlen(pat);
	for (e = p; *e && (*e != '"' || e[-1] == '\\'); e++)
		;
	snprintf(buf, len, "%.*s", (int)(e - p), p);
	return true;
}

static double json_num(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(line, pat);
	return p ? strtod(p + strlen(pat), NULL) : -1;
}

/* The requests logged from byte from of the log on, but the control ones (/_fake/). */
static size_t log_read(size_t from, struct logent *v, size_t max)
{
	_cleanup_free_ char *text = slurp(hub.log_path, NULL);
	char *line, *save = NULL;
	size_t n = 0;

	ASSERT_NOT_NULL(text);
	for (line = strtok_r(text + from, "\n", &save); line && n < max;
	     line = strtok_r(NULL, "\n", &save)) {
		struct logent *e = &v[n];

		memset(e, 0, sizeof(*e));
		json_str(line, "path", e->path, sizeof(e->path));
		if (strncmp(e->path, "/_fake/", 7) == 0)
			continue;
		n++;
		json_str(line, "host", e->host, sizeof(e->host));
		e->has_auth = json_str(line, "authorization", e->auth, sizeof(e->auth));
		json_str(line, "fault", e->fault, sizeof(e->fault));
		if (json_str(line, "range", e->range, sizeof(e->range)))
			ASSERT_EQ(
				sscanf(e->range, "bytes=%" SCNu64 "-%" SCNu64, &e->first, &e->last),
				2);
		e->status = (long)json_num(line, "status");
		e->t = json_num(line, "t");
	}
	return n;
}

static size_t log_count(const struct logent *v, size_t n, const char *host, const char *needle)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += strcmp(v[i].host, host) == 0 && (!needle || strstr(v[i].path, needle));
	return c;
}

/* log_read(), once the log holds at least `want` requests to host matching needle: a server
 * logs a reply the client cut short only when its next write fails. Bounded. */
static size_t log_read_when(size_t from, struct logent *v, size_t max, const char *host,
			    const char *needle, size_t want)
{
	uint64_t deadline = now_usec() + 10 * USEC_PER_SEC;
	size_t n;

	while (n = log_read(from, v, max), log_count(v, n, host, needle) < want) {
		if (now_usec() > deadline)
			break;
		usleep(20000);
	}
	return n;
}

/* A request's sink: the blob's bytes as written, and how often each byte was. */
struct job {
	const struct file *f;
	uint8_t *buf, *times;
	uint64_t id, offset, len;
	int err;
	enum fetch_reason reason;
	char why[256];
	uint64_t written;
	int done_calls;
	int order; /* completion rank, from 1 */
	int fail_with; /* write() answers this errno once set */
};

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cond = PTHREAD_COND_INITIALIZER;
static int jobs_done;

static int job_write(void *ud, uint64_t offset, const void *data, size_t len)
{
	struct job *j = ud;

	ASSERT_TRUE(offset >= j->offset && offset + len <= j->offset + j->len);
	if (j->fail_with)
		return -j->fail_with;
	memcpy(j->buf + offset, data, len);
	for (size_t i = 0; i < len; i++)
		j->times[offset + i]++;
	pthread_mutex_lock(&jobs_lock);
	j->written += len;
	pthread_cond_broadcast(&jobs_cond);
	pthread_mutex_unlock(&jobs_lock);
	return 0;
}

static void job_done(void *ud, int err, enum fetch_reason reason, const char *why, uint64_t written)
{
	struct job *j = ud;

	pthread_mutex_lock(&jobs_lock);
	j->err = err;
	j->reason = reason;
	snprintf(j->why, sizeof(j->why), "%s", why ? why : "(null)");
	ASSERT_U64_EQ(written, j->written);
	j->done_calls++;
	j->order = ++jobs_done;
	pthread_cond_broadcast(&jobs_cond);
	pthread_mutex_unlock(&jobs_lock);
}

static void job_init(struct job *j, const char *path, uint64_t offset, uint64_t len)
{
	memset(j, 0, sizeof(*j));
	j->f = file_of(path);
	j->offset = offset;
	j->len = len ? len : j->f->size - offset;
	j->buf = calloc(1, j->f->size);
	j->times = calloc(1, j->f->size);
	ASSERT_TRUE(j->buf && j->times);
}

static void job_free(struct job *j)
{
	free(j->buf);
	free(j->times);
}

static void job_submit(struct xfer *x, struct job *j, enum xfer_prio prio)
{
	char url[512];
	struct xfer_req req = {
		.url = url,
		.blob_key = j->f->sha256,
		.blob_size = j->f->size,
		.offset = j->offset,
		.len = j->len,
		.prio = prio,
		.sink = { .write = job_write, .done = job_done, .ud = j },
	};

	snprintf(url, sizeof(url), "%s/%s/resolve/main/%s", hub.api_url, REPO, j->f->path);
	ASSERT_OK(xfer_submit(x, &req, &j->id));
}

/* Waits (bounded) until cond(j) holds for each of the n jobs. */
static void jobs_wait(struct job *v, size_t n, bool (*cond)(const struct job *))
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_S;
	pthread_mutex_lock(&jobs_lock);
	for (size_t i = 0; i < n; i++)
		while (!cond(&v[i]))
			if (pthread_cond_timedwait(&jobs_cond, &jobs_lock, &ts) == ETIMEDOUT)
				CHECK_FAIL("job %zu of '%s' not there within %d s", i, v[i].f->path,
					   WAIT_S);
	pthread_mutex_unlock(&jobs_lock);
}

static bool is_done(const struct job *j)
{
	return j->done_calls > 0;
}

static bool has_bytes(const struct job *j)
{
	return j->written > 0;
}

/* The job succeeded and its sink got every byte of the range once, equal to the source. */
static void job_check_ok(const struct job *j)
{
	if (j->err)
		CHECK_FAIL("'%s' %" PRIu64 "+%" PRIu64 " failed: %d (%s) %s", j->f->path, j->offset,
			   j->len, j->err, fetch_reason_str(j->reason), j->why);
	ASSERT_EQ(j->done_calls, 1);
	ASSERT_U64_EQ(j->written, j->len);
	for (uint64_t i = 0; i < j->f->size; i++)
		ASSERT_EQ(j->times[i], i >= j->offset && i < j->offset + j->len);
	ASSERT_EQ(memcmp(j->buf + j->offset, j->f->data + j->offset, j->len), 0);
}

static uint64_t engine_yield_min_left; /* 0: the engine's default */

static struct xfer *engine(unsigned connections, unsigned max_retries, unsigned stall_s)
{
	struct hub_config cfg = {
		.endpoint = hub.api_url,
		.token = (char *)TOKEN,
		.user_agent = (char *)"hffs-test/1",
	};
	struct xfer_opts o = {
		.connections = connections,
		.max_retries = max_retries,
		.backoff_max_s = 1,
		.stall_timeout_s = stall_s,
		.connect_timeout_s = 5,
		.yield_min_left = engine_yield_min_left,
	};
	struct xfer *x = NULL;

	hub_faults("[]");
	ASSERT_OK(xfer_new(&cfg, &o, &x));
	return x;
}

#define SHARD1 "model-00001-of-00002.safetensors"
#define SHARD2 "model-00002-of-00002.safetensors"
#define KiB 1024ULL

/* Many ranges of an LFS file at once: one resolve (a 302 to the CDN host) for all of them,
 * the token at the Hub only, every byte once. */
static void test_lfs_ranges_one_resolve(void)
{
	const struct file *f = file_of(SHARD1);
	size_t from = log_offset(), n, nranges = 12;
	struct xfer *x = engine(4, 0, 0);
	struct job j[12];
	struct logent log[64];
	struct xfer_stats st;
	uint64_t step = f->size / nranges + 1;

	for (size_t i = 0; i < nranges; i++) {
		uint64_t off = i * step;

		job_init(&j[i], SHARD1, off, MIN(step, f->size - off));
		/* All demand: a range cut for a demand read would add a request. */
		job_submit(x, &j[i], XFER_PRIO_DEMAND);
	}
	jobs_wait(j, nranges, is_done);
	for (size_t i = 0; i < nranges; i++)
		job_check_ok(&j[i]);
	xfer_get_stats(x, &st);
	x = xfer_free(x);
	n = log_read(from, log, ARRAY_SIZE(log));
	ASSERT_EQ(log_count(log, n, "api", "/resolve/main/" SHARD1), 1);
	ASSERT_EQ(log_count(log, n, "cdn", f->sha256), nranges);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(log[i].host, "cdn") == 0)
			ASSERT_FALSE(log[i].has_auth);
		else
			ASSERT_STR_EQ(log[i].auth, "Bearer " TOKEN);
	}
	ASSERT_U64_EQ(st.resolves, 1);
	ASSERT_U64_EQ(st.requests, nranges);
	ASSERT_U64_EQ(st.failures, 0);
	ASSERT_TRUE(st.bytes >= f->size);
	/* Every body came from the CDN host; the resolve's 302 has none. */
	ASSERT_U64_EQ(st.bytes_from[XFER_SOURCE_CDN], st.bytes);
	ASSERT_U64_EQ(st.bytes_from[XFER_SOURCE_HUB], 0);
	for (size_t i = 0; i < nranges; i++)
		job_free(&j[i]);
}

/* A regular file: a relative 307 to /api/resolve-cache/, followed with the token; later
 * ranges go straight there. */
static void test_regular_file_307(void)
{
	const struct file *f = file_of("tokenizer.json");
	size_t from = log_offset(), n;
	struct xfer *x = engine(2, 0, 0);
	struct job j[3];
	struct logent log[16];
	struct xfer_stats st;

	job_init(&j[0], f->path, 0, 1000);
	job_submit(x, &j[0], XFER_PRIO_DEMAND);
	jobs_wait(j, 1, is_done);
	job_init(&j[1], f->path, 1000, 500 * KiB);
	job_init(&j[2], f->path, 1000 + 500 * KiB, 0);
	job_submit(x, &j[1], XFER_PRIO_READAHEAD);
	job_submit(x, &j[2], XFER_PRIO_DEMAND);
	jobs_wait(j, 3, is_done);
	for (int i = 0; i < 3; i++)
		job_check_ok(&j[i]);
	xfer_get_stats(x, &st);
	x = xfer_free(x);
	/* The resolve-cache is on the Hub's own origin: its bytes are the Hub's. */
	ASSERT_U64_EQ(st.bytes_from[XFER_SOURCE_HUB], st.bytes);
	ASSERT_U64_EQ(st.bytes_from[XFER_SOURCE_CDN], 0);
	n = log_read(from, log, ARRAY_SIZE(log));
	ASSERT_EQ(n, 4);
	ASSERT_EQ(log[0].status, 307);
	ASSERT_TRUE(strstr(log[0].path, "/resolve/main/tokenizer.json") != NULL);
	for (size_t i = 1; i < n; i++) {
		ASSERT_EQ(log[i].status, 206);
		ASSERT_TRUE(strncmp(log[i].path, "/api/resolve-cache/", 19) == 0);
		ASSERT_STR_EQ(log[i].auth, "Bearer " TOKEN);
	}
	for (int i = 0; i < 3; i++)
		job_free(&j[i]);
}

/* The fault cases: one range of one file through two connections, under the case's fault
 * rules (tests/fakehub/fakehub.py), then its outcome and its traffic compared with the case's.
 * The log is read after xfer_free(): every request is in it, but those cut short (below). */
struct fault_run {
	struct job j;
	struct logent log[16];
	size_t n;
	struct xfer_stats st; /* taken before xfer_free() */
};

struct fault_case {
	const char *name;
	const char *rules; /* a JSON list for /_fake/faults; NULL for none */
	const char *fault; /* the fault the rules inject, as the request log names it */
	uint64_t at_byte; /* where the rules break the body */
	const char *path;
	uint64_t offset, len;
	enum xfer_prio prio;
	unsigned max_retries, stall_s;
	int sink_errno; /* the sink refuses every write with this errno */
	/* err 0: the range arrived, every byte once and equal to the source (job_check_ok()).
	 * Otherwise the request failed with err and reason, wrote no byte, and its words hold
	 * each of why[]. */
	int err;
	enum fetch_reason reason;
	const char *why[2];
	/* CDN requests logged. cut_short: the client cut a reply short, which the server logs
	 * only when its next write fails, so the log is read once it holds them all. */
	size_t cdn;
	bool cut_short;
	/* What only this case checks, on the log and the stats; NULL for nothing more. */
	void (*check)(const struct fault_case *c, const struct fault_run *r);
};

/* The one CDN request got the fault and answered 200. */
static void check_whole_file(const struct fault_case *c, const struct fault_run *r)
{
	ASSERT_STR_EQ(r->log[r->n - 1].fault, c->fault);
	ASSERT_EQ(r->log[r->n - 1].status, 200);
}

/* Retried on the same target: it outlived the 503s. */
static void check_retried(const struct fault_case *c, const struct fault_run *r)
{
	(void)c;
	ASSERT_EQ(log_count(r->log, r->n, "api", NULL), 1);
	ASSERT_EQ(r->log[r->n - 1].status, 206);
	ASSERT_U64_EQ(r->st.retries, 3);
}

/* The resolver's 429, then its 302 no sooner than asked. */
static void check_waited(const struct fault_case *c, const struct fault_run *r)
{
	(void)c;
	ASSERT_EQ(r->n, 3);
	ASSERT_EQ(r->log[0].status, 429);
	ASSERT_EQ(r->log[1].status, 302);
	/* A lower bound only: the wait cannot be shorter than asked. */
	ASSERT_TRUE(r->log[1].t - r->log[0].t >= 1.9);
}

/* The cut request asked for the range; the next one for the rest of it. */
static void check_resumed(const struct fault_case *c, const struct fault_run *r)
{
	const struct logent *cut = &r->log[r->n - 2], *next = &r->log[r->n - 1];

	ASSERT_STR_EQ(cut->fault, c->fault);
	ASSERT_U64_EQ(cut->first, c->offset);
	/* Resumed, not restarted: after the bytes that arrived, at most the at_byte sent. */
	ASSERT_TRUE(next->first > c->offset && next->first <= c->offset + c->at_byte);
	ASSERT_U64_EQ(next->last, c->offset + c->len - 1);
}

/* Cut as a stall, and resumed after the bytes that arrived before it. */
static void check_stalled(const struct fault_case *c, const struct fault_run *r)
{
	const struct logent *next = &r->log[r->n - 1];

	ASSERT_U64_EQ(r->st.stalls, 1);
	ASSERT_TRUE(next->first > c->offset && next->first <= c->offset + c->at_byte);
}

/* The failure reaches the stats with the request's reason and words. */
static void check_counted(const struct fault_case *c, const struct fault_run *r)
{
	ASSERT_U64_EQ(r->st.failures, 1);
	ASSERT_EQ(r->st.last_reason, c->reason);
	ASSERT_STR_EQ(r->st.last_error, r->j.why);
}

static const struct fault_case fault_cases[] = {
	/* A CDN that ignores Range answers 200 with the whole file: only the range's bytes
	 * are taken (the policy: skip the bytes before it, cut the transfer after it). */
	{
		.name = "200 for a range",
		.rules = "[{\"host\": \"cdn\", \"fault\": \"ignore_range\", \"count\": 1}]",
		.fault = "ignore_range",
		.path = SHARD2,
		.offset = 300 * KiB,
		.len = 200 * KiB,
		.prio = XFER_PRIO_DEMAND,
		.cdn = 1,
		.cut_short = true,
		.check = check_whole_file,
	},
	/* 503s, then success: retried with backoff; the attempts show in the log and stats. */
	{
		.name = "503 runs",
		.rules = "[{\"host\": \"cdn\", \"fault\": \"status\", \"status\": 503,"
			 " \"count\": 3}]",
		.fault = "status",
		.path = SHARD2,
		.len = 64 * KiB,
		.prio = XFER_PRIO_DEMAND,
		.max_retries = 5,
		.cdn = 4,
		.check = check_retried,
	},
	/* 429 with Retry-After from the resolver: the wait is honoured (+1 s, HUB_PROTOCOL.md
	 * 7). */
	{
		.name = "429 + Retry-After",
		.rules = "[{\"host\": \"api\", \"fault\": \"status\", \"status\": 429,"
			 " \"retry_after\": 1, \"count\": 1}]",
		.fault = "status",
		.path = SHARD1,
		.offset = 10,
		.len = 1000,
		.prio = XFER_PRIO_DEMAND,
		.max_retries = 3,
		.cdn = 1,
		.check = check_waited,
	},
	/* The connection breaks mid-body (reset, or a short body then FIN): the next attempt
	 * asks for the bytes after those the sink took, and no byte is written twice. */
	{
		.name = "reset resumes",
		.rules = "[{\"host\": \"cdn\", \"fault\": \"reset\", \"at_byte\": 200000,"
			 " \"count\": 1}]",
		.fault = "reset",
		.at_byte = 200000,
		.path = SHARD1,
		.offset = 4096,
		.len = 600 * KiB,
		.prio = XFER_PRIO_DEMAND,
		.max_retries = 3,
		.cdn = 2,
		.check = check_resumed,
	},
	{
		.name = "truncated body resumes",
		.rules = "[{\"host\": \"cdn\", \"fault\": \"truncate\", \"at_byte\": 200000,"
			 " \"count\": 1}]",
		.fault = "truncate",
		.at_byte = 200000,
		.path = SHARD1,
		.offset = 4096,
		.len = 600 * KiB,
		.prio = XFER_PRIO_DEMAND,
		.max_retries = 3,
		.cdn = 2,
		.check = check_resumed,
	},
	/* The server stops sending: after stall_timeout_s the transfer is cut and resumed on a
	 * new connection. */
	{
		.name = "stall",
		.rules = "[{\"host\": \"cdn\", \"fault\": \"stall\", \"at_byte\": 100000,"
			 " \"seconds\": 20, \"count\": 1}]",
		.fault = "stall",
		.at_byte = 100000,
		.path = SHARD2,
		.len = 400 * KiB,
		.prio = XFER_PRIO_DEMAND,
		.max_retries = 3,
		.stall_s = 1,
		.cdn = 2,
		.check = check_stalled,
	},
	/* A server that keeps failing: after max_retries the request fails with the reason and
	 * the number of attempts in words. */
	{
		.name = "retries exhausted",
		.rules = "[{\"host\": \"cdn\", \"fault\": \"status\", \"status\": 503}]",
		.fault = "status",
		.path = SHARD1,
		.len = 1000,
		.prio = XFER_PRIO_READAHEAD,
		.max_retries = 2,
		.err = -EAGAIN,
		.reason = FETCH_SERVER,
		.why = { "HTTP 503 from 127.0.0.2:", "after 3 attempts" },
		.cdn = 3,
		.check = check_counted,
	},
	/* The sink refuses bytes (a full disk): the request ends at once with that errno. */
	{
		.name = "sink error",
		.path = SHARD1,
		.len = 100 * KiB,
		.prio = XFER_PRIO_DEMAND,
		.max_retries = 5,
		.sink_errno = ENOSPC,
		.err = -ENOSPC,
		.reason = FETCH_DISK_FULL,
		.cdn = 1,
		.cut_short = true,
	},
};

static void run_fault_case(const struct fault_case *c)
{
	size_t from = log_offset();
	struct xfer *x = engine(2, c->max_retries, c->stall_s);
	struct fault_run r;

	if (c->rules)
		hub_faults(c->rules);
	job_init(&r.j, c->path, c->offset, c->len);
	r.j.fail_with = c->sink_errno;
	job_submit(x, &r.j, c->prio);
	jobs_wait(&r.j, 1, is_done);
	xfer_get_stats(x, &r.st);
	x = xfer_free(x);
	if (c->err == 0) {
		job_check_ok(&r.j);
	} else {
		ASSERT_EQ(r.j.err, c->err);
		ASSERT_EQ(r.j.reason, c->reason);
		ASSERT_U64_EQ(r.j.written, 0);
		for (size_t i = 0; i < ARRAY_SIZE(c->why) && c->why[i]; i++)
			if (!strstr(r.j.why, c->why[i]))
				CHECK_FAIL("\"%s\" not in \"%s\"", c->why[i], r.j.why);
	}
	if (c->cut_short)
		r.n = log_read_when(from, r.log, ARRAY_SIZE(r.log), "cdn", NULL, c->cdn);
	else
		r.n = log_read(from, r.log, ARRAY_SIZE(r.log));
	ASSERT_EQ(log_count(r.log, r.n, "cdn", NULL), c->cdn);
	if (c->check)
		c->check(c, &r);
	job_free(&r.j);
}

static void test_fault_cases(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(fault_cases); i++) {
		fprintf(stderr, "    %s\n", fault_cases[i].name);
		run_fault_case(&fault_cases[i]);
	}
}

/* The signed URL expires (403 from the CDN): resolved again, once, and the range completes. */
static void test_expired_url_resolves_again(void)
{
	const struct file *f = file_of(SHARD2);
	size_t from = log_offset(), n;
	struct xfer *x = engine(1, 2, 0);
	struct logent log[16];
	struct job j[4];

	hub_faults("[{\"host\": \"cdn\", \"fault\": \"expire\", \"after\": 2}]");
	for (int i = 0; i < 4; i++) {
		job_init(&j[i], f->path, (uint64_t)i * 64 * KiB, 64 * KiB);
		job_submit(x, &j[i], XFER_PRIO_DEMAND);
		jobs_wait(&j[i], 1, is_done);
		job_check_ok(&j[i]);
	}
	x = xfer_free(x);
	n = log_read(from, log, ARRAY_SIZE(log));
	/* Uses 1 and 2 of the first URL, a 403, a second URL for uses 1 and 2. */
	ASSERT_EQ(log_count(log, n, "api", "/resolve/"), 2);
	ASSERT_EQ(log_count(log, n, "cdn", NULL), 5);
	ASSERT_EQ(log[3].status, 403);
	for (int i = 0; i < 4; i++)
		job_free(&j[i]);
}

/* A missing file fails at once with its reason; concurrent requests share the one resolve. */
static void test_not_found(void)
{
	size_t from = log_offset(), n;
	struct xfer *x = engine(4, 5, 0);
	struct logent log[8];
	struct job j[3];

	for (int i = 0; i < 3; i++) {
		char url[512];
		struct xfer_req req = {
			.url = url,
			.blob_key = "0000000000000000000000000000000000000000",
			.blob_size = 100,
			.offset = (uint64_t)i * 10,
			.len = 10,
			.sink = { .write = job_write, .done = job_done, .ud = &j[i] },
		};

		job_init(&j[i], "config.json", 0, 0);
		snprintf(url, sizeof(url), "%s/%s/resolve/main/no/such/file.bin", hub.api_url,
			 REPO);
		ASSERT_OK(xfer_submit(x, &req, NULL));
	}
	jobs_wait(j, 3, is_done);
	x = xfer_free(x);
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(j[i].err, -ENOENT);
		ASSERT_EQ(j[i].reason, FETCH_NOT_FOUND);
		ASSERT_TRUE(strstr(j[i].why, "HTTP 404") && strstr(j[i].why, "EntryNotFound"));
		ASSERT_U64_EQ(j[i].written, 0);
		job_free(&j[i]);
	}
	n = log_read(from, log, ARRAY_SIZE(log));
	ASSERT_EQ(n, 1);
}

/* With one connection busy with slow background ranges, a later demand read goes first. */
static void test_demand_goes_first(void)
{
	const struct file *bg = file_of(SHARD1);
	size_t from = log_offset(), n;
	struct xfer *x = engine(1, 3, 0);
	struct logent log[16];
	struct job j[4];
	char rules[256];

	snprintf(rules, sizeof(rules),
		 "[{\"host\": \"cdn\", \"fault\": \"trickle\", \"rate\": 65536,"
		 " \"path_re\": \"%s\"}]",
		 bg->sha256);
	hub_faults(rules);
	for (int i = 0; i < 3; i++) {
		job_init(&j[i], bg->path, (uint64_t)i * 48 * KiB, 48 * KiB);
		job_submit(x, &j[i], XFER_PRIO_BACKGROUND);
	}
	jobs_wait(j, 1, has_bytes);
	job_init(&j[3], SHARD2, 1000, 300 * KiB);
	job_submit(x, &j[3], XFER_PRIO_DEMAND);
	jobs_wait(j, 4, is_done);
	x = xfer_free(x);
	for (int i = 0; i < 4; i++)
		job_check_ok(&j[i]);
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(j[3].order < j[i].order);
	n = log_read_when(from, log, ARRAY_SIZE(log), "cdn", bg->sha256, 4);
	/* The first background range was cut for it and resumed after its last byte. */
	ASSERT_EQ(log_count(log, n, "cdn", bg->sha256), 4);
	for (int i = 0; i < 4; i++)
		job_free(&j[i]);
}

/* While a reader waits, background transfers on the wire give it the link: all are cut,
 * resume after their last byte once the reader is gone, and every range completes. */
static void test_background_yields(void)
{
	const struct file *bg = file_of(SHARD1);
	struct xfer *x;
	struct xfer_stats st;
	struct job j[5];
	char rules[256];

	snprintf(rules, sizeof(rules),
		 "[{\"host\": \"cdn\", \"fault\": \"trickle\", \"rate\": 65536,"
		 " \"path_re\": \"%s\"}]",
		 bg->sha256);
	engine_yield_min_left = 16 * KiB; /* the fixture's files are small */
	x = engine(8, 3, 0);
	engine_yield_min_left = 0;
	hub_faults(rules);
	for (int i = 0; i < 4; i++) {
		job_init(&j[i], bg->path, (uint64_t)i * 96 * KiB, 96 * KiB);
		job_submit(x, &j[i], XFER_PRIO_BACKGROUND);
	}
	jobs_wait(j, 4, has_bytes);
	job_init(&j[4], SHARD2, 1000, 300 * KiB);
	job_submit(x, &j[4], XFER_PRIO_DEMAND);
	jobs_wait(j, 5, is_done);
	xfer_get_stats(x, &st);
	x = xfer_free(x);
	for (int i = 0; i < 5; i++)
		job_check_ok(&j[i]);
	ASSERT_TRUE(st.yields >= 4);
	for (int i = 0; i < 5; i++)
		job_free(&j[i]);
}

/* Background transfers ahead of the reader in the blob it waits on (completion following it)
 * are what it reads next: two of them stay on the wire, the others yield. */
static void test_background_ahead_of_reader_kept(void)
{
	const struct file *f = file_of(SHARD1);
	struct xfer *x;
	struct xfer_stats st;
	struct job j[5];
	char rules[256];

	snprintf(rules, sizeof(rules),
		 "[{\"host\": \"cdn\", \"fault\": \"trickle\", \"rate\": 65536,"
		 " \"path_re\": \"%s\"}]",
		 f->sha256);
	engine_yield_min_left = 16 * KiB; /* the fixture's files are small */
	x = engine(8, 3, 0);
	engine_yield_min_left = 0;
	hub_faults(rules);
	for (int i = 0; i < 4; i++) {
		job_init(&j[i], f->path, (uint64_t)(i + 1) * 96 * KiB, 96 * KiB);
		job_submit(x, &j[i], XFER_PRIO_BACKGROUND);
	}
	jobs_wait(j, 4, has_bytes);
	job_init(&j[4], f->path, 0, 16 * KiB); /* before all four: each is ahead of it */
	job_submit(x, &j[4], XFER_PRIO_DEMAND);
	jobs_wait(j, 5, is_done);
	xfer_get_stats(x, &st);
	x = xfer_free(x);
	for (int i = 0; i < 5; i++)
		job_check_ok(&j[i]);
	/* Two cut once each; the two kept were never cut (none restarts while it waits). */
	ASSERT_U64_EQ(st.yields, 2);
	for (int i = 0; i < 5; i++)
		job_free(&j[i]);
}

/* A background request raised to demand overtakes the other queued ones. */
static void test_raise_priority(void)
{
	const struct file *f = file_of(SHARD1);
	struct xfer *x = engine(1, 3, 0);
	struct job j[4];
	char rules[256];

	snprintf(rules, sizeof(rules),
		 "[{\"host\": \"cdn\", \"fault\": \"trickle\", \"rate\": 262144,"
		 " \"path_re\": \"%s\"}]",
		 f->sha256);
	hub_faults(rules);
	for (int i = 0; i < 4; i++) {
		job_init(&j[i], f->path, (uint64_t)i * 64 * KiB, 64 * KiB);
		job_submit(x, &j[i], XFER_PRIO_BACKGROUND);
	}
	ASSERT_OK(xfer_set_prio(x, j[3].id, XFER_PRIO_DEMAND));
	ASSERT_EQ(xfer_set_prio(x, 999999, XFER_PRIO_DEMAND), -ENOENT);
	ASSERT_EQ(xfer_set_prio(x, j[3].id, XFER_PRIO_COUNT), -EINVAL);
	jobs_wait(j, 4, is_done);
	x = xfer_free(x);
	for (int i = 0; i < 4; i++)
		job_check_ok(&j[i]);
	/* At worst behind the one already on the wire. */
	ASSERT_TRUE(j[3].order < j[1].order && j[3].order < j[2].order);
	for (int i = 0; i < 4; i++)
		job_free(&j[i]);
}

/* Cancel a queued and a running request, then free the engine with more pending: every done()
 * runs exactly once and xfer_free() does not wait for the slow server. */
static void test_cancel_and_free(void)
{
	const struct file *f = file_of(SHARD1);
	struct xfer *x = engine(2, 3, 0);
	struct job j[6];
	uint64_t t0;

	hub_faults(
		"[{\"host\": \"cdn\", \"fault\": \"stall\", \"at_byte\": 1000, \"seconds\": 60}]");
	for (int i = 0; i < 6; i++) {
		job_init(&j[i], f->path, (uint64_t)i * 10 * KiB, 10 * KiB);
		job_submit(x, &j[i], i == 0 ? XFER_PRIO_DEMAND : XFER_PRIO_BACKGROUND);
	}
	jobs_wait(j, 1, has_bytes);
	ASSERT_OK(xfer_cancel(x, j[0].id)); /* running */
	ASSERT_OK(xfer_cancel(x, j[5].id)); /* queued */
	jobs_wait(j, 1, is_done);
	jobs_wait(&j[5], 1, is_done);
	ASSERT_EQ(xfer_cancel(x, j[0].id), -ENOENT);
	ASSERT_EQ(j[0].err, -ECANCELED);
	ASSERT_EQ(j[0].reason, FETCH_CANCELED);
	ASSERT_EQ(j[5].err, -ECANCELED);
	ASSERT_U64_EQ(j[5].written, 0);
	t0 = now_usec();
	x = xfer_free(x);
	ASSERT_TRUE(now_usec() - t0 < 10 * USEC_PER_SEC); /* the stall lasts 60 s */
	for (int i = 0; i < 6; i++) {
		ASSERT_EQ(j[i].done_calls, 1);
		ASSERT_EQ(j[i].err, -ECANCELED);
		job_free(&j[i]);
	}
}

/* Transport failures are named: a host that does not resolve, a TLS handshake with a server
 * that speaks plain HTTP. Both are retried within the budget, then fail with their reason. */
static void test_dns_and_tls_failures(void)
{
	struct xfer *x = engine(2, 1, 0);
	struct job j[2];
	char tls_url[512];

	snprintf(tls_url, sizeof(tls_url), "https://%.60s/%s/resolve/main/config.json",
		 hub.api_url + strlen("http://"), REPO);
	for (int i = 0; i < 2; i++) {
		struct xfer_req req = {
			.url = i ? tls_url : "http://hffs-test.invalid/org/model/resolve/main/x",
			.blob_key = i ? "tls" : "dns",
			.blob_size = 100,
			.len = 10,
			.prio = XFER_PRIO_DEMAND,
			.sink = { .write = job_write, .done = job_done, .ud = &j[i] },
		};

		job_init(&j[i], "config.json", 0, 10);
		ASSERT_OK(xfer_submit(x, &req, NULL));
	}
	jobs_wait(j, 2, is_done);
	x = xfer_free(x);
	ASSERT_EQ(j[0].err, -EHOSTUNREACH);
	ASSERT_EQ(j[0].reason, FETCH_DNS);
	ASSERT_TRUE(strstr(j[0].why, "hffs-test.invalid") && strstr(j[0].why, "after 2 attempts"));
	ASSERT_EQ(j[1].err, -EHOSTUNREACH);
	ASSERT_EQ(j[1].reason, FETCH_TLS);
	ASSERT_TRUE(strstr(j[1].why, "127.0.0.1:") != NULL);
	for (int i = 0; i < 2; i++)
		job_free(&j[i]);
}

/* Offline: every request fails at once, on the engine thread, without a byte on the wire;
 * one cancelled before the engine took it in ends once too (either way). */
static void test_offline(void)
{
	struct hub_config cfg = { .endpoint = hub.api_url, .user_agent = (char *)"t" };
	struct xfer_opts o = { .offline = true };
	size_t from = log_offset();
	struct xfer *x = NULL;
	struct job j[100];

	ASSERT_OK(xfer_new(&cfg, &o, &x));
	for (int i = 0; i < 100; i++) {
		job_init(&j[i], "config.json", 0, 0);
		job_submit(x, &j[i], XFER_PRIO_BACKGROUND);
		if (i % 2)
			(void)xfer_cancel(x, j[i].id);
	}
	jobs_wait(j, 100, is_done);
	x = xfer_free(x);
	for (int i = 0; i < 100; i++) {
		ASSERT_EQ(j[i].done_calls, 1);
		if (i % 2 == 0 || j[i].err != -ECANCELED) {
			ASSERT_EQ(j[i].err, -ENETDOWN);
			ASSERT_EQ(j[i].reason, FETCH_OFFLINE);
		}
		job_free(&j[i]);
	}
	ASSERT_U64_EQ(log_offset(), from);
}

/* Cancels and raises racing with intake and with the first exchange: one done() each. */
static void test_cancel_races(void)
{
	struct xfer *x = engine(4, 0, 0);
	struct job j[60];

	for (int i = 0; i < 60; i++) {
		job_init(&j[i], "config.json", 0, 0);
		job_submit(x, &j[i], XFER_PRIO_BACKGROUND);
		if (i % 3 == 0)
			ASSERT_OK(xfer_set_prio(x, j[i].id, XFER_PRIO_DEMAND));
		if (i % 2 == 0)
			(void)xfer_cancel(x, j[i].id);
	}
	jobs_wait(j, 60, is_done);
	x = xfer_free(x);
	for (int i = 0; i < 60; i++) {
		ASSERT_EQ(j[i].done_calls, 1);
		if (i % 2 || j[i].err != -ECANCELED)
			job_check_ok(&j[i]);
		job_free(&j[i]);
	}
}

static void test_bad_requests(void)
{
	struct xfer *x = engine(1, 0, 0);
	struct job j;
	struct xfer_req req;

	job_init(&j, "config.json", 0, 0);
	req = (struct xfer_req){ .url = "http://x/",
				 .blob_key = "k",
				 .blob_size = 10,
				 .offset = 5,
				 .len = 6,
				 .sink = { .write = job_write, .done = job_done, .ud = &j } };
	ASSERT_EQ(xfer_submit(x, &req, NULL), -EINVAL);
	req.len = 0;
	ASSERT_EQ(xfer_submit(x, &req, NULL), -EINVAL);
	req.len = 5;
	req.offset = UINT64_MAX;
	ASSERT_EQ(xfer_submit(x, &req, NULL), -EINVAL);
	req.offset = 0;
	req.sink.done = NULL;
	ASSERT_EQ(xfer_submit(x, &req, NULL), -EINVAL);
	ASSERT_EQ(xfer_cancel(x, 12345), -ENOENT);
	x = xfer_free(x);
	ASSERT_NULL(xfer_free(NULL));
	ASSERT_EQ(j.done_calls, 0);
	job_free(&j);
}

/* A signed URL is dropped before it expires (HUB_PROTOCOL.md 4.3): with a 4 s lifetime it
 * serves ranges for 2 s, then the blob is resolved again before the CDN could refuse it. Runs
 * last: it restarts the fake Hub with short-lived URLs. */
static void test_url_refreshed_before_expiry(void)
{
	const struct file *f = file_of(SHARD2);
	struct logent log[16];
	struct job j[3];
	struct xfer *x;
	size_t from, n;

	hub_kill();
	hub_spawn("4");
	from = log_offset();
	x = engine(1, 2, 0);
	for (int i = 0; i < 3; i++) {
		if (i == 2)
			usleep(2300 * 1000);
		job_init(&j[i], f->path, (uint64_t)i * 1000, 1000);
		job_submit(x, &j[i], XFER_PRIO_DEMAND);
		jobs_wait(&j[i], 1, is_done);
		job_check_ok(&j[i]);
	}
	x = xfer_free(x);
	n = log_read(from, log, ARRAY_SIZE(log));
	ASSERT_EQ(log_count(log, n, "api", "/resolve/"), 2);
	ASSERT_EQ(log_count(log, n, "cdn", NULL), 3);
	for (size_t i = 0; i < n; i++)
		ASSERT_TRUE(log[i].status == 302 || log[i].status == 206);
	for (int i = 0; i < 3; i++)
		job_free(&j[i]);
}

/* A rate cap holds over a transfer (a lower bound on its time: no faster than the cap). */
static void test_rate_cap(void)
{
	const struct file *f = file_of(SHARD1);
	struct xfer *x = engine(4, 0, 0);
	uint64_t t0, len = 1024 * KiB;
	struct job j[2];

	xfer_set_max_rate(x, 1024 * KiB);
	job_init(&j[0], f->path, 0, len / 2);
	job_init(&j[1], f->path, len / 2, len / 2);
	t0 = now_usec();
	job_submit(x, &j[0], XFER_PRIO_BACKGROUND);
	job_submit(x, &j[1], XFER_PRIO_DEMAND);
	jobs_wait(j, 2, is_done);
	/* 1 MiB at 1 MiB/s, less the 256 KiB the bucket may hold at the start. */
	ASSERT_TRUE(now_usec() - t0 >= 700 * USEC_PER_MSEC);
	job_check_ok(&j[0]);
	job_check_ok(&j[1]);
	ASSERT_TRUE(j[1].order < j[0].order); /* demand takes the tokens first */
	xfer_set_max_rate(x, 0);
	x = xfer_free(x);
	job_free(&j[0]);
	job_free(&j[1]);
}

int main(void)
{
	RUN(test_refresh_at);
	RUN(test_resolve_cache);
	RUN(test_reply_headers);
	RUN(test_reply_body);
	RUN(test_reply_classify);
	RUN(test_origin);
	RUN(test_policy);
	RUN(test_id_table);

	signal(SIGPIPE, SIG_IGN);
	hub_start();
	RUN(test_lfs_ranges_one_resolve);
	RUN(test_regular_file_307);
	RUN(test_fault_cases);
	RUN(test_expired_url_resolves_again);
	RUN(test_not_found);
	RUN(test_demand_goes_first);
	RUN(test_background_yields);
	RUN(test_background_ahead_of_reader_kept);
	RUN(test_raise_priority);
	RUN(test_cancel_and_free);
	RUN(test_dns_and_tls_failures);
	RUN(test_offline);
	RUN(test_cancel_races);
	RUN(test_bad_requests);
	RUN(test_rate_cap);
	RUN(test_url_refreshed_before_expiry);
	return 0; /* hub_stop() runs at exit */
}
