/* test_xet_chunk.c: chunk headers and their limits, chunks stored as they are, as LZ4 frames
 * (made here by liblz4's own compressor) and byte-grouped then LZ4, a run of chunks walked in
 * order, and every malformed chunk refused with its words: a truncated or overlong frame,
 * bytes after it, a wrong length in the header, a failed frame checksum. */
#include "fetch/xet_chunk.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <lz4frame.h>

#include "tests/unit/check.h"
#include "util/cleanup.h"

static uint8_t out[XET_CHUNK_MAX];

static void put_header(uint8_t *p, uint32_t stored, uint8_t scheme, uint32_t raw)
{
	p[0] = 0;
	p[1] = (uint8_t)stored, p[2] = (uint8_t)(stored >> 8), p[3] = (uint8_t)(stored >> 16);
	p[4] = scheme;
	p[5] = (uint8_t)raw, p[6] = (uint8_t)(raw >> 8), p[7] = (uint8_t)(raw >> 16);
}

/* A chunk of data by scheme into buf (checksums on when sum); returns its length. */
static size_t make_chunk(uint8_t *buf, size_t cap, const uint8_t *data, size_t n, uint8_t scheme,
			 bool sum)
{
	LZ4F_preferences_t prefs = { .frameInfo.contentChecksumFlag =
					     sum ? LZ4F_contentChecksumEnabled :
						   LZ4F_noContentChecksum };
	uint8_t grouped[XET_CHUNK_MAX];
	size_t stored;

	if (scheme == XET_CHUNK_NONE) {
		memcpy(buf + XET_CHUNK_HEADER_LEN, data, n);
		stored = n;
	} else {
		if (scheme == XET_CHUNK_BG4_LZ4) {
			/* The spec's grouping: plane k holds bytes k, k+4, ... */
			size_t o = 0;

			for (size_t k = 0; k < 4; k++)
				for (size_t i = k; i < n; i += 4)
					grouped[o++] = data[i];
			data = grouped;
		}
		stored = LZ4F_compressFrame(buf + XET_CHUNK_HEADER_LEN, cap - XET_CHUNK_HEADER_LEN,
					    data, n, &prefs);
		ASSERT_FALSE(LZ4F_isError(stored));
	}
	put_header(buf, (uint32_t)stored, scheme, (uint32_t)n);
	return XET_CHUNK_HEADER_LEN + stored;
}

static uint8_t *pattern(size_t n)
{
	static uint8_t b[XET_CHUNK_MAX];

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)((i / 7) ^ (i % 4 == 0 ? 0x80 : 0));
	return b;
}

/* Decodes buf and expects err (0 or -errno) and, on -EBADMSG, words containing why. */
static void expect(struct xet_chunk_decoder *d, const uint8_t *buf, size_t len, int err,
		   const char *why)
{
	size_t used = 0, raw = 0;
	const char *w = NULL;
	int r = xet_chunk_decode(d, buf, len, out, sizeof(out), &used, &raw, &w);

	ASSERT_EQ(r, err);
	if (why) {
		ASSERT_NOT_NULL(w);
		if (!strstr(w, why))
			CHECK_FAIL("words \"%s\" lack \"%s\"", w, why);
	}
}

