/* test_xet_cas.c: the Xet read client end to end against the fake Hub's Xet CAS (tests/fakehub,
 * from $FAKEHUB, a python3 child; the fake is itself checked against the official JS client):
 * for every LFS file of a generated --xet repo, the probe finds it on Xet, a read token is
 * fetched, its whole reconstruction is asked and every fetch is made on the transfer engine;
 * the decoded chunks rebuild the file byte for byte and their hashes give the probe's
 * X-Xet-Hash (streamed). A fetch of a xorb's first chunks never passes for the whole xorb (the
 * fake packs a commit's files into shared xorbs, so none here is whole). Then a range of a file
 * is rebuilt from its own reconstruction and offset_into_first_range, and doctor's blocking
 * fetch (xet_fetch_once()) decodes a fetch's chunks too. Spans fetch/ and
 * cache/xet_hash.c (the hashes) on purpose; every wait has a deadline. */
#include "fetch/xet.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache/xet_hash.h"
#include "fetch/xet_xfer.h"
#include "tests/unit/check.h"
#include "util/cleanup.h"

#define REPO "org/xmodel"

struct file {
	char path[128];
	uint64_t size;
	uint8_t *data;
};

static struct {
	char dir[64], fakehub[512], api_url[64];
	pid_t pid;
	struct file files[32];
	size_t nfiles;
} hub;

static int run_child(char *const argv[], const char *out_path)
{
	pid_t pid = fork();
	int status;

	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		int fd = open(out_path ? out_path : "/dev/null",
			      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
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

static void hub_stop(void)
{
	int status;

	if (hub.pid > 0) {
		kill(hub.pid, SIGTERM);
		for (int i = 0; i < 500 && waitpid(hub.pid, &status, WNOHANG) == 0; i++)
			usleep(20000);
		kill(hub.pid, SIGKILL);
		(void)waitpid(hub.pid, &status, 0);
		hub.pid = 0;
	}
	for (size_t i = 0; i < hub.nfiles; i++)
		free(hub.files[i].data);
	if (hub.dir[0]) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", hub.dir);
		(void)system(cmd);
	}
}

/* Generates a --xet repo and reads back its LFS files (path, size, bytes). */
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
			     (char *)"1500000",
			     (char *)"--xet",
			     NULL };
	char *argv_list[] = {
		(char *)"/usr/bin/python3", (char *)"-c", script, hub.fakehub, data, NULL
	};
	_cleanup_free_ char *text = NULL;
	char *save = NULL;

	snprintf(data, sizeof(data), "%s/data", hub.dir);
	snprintf(list, sizeof(list), "%s/files.tsv", hub.dir);
	snprintf(gen, sizeof(gen), "%s/genrepo.py", hub.fakehub);
	snprintf(script, sizeof(script),
		 "import sys; sys.path.insert(0, sys.argv[1]); import repostore, genrepo\n"
		 "for p, s in sorted(repostore.content_sha256s(sys.argv[2], '%s').items()):\n"
		 "    b = repostore.blob_path(sys.argv[2], s)\n"
		 "    n = len(open(b, 'rb').read())\n"
		 "    if genrepo.is_lfs(p, n) and '\\t' not in p and len(p) < 120:\n"
		 "        print(f'{p}\\t{n}\\t{b}')\n",
		 REPO);
	ASSERT_EQ(run_child(argv_gen, NULL), 0);
	ASSERT_EQ(run_child(argv_list, list), 0);
	text = slurp(list, NULL);
	ASSERT_NOT_NULL(text);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct file *f = &hub.files[hub.nfiles];
		char blob[512];
		size_t n;

		ASSERT_TRUE(hub.nfiles < ARRAY_SIZE(hub.files));
		ASSERT_EQ(sscanf(line, "%127[^\t]\t%" SCNu64 "\t%511s", f->path, &f->size, blob),
			  3);
		f->data = (uint8_t *)slurp(blob, &n);
		ASSERT_U64_EQ(n, f->size);
		hub.nfiles++;
	}
	ASSERT_TRUE(hub.nfiles >= 2);
}

