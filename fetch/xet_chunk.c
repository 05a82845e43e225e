/* xet_chunk.c: a xorb's chunks decoded, with liblz4's frame API; the one file that includes
 * lz4frame.h. Written from the spec (xet-core spec/xorb.md, draft-denis-xet §6). Runs on its
 * caller's thread; knows nothing of hashes (the cache checks what it decodes) or of HTTP. */
#include "fetch/xet_chunk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>

#include "util/cleanup.h"

struct xet_chunk_decoder {
	LZ4F_dctx *dctx;
	uint8_t planes[XET_CHUNK_MAX]; /* a byte-grouped chunk's LZ4 output */
};

static uint32_t le24(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

int xet_chunk_header_parse(const uint8_t *p, size_t len, struct xet_chunk_header *ret,
			   const char **ret_why)
{
	struct xet_chunk_header h;

	if (len < XET_CHUNK_HEADER_LEN)
		return -EAGAIN;
	if (p[0] != 0) {
		*ret_why = "a chunk header of an unknown version (not 0)";
		return -EBADMSG;
	}
	h.stored_len = le24(p + 1);
	h.raw_len = le24(p + 5);
	if (p[4] > XET_CHUNK_BG4_LZ4) {
		*ret_why =
			"a chunk of an unknown compression scheme (not none, LZ4 or byte grouping)";
		return -EBADMSG;
	}
	h.scheme = (enum xet_chunk_scheme)p[4];
	if (h.stored_len == 0 || h.raw_len == 0) {
		*ret_why = "a chunk header with a length of 0";
		return -EBADMSG;
	}
	if (h.stored_len > XET_CHUNK_MAX || h.raw_len > XET_CHUNK_MAX) {
		*ret_why = "a chunk header with a length over 128 KiB, the spec's limit";
		return -EBADMSG;
	}
	if (h.scheme == XET_CHUNK_NONE && h.stored_len != h.raw_len) {
		*ret_why = "an uncompressed chunk whose stored and raw lengths differ";
		return -EBADMSG;
	}
	*ret = h;
	return 0;
}

int xet_chunk_decoder_new(struct xet_chunk_decoder **ret)
{
	struct xet_chunk_decoder *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	if (LZ4F_isError(LZ4F_createDecompressionContext(&d->dctx, LZ4F_VERSION))) {
		free(d);
		return -ENOMEM;
	}
	*ret = d;
	return 0;
}

struct xet_chunk_decoder *xet_chunk_decoder_free(struct xet_chunk_decoder *d)
{
	if (d) {
		(void)LZ4F_freeDecompressionContext(d->dctx);
		free(d);
	}
	return NULL;
}

/* One whole LZ4 frame, exactly src_len bytes, into exactly dst_len bytes. */
static int lz4_frame(struct xet_chunk_decoder *d, const uint8_t *src, size_t src_len, uint8_t *dst,
		     size_t dst_len, const char **ret_why)
{
	size_t in = 0, out = 0, hint = 1;

	/* A context left mid-frame by a bad chunk must not carry into this one. */
	LZ4F_resetDecompressionContext(d->dctx);
	/* Each pass consumes input or makes output, or the frame is stuck: bounded. */
	while (hint != 0) {
		size_t src_n = src_len - in, dst_n = dst_len - out;

		hint = LZ4F_decompress(d->dctx, dst + out, &dst_n, src + in, &src_n, NULL);
		if (LZ4F_isError(hint)) {
			/* Only the error's name is stable API (the codes are "static linking
			 * only"): ERROR_contentChecksum_invalid, ERROR_blockChecksum_invalid. */
			*ret_why = strstr(LZ4F_getErrorName(hint), "Checksum_invalid") ?
					   "an LZ4 frame that fails its checksum" :
					   "a corrupt LZ4 frame";
			return -EBADMSG;
		}
		in += src_n;
		out += dst_n;
		if (hint != 0 && src_n == 0 && dst_n == 0) {
			*ret_why =
				in == src_len ?
					"an LZ4 frame cut short by the chunk's stored length" :
					"an LZ4 frame holding more bytes than its chunk header says";
			return -EBADMSG;
		}
	}
	if (in != src_len) {
		*ret_why = "bytes after the LZ4 frame within the chunk's stored length";
		return -EBADMSG;
	}
	if (out != dst_len) {
		*ret_why = "an LZ4 frame holding fewer bytes than its chunk header says";
		return -EBADMSG;
	}
	return 0;
}

void xet_chunk_regroup(const uint8_t *planes, size_t n, uint8_t *out)
{
	size_t base = n / 4, extra = n % 4, start = 0;

	for (size_t k = 0; k < 4; k++) {
		size_t len = base + (k < extra);

		for (size_t j = 0; j < len; j++)
			out[4 * j + k] = planes[start + j];
		start += len;
	}
}

int xet_chunk_decode(struct xet_chunk_decoder *d, const uint8_t *p, size_t len, uint8_t *out,
		     size_t out_cap, size_t *ret_used, size_t *ret_raw_len, const char **ret_why)
{
	struct xet_chunk_header h;
	const uint8_t *stored = p + XET_CHUNK_HEADER_LEN;
	int r = xet_chunk_header_parse(p, len, &h, ret_why);

	if (r < 0)
		return r;
	*ret_used = XET_CHUNK_HEADER_LEN + (size_t)h.stored_len;
	if (len < *ret_used)
		return -EAGAIN;
	if (out_cap < h.raw_len)
		return -ENOSPC;
	switch (h.scheme) {
	case XET_CHUNK_NONE:
		memcpy(out, stored, h.raw_len);
		break;
	case XET_CHUNK_LZ4:
		r = lz4_frame(d, stored, h.stored_len, out, h.raw_len, ret_why);
		break;
	case XET_CHUNK_BG4_LZ4:
		r = lz4_frame(d, stored, h.stored_len, d->planes, h.raw_len, ret_why);
		if (r == 0)
			xet_chunk_regroup(d->planes, h.raw_len, out);
		break;
	}
	if (r < 0)
		return r;
	*ret_raw_len = h.raw_len;
	return 0;
}

struct xet_chunk_stream {
	struct xet_chunk_decoder *dec;
	xet_chunk_fn fn;
	void *ud;
	uint64_t n_chunks, done; /* chunks expected, chunks handed on */
	int error; /* the first error; nothing is taken after it */
	const char *why;
	size_t held; /* bytes of a cut chunk in buf */
	uint8_t buf[XET_CHUNK_HEADER_LEN + XET_CHUNK_MAX];
	uint8_t raw[XET_CHUNK_MAX];
};

int xet_chunk_stream_new(uint64_t n_chunks, xet_chunk_fn fn, void *ud,
			 struct xet_chunk_stream **ret)
{
	struct xet_chunk_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	if (xet_chunk_decoder_new(&s->dec) < 0) {
		free(s);
		return -ENOMEM;
	}
	s->fn = fn;
	s->ud = ud;
	s->n_chunks = n_chunks;
	*ret = s;
	return 0;
}

struct xet_chunk_stream *xet_chunk_stream_free(struct xet_chunk_stream *s)
{
	if (s) {
		xet_chunk_decoder_free(s->dec);
		free(s);
	}
	return NULL;
}

static int stream_fail(struct xet_chunk_stream *s, int err, const char *why, const char **ret_why)
{
	s->error = err;
	s->why = why;
	if (why)
		*ret_why = why;
	return err;
}

/* Decodes the chunk at the front of p (len bytes): 0 and *ret_used when whole, -EAGAIN when
 * cut short, else the error. */
static int stream_one(struct xet_chunk_stream *s, const uint8_t *p, size_t len, size_t *ret_used,
		      const char **ret_why)
{
	size_t raw = 0;
	int r;

	if (s->done == s->n_chunks)
		return stream_fail(s, -EBADMSG, "bytes after the last chunk of the range", ret_why);
	r = xet_chunk_decode(s->dec, p, len, s->raw, sizeof(s->raw), ret_used, &raw, ret_why);
	if (r == -EAGAIN)
		return r;
	if (r < 0)
		return stream_fail(s, r, *ret_why, ret_why);
	r = s->fn(s->ud, s->done, s->raw, raw);
	if (r < 0)
		return stream_fail(s, r, NULL, ret_why);
	s->done++;
	return 0;
}

int xet_chunk_stream_feed(struct xet_chunk_stream *s, const void *data, size_t len,
			  const char **ret_why)
{
	const uint8_t *p = data;
	size_t used;
	int r;

	if (s->error) {
		if (s->why)
			*ret_why = s->why;
		return s->error;
	}
	/* First complete a chunk cut by the last piece: take just what it lacks. */
	while (s->held && len) {
		size_t want = XET_CHUNK_HEADER_LEN, n;

		if (s->held >= XET_CHUNK_HEADER_LEN) {
			struct xet_chunk_header h;

			/* Parsed (and refused) already when the header first became whole. */
			(void)xet_chunk_header_parse(s->buf, s->held, &h, ret_why);
			want += h.stored_len;
		}
		n = MIN(want - s->held, len);
		memcpy(s->buf + s->held, p, n);
		s->held += n;
		p += n;
		len -= n;
		r = stream_one(s, s->buf, s->held, &used, ret_why);
		if (r == 0)
			s->held = 0;
		else if (r != -EAGAIN)
			return r;
	}
	/* Then whole chunks straight from the piece, without a copy. */
	while (len) {
		r = stream_one(s, p, len, &used, ret_why);
		if (r == -EAGAIN) {
			memcpy(s->buf, p, len);
			s->held = len;
			return 0;
		}
		if (r < 0)
			return r;
		p += used;
		len -= used;
	}
	return 0;
}

int xet_chunk_stream_end(struct xet_chunk_stream *s, const char **ret_why)
{
	if (s->error) {
		if (s->why)
			*ret_why = s->why;
		return s->error;
	}
	if (s->held)
		return stream_fail(s, -EBADMSG, "a range that ends inside a chunk", ret_why);
	if (s->done != s->n_chunks)
		return stream_fail(s, -EBADMSG, "a range that ends short of its chunks", ret_why);
	return 0;
}
