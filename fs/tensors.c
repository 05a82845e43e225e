/* tensors.c: tensor-aware read-ahead: where the tensors of a safetensors file lie (parsed from
 * its header once it is in the cache), and what a read that lands in one asks sched to fetch.
 * FUSE worker threads; it reads the cache through sched_pread() and fetches through
 * sched_prefetch(), never under its own lock. It knows nothing of FUSE. */
#include "fs/tensors.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"

#define TENSORS_PIECE_DEFAULT (4ULL << 20)
#define TENSORS_MIN_AHEAD_DEFAULT (16ULL << 20)
#define TENSORS_MAX_AHEAD_DEFAULT (512ULL << 20)

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_space(const char *s, size_t len, size_t i)
{
	while (i < len && is_space(s[i]))
		i++;
	return i;
}

/* An unsigned decimal integer at s[*i]: true with its value, *i after it. */
static bool scan_u64(const char *s, size_t len, size_t *i, uint64_t *ret)
{
	uint64_t v = 0;
	size_t k = *i;

	if (k >= len || s[k] < '0' || s[k] > '9')
		return false;
	for (; k < len && s[k] >= '0' && s[k] <= '9'; k++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[k] - '0');
	}
	*i = k;
	*ret = v;
	return true;
}

/* After the key "data_offsets" (at s[i]): `: [b, e]`. 1 with the pair, 0 when the key is
 * followed by something else (a tensor may be named data_offsets), -EBADMSG when the array is
 * not two integers. */
static int scan_pair(const char *s, size_t len, size_t i, uint64_t *ret_b, uint64_t *ret_e)
{
	i = skip_space(s, len, i);
	if (i >= len || s[i] != ':')
		return 0;
	i = skip_space(s, len, i + 1);
	if (i >= len || s[i] != '[')
		return 0;
	i = skip_space(s, len, i + 1);
	if (!scan_u64(s, len, &i, ret_b))
		return -EBADMSG;
	i = skip_space(s, len, i);
	if (i >= len || s[i] != ',')
		return -EBADMSG;
	i = skip_space(s, len, i + 1);
	if (!scan_u64(s, len, &i, ret_e))
		return -EBADMSG;
	i = skip_space(s, len, i);
	return i < len && s[i] == ']' ? 1 : -EBADMSG;
}

static int span_cmp(const void *a, const void *b)
{
	const struct tensor_span *x = a, *y = b;

	return x->begin < y->begin ? -1 : x->begin > y->begin;
}

int tensors_parse_safetensors(const char *json, size_t len, uint64_t data_start, uint64_t file_size,
			      struct tensor_span **ret, size_t *ret_n)
{
	static const char key[] = "data_offsets";
	_cleanup_free_ struct tensor_span *v = NULL;
	size_t n = 0, cap = 0, i, end = len, depth = 0;

	*ret = NULL;
	*ret_n = 0;
	if (data_start > file_size)
		return -EBADMSG;
	/* The format pads the header with spaces. */
	while (end && is_space(json[end - 1]))
		end--;
	i = skip_space(json, end, 0);
	if (i >= end || json[i] != '{' || json[end - 1] != '}')
		return -EBADMSG;
	while (i < end) {
		size_t from;
		uint64_t b, e;
		int r;

		if (json[i] == '{' || json[i] == '[')
			depth++;
		else if ((json[i] == '}' || json[i] == ']') &&
			 (!depth-- || (!depth && i + 1 < end)))
			return -EBADMSG; /* closes more than it opened, or before the end */
		if (json[i++] != '"')
			continue;
		/* A string: find its closing quote, stepping over escapes. */
		for (from = i; i < end && json[i] != '"'; i++)
			if (json[i] == '\\')
				i++;
		if (i >= end)
			return -EBADMSG;
		i++;
		if (i - 1 - from != sizeof(key) - 1 || memcmp(json + from, key, sizeof(key) - 1))
			continue;
		r = scan_pair(json, end, i, &b, &e);
		if (r < 0)
			return r;
		if (r == 0)
			continue;
		if (b > e || e > file_size - data_start)
			return -EBADMSG;
		if (b == e)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct tensor_span *nv = reallocarray(v, ncap, sizeof(*v));

			if (!nv)
				return -ENOMEM;
			v = nv;
			cap = ncap;
		}
		v[n++] = (struct tensor_span){ data_start + b, data_start + e };
	}
	if (depth)
		return -EBADMSG;
	if (n)
		qsort(v, n, sizeof(*v), span_cmp);
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

bool tensors_window(const struct tensor_span *v, size_t n, uint64_t offset, uint64_t len,
		    uint64_t min_ahead, uint64_t max_ahead, uint64_t *ret_off, uint64_t *ret_len)
{
	size_t lo = 0, hi = n;
	uint64_t from = offset + len, to;

	/* The last span that begins at or before offset. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].begin <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || offset >= v[lo - 1].end)
		return false;
	/* A read that runs on into the next tensors is a reader there: the kernel's reads are
	 * page-aligned, so a loader's first read of a tensor starts in the one before. */
	for (lo--; lo + 1 < n && v[lo + 1].begin < from; lo++)
		;
	to = v[lo].end;
	/* Past the read's tensor, min_ahead at most: the next tensor may be large, and its
	 * pieces would take the link from the ones the reader waits for. */
	if (to < from + min_ahead && lo + 1 < n)
		to = MIN(from + min_ahead, v[n - 1].end);
	to = MIN(to, from + max_ahead);
	if (to <= from)
		return false;
	*ret_off = from;
	*ret_len = to - from;
	return true;
}

