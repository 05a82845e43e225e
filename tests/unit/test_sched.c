/* test_sched.c: the heart of the read path, against a real transfer engine and a tiny HTTP
 * server (minihttp.h) that serves two files by Range and flips a byte of the next N replies
 * when told to. Covers parked reads and joins, a cut background fetch, the last block and
 * small files answered only once verified, --verify strict, a failed hash racing a read (at a
 * hook between the index and memory), a second failure giving the blob up, a failed sync
 * that must never become a claim, and a failed fetch counted on its file. Every wait is bounded; no test depends on timing. */
#include "fs/sched.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/bitmap.h"
#include "fs/inode.h"
#include "tests/unit/check.h"
#include "tests/unit/fixture.h"
#include "tests/unit/minihttp.h"
#include "util/cleanup.h"
#include "util/log.h"

#define BS FIXTURE_BS /* 64 KiB blocks */
#define BIG_SIZE (4 * BS + 1000) /* 5 blocks, the last one short */
#define SMALL_SIZE 1000
#define WAIT_S 30
#define COMMIT "0123456789abcdef0123456789abcdef01234567"

static uint8_t big[BIG_SIZE], small[SMALL_SIZE];
static char big_cid[CID_MAX], small_cid[CID_MAX];
static char ctl_corrupt[PATH_MAX]; /* replies left to corrupt ("-1": all) */
static char ctl_delay[PATH_MAX]; /* ms to hold a reply of the whole big file */
static char ctl_status[PATH_MAX]; /* non-zero: every reply is this status, without a body */
static struct minihttp srv;

/* ---- the server (runs in minihttp's child) */

