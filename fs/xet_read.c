/* xet_read.c: fetches of Xet files for the scheduler (xet_read.h). A job is owned by one
 * thread at a time: a worker while it probes and plans, the engine thread while a term is on
 * the wire (its chunk and done callbacks), handed over through xr->lock or the engine's
 * queue. The fields marked "lock" are read by others (cancel, prio) and guarded by xr->lock. */
#include "fs/xet_read.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/xet.h"
#include "fetch/xet_xfer.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/timeutil.h"

/* Each plan costs a round trip to the CAS: enough workers that background completion's
 * fetches keep the link busy, and a demand fetch finds one free soon. */
#define XET_READ_WORKERS 4
/* New plans a fetch may ask after a refused URL or token before it fails. */
#define XET_READ_RENEWALS 2

enum file_state {
	FILE_UNKNOWN,
	FILE_PROBING, /* a worker probes it; others wait for its answer (xr->cond) */
	FILE_XET,
	FILE_PLAIN,
};

struct xr_file {
	enum file_state state; /* lock */
	char hash[XET_HEX_LEN]; /* immutable once FILE_XET */
	char *recon_url; /* immutable once FILE_XET */
};

struct job {
	struct job *next; /* lock: on xr->jobs, from submit to done */
	struct job *qnext; /* lock: on xr->queue */
	struct xet_read *xr;
	uint64_t id;
	size_t file;
	char *path, *url, *blob_key;
	uint64_t blob_size;
	struct xfer_sink sink; /* the caller's */
	enum xfer_prio prio; /* lock */
	uint64_t engine_id; /* lock: the request on the wire, 0 none */
	bool cancelled; /* lock */

	uint64_t pos, end; /* file bytes [pos, end) are still to hand to the sink */
	uint64_t written; /* bytes the sink took */
	struct xet_recon plan; /* of [pos, end) when it was asked */
	size_t term; /* the term on the wire */
	uint64_t skip; /* bytes of the first term before pos */
	uint64_t term_got; /* decoded bytes of the term so far */
	unsigned renewals;
	bool sink_failed; /* the caller's sink refused bytes: its error, never a fallback */
	bool plain; /* handed to the engine as a /resolve request */
	char why[600]; /* this module's words for a failure found in the callbacks */
};

struct xet_read {
	const struct hub_config *cfg;
	const struct hub_repo *repo;
	const char *commit;
	struct xfer *x;
	enum xet_mode mode;
	size_t nfiles;
	struct xr_file *files;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* queue work, stop */
	struct job *jobs; /* lock */
	struct job *queue, **qtail; /* lock: jobs for a worker, in order */
	uint64_t next_id; /* lock */
	bool stopping; /* lock */
	pthread_t workers[XET_READ_WORKERS];
	unsigned nworkers;

	bool auth_ready; /* lock */
	struct xet_auth auth; /* its own lock; initialized by the first Xet probe */
	struct xet_read_stats stats; /* lock */
};

int xet_mode_parse(const char *s)
{
	if (!strcmp(s, "off"))
		return XET_MODE_OFF;
	if (!strcmp(s, "auto"))
		return XET_MODE_AUTO;
	if (!strcmp(s, "on"))
		return XET_MODE_ON;
	return -EINVAL;
}

const char *xet_mode_str(enum xet_mode m)
{
	return m == XET_MODE_ON ? "on" : m == XET_MODE_AUTO ? "auto" : "off";
}

static void job_free(struct job *j)
{
	xet_recon_done(&j->plan);
	free(j->path);
	free(j->url);
	free(j->blob_key);
	free(j);
}