/* One file's tensors, once looked at. All but last_end immutable after it is published. */
struct tfile {
	uint64_t ino;
	bool parsed; /* false: not a safetensors file we can read; spans stay NULL */
	struct tensor_span *spans;
	size_t n;
	uint64_t last_end; /* t->lock: where the last read of the file ended */
	/* t->lock: [held_from, held_to) is the window the last seek planned, while its bytes are
	 * not all in the cache (held_to 0: none); sequential read-ahead stops at held_to. */
	uint64_t held_from, held_to;
};

/* Reads within this of where the last one ended continue it (the kernel's async reads arrive
 * a little out of order), as in fs/readahead.c. */
#define TENSORS_SLACK (2ULL << 20)

/* Reads this far past a held window still find read-ahead held: the kernel's own read-ahead
 * (fs/session.c: 16 MiB windows, the next one asked when the last is half read) runs that far
 * ahead of the reader. */
#define TENSORS_HOLD_PAST (32ULL << 20)

struct tensors {
	struct sched *s;
	struct tensors_opts o;
	pthread_mutex_t lock; /* innermost: guards files and nfiles; no call out under it */
	struct tfile **files; /* sorted by ino */
	size_t nfiles, cap;
};

struct tensors *tensors_new(struct sched *s, const struct tensors_opts *o)
{
	struct tensors *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->s = s;
	if (o)
		t->o = *o;
	if (!t->o.piece)
		t->o.piece = TENSORS_PIECE_DEFAULT;
	if (!t->o.min_ahead)
		t->o.min_ahead = TENSORS_MIN_AHEAD_DEFAULT;
	if (!t->o.max_ahead)
		t->o.max_ahead = TENSORS_MAX_AHEAD_DEFAULT;
	pthread_mutex_init(&t->lock, NULL);
	return t;
}

struct tensors *tensors_free(struct tensors *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->nfiles; i++) {
		free(t->files[i]->spans);
		free(t->files[i]);
	}
	free(t->files);
	pthread_mutex_destroy(&t->lock);
	free(t);
	return NULL;
}

