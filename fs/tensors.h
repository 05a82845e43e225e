/* tensors.h: tensor-aware read-ahead, a policy over sched. Model files are read a tensor at a
 * time (a loader's read of one tensor, or an mmap whose pages fault in tensor order), so when
 * a read lands in a tensor the rest of that tensor is wanted at once, then the next tensors in
 * file order. This file knows where the tensors of a safetensors file lie (its header: 8 bytes
 * of little-endian length, then JSON whose entries give "data_offsets" relative to the data
 * that follows) and asks sched for the rest of the tensor a read is in, in pieces of a few MiB
 * at read-ahead priority, so that they arrive over several connections at once.
 * A header is untrusted input: what it says only steers read-ahead (sched still serves the
 * file's bytes or an error), and a header that cannot be parsed turns the policy off for that
 * file. FUSE worker threads; it never waits on the network. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "fs/inode.h"
#include "fs/sched.h"

/* The bytes [begin, end) of one tensor, absolute in its file. */
struct tensor_span {
	uint64_t begin, end;
};

/* Headers longer than this are not read (the safetensors format caps them at 100 MB). */
#define TENSORS_HEADER_MAX (100ULL << 20)

/* Parses the JSON of a safetensors header (json, len bytes, not NUL-terminated) of a file of
 * file_size bytes whose tensor data starts at data_start: every "data_offsets": [b, e] pair
 * becomes the span [data_start + b, data_start + e). Empty tensors are left out. The spans
 * are sorted by begin into *ret (malloc'd, the caller frees; NULL when there are none) and
 * their count into *ret_n. -EBADMSG when a pair is not two integers with b <= e that fit in
 * the file, or when the text is not one JSON object (its braces and brackets, outside strings,
 * must close the first one at the last byte that is not a space); -ENOMEM. */
int tensors_parse_safetensors(const char *json, size_t len, uint64_t data_start, uint64_t file_size,
			      struct tensor_span **ret, size_t *ret_n);

/* What to fetch ahead of a read of [offset, offset+len) among sorted, disjoint spans v: from
 * the read's end to the end of the tensor it lands in (when it starts in one and runs on into
 * the next, the last it reaches: the kernel's reads are page-aligned), or on into the next tensors when that
 * is less than min_ahead, until min_ahead; at most max_ahead. False (nothing to plan) when the
 * read is in no tensor or at the end of the last one. */
bool tensors_window(const struct tensor_span *v, size_t n, uint64_t offset, uint64_t len,
		    uint64_t min_ahead, uint64_t max_ahead, uint64_t *ret_off, uint64_t *ret_len);

struct tensors;

struct tensors_opts {
	uint64_t piece; /* bytes per fetch; 0 -> 4 MiB */
	uint64_t min_ahead; /* 0 -> 16 MiB */
	uint64_t max_ahead; /* 0 -> 512 MiB */
};

/* A mount's policy: s is borrowed and must outlive it. NULL on OOM. */
struct tensors *tensors_new(struct sched *s, const struct tensors_opts *o);
/* Takes NULL; returns NULL. */
struct tensors *tensors_free(struct tensors *t);

/* A read of [offset, offset+len) of f arrived (a read() or a page fault): when f is a
 * safetensors file and the read lands in a tensor and does not continue the file's last read
 * (a seek: a loader going to one tensor, or a page fault away from the last), asks sched to fetch the window
 * tensors_window() plans at read-ahead priority. The first read of a file whose header is in
 * the cache parses it (local disk only); until then, and for other files, it does nothing.
 * Any thread; never blocks on the network. */
void tensors_read(struct tensors *t, const struct inode *f, uint64_t offset, uint64_t len);

/* Where sequential read-ahead (fs/readahead.c) of f should stop for a read at offset: the end
 * of the window planned by the last read of f that jumped more than 32 MiB (a reader going to
 * a tensor; a sequential reader's reads arrive out of order, but not that far apart), while
 * the read lies before that window's end or up to 32 MiB past it (the kernel's own
 * read-ahead) and the window's bytes are not all in the cache; else UINT64_MAX (no limit; also for t NULL). Read-ahead
 * past a tensor the reader waits for would share the link with the tensor's last pieces (the
 * bench's first tensor came 0.3-0.6 s later for it). Any thread; never blocks on the
 * network. */
uint64_t tensors_readahead_limit(struct tensors *t, const struct inode *f, uint64_t offset);