/* The end of a job, on whichever thread owns it: off the list, then the caller's done(). */
static void job_finish(struct job *j, int err, enum fetch_reason reason, const char *why)
{
	struct xet_read *xr = j->xr;
	struct job **pp;

	pthread_mutex_lock(&xr->lock);
	for (pp = &xr->jobs; *pp && *pp != j; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = j->next;
	if (!j->plain)
		xr->stats.bytes += j->written;
	pthread_mutex_unlock(&xr->lock);
	j->sink.done(j->sink.ud, err, err ? reason : FETCH_OK, err ? why : NULL, j->written);
	job_free(j);
}

/* Hands j to a worker (first or again, to plan what is left), or fails it if xr stops. */
static void job_queue(struct job *j)
{
	struct xet_read *xr = j->xr;
	bool stopping;

	pthread_mutex_lock(&xr->lock);
	stopping = xr->stopping;
	if (!stopping) {
		j->qnext = NULL;
		*xr->qtail = j;
		xr->qtail = &j->qnext;
		pthread_cond_signal(&xr->cond);
	}
	pthread_mutex_unlock(&xr->lock);
	if (stopping)
		job_finish(j, -ECANCELED, FETCH_CANCELED, "the mount is stopping");
}

/* A plain file's request: the engine's, its bytes counted on the way. */
static int plain_write(void *ud, uint64_t offset, const void *data, size_t len)
{
	struct job *j = ud;
	int r = j->sink.write(j->sink.ud, offset, data, len);

	if (r >= 0)
		j->written += len;
	return r;
}

static void plain_done(void *ud, int err, enum fetch_reason reason, const char *why,
		       uint64_t written)
{
	struct job *j = ud;

	(void)written;
	job_finish(j, err, reason, why);
}

/* The rest of j by /resolve on the engine. */
static void job_plain(struct job *j)
{
	struct xet_read *xr = j->xr;
	struct xfer_req req = {
		.url = j->url,
		.blob_key = j->blob_key,
		.blob_size = j->blob_size,
		.offset = j->pos,
		.len = j->end - j->pos,
		.sink = { .write = plain_write, .done = plain_done, .ud = j },
	};
	uint64_t id = 0;
	int r = -ECANCELED;

	j->plain = true;
	pthread_mutex_lock(&xr->lock);
	req.prio = j->prio;
	if (!j->cancelled)
		r = xfer_submit(xr->x, &req, &id);
	j->engine_id = id;
	pthread_mutex_unlock(&xr->lock);
	if (r < 0)
		job_finish(j, r, r == -ECANCELED ? FETCH_CANCELED : FETCH_IO, "not submitted");
}

static void job_next_term(struct job *j);
static void job_xet_failed(struct job *j, int r, const char *what, const struct hub_error *err);

/* Engine thread: a term's xorb bytes could not be had or did not decode to the plan. on: the
 * fetch fails with that; auto: the file goes to /resolve, this fetch from where it stopped. */
static void job_xorb_failed(struct job *j, int err, enum fetch_reason reason, const char *why)
{
	struct hub_error he;

	if (j->xr->mode == XET_MODE_ON)
		return job_finish(j, err, reason, why);
	hub_error_set(&he, reason, 0, "%s", why && *why ? why : fetch_reason_str(reason));
	job_xet_failed(j, err, "xorb fetch", &he);
}

/* Engine thread: a chunk of the fetch serving the term on the wire. Chunks of the fetch
 * outside the term are skipped; the term's bytes before pos (the first term's) too. */
static int job_chunk(void *ud, uint64_t index, const uint8_t *raw, size_t len)
{
	struct job *j = ud;
	const struct xet_term *t = &j->plan.terms[j->term];
	uint64_t off, n;
	int r;

	if (index < t->chunk_start || index >= t->chunk_end)
		return 0;
	j->term_got += len;
	if (j->term_got > t->unpacked_len) {
		snprintf(j->why, sizeof(j->why),
			 "xorb %.12s chunks %llu-%llu decode to more than the %llu bytes its plan "
			 "says",
			 t->xorb, (unsigned long long)t->chunk_start,
			 (unsigned long long)t->chunk_end - 1, (unsigned long long)t->unpacked_len);
		return -EBADMSG;
	}
	off = MIN(j->skip, (uint64_t)len);
	j->skip -= off;
	n = MIN(len - off, j->end - j->pos);
	if (!n)
		return 0;
	r = j->sink.write(j->sink.ud, j->pos, raw + off, n);
	if (r < 0) {
		j->sink_failed = true;
		return r;
	}
	j->pos += n;
	j->written += n;
	return 0;
}

/* Engine thread, once per term: the next term, a new plan after a refused URL, or the end. */
static void job_term_done(void *ud, int err, enum fetch_reason reason, const char *why)
{
	struct job *j = ud;
	const struct xet_term *t = &j->plan.terms[j->term];
	bool cancelled;

	pthread_mutex_lock(&j->xr->lock);
	j->engine_id = 0;
	cancelled = j->cancelled;
	pthread_mutex_unlock(&j->xr->lock);
	if (err == -EACCES && !cancelled && j->renewals < XET_READ_RENEWALS) {
		/* The signed URL expired or was refused: plan what is left again. */
		j->renewals++;
		xet_recon_done(&j->plan);
		job_queue(j);
		return;
	}
	if (err && !j->sink_failed && !cancelled && err != -ECANCELED)
		return job_xorb_failed(j, err, reason, j->why[0] ? j->why : why);
	if (err)
		return job_finish(j, err, reason, j->why[0] ? j->why : why);
	if (j->term_got != t->unpacked_len) {
		snprintf(j->why, sizeof(j->why),
			 "xorb %.12s chunks %llu-%llu decoded to %llu bytes, its plan says %llu",
			 t->xorb, (unsigned long long)t->chunk_start,
			 (unsigned long long)t->chunk_end - 1, (unsigned long long)j->term_got,
			 (unsigned long long)t->unpacked_len);
		return job_xorb_failed(j, -EIO, FETCH_PROTOCOL, j->why);
	}
	j->term++;
	j->term_got = 0;
	job_next_term(j);
}

/* A worker or the engine thread: submits the term on the wire next, or ends j. */
static void job_next_term(struct job *j)
{
	struct xet_read *xr = j->xr;
	struct xet_xfer_cb cb = { .chunk = job_chunk, .done = job_term_done, .ud = j };
	uint64_t id = 0;
	int r = -ECANCELED;

	if (j->pos >= j->end)
		return job_finish(j, 0, FETCH_OK, NULL);
	if (j->term >= j->plan.n_terms) {
		snprintf(j->why, sizeof(j->why),
			 "the Xet plan of '%s' ends at byte %llu, before the %llu asked", j->path,
			 (unsigned long long)j->pos, (unsigned long long)j->end);
		return job_xorb_failed(j, -EIO, FETCH_PROTOCOL, j->why);
	}
	pthread_mutex_lock(&xr->lock);
	if (!j->cancelled)
		r = xet_xfer_submit(xr->x, &j->plan, j->plan.terms[j->term].fetch, j->prio, &cb,
				    &id);
	j->engine_id = id;
	pthread_mutex_unlock(&xr->lock);
	if (r < 0)
		job_finish(j, r, r == -ECANCELED ? FETCH_CANCELED : FETCH_IO, "not submitted");
}

/* A worker (or the engine thread, for a xorb): what the Xet path could not do for j. auto:
 * the file goes to /resolve for the rest of the mount, j from where it stopped; on: j fails
 * with the words. */
static void job_xet_failed(struct job *j, int r, const char *what, const struct hub_error *err)
{
	struct xet_read *xr = j->xr;
	bool first = false;

	if (xr->mode == XET_MODE_ON) {
		snprintf(j->why, sizeof(j->why), "Xet %s: %s", what, err->message);
		return job_finish(j, r == -ECANCELED ? r : -EIO,
				  err->reason != FETCH_OK ? err->reason : FETCH_PROTOCOL, j->why);
	}
	pthread_mutex_lock(&xr->lock);
	if (xr->files[j->file].state != FILE_PLAIN) {
		first = true;
		xr->files[j->file].state = FILE_PLAIN;
		xr->stats.files_plain++;
	}
	pthread_mutex_unlock(&xr->lock);
	if (first)
		log_warn("'%s' is read by /resolve for the rest of the mount: its Xet %s failed "
			 "(%s)",
			 j->path, what, err->message);
	job_plain(j);
}

/* Worker: the probe of j's file (FILE_PROBING), once per mount unless it fails: its state
 * becomes FILE_XET or FILE_PLAIN, or FILE_UNKNOWN again on failure, and the waiting wake. */
static int job_probe(struct job *j, struct hub_error *err)
{
	struct xet_read *xr = j->xr;
	_cleanup_(xet_file_done) struct xet_file xf = { .is_xet = false };
	struct xr_file *f = &xr->files[j->file];
	int r;

	r = xet_probe(xr->cfg, xr->repo, xr->commit, j->path, &xf, err);
	if (r >= 0 && xf.is_xet && xf.size != j->blob_size) {
		hub_error_set(err, FETCH_PROTOCOL, 0, "its probe says %llu bytes, the tree %llu",
			      (unsigned long long)xf.size, (unsigned long long)j->blob_size);
		r = -EBADMSG;
	}
	pthread_mutex_lock(&xr->lock);
	if (r < 0) {
		f->state = FILE_UNKNOWN; /* the caller decides (auto: /resolve) */
	} else if (!xf.is_xet) {
		f->state = FILE_PLAIN;
		xr->stats.files_plain++;
	} else {
		memcpy(f->hash, xf.hash, XET_HEX_LEN);
		free(f->recon_url); /* a probe before it failed after taking one */
		f->recon_url = TAKE_PTR(xf.recon_url);
		if (!xr->auth_ready)
			r = xet_auth_init(&xr->auth, xf.auth_url);
		xr->auth_ready = xr->auth_ready || r >= 0;
		f->state = r >= 0 ? FILE_XET : FILE_UNKNOWN;
		xr->stats.files_xet += r >= 0;
	}
	pthread_cond_broadcast(&xr->cond);
	pthread_mutex_unlock(&xr->lock);
	return r;
}

/* Worker: the plan of j's bytes [pos, end), with a token renewed once if the CAS refuses it. */
static int job_plan(struct job *j, struct hub_error *err)
{
	struct xet_read *xr = j->xr;
	const struct xr_file *f = &xr->files[j->file];
	int r = 0;

	for (int tries = 0; tries < 2; tries++) {
		_cleanup_(xet_token_done) struct xet_token tok = { .exp = 0 };
		uint64_t gen = 0;

		r = xet_auth_get(&xr->auth, xr->cfg, (int64_t)(now_realtime_usec() / USEC_PER_SEC),
				 &tok, &gen, err);
		if (r < 0)
			return r;
		pthread_mutex_lock(&xr->lock);
		xr->stats.plans++;
		pthread_mutex_unlock(&xr->lock);
		r = xet_reconstruct(xr->cfg, &tok, f->recon_url, f->hash, j->pos, j->end - 1,
				    &j->plan, err);
		if (r != -EACCES)
			break;
		xet_auth_refused(&xr->auth, gen);
	}
	if (r < 0)
		return r;
	if (xet_recon_len(&j->plan) < j->end - j->pos) {
		hub_error_set(err, FETCH_PROTOCOL, 0,
			      "its plan for bytes %llu-%llu holds %llu bytes",
			      (unsigned long long)j->pos, (unsigned long long)j->end - 1,
			      (unsigned long long)xet_recon_len(&j->plan));
		return -EBADMSG;
	}
	return 0;
}

/* Worker: one turn of j: probe if needed, then /resolve or a plan and its first term. */
static void job_run(struct job *j)
{
	struct xet_read *xr = j->xr;
	struct hub_error err = { .reason = FETCH_OK };
	enum file_state state;
	bool cancelled;
	int r;

	pthread_mutex_lock(&xr->lock);
	/* One probe per file: the other fetches of a file being probed wait for its answer. */
	while (xr->files[j->file].state == FILE_PROBING && !xr->stopping)
		pthread_cond_wait(&xr->cond, &xr->lock);
	cancelled = j->cancelled || xr->stopping;
	state = xr->files[j->file].state;
	if (state == FILE_UNKNOWN && !cancelled)
		xr->files[j->file].state = FILE_PROBING;
	pthread_mutex_unlock(&xr->lock);
	if (cancelled)
		return job_finish(j, -ECANCELED, FETCH_CANCELED, "");
	if (state == FILE_UNKNOWN) {
		r = job_probe(j, &err);
		if (r < 0)
			return job_xet_failed(j, r, "probe", &err);
		pthread_mutex_lock(&xr->lock);
		state = xr->files[j->file].state;
		pthread_mutex_unlock(&xr->lock);
	}
	if (state != FILE_XET)
		return job_plain(j);
	xet_recon_done(&j->plan);
	r = job_plan(j, &err);
	if (r < 0)
		return job_xet_failed(j, r, "reconstruction", &err);
	j->term = 0;
	j->term_got = 0;
	j->skip = j->plan.offset_into_first_range;
	job_next_term(j);
}

/* lock: takes the first queued job of the most urgent priority (a demand read's fetch never
 * waits behind queued background ones). */
static struct job *queue_pop_locked(struct xet_read *xr)
{
	struct job **best = &xr->queue, *j;

	for (struct job **pp = &xr->queue; *pp; pp = &(*pp)->qnext)
		if ((*pp)->prio < (*best)->prio)
			best = pp;
	j = *best;
	*best = j->qnext;
	if (xr->qtail == &j->qnext)
		xr->qtail = best;
	return j;
}

static void *worker_main(void *arg)
{
	struct xet_read *xr = arg;

	pthread_mutex_lock(&xr->lock);
	for (;;) {
		struct job *j;

		while (!xr->queue && !xr->stopping)
			pthread_cond_wait(&xr->cond, &xr->lock);
		if (xr->stopping)
			break;
		j = queue_pop_locked(xr);
		pthread_mutex_unlock(&xr->lock);
		job_run(j);
		pthread_mutex_lock(&xr->lock);
	}
	pthread_mutex_unlock(&xr->lock);
	return NULL;
}

int xet_read_submit(struct xet_read *xr, size_t file, const char *path, const struct xfer_req *req,
		    uint64_t *ret_id)
{
	struct job *j;
	bool plain;

	pthread_mutex_lock(&xr->lock);
	plain = xr->files[file].state == FILE_PLAIN;
	pthread_mutex_unlock(&xr->lock);
	if (plain)
		return xfer_submit(xr->x, req, ret_id);
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	*j = (struct job){ .xr = xr,
			   .file = file,
			   .blob_size = req->blob_size,
			   .sink = req->sink,
			   .prio = req->prio,
			   .pos = req->offset,
			   .end = req->offset + req->len };
	j->path = strdup(path);
	j->url = strdup(req->url);
	j->blob_key = strdup(req->blob_key);
	if (!j->path || !j->url || !j->blob_key) {
		job_free(j);
		return -ENOMEM;
	}
	pthread_mutex_lock(&xr->lock);
	if (xr->stopping) {
		pthread_mutex_unlock(&xr->lock);
		job_free(j);
		return -ECANCELED;
	}
	j->id = ++xr->next_id | XET_READ_ID_BIT;
	*ret_id = j->id;
	j->next = xr->jobs;
	xr->jobs = j;
	*xr->qtail = j;
	xr->qtail = &j->qnext;
	pthread_cond_signal(&xr->cond);
	pthread_mutex_unlock(&xr->lock);
	return 0;
}

/* lock: the job of id, or NULL. */
static struct job *job_find_locked(struct xet_read *xr, uint64_t id)
{
	struct job *j = xr->jobs;

	while (j && j->id != id)
		j = j->next;
	return j;
}

void xet_read_set_prio(struct xet_read *xr, uint64_t id, enum xfer_prio prio)
{
	struct job *j;
	uint64_t eid = 0;

	pthread_mutex_lock(&xr->lock);
	j = job_find_locked(xr, id);
	if (j) {
		j->prio = prio;
		eid = j->engine_id;
	}
	pthread_mutex_unlock(&xr->lock);
	if (eid)
		(void)xfer_set_prio(xr->x, eid, prio);
}

void xet_read_cancel(struct xet_read *xr, uint64_t id)
{
	struct job *j;
	uint64_t eid = 0;

	pthread_mutex_lock(&xr->lock);
	j = job_find_locked(xr, id);
	if (j) {
		j->cancelled = true;
		eid = j->engine_id;
	}
	pthread_mutex_unlock(&xr->lock);
	if (eid)
		(void)xfer_cancel(xr->x, eid);
}

void xet_read_get_stats(struct xet_read *xr, struct xet_read_stats *ret)
{
	pthread_mutex_lock(&xr->lock);
	*ret = xr->stats;
	pthread_mutex_unlock(&xr->lock);
}

int xet_read_new(const struct xet_read_opts *o, struct xet_read **ret)
{
	struct xet_read *xr = calloc(1, sizeof(*xr));
	int r = 0;

	if (!xr)
		return -ENOMEM;
	*xr = (struct xet_read){ .cfg = o->cfg,
				 .repo = o->repo,
				 .commit = o->commit,
				 .x = o->x,
				 .mode = o->mode,
				 .nfiles = o->nfiles };
	xr->qtail = &xr->queue;
	pthread_mutex_init(&xr->lock, NULL);
	pthread_cond_init(&xr->cond, NULL);
	xr->files = calloc(o->nfiles ? o->nfiles : 1, sizeof(*xr->files));
	if (!xr->files) {
		xet_read_free(xr);
		return -ENOMEM;
	}
	for (; xr->nworkers < XET_READ_WORKERS; xr->nworkers++) {
		r = -pthread_create(&xr->workers[xr->nworkers], NULL, worker_main, xr);
		if (r < 0) {
			xet_read_free(xr);
			return r;
		}
	}
	*ret = xr;
	return 0;
}

void xet_read_stop(struct xet_read *xr)
{
	struct job *q;

	pthread_mutex_lock(&xr->lock);
	xr->stopping = true;
	pthread_cond_broadcast(&xr->cond);
	pthread_mutex_unlock(&xr->lock);
	for (unsigned i = 0; i < xr->nworkers; i++)
		pthread_join(xr->workers[i], NULL);
	xr->nworkers = 0;
	pthread_mutex_lock(&xr->lock);
	q = xr->queue;
	xr->queue = NULL;
	xr->qtail = &xr->queue;
	pthread_mutex_unlock(&xr->lock);
	while (q) {
		struct job *next = q->qnext;

		job_finish(q, -ECANCELED, FETCH_CANCELED, "the mount is stopping");
		q = next;
	}
}

struct xet_read *xet_read_free(struct xet_read *xr)
{
	if (!xr)
		return NULL;
	xet_read_stop(xr);
	for (size_t i = 0; xr->files && i < xr->nfiles; i++)
		free(xr->files[i].recon_url);
	free(xr->files);
	if (xr->auth_ready)
		xet_auth_done(&xr->auth);
	pthread_cond_destroy(&xr->cond);
	pthread_mutex_destroy(&xr->lock);
	free(xr);
	return NULL;
}