/* The index where ino is, or would go, in t->files. t->lock held. */
static size_t find_slot(const struct tensors *t, uint64_t ino)
{
	size_t lo = 0, hi = t->nfiles;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->files[mid]->ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* f's record, or NULL; *ret_seq: the read [offset, offset+len) continues the last one. */
static struct tfile *lookup(struct tensors *t, uint64_t ino, uint64_t offset, uint64_t len,
			    bool *ret_seq, bool *ret_far)
{
	struct tfile *tf = NULL;
	size_t i;

	pthread_mutex_lock(&t->lock);
	i = find_slot(t, ino);
	if (i < t->nfiles && t->files[i]->ino == ino) {
		tf = t->files[i];
		*ret_seq = tf->last_end && offset + TENSORS_SLACK >= tf->last_end &&
			   offset <= tf->last_end + TENSORS_SLACK;
		*ret_far = offset > tf->last_end + TENSORS_HOLD_PAST ||
			   offset + TENSORS_HOLD_PAST < tf->last_end;
		tf->last_end = MAX(tf->last_end, offset + len);
		if (!*ret_seq)
			tf->last_end = offset + len;
	}
	pthread_mutex_unlock(&t->lock);
	return tf;
}

/* Publishes tf (taken) and returns it; when another thread published f first, that one.
 * NULL when out of memory (tf is freed; a later read tries again). */
static struct tfile *publish(struct tensors *t, struct tfile *tf)
{
	struct tfile *kept = tf;
	size_t i;

	pthread_mutex_lock(&t->lock);
	i = find_slot(t, tf->ino);
	if (i < t->nfiles && t->files[i]->ino == tf->ino) {
		kept = t->files[i];
	} else {
		if (t->nfiles == t->cap) {
			size_t ncap = t->cap ? t->cap * 2 : 16;
			struct tfile **nv = reallocarray(t->files, ncap, sizeof(*nv));

			if (nv) {
				t->files = nv;
				t->cap = ncap;
			}
		}
		if (t->nfiles < t->cap) {
			memmove(t->files + i + 1, t->files + i,
				(t->nfiles - i) * sizeof(*t->files));
			t->files[i] = tf;
			t->nfiles++;
			tf = NULL;
		} else {
			kept = NULL;
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (tf) {
		free(tf->spans);
		free(tf);
	}
	return kept;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* Reads and parses f's header from the cache into a new record (*ret, taken by the caller):
 * parsed, or not (not a safetensors file, a header that does not parse or cannot be read).
 * -EAGAIN while some of the header is not in the cache yet; -ENOMEM. */
static int load(struct tensors *t, const struct inode *f, struct tfile **ret)
{
	_cleanup_free_ struct tfile *tf = calloc(1, sizeof(*tf));
	_cleanup_free_ char *json = NULL;
	uint64_t hlen = 0;
	uint8_t b[8];
	int r;

	if (!tf)
		return -ENOMEM;
	tf->ino = f->ino;
	if (!ends_with(f->path, ".safetensors") || f->size < 8)
		goto out_done;
	r = sched_pread(t->s, f, b, sizeof(b), 0);
	if (r == -EAGAIN)
		return r;
	if (r < 0)
		goto out_done;
	for (int k = 7; k >= 0; k--)
		hlen = hlen << 8 | b[k];
	if (hlen > TENSORS_HEADER_MAX || hlen > f->size - 8)
		goto out_done;
	json = malloc(hlen ? hlen : 1);
	if (!json)
		return -ENOMEM;
	r = sched_pread(t->s, f, json, hlen, 8);
	if (r == -EAGAIN)
		return r;
	if (r < 0)
		goto out_done;
	r = tensors_parse_safetensors(json, hlen, 8 + hlen, f->size, &tf->spans, &tf->n);
	if (r == -ENOMEM)
		return r;
	tf->parsed = r == 0;
out_done:
	*ret = TAKE_PTR(tf);
	return 0;
}

void tensors_read(struct tensors *t, const struct inode *f, uint64_t offset, uint64_t len)
{
	struct tfile *tf;
	uint64_t off, n;
	bool seq = false, far = false;

	if (!t)
		return;
	tf = lookup(t, f->ino, offset, len, &seq, &far);
	if (!tf) {
		struct tfile *fresh;

		/* -EAGAIN (the header is not in the cache yet) or -ENOMEM: a later read tries
		 * again. Two threads may both parse a file: publish() keeps the first. */
		if (load(t, f, &fresh) < 0)
			return;
		tf = publish(t, fresh);
		if (!tf)
			return;
		far = offset > TENSORS_HOLD_PAST; /* from the file's start */
	}
	/* A read that continues the last one needs nothing here: the window its first read
	 * planned covers it, and a sequential reader is served by fs/readahead.c and completion
	 * (the bench's model load ran at 0.8x with a window at every tensor of every shard). */
	if (seq || !tf->parsed ||
	    !tensors_window(tf->spans, tf->n, offset, len, t->o.min_ahead, t->o.max_ahead, &off,
			    &n))
		return;
	/* Only a jump farther than the kernel's read-ahead runs ahead of the reader is a reader
	 * going to a tensor: a sequential reader's reads arrive up to that far apart and out of
	 * order, and holding its read-ahead at each tensor's end left the link idle there (the
	 * bench's model load took 2-3% longer). */
	if (far) {
		/* A read into the window held already is the same reader's: the window grows.
		 * (The kernel's first read is page-aligned and may start in the tensor before the
		 * one sought: its window is that tensor's tail and the next 16 MiB.) */
		pthread_mutex_lock(&t->lock);
		if (tf->held_to && offset >= tf->held_from && offset < tf->held_to) {
			tf->held_to = MAX(tf->held_to, off + n);
		} else {
			tf->held_from = offset;
			tf->held_to = off + n;
		}
		pthread_mutex_unlock(&t->lock);
	} else {
		/* Nor does a window of its own go past a held one: the kernel's read-ahead reads
		 * past the sought tensor's end, out of order, before the tensor is in. */
		uint64_t limit = tensors_readahead_limit(t, f, offset);

		if (off >= limit)
			return;
		n = MIN(n, limit - off);
	}
	(void)sched_prefetch(t->s, f, off, n, t->o.piece, XFER_PRIO_READAHEAD);
}

uint64_t tensors_readahead_limit(struct tensors *t, const struct inode *f, uint64_t offset)
{
	uint64_t from = 0, to = 0;
	struct tfile *tf;
	size_t i;

	if (!t)
		return UINT64_MAX;
	pthread_mutex_lock(&t->lock);
	i = find_slot(t, f->ino);
	if (i < t->nfiles && t->files[i]->ino == f->ino) {
		from = t->files[i]->held_from;
		to = t->files[i]->held_to;
	}
	pthread_mutex_unlock(&t->lock);
	/* Reads before the window too: the reader's own, out of order, come from there. */
	if (!to || offset >= to + TENSORS_HOLD_PAST)
		return UINT64_MAX;
	if (!sched_is_present(t->s, f, from, to - from))
		return to;
	/* All in: no read waits on it any more. A seek since may have planned another window. */
	pthread_mutex_lock(&t->lock);
	i = find_slot(t, f->ino);
	tf = i < t->nfiles ? t->files[i] : NULL;
	if (tf && tf->ino == f->ino && tf->held_to == to && tf->held_from == from)
		tf->held_to = 0;
	pthread_mutex_unlock(&t->lock);
	return UINT64_MAX;
}