static long ctl_read(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = 0;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static void ctl_write(const char *path, long v)
{
	FILE *f = fopen(path, "w");

	ASSERT_NOT_NULL(f);
	fprintf(f, "%ld\n", v);
	fclose(f);
}

static void handler(const struct mh_request *req, struct mh_reply *rep)
{
	static uint8_t body[BIG_SIZE];
	const uint8_t *data = strstr(req->target, "big.bin") ? big : small;
	uint64_t size = data == big ? BIG_SIZE : SMALL_SIZE, a = 0, b = size - 1;
	long corrupt = ctl_read(ctl_corrupt), status = ctl_read(ctl_status);

	if (status) {
		rep->status = (int)status;
		return;
	}
	if (req->range[0] && sscanf(req->range, "bytes=%" SCNu64 "-%" SCNu64, &a, &b) >= 1) {
		b = MIN(b, size - 1);
		rep->status = 206;
		mh_header(rep, "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, a, b, size);
	}
	memcpy(body, data + a, b - a + 1);
	if (corrupt) {
		body[(b - a) / 2] ^= 0x5a;
		if (corrupt > 0)
			ctl_write(ctl_corrupt, corrupt - 1);
	}
	if (a == 0 && b - a + 1 >= 4 * BS)
		rep->delay_ms = (unsigned)ctl_read(ctl_delay);
	rep->body = (const char *)body;
	rep->body_len = b - a + 1;
}

/* ---- the mount under test */

struct env {
	struct cache *cache;
	struct cache_db *db;
	struct xfer *x;
	struct hub_tree tree;
	struct inode_table *t;
	struct sched *s;
	struct hub_config cfg;
	struct hub_repo repo;
	const struct inode *big, *small;
	const struct inode *copy; /* with env_with_copy: small.txt's content at another path */
	int fd; /* big's data file, for checks */
};

static bool env_with_copy;

static int sync_failures_left;
static int sync_calls;

static int hook_sync(void *ud, int fd)
{
	(void)ud;
	__atomic_add_fetch(&sync_calls, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&sync_failures_left, __ATOMIC_SEQ_CST) > 0) {
		__atomic_sub_fetch(&sync_failures_left, 1, __ATOMIC_SEQ_CST);
		return -EIO;
	}
	return blob_sync(fd);
}

static void (*after_drop_fn)(const char *cid);

static void hook_after_drop(void *ud, const char *cid)
{
	(void)ud;
	if (after_drop_fn)
		after_drop_fn(cid);
}

static const struct sched_hooks hooks = { .sync = hook_sync, .after_drop = hook_after_drop };

static void env_start(struct env *e, const char *name, bool strict)
{
	static char endpoint[64];
	struct sched_opts o = { .block_size = BS, .verify_strict = strict, .hooks = &hooks };
	struct hub_error err;

	memset(e, 0, sizeof(*e));
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", srv.port);
	e->cfg.endpoint = endpoint;
	e->cfg.user_agent = (char *)"hffs-test/1";
	ASSERT_OK(hub_repo_parse("org/model", &e->repo, &err));
	fixture_tree_push(&e->tree, "big.bin", false, BIG_SIZE,
			  "1111111111111111111111111111111111111111", big_cid);
	fixture_tree_push(&e->tree, "small.txt", false, SMALL_SIZE, small_cid, NULL);
	if (env_with_copy)
		fixture_tree_push(&e->tree, "copy.txt", false, SMALL_SIZE, small_cid, NULL);
	ASSERT_OK(inode_table_new(&e->tree, &e->t));
	for (uint64_t ino = 1; ino <= inode_count(e->t); ino++) {
		const struct inode *f = inode_get(e->t, ino);

		if (!f->is_dir && !strcmp(f->path, "big.bin"))
			e->big = f;
		else if (!f->is_dir && !strcmp(f->path, "small.txt"))
			e->small = f;
		else if (!f->is_dir)
			e->copy = f;
	}
	ASSERT_TRUE(e->big && e->small);
	ASSERT_OK(cache_open(fixture_cache_dir(name), &e->cache));
	e->db = cache_index(e->cache);
	{
		struct xfer_opts xo = { .connections = 4, .max_retries = 1, .backoff_max_s = 1 };

		ASSERT_OK(xfer_new(&e->cfg, &xo, &e->x));
	}
	o.cache = e->cache;
	o.cfg = &e->cfg;
	o.repo = &e->repo;
	o.commit = COMMIT;
	ASSERT_OK(sched_new(&o, e->x, e->t, &e->s));
	e->fd = blob_open(fixture_cache_dir(name), big_cid, BIG_SIZE);
	ASSERT_OK(e->fd);
}

static void env_stop(struct env *e)
{
	e->x = xfer_free(e->x);
	e->s = sched_free(e->s);
	inode_table_free(e->t);
	hub_tree_done(&e->tree);
	e->cache = cache_close(e->cache);
	close(e->fd);
	ctl_write(ctl_corrupt, 0);
	ctl_write(ctl_delay, 0);
	ctl_write(ctl_status, 0);
	sync_failures_left = 0;
	after_drop_fn = NULL;
	minihttp_clear(&srv);
}

/* ---- parked reads */

struct rd {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls;
	int err;
	int fd;
	bool net; /* it waited for the network, ready() said */
	uint8_t *buf; /* when set, the read's bytes are copied here from the fd it is given */
	uint64_t off, len;
	struct sched_stats at_answer; /* the scheduler's figures when it was answered */
	struct sched *s;
};

static void rd_init(struct rd *r, struct sched *s)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->s = s;
}

static void rd_ready(void *ud, int err, int fd, bool net)
{
	struct rd *r = ud;

	sched_get_stats(r->s, &r->at_answer);
	/* The fd is open for this call only, as for a reply that splices from it. */
	if (!err && r->buf)
		ASSERT_OK(blob_pread_all(fd, r->buf, r->len, r->off));
	pthread_mutex_lock(&r->lock);
	r->calls++;
	r->err = err;
	r->fd = fd;
	r->net = net;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* Waits (bounded) for the read's answer; returns its err. */
static int rd_wait(struct rd *r)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_S;
	pthread_mutex_lock(&r->lock);
	while (!r->calls)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) == ETIMEDOUT)
			CHECK_FAIL("a parked read was not answered within %d s", WAIT_S);
	pthread_mutex_unlock(&r->lock);
	ASSERT_EQ(r->calls, 1);
	return r->err;
}

/* Reads [off, off+len) of f for a handle at gen, waiting if parked; returns 0 or -errno and
 * checks the bytes against src. */