static void hub_start(void)
{
	const char *env = getenv("FAKEHUB");
	char script[600], data[128], ports[128], logp[128], errlog[128];
	char *argv[] = { (char *)"/usr/bin/python3",
			 script,
			 (char *)"--data",
			 data,
			 (char *)"--port-file",
			 ports,
			 (char *)"--log",
			 logp,
			 NULL };
	_cleanup_free_ char *text = NULL;
	const char *p;

	snprintf(hub.fakehub, sizeof(hub.fakehub), "%s", env ? env : "tests/fakehub");
	snprintf(script, sizeof(script), "%s/fakehub.py", hub.fakehub);
	if (access(script, R_OK) != 0)
		CHECK_FAIL("no fake Hub at '%s': set FAKEHUB to the tests/fakehub directory",
			   script);
	snprintf(hub.dir, sizeof(hub.dir), "/tmp/test_xet_cas.XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(hub.dir));
	atexit(hub_stop);
	hub_generate();
	snprintf(data, sizeof(data), "%s/data", hub.dir);
	snprintf(ports, sizeof(ports), "%s/ports.json", hub.dir);
	snprintf(logp, sizeof(logp), "%s/requests.jsonl", hub.dir);
	snprintf(errlog, sizeof(errlog), "%s/fakehub.stderr", hub.dir);
	hub.pid = fork();
	ASSERT_TRUE(hub.pid >= 0);
	if (hub.pid == 0) {
		int fd = open(errlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0 ||
		    prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	/* Bounded: 20 s for the port file. */
	for (int i = 0; !(text = slurp(ports, NULL)); i++) {
		int status;

		if (waitpid(hub.pid, &status, WNOHANG) == hub.pid)
			CHECK_FAIL("the fake Hub exited (status %d)", status);
		if (i > 1000)
			CHECK_FAIL("the fake Hub wrote no port file within 20 s");
		usleep(20000);
	}
	p = strstr(text, "\"api_url\": \"");
	ASSERT_NOT_NULL(p);
	ASSERT_EQ(sscanf(p + 12, "%63[^\"]", hub.api_url), 1);
}

/* The decoded chunks of one fetch, by chunk index from its chunk_start. */
struct fetched {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int err;
	char why[256];
	uint64_t n;
	uint8_t **chunk;
	size_t *len;
};

static int on_chunk(void *ud, uint64_t index, const uint8_t *raw, size_t len)
{
	struct fetched *f = ud;
	uint8_t *copy = malloc(len);

	ASSERT_NOT_NULL(copy);
	memcpy(copy, raw, len);
	pthread_mutex_lock(&f->lock);
	f->chunk[f->n] = copy;
	f->len[f->n++] = len;
	(void)index;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static void on_done(void *ud, int err, enum fetch_reason reason, const char *why)
{
	struct fetched *f = ud;

	(void)reason;
	pthread_mutex_lock(&f->lock);
	f->done = true;
	f->err = err;
	snprintf(f->why, sizeof(f->why), "%s", why ? why : "");
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

/* Every fetch of r, made and waited for (30 s each at most). */
static struct fetched *fetch_all(struct xfer *x, const struct xet_recon *r)
{
	struct fetched *fs = calloc(r->n_fetches, sizeof(*fs));

	ASSERT_NOT_NULL(fs);
	for (size_t i = 0; i < r->n_fetches; i++) {
		struct xet_xfer_cb cb = { .chunk = on_chunk, .done = on_done, .ud = &fs[i] };
		uint64_t n = r->fetches[i].chunk_end - r->fetches[i].chunk_start;

		pthread_mutex_init(&fs[i].lock, NULL);
		pthread_cond_init(&fs[i].cond, NULL);
		fs[i].chunk = calloc(n, sizeof(*fs[i].chunk));
		fs[i].len = calloc(n, sizeof(*fs[i].len));
		ASSERT_TRUE(fs[i].chunk && fs[i].len);
		ASSERT_OK(xet_xfer_submit(x, r, i, XFER_PRIO_DEMAND, &cb, NULL));
	}
	for (size_t i = 0; i < r->n_fetches; i++) {
		struct timespec deadline;

		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += 30;
		pthread_mutex_lock(&fs[i].lock);
		while (!fs[i].done)
			if (pthread_cond_timedwait(&fs[i].cond, &fs[i].lock, &deadline) ==
			    ETIMEDOUT)
				CHECK_FAIL("fetch %zu did not finish in 30 s", i);
		pthread_mutex_unlock(&fs[i].lock);
		if (fs[i].err)
			CHECK_FAIL("fetch %zu failed: %d %s", i, fs[i].err, fs[i].why);
	}
	return fs;
}

static void fetched_free(struct fetched *fs, const struct xet_recon *r)
{
	for (size_t i = 0; i < r->n_fetches; i++) {
		for (uint64_t c = 0; c < fs[i].n; c++)
			free(fs[i].chunk[c]);
		free(fs[i].chunk);
		free(fs[i].len);
	}
	free(fs);
}

/* The plan's bytes, rebuilt into out (xet_recon_len() bytes), with the file hash streamed
 * over every chunk of every term into *ret_hash; *ret_xorbs_proven counts the fetches from
 * chunk 0 whose merkle root is their xorb's hash. */
static void rebuild(const struct xet_recon *r, struct fetched *fs, uint8_t *out,
		    struct xet_hash *ret_hash, unsigned *ret_xorbs_proven)
{
	struct xet_hash_stream st;
	uint64_t skip = r->offset_into_first_range, o = 0;

	xet_hash_stream_init(&st);
	*ret_xorbs_proven = 0;
	for (size_t i = 0; i < r->n_fetches; i++) {
		const struct xet_fetch *f = &r->fetches[i];
		struct xet_hash_node *nodes;
		struct xet_hash xorb, root;

		ASSERT_U64_EQ(fs[i].n, f->chunk_end - f->chunk_start);
		if (f->chunk_start != 0)
			continue;
		nodes = calloc(fs[i].n, sizeof(*nodes));
		ASSERT_NOT_NULL(nodes);
		for (uint64_t c = 0; c < fs[i].n; c++) {
			xet_hash_chunk(fs[i].chunk[c], fs[i].len[c], &nodes[c].hash);
			nodes[c].size = fs[i].len[c];
		}
		ASSERT_OK(xet_hash_merkle(nodes, fs[i].n, &root));
		ASSERT_OK(xet_hash_from_hex(f->xorb, &xorb));
		*ret_xorbs_proven += xet_hash_eq(&root, &xorb);
		free(nodes);
	}
	for (size_t t = 0; t < r->n_terms; t++) {
		const struct xet_term *term = &r->terms[t];
		const struct xet_fetch *f = &r->fetches[term->fetch];
		uint64_t got = 0;

		for (uint64_t c = term->chunk_start; c < term->chunk_end; c++) {
			uint64_t k = c - f->chunk_start;
			const uint8_t *b = fs[term->fetch].chunk[k];
			size_t n = fs[term->fetch].len[k], from = 0;
			struct xet_hash h;

			xet_hash_chunk(b, n, &h);
			ASSERT_OK(xet_hash_stream_push(&st, &h, n));
			got += n;
			if (skip >= n) {
				skip -= n;
				continue;
			}
			from = (size_t)skip;
			skip = 0;
			memcpy(out + o, b + from, n - from);
			o += n - from;
		}
		ASSERT_U64_EQ(got, term->unpacked_len);
	}
	ASSERT_U64_EQ(o, xet_recon_len(r));
	xet_hash_stream_finish(&st, true, ret_hash);
}

static void test_whole_files(void)
{
	struct hub_config cfg = {
		.endpoint = hub.api_url,
		.user_agent = (char *)"hffs/test",
		.timeout_s = 10,
	};
	struct xfer_opts opts = { .connections = 4, .max_retries = 2, .backoff_max_s = 1 };
	struct hub_repo repo = { .type = HUB_REPO_MODEL, .id = REPO };
	struct xfer *x = NULL;
	char commit[41];
	struct hub_repo_info info;
	struct hub_error err;
	unsigned proven_total = 0;

	ASSERT_OK(hub_repo_info(&cfg, &repo, "main", &info, &err));
	memcpy(commit, info.commit, sizeof(commit));
	ASSERT_OK(xfer_new(&cfg, &opts, &x));
	for (size_t i = 0; i < hub.nfiles; i++) {
		const struct file *file = &hub.files[i];
		struct xet_file xf;
		struct xet_token tok;
		struct xet_recon r;
		struct fetched *fs;
		struct xet_hash fh, want;
		uint8_t *out;
		unsigned proven;

		ASSERT_OK(xet_probe(&cfg, &repo, commit, file->path, &xf, &err));
		if (!xf.is_xet)
			CHECK_FAIL("'%s' is not on Xet", file->path);
		ASSERT_U64_EQ(xf.size, file->size);
		ASSERT_OK(xet_token_fetch(&cfg, xf.auth_url, &tok, &err));
		ASSERT_OK(xet_reconstruct(&cfg, &tok, xf.recon_url, xf.hash, 0, file->size - 1, &r,
					  &err));
		ASSERT_U64_EQ(xet_recon_len(&r), file->size);
		fs = fetch_all(x, &r);
		out = malloc(file->size);
		ASSERT_NOT_NULL(out);
		rebuild(&r, fs, out, &fh, &proven);
		if (memcmp(out, file->data, file->size) != 0)
			CHECK_FAIL("'%s' rebuilt differs from the file", file->path);
		ASSERT_OK(xet_hash_from_hex(xf.hash, &want));
		if (!xet_hash_eq(&fh, &want))
			CHECK_FAIL("'%s': the chunks' file hash is not X-Xet-Hash", file->path);
		proven_total += proven;
		free(out);
		fetched_free(fs, &r);
		xet_recon_done(&r);
		xet_token_done(&tok);
		xet_file_done(&xf);
	}
	/* Every file shares its xorb with others: no prefix of it may pass for the whole. */
	ASSERT_EQ(proven_total, 0);
	xfer_free(x);
}

static void test_range(void)
{
	struct hub_config cfg = {
		.endpoint = hub.api_url,
		.user_agent = (char *)"hffs/test",
		.timeout_s = 10,
	};
	struct xfer_opts opts = { .connections = 2 };
	struct hub_repo repo = { .type = HUB_REPO_MODEL, .id = REPO };
	const struct file *file = &hub.files[0];
	uint64_t first = 100003, last = file->size - 7;
	struct xfer *x = NULL;
	struct xet_file xf;
	struct xet_token tok;
	struct xet_recon r;
	struct fetched *fs;
	struct hub_error err;
	struct xet_hash fh;
	struct hub_repo_info info;
	char commit[41];
	unsigned proven;
	uint8_t *out;

	ASSERT_TRUE(file->size > 2 * first);
	ASSERT_OK(hub_repo_info(&cfg, &repo, "main", &info, &err));
	memcpy(commit, info.commit, sizeof(commit));
	ASSERT_OK(xfer_new(&cfg, &opts, &x));
	ASSERT_OK(xet_probe(&cfg, &repo, commit, file->path, &xf, &err));
	ASSERT_OK(xet_token_fetch(&cfg, xf.auth_url, &tok, &err));
	ASSERT_OK(xet_reconstruct(&cfg, &tok, NULL, xf.hash, first, last, &r, &err));
	ASSERT_TRUE(r.offset_into_first_range > 0);
	/* doctor's blocking form of the first fetch decodes the same chunks. */
	{
		struct xet_fetched once;

		ASSERT_OK(xet_fetch_once(&cfg, &r, 0, &once, &err));
		ASSERT_U64_EQ(once.chunks, r.fetches[0].chunk_end - r.fetches[0].chunk_start);
		ASSERT_U64_EQ(once.bytes, r.fetches[0].byte_last - r.fetches[0].byte_first + 1);
	}
	fs = fetch_all(x, &r);
	out = malloc(xet_recon_len(&r));
	ASSERT_NOT_NULL(out);
	rebuild(&r, fs, out, &fh, &proven);
	/* The plan covers at least the range; its bytes from offset_into_first_range on are the
	 * file's from first. */
	ASSERT_TRUE(xet_recon_len(&r) >= last - first + 1);
	if (memcmp(out, file->data + first, last - first + 1) != 0)
		CHECK_FAIL("the range [%" PRIu64 ", %" PRIu64 "] rebuilt differs", first, last);
	free(out);
	fetched_free(fs, &r);
	xet_recon_done(&r);
	xet_token_done(&tok);
	xet_file_done(&xf);
	xfer_free(x);
}

int main(void)
{
	hub_start();
	RUN(test_whole_files);
	RUN(test_range);
	return 0;
}