static void test_header_limits(void)
{
	uint8_t h[8];
	struct xet_chunk_header hd;
	const char *why = NULL;

	put_header(h, 1000, XET_CHUNK_LZ4, 4000);
	ASSERT_OK(xet_chunk_header_parse(h, 8, &hd, &why));
	ASSERT_EQ(hd.stored_len, 1000);
	ASSERT_EQ(hd.raw_len, 4000);
	ASSERT_EQ(hd.scheme, XET_CHUNK_LZ4);
	ASSERT_EQ(xet_chunk_header_parse(h, 7, &hd, &why), -EAGAIN);
	put_header(h, XET_CHUNK_MAX, XET_CHUNK_NONE, XET_CHUNK_MAX);
	ASSERT_OK(xet_chunk_header_parse(h, 8, &hd, &why));

	h[0] = 1;
	ASSERT_EQ(xet_chunk_header_parse(h, 8, &hd, &why), -EBADMSG);
	ASSERT_TRUE(strstr(why, "version") != NULL);
	put_header(h, 10, 3, 10);
	ASSERT_EQ(xet_chunk_header_parse(h, 8, &hd, &why), -EBADMSG);
	ASSERT_TRUE(strstr(why, "scheme") != NULL);
	put_header(h, 0, XET_CHUNK_LZ4, 10);
	ASSERT_EQ(xet_chunk_header_parse(h, 8, &hd, &why), -EBADMSG);
	ASSERT_TRUE(strstr(why, "length of 0") != NULL);
	put_header(h, 10, XET_CHUNK_LZ4, 0);
	ASSERT_EQ(xet_chunk_header_parse(h, 8, &hd, &why), -EBADMSG);
	put_header(h, 10, XET_CHUNK_LZ4, XET_CHUNK_MAX + 1);
	ASSERT_EQ(xet_chunk_header_parse(h, 8, &hd, &why), -EBADMSG);
	ASSERT_TRUE(strstr(why, "128 KiB") != NULL);
	put_header(h, XET_CHUNK_MAX + 1, XET_CHUNK_LZ4, 10);
	ASSERT_EQ(xet_chunk_header_parse(h, 8, &hd, &why), -EBADMSG);
	put_header(h, 10, XET_CHUNK_NONE, 11);
	ASSERT_EQ(xet_chunk_header_parse(h, 8, &hd, &why), -EBADMSG);
	ASSERT_TRUE(strstr(why, "differ") != NULL);
}

static void round_trip(struct xet_chunk_decoder *d, uint8_t scheme, size_t n)
{
	static uint8_t buf[2 * XET_CHUNK_MAX];
	const uint8_t *data = pattern(n);
	size_t len = make_chunk(buf, sizeof(buf), data, n, scheme, true), used = 0, raw = 0;
	const char *why = NULL;

	ASSERT_OK(xet_chunk_decode(d, buf, len, out, sizeof(out), &used, &raw, &why));
	ASSERT_U64_EQ(used, len);
	ASSERT_U64_EQ(raw, n);
	ASSERT_TRUE(memcmp(out, data, n) == 0);
	/* Short of its last byte the chunk is incomplete, not malformed. */
	ASSERT_EQ(xet_chunk_decode(d, buf, len - 1, out, sizeof(out), &used, &raw, &why), -EAGAIN);
	ASSERT_U64_EQ(used, len);
	ASSERT_EQ(xet_chunk_decode(d, buf, len, out, n - 1, &used, &raw, &why), -ENOSPC);
}

static void test_round_trips(void)
{
	struct xet_chunk_decoder *d = NULL;
	const size_t sizes[] = { 1, 3, 4, 5, 10, 4099, 65536, XET_CHUNK_MAX };

	ASSERT_OK(xet_chunk_decoder_new(&d));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		round_trip(d, XET_CHUNK_NONE, sizes[i]);
		round_trip(d, XET_CHUNK_LZ4, sizes[i]);
		round_trip(d, XET_CHUNK_BG4_LZ4, sizes[i]);
	}
	d = xet_chunk_decoder_free(d);
}

static void test_regroup(void)
{
	/* The spec's example: [1..6] grouped is 01 05 02 06 03 04; 10 bytes make planes 3,3,2,2. */
	const uint8_t g6[] = { 1, 5, 2, 6, 3, 4 };
	const uint8_t g10[] = { 0, 4, 8, 1, 5, 9, 2, 6, 3, 7 };
	uint8_t o[10];

	xet_chunk_regroup(g6, 6, o);
	for (int i = 0; i < 6; i++)
		ASSERT_EQ(o[i], i + 1);
	xet_chunk_regroup(g10, 10, o);
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(o[i], i);
}