static int read_check(struct env *e, const struct inode *f, uint64_t gen, uint64_t off,
		      uint64_t len, const uint8_t *src)
{
	struct rd r;
	uint8_t *buf = malloc(len);
	int fd = -1, ret;

	ASSERT_NOT_NULL(buf);
	rd_init(&r, e->s);
	r.buf = buf;
	r.off = off;
	r.len = len;
	ret = sched_read(e->s, f, off, len, gen, rd_ready, &r, &fd);
	if (ret == 0) {
		ret = rd_wait(&r);
	} else if (ret == 1) {
		ASSERT_OK(blob_pread_all(fd, buf, len, off));
		sched_read_done(e->s, f, fd);
		ret = 0;
	}
	if (ret == 0) {
		for (uint64_t i = 0; i < len; i++)
			if (buf[i] != src[off + i])
				CHECK_FAIL("byte %" PRIu64 " of the read at %" PRIu64
					   ": %u, not %u",
					   i, off, buf[i], src[off + i]);
	}
	free(buf);
	return ret;
}

static void test_parked_reads_join_one_fetch(void)
{
	struct env e;
	struct rd a, b;
	int fd;

	env_start(&e, "join", false);
	rd_init(&a, e.s);
	rd_init(&b, e.s);
	ASSERT_FALSE(sched_is_present(e.s, e.big, BS + 10, 100));
	ASSERT_EQ(sched_read(e.s, e.big, BS + 10, 100, 0, rd_ready, &a, &fd), 0);
	ASSERT_EQ(sched_read(e.s, e.big, BS + 500, 100, 0, rd_ready, &b, &fd), 0);
	ASSERT_EQ(rd_wait(&a), 0);
	ASSERT_EQ(rd_wait(&b), 0);
	ASSERT_TRUE(a.net && b.net);
	ASSERT_EQ(minihttp_count(&srv, "big.bin"), 1); /* the second read joined the first */
	/* The block is in; the ones around it are not, nor is a range past the end. */
	ASSERT_TRUE(sched_is_present(e.s, e.big, BS, BS));
	ASSERT_FALSE(sched_is_present(e.s, e.big, BS, BS + 1));
	ASSERT_FALSE(sched_is_present(e.s, e.big, 0, BS));
	ASSERT_FALSE(sched_is_present(e.s, e.big, BIG_SIZE, 1));
	/* Now present: answered at once, no request. */
	ASSERT_EQ(read_check(&e, e.big, 0, BS, BS, big), 0);
	ASSERT_EQ(minihttp_count(&srv, "big.bin"), 1);
	/* A middle block is served before the blob is whole: nothing is verified yet. */
	ASSERT_EQ(a.at_answer.blobs_verified, 0);
	env_stop(&e);
}

static void test_last_block_waits_for_the_whole_blob(void)
{
	struct env e;
	struct rd r;
	int fd;

	env_start(&e, "last", false);
	rd_init(&r, e.s);
	ASSERT_EQ(sched_read(e.s, e.big, BIG_SIZE - 10, 10, 0, rd_ready, &r, &fd), 0);
	ASSERT_EQ(rd_wait(&r), 0);
	/* Answered only once every block landed and the hash matched. */
	ASSERT_EQ(r.at_answer.blobs_verified, 1);
	ASSERT_U64_EQ(sched_missing(e.s, e.big, 0, BIG_SIZE), 0);
	ASSERT_EQ(read_check(&e, e.big, 0, 0, BIG_SIZE, big), 0);
	sched_flush(e.s);
	{
		struct blob_rec rec;

		ASSERT_OK(db_blob_get(e.db, big_cid, &rec, NULL));
		ASSERT_EQ(rec.state, BLOB_VERIFIED);
	}
	env_stop(&e);
}

static void test_small_file_verified_before_its_first_byte(void)
{
	struct env e;
	struct rd r;
	int fd;

	env_start(&e, "small", false);
	ctl_write(ctl_corrupt, 1);
	rd_init(&r, e.s);
	/* The first reply is corrupt: the read fails rather than see it. */
	ASSERT_EQ(sched_read(e.s, e.small, 0, 10, 0, rd_ready, &r, &fd), 0);
	ASSERT_EQ(rd_wait(&r), -EIO);
	ASSERT_EQ(sched_read(e.s, e.small, 0, 10, 0, rd_ready, &r, &fd), -EIO); /* same handle */
	/* A new handle gets the true bytes, and only once they are verified. */
	rd_init(&r, e.s);
	ASSERT_EQ(sched_read(e.s, e.small, 0, 10, sched_open(e.s, e.small), rd_ready, &r, &fd), 0);
	ASSERT_EQ(rd_wait(&r), 0);
	ASSERT_EQ(r.at_answer.blobs_verified, 1);
	ASSERT_EQ(read_check(&e, e.small, sched_open(e.s, e.small), 0, SMALL_SIZE, small), 0);
	env_stop(&e);
}

