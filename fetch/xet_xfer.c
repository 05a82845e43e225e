/* xet_xfer.c: a Xet fetch as an engine request whose sink is a chunk stream (xet_xfer.h).
 * The sink runs on the engine thread: it decodes and hands chunks on, nothing that waits. */
#include "fetch/xet_xfer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/xet_chunk.h"

struct job {
	struct xet_chunk_stream *stream;
	struct xet_xfer_cb cb;
	uint64_t chunk_start;
	const char *why; /* the stream's words for a malformed range (static), or NULL */
	char xorb[XET_HEX_LEN];
};

static struct job *job_free(struct job *j)
{
	if (j) {
		xet_chunk_stream_free(j->stream);
		free(j);
	}
	return NULL;
}

/* The stream counts chunks from 0; the consumer wants the xorb's index. */
static int job_chunk(void *ud, uint64_t index, const uint8_t *raw, size_t len)
{
	struct job *j = ud;

	return j->cb.chunk(j->cb.ud, j->chunk_start + index, raw, len);
}

static int job_write(void *ud, uint64_t offset, const void *data, size_t len)
{
	struct job *j = ud;
	const char *why = NULL;
	int r;

	/* The engine hands the range in order and resumes after the last byte taken. */
	(void)offset;
	r = xet_chunk_stream_feed(j->stream, data, len, &why);
	if (r == -EBADMSG)
		j->why = why;
	return r;
}

static void job_done(void *ud, int err, enum fetch_reason reason, const char *why, uint64_t written)
{
	struct job *j = ud;
	const char *swhy = NULL;
	char words[256];

	(void)written;
	if (err == 0 && xet_chunk_stream_end(j->stream, &swhy) < 0) {
		err = -EBADMSG;
		j->why = swhy;
	}
	if (err == -EBADMSG && j->why) {
		/* The bytes arrived and were wrong: the words are the stream's, not the
		 * engine's generic ones for a sink that refused. */
		snprintf(words, sizeof(words), "xorb %s sent %s", j->xorb, j->why);
		reason = FETCH_PROTOCOL;
		why = words;
	}
	j->cb.done(j->cb.ud, err, err ? reason : FETCH_OK, err ? why : NULL);
	job_free(j);
}

int xet_xfer_submit(struct xfer *x, const struct xet_recon *r, size_t fetch, enum xfer_prio prio,
		    const struct xet_xfer_cb *cb, uint64_t *ret_id)
{
	const struct xet_fetch *f = &r->fetches[fetch];
	struct job *j = calloc(1, sizeof(*j));
	int rc;

	if (!j)
		return -ENOMEM;
	rc = xet_chunk_stream_new(f->chunk_end - f->chunk_start, job_chunk, j, &j->stream);
	if (rc < 0) {
		job_free(j);
		return rc;
	}
	j->cb = *cb;
	j->chunk_start = f->chunk_start;
	memcpy(j->xorb, f->xorb, XET_HEX_LEN);
	struct xfer_req req = {
		.url = r->urls[f->url],
		/* Keyed by the signed URL itself: a renewed plan's new URL never meets the old
		 * one's engine state. */
		.blob_key = r->urls[f->url],
		.blob_size = XFER_SIZE_UNKNOWN,
		.offset = f->byte_first,
		.len = f->byte_last - f->byte_first + 1,
		.prio = prio,
		.sink = { .write = job_write, .done = job_done, .ud = j },
	};
	rc = xfer_submit(x, &req, ret_id);
	if (rc < 0)
		job_free(j);
	return rc;
}