static void test_malformed_frames(void)
{
	static uint8_t buf[2 * XET_CHUNK_MAX], bad[2 * XET_CHUNK_MAX];
	struct xet_chunk_decoder *d = NULL;
	const size_t n = 20000;
	size_t len = make_chunk(buf, sizeof(buf), pattern(n), n, XET_CHUNK_LZ4, true);
	uint32_t stored = (uint32_t)(len - XET_CHUNK_HEADER_LEN);

	ASSERT_OK(xet_chunk_decoder_new(&d));
	/* The header claims one byte more, or one less, than the frame holds. */
	memcpy(bad, buf, len);
	put_header(bad, stored, XET_CHUNK_LZ4, (uint32_t)n + 1);
	expect(d, bad, len, -EBADMSG, "fewer bytes");
	put_header(bad, stored, XET_CHUNK_LZ4, (uint32_t)n - 1);
	expect(d, bad, len, -EBADMSG, "more bytes");
	/* The header's stored length ends the frame early, or leaves a byte after it. */
	put_header(bad, stored - 1, XET_CHUNK_LZ4, (uint32_t)n);
	expect(d, bad, len, -EBADMSG, "cut short");
	put_header(bad, stored + 1, XET_CHUNK_LZ4, (uint32_t)n);
	bad[len] = 0;
	expect(d, bad, len + 1, -EBADMSG, "after the LZ4 frame");
	/* A flipped literal byte: the content checksum catches it. The frame ends with the
	 * 4-byte end mark and the 4-byte checksum; flip a byte well inside the block. */
	memcpy(bad, buf, len);
	bad[len - 200] ^= 0x01;
	expect(d, bad, len, -EBADMSG, "LZ4 frame");
	/* Not a frame at all (a raw block or garbage). */
	memcpy(bad, buf, len);
	bad[XET_CHUNK_HEADER_LEN] ^= 0xff;
	expect(d, bad, len, -EBADMSG, "corrupt LZ4 frame");
	/* After all that, the same decoder still decodes a good chunk. */
	expect(d, buf, len, 0, NULL);
	d = xet_chunk_decoder_free(d);
}

static void test_checksum_words(void)
{
	static uint8_t buf[2 * XET_CHUNK_MAX];
	struct xet_chunk_decoder *d = NULL;
	const size_t n = 3000;
	size_t len = make_chunk(buf, sizeof(buf), pattern(n), n, XET_CHUNK_LZ4, true);

	ASSERT_OK(xet_chunk_decoder_new(&d));
	/* The last 4 bytes are the content checksum itself. */
	buf[len - 1] ^= 0x01;
	expect(d, buf, len, -EBADMSG, "checksum");
	d = xet_chunk_decoder_free(d);
}

static void test_run_of_chunks(void)
{
	static uint8_t buf[4 * XET_CHUNK_MAX];
	struct xet_chunk_decoder *d = NULL;
	const uint8_t schemes[] = { XET_CHUNK_LZ4, XET_CHUNK_NONE, XET_CHUNK_BG4_LZ4,
				    XET_CHUNK_LZ4 };
	const size_t sizes[] = { 65536, 777, 40001, 12 };
	size_t len = 0, off = 0;

	ASSERT_OK(xet_chunk_decoder_new(&d));
	for (int i = 0; i < 4; i++)
		len += make_chunk(buf + len, sizeof(buf) - len, pattern(sizes[i]), sizes[i],
				  schemes[i], false);
	for (int i = 0; i < 4; i++) {
		size_t used = 0, raw = 0;
		const char *why = NULL;

		ASSERT_OK(xet_chunk_decode(d, buf + off, len - off, out, sizeof(out), &used, &raw,
					   &why));
		ASSERT_U64_EQ(raw, sizes[i]);
		ASSERT_TRUE(memcmp(out, pattern(sizes[i]), sizes[i]) == 0);
		off += used;
	}
	ASSERT_U64_EQ(off, len);
	d = xet_chunk_decoder_free(d);
}

/* What a stream handed on: the chunks' bytes back to back, and how many. */
struct collected {
	uint8_t bytes[4 * XET_CHUNK_MAX];
	size_t len;
	uint64_t chunks;
	uint64_t fail_at; /* fn fails at this index (-EIO); UINT64_MAX never */
};

static int collect(void *ud, uint64_t index, const uint8_t *raw, size_t len)
{
	struct collected *c = ud;

	ASSERT_U64_EQ(index, c->chunks);
	if (index == c->fail_at)
		return -EIO;
	memcpy(c->bytes + c->len, raw, len);
	c->len += len;
	c->chunks++;
	return 0;
}

/* Four chunks of the three schemes into buf; their raw bytes into raw. */
static size_t make_run(uint8_t *buf, size_t cap, uint8_t *raw, size_t *ret_raw_len)
{
	const uint8_t schemes[] = { XET_CHUNK_LZ4, XET_CHUNK_NONE, XET_CHUNK_BG4_LZ4,
				    XET_CHUNK_LZ4 };
	const size_t sizes[] = { 65536, 777, 40001, XET_CHUNK_MAX };
	size_t len = 0, rl = 0;

	for (int i = 0; i < 4; i++) {
		len += make_chunk(buf + len, cap - len, pattern(sizes[i]), sizes[i], schemes[i],
				  i == 3);
		memcpy(raw + rl, pattern(sizes[i]), sizes[i]);
		rl += sizes[i];
	}
	*ret_raw_len = rl;
	return len;
}