/* Paths of one content share one blob: bytes fetched through one serve the other at once. */
static void test_shared_content_is_one_blob(void)
{
	struct env e;
	struct rd r;
	uint64_t gen;
	int fd;

	env_with_copy = true;
	env_start(&e, "copy", false);
	env_with_copy = false;
	ASSERT_NOT_NULL(e.copy);
	ASSERT_EQ(read_check(&e, e.small, sched_open(e.s, e.small), 0, SMALL_SIZE, small), 0);
	rd_init(&r, e.s);
	gen = sched_open(e.s, e.copy);
	ASSERT_EQ(sched_read(e.s, e.copy, 0, SMALL_SIZE, gen, rd_ready, &r, &fd), 1);
	sched_read_done(e.s, e.copy, fd);
	ASSERT_EQ(read_check(&e, e.copy, gen, 0, SMALL_SIZE, small), 0);
	env_stop(&e);
}

static void test_strict_serves_nothing_unverified(void)
{
	struct env e;
	struct rd r;
	int fd;

	env_start(&e, "strict", true);
	rd_init(&r, e.s);
	ASSERT_EQ(sched_read(e.s, e.big, 0, 10, 0, rd_ready, &r, &fd), 0);
	ASSERT_EQ(rd_wait(&r), 0);
	ASSERT_EQ(r.at_answer.blobs_verified, 1);
	env_stop(&e);
}

/* A background fetch of the whole blob, held by the server: a demand read of its last
 * block cuts it and fetches that block itself. */
static void test_demand_read_cuts_background(void)
{
	struct env e;
	char range[64];

	env_start(&e, "cut", false);
	ctl_write(ctl_delay, 1500);
	ASSERT_EQ(sched_prefetch(e.s, e.big, 0, BIG_SIZE, BIG_SIZE, XFER_PRIO_BACKGROUND), 1);
	ASSERT_EQ(read_check(&e, e.big, 0, 3 * BS, 100, big), 0);
	snprintf(range, sizeof(range), "range=bytes=%u-", 3 * BS);
	ASSERT_EQ(minihttp_count(&srv, range), 1);
	env_stop(&e);
}

/* ---- a failed hash racing a read */

static struct env *race_env;
static int race_served;

static void race_in_window(const char *cid)
{
	struct env *e = race_env;
	struct blob_rec rec;
	uint8_t *map = NULL;
	int fd;

	if (strcmp(cid, big_cid))
		return;
	/* The index already says bad, with no bits: no merge can bring them back. */
	ASSERT_OK(db_blob_get(e->db, big_cid, &rec, &map));
	ASSERT_EQ(rec.state, BLOB_BAD);
	ASSERT_U64_EQ(rec.blocks_present, 0);
	ASSERT_U64_EQ(rec.bad_count, 1);
	for (size_t i = 0; i < bitmap_bytes(block_count(BIG_SIZE, BS)); i++)
		ASSERT_EQ(map[i], 0);
	free(map);
	/* A read in the window, by the handle that was served the failing generation: served
	 * from memory (nothing is dropped there yet); that handle fails from now on. */
	race_served = sched_read(e->s, e->big, 0, 10, 0, rd_ready, NULL, &fd);
	if (race_served == 1)
		sched_read_done(e->s, e->big, fd);
}

