/* xet_chunk.h: the chunks of a xorb, as a CAS serves them in a byte range: an 8-byte header
 * (version 0, stored length u24 LE, scheme, raw length u24 LE) then the stored bytes, kept
 * as they are (none), as one LZ4 frame (lz4), or as one LZ4 frame of the bytes split into 4
 * planes (byte grouping); spec xorb.md, draft-denis-xet §6. Decoding checks every length
 * against the header, the spec's limits and the bytes at hand, and says what is wrong in
 * words. A decoder is used by one thread at a time; no I/O. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define XET_CHUNK_HEADER_LEN 8
/* The spec's limit on a chunk's raw bytes (and on its stored ones): 128 KiB. */
#define XET_CHUNK_MAX (128U * 1024)

enum xet_chunk_scheme {
	XET_CHUNK_NONE = 0,
	XET_CHUNK_LZ4 = 1,
	XET_CHUNK_BG4_LZ4 = 2,
};

struct xet_chunk_header {
	uint32_t stored_len; /* bytes after the header: 1..XET_CHUNK_MAX */
	uint32_t raw_len; /* bytes it decodes to: 1..XET_CHUNK_MAX; stored_len for none */
	enum xet_chunk_scheme scheme;
};

/* Parses the header at the front of the len bytes at p. Returns 0; -EAGAIN when len is under
 * XET_CHUNK_HEADER_LEN (more bytes may come); -EBADMSG when the header breaks the spec (an
 * unknown version or scheme, a length of 0 or over XET_CHUNK_MAX, none with stored_len !=
 * raw_len), with *ret_why (a static string) saying how. */
int xet_chunk_header_parse(const uint8_t *p, size_t len, struct xet_chunk_header *ret,
			   const char **ret_why);

struct xet_chunk_decoder;

/* A decoder (an LZ4 frame context and a plane buffer). -ENOMEM. */
int xet_chunk_decoder_new(struct xet_chunk_decoder **ret);
/* Takes NULL, returns NULL. */
struct xet_chunk_decoder *xet_chunk_decoder_free(struct xet_chunk_decoder *d);

/* Decodes the chunk at the front of the len bytes at p into out (out_cap bytes; XET_CHUNK_MAX
 * always suffices). On success returns 0, *ret_used is the chunk's bytes in p (header and
 * stored bytes) and *ret_raw_len the bytes written to out. -EAGAIN when p holds only part of
 * the chunk (nothing is written; *ret_used, when the header is whole, is the length that
 * would hold it). -EBADMSG when the chunk is malformed, with *ret_why saying how: a bad
 * header, an LZ4 frame that is corrupt, fails its checksum, ends early, holds more or fewer
 * bytes than the header says or is followed by other bytes. -ENOSPC when out_cap is under the
 * header's raw length. */
int xet_chunk_decode(struct xet_chunk_decoder *d, const uint8_t *p, size_t len, uint8_t *out,
		     size_t out_cap, size_t *ret_used, size_t *ret_raw_len, const char **ret_why);

/* Byte grouping undone: n bytes stored as 4 planes (plane k holds bytes k, k+4, ...; the first
 * n % 4 planes one byte longer) back in order into out. Exposed for tests. */
void xet_chunk_regroup(const uint8_t *planes, size_t n, uint8_t *out);

/* A run of chunks as it arrives from a xorb range, in pieces of any size: whole chunks are
 * decoded and handed on in order, a chunk cut between pieces waits for the rest (at most one
 * chunk, 8 + 128 KiB, is held). The range must hold exactly n_chunks chunks. One owner. */
struct xet_chunk_stream;

/* Called for each decoded chunk, index counted from the range's first chunk (0-based); the
 * bytes are valid during the call only. Returns 0, or -errno to stop the stream (that errno
 * is then what xet_chunk_stream_feed() returns). */
typedef int (*xet_chunk_fn)(void *ud, uint64_t index, const uint8_t *raw, size_t len);

/* A stream of n_chunks chunks (> 0) handed to fn. -ENOMEM. */
int xet_chunk_stream_new(uint64_t n_chunks, xet_chunk_fn fn, void *ud,
			 struct xet_chunk_stream **ret);
/* Takes NULL, returns NULL. */
struct xet_chunk_stream *xet_chunk_stream_free(struct xet_chunk_stream *s);
/* Feeds the next len bytes of the range. Returns 0; -EBADMSG (with *ret_why) for a malformed
 * chunk or bytes past the last chunk; fn's -errno. After an error the stream takes nothing
 * more. */
int xet_chunk_stream_feed(struct xet_chunk_stream *s, const void *data, size_t len,
			  const char **ret_why);
/* The range ended: 0 when exactly n_chunks chunks were decoded and nothing is left over;
 * -EBADMSG (with *ret_why) when it ended inside a chunk or short of its chunks. */
int xet_chunk_stream_end(struct xet_chunk_stream *s, const char **ret_why);