static void test_stream_pieces(void)
{
	static uint8_t buf[5 * XET_CHUNK_MAX], raw[4 * XET_CHUNK_MAX];
	static struct collected c;
	const size_t pieces[] = { 1, 2, 7, 8, 9, 100, 4096, 65544, 1 << 20 };
	size_t raw_len, len = make_run(buf, sizeof(buf), raw, &raw_len);

	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		struct xet_chunk_stream *s = NULL;
		const char *why = NULL;

		memset(&c, 0, sizeof(c));
		c.fail_at = UINT64_MAX;
		ASSERT_OK(xet_chunk_stream_new(4, collect, &c, &s));
		for (size_t off = 0; off < len; off += pieces[i])
			ASSERT_OK(xet_chunk_stream_feed(s, buf + off, MIN(pieces[i], len - off),
							&why));
		ASSERT_OK(xet_chunk_stream_end(s, &why));
		ASSERT_U64_EQ(c.chunks, 4);
		ASSERT_U64_EQ(c.len, raw_len);
		ASSERT_TRUE(memcmp(c.bytes, raw, raw_len) == 0);
		s = xet_chunk_stream_free(s);
	}
}

/* Feeds buf[0, len) to a stream of n chunks in pieces of 1000 and expects err with words. */
static void stream_expect(const uint8_t *buf, size_t len, uint64_t n, uint64_t fail_at, int err,
			  const char *words)
{
	static struct collected c;
	struct xet_chunk_stream *s = NULL;
	const char *why = NULL;
	int r = 0;

	memset(&c, 0, sizeof(c));
	c.fail_at = fail_at;
	ASSERT_OK(xet_chunk_stream_new(n, collect, &c, &s));
	for (size_t off = 0; off < len && r == 0; off += 1000)
		r = xet_chunk_stream_feed(s, buf + off, MIN(1000, len - off), &why);
	if (r == 0)
		r = xet_chunk_stream_end(s, &why);
	ASSERT_EQ(r, err);
	if (words && (!why || !strstr(why, words)))
		CHECK_FAIL("words \"%s\" lack \"%s\"", why ? why : "(none)", words);
	/* Nothing more is taken after an error. */
	ASSERT_EQ(xet_chunk_stream_feed(s, buf, 1, &why), err);
	xet_chunk_stream_free(s);
}

static void test_stream_errors(void)
{
	static uint8_t buf[5 * XET_CHUNK_MAX], raw[4 * XET_CHUNK_MAX];
	size_t raw_len, len = make_run(buf, sizeof(buf), raw, &raw_len);

	static uint8_t bad[5 * XET_CHUNK_MAX];
	size_t first = XET_CHUNK_HEADER_LEN + (buf[1] | buf[2] << 8 | (size_t)buf[3] << 16);

	/* One chunk more than asked for, or one fewer. */
	stream_expect(buf, len, 3, UINT64_MAX, -EBADMSG, "after the last chunk");
	stream_expect(buf, len, 5, UINT64_MAX, -EBADMSG, "short of its chunks");
	/* The range ends inside a chunk's data, or inside the next one's header. */
	stream_expect(buf, len - 1, 4, UINT64_MAX, -EBADMSG, "inside a chunk");
	stream_expect(buf, first + 3, 2, UINT64_MAX, -EBADMSG, "inside a chunk");
	/* A corrupt chunk in the middle (the second chunk's header says version 1). */
	memcpy(bad, buf, len);
	bad[first] = 1;
	stream_expect(bad, len, 4, UINT64_MAX, -EBADMSG, "version");
	/* The consumer's error stops the stream with its errno. */
	stream_expect(buf, len, 4, 2, -EIO, NULL);
}

int main(void)
{
	RUN(test_header_limits);
	RUN(test_round_trips);
	RUN(test_regroup);
	RUN(test_malformed_frames);
	RUN(test_checksum_words);
	RUN(test_run_of_chunks);
	RUN(test_stream_pieces);
	RUN(test_stream_errors);
	return 0;
}