static void test_failed_hash_racing_a_read(void)
{
	struct env e;
	struct rd r;
	uint64_t gen;
	int fd;

	env_start(&e, "race", false);
	race_env = &e;
	after_drop_fn = race_in_window;
	ctl_write(ctl_corrupt, 1);
	rd_init(&r, e.s);
	ASSERT_EQ(sched_read(e.s, e.big, BIG_SIZE - 1, 1, 0, rd_ready, &r, &fd), 0);
	ASSERT_EQ(rd_wait(&r), -EIO); /* the whole-file reader learns of the mismatch */
	ASSERT_EQ(race_served, 1);
	/* Memory dropped every block; the old handle fails; the index stays empty. */
	ASSERT_U64_EQ(sched_missing(e.s, e.big, 0, BIG_SIZE), BIG_SIZE);
	ASSERT_EQ(sched_read(e.s, e.big, 0, 10, 0, rd_ready, &r, &fd), -EIO);
	sched_flush(e.s);
	{
		struct blob_rec rec;

		ASSERT_OK(db_blob_get(e.db, big_cid, &rec, NULL));
		ASSERT_U64_EQ(rec.blocks_present, 0);
	}
	/* A new handle reads the true bytes once they are fetched again and verified. */
	gen = sched_open(e.s, e.big);
	ASSERT_U64_EQ(gen, 1);
	ASSERT_EQ(read_check(&e, e.big, gen, BIG_SIZE - 1000, 1000, big), 0);
	ASSERT_EQ(read_check(&e, e.big, gen, 0, BIG_SIZE, big), 0);
	{
		struct sched_stats st;

		sched_get_stats(e.s, &st);
		ASSERT_U64_EQ(st.verify_failures, 1);
		ASSERT_EQ(st.blobs_verified, 1);
		ASSERT_TRUE(strstr(st.last_error, "does not match its content id") != NULL);
	}
	env_stop(&e);
}

static void test_second_failure_gives_up(void)
{
	struct env e;
	struct sched_stats st;
	struct sched_file_info fi;
	int fd, requests;

	env_start(&e, "giveup", false);
	ctl_write(ctl_corrupt, -1);
	ASSERT_EQ(read_check(&e, e.big, 0, BIG_SIZE - 1, 1, big), -EIO);
	ASSERT_EQ(read_check(&e, e.big, sched_open(e.s, e.big), BIG_SIZE - 1, 1, big), -EIO);
	requests = minihttp_count(&srv, "big.bin");
	/* Failed at once now, whatever the handle, and nothing more is asked of the server. */
	ASSERT_EQ(sched_read(e.s, e.big, 0, 1, sched_open(e.s, e.big), rd_ready, NULL, &fd), -EIO);
	ASSERT_EQ(sched_prefetch(e.s, e.big, 0, BIG_SIZE, BS, XFER_PRIO_BACKGROUND), 0);
	ASSERT_U64_EQ(sched_missing(e.s, e.big, 0, BIG_SIZE), 0);
	ASSERT_TRUE(sched_is_complete(e.s, e.big)); /* nothing left to do in this mount */
	ASSERT_EQ(minihttp_count(&srv, "big.bin"), requests);
	sched_get_stats(e.s, &st);
	ASSERT_EQ(st.blobs_given_up, 1);
	ASSERT_U64_EQ(st.verify_failures, 2);
	ASSERT_TRUE(strstr(st.last_error, "do not match sha256") != NULL);
	ASSERT_TRUE(strstr(st.last_error, "twice") != NULL);
	sched_file_info(e.s, e.big, &fi);
	ASSERT_TRUE(!strcmp(fi.state, "bad"));
	ASSERT_EQ(fi.hash_failures, 2);
	ASSERT_EQ(fi.fetch_failures, 0);
	/* `hffs cache verify` asks for another try: the index no longer calls it bad. */
	ctl_write(ctl_corrupt, 0);
	ASSERT_OK(db_blob_set_state(e.db, big_cid, BLOB_PARTIAL));
	ASSERT_EQ(read_check(&e, e.big, sched_open(e.s, e.big), 0, BIG_SIZE, big), 0);
	env_stop(&e);
}

/* ---- a failed sync */

static void test_failed_sync_never_becomes_a_claim(void)
{
	struct env e;
	struct blob_rec rec;
	uint8_t *map = NULL;

	env_start(&e, "sync", false);
	sync_failures_left = 1;
	ASSERT_EQ(read_check(&e, e.big, 0, 0, 100, big), 0); /* served from what landed */
	sched_flush(e.s);
	ASSERT_EQ(sync_failures_left, 0);
	ASSERT_OK(db_blob_get(e.db, big_cid, &rec, &map));
	ASSERT_U64_EQ(rec.blocks_present, 0); /* no bit claims what did not reach the disk */
	free(map);
	ASSERT_U64_EQ(sched_missing(e.s, e.big, 0, BS), BS); /* and memory forgot it */
	/* Read again: fetched again, synced, committed. */
	ASSERT_EQ(read_check(&e, e.big, 0, 0, 100, big), 0);
	ASSERT_EQ(minihttp_count(&srv, "big.bin"), 2);
	sched_flush(e.s);
	ASSERT_OK(db_blob_get(e.db, big_cid, &rec, &map));
	ASSERT_U64_EQ(rec.blocks_present, 1);
	ASSERT_TRUE(bitmap_test(map, 0));
	free(map);
	env_stop(&e);
}

/* A fetch that failed after the engine's retries is counted on the file, with its reason and
 * words (what `hffs pull` decides a file's failure on); a later good fetch keeps the count. */
static void test_failed_fetch_is_counted_on_the_file(void)
{
	struct env e;
	struct sched_file_info fi;

	env_start(&e, "fetchfail", false);
	sched_file_info(e.s, e.big, &fi);
	ASSERT_EQ(fi.fetch_failures, 0);
	ASSERT_EQ(fi.fetch_reason, FETCH_OK);
	ctl_write(ctl_status, 404);
	ASSERT_EQ(read_check(&e, e.big, 0, 0, 100, big), -EIO);
	sched_file_info(e.s, e.big, &fi);
	ASSERT_EQ(fi.fetch_failures, 1);
	ASSERT_EQ(fi.fetch_reason, FETCH_NOT_FOUND);
	ASSERT_TRUE(fi.fetch_error[0] != '\0');
	ASSERT_TRUE(!strcmp(fi.state, "missing"));
	ASSERT_EQ(fi.hash_failures, 0);
	ctl_write(ctl_status, 0);
	ASSERT_EQ(read_check(&e, e.big, 0, 0, 100, big), 0);
	sched_file_info(e.s, e.big, &fi);
	ASSERT_EQ(fi.fetch_failures, 1);
	ASSERT_TRUE(!strcmp(fi.state, "partial"));
	env_stop(&e);
}

int main(void)
{
	for (size_t i = 0; i < BIG_SIZE; i++)
		big[i] = (uint8_t)(i * 131 + (i >> 9) * 7 + 1);
	for (size_t i = 0; i < SMALL_SIZE; i++)
		small[i] = (uint8_t)('a' + i % 26);
	verify_hash_buf(big, BIG_SIZE, BLOB_HASH_SHA256, big_cid);
	verify_hash_buf(small, SMALL_SIZE, BLOB_HASH_GITSHA1, small_cid);
	fixture_tmpdir_init("sched");
	if (getenv("HFFS_TEST_DEBUG"))
		log_set_level(LOG_LEVEL_DEBUG);
	snprintf(ctl_corrupt, sizeof(ctl_corrupt), "%s/corrupt", fixture_tmpdir());
	snprintf(ctl_delay, sizeof(ctl_delay), "%s/delay", fixture_tmpdir());
	snprintf(ctl_status, sizeof(ctl_status), "%s/status", fixture_tmpdir());
	ctl_write(ctl_corrupt, 0);
	ctl_write(ctl_delay, 0);
	ctl_write(ctl_status, 0);
	minihttp_start(&srv, handler, fixture_tmpdir());
	RUN(test_parked_reads_join_one_fetch);
	RUN(test_last_block_waits_for_the_whole_blob);
	RUN(test_small_file_verified_before_its_first_byte);
	RUN(test_shared_content_is_one_blob);
	RUN(test_strict_serves_nothing_unverified);
	RUN(test_demand_read_cuts_background);
	RUN(test_failed_hash_racing_a_read);
	RUN(test_second_failure_gives_up);
	RUN(test_failed_sync_never_becomes_a_claim);
	RUN(test_failed_fetch_is_counted_on_the_file);
	minihttp_stop(&srv);
	fixture_tmpdir_done();
	return 0;
}
