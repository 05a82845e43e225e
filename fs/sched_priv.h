/* sched_priv.h: the scheduler's state, shared by its five files, which call one way only:
 * sched.c (blobs, reads, queries) -> sched_fetch.c (planning, cuts, the engine's sink) ->
 * sched_commit.c (the committer thread), sched_verify.c (the verifier thread) ->
 * sched_blob.c (presence and parked reads); sched_stream.c (reads streamed past a full cache)
 * calls only sched_verify_fail() of them. Nothing outside fs/sched*.c includes it.
 *
 * Presence has one authority while a mount runs: the blob's bitmap in memory (present). The
 * index is its durable copy, written behind it by the committer, and a source of blocks that
 * other processes fetched: merge_from_db() adds those only at the same generation. A blob's
 * generation (gen) is its bad_count in the index: every failed hash, here or elsewhere, raises
 * it, and bits of an older generation are never taken from anywhere (memory, queue, index).
 *
 * Locks: s->lock guards every field marked so. The engine's queue lock (inside xfer_submit(),
 * xfer_set_prio(), xfer_cancel()) is taken under it: it is innermost. So is the Xet reader's
 * (inside xet_read_submit(), xet_read_set_prio()), which holds nothing but the engine's queue
 * lock inside it. No LMDB transaction, disk read or ready callback runs under s->lock. The
 * data files' set (s->fds) has a lock of its own, taken under no other (sched_fd_get()/put()
 * without s->lock).
 *
 * A data file is open only while used: whoever writes, reads, syncs or hands its fd to a
 * reply holds a reference (sched_fd_get() to sched_fd_put()), so a repo of more distinct
 * contents than the process may open files is served, and an fd a reply splices from is
 * never closed under it. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/blob_fds.h"
#include "cache/verify.h"
#include "fs/sched.h"
#include "fs/xet_read.h"

struct sched_fetch;

struct sched_waiter {
	struct sched_waiter *next;
	uint64_t first, last; /* blocks the read needs */
	uint64_t gen; /* the generation its handle was opened at */
	bool whole; /* answered only once the whole blob is verified */
	bool net; /* some block it waits for was missing when it was parked */
	sched_ready_fn ready;
	void *ud;
};

/* One per distinct content id. Fields after the first block are guarded by s->lock.
 * Invariant: a bit set in inflight is clear in present, and belongs to exactly one fetch. */
struct sched_blob {
	char cid[CID_MAX];
	const char *path; /* the first file with this content, for messages (the inode table's) */
	char *url; /* resolve URL at the pinned commit */
	uint64_t size;
	uint64_t nblocks;
	enum blob_hash hash;
	struct blob_fd_slot fd; /* its data file, opened while used (s->fds) */
	bool fd_failed; /* the data file could not be opened once (said once) */

	uint8_t *present; /* s->lock: blocks in the file at this generation */
	uint8_t *inflight; /* s->lock: blocks some fetch will write */
	uint64_t prefix; /* s->lock: blocks [0, prefix) are all present */
	uint64_t whole_at; /* s->lock: monotonic usec the prefix last became the whole blob */
	uint64_t gen; /* s->lock: the index's bad_count this memory agrees with */
	uint64_t epoch; /* s->lock: raised whenever present bits are dropped */
	struct sched_fetch *fetches; /* s->lock: fetches in flight */
	struct sched_waiter *waiters; /* s->lock: parked reads */
	bool accessed; /* s->lock: read since the last commit batch */
	uint8_t state; /* s->lock: enum blob_state as this process knows it */
	bool record_verified; /* s->lock: verified here, not yet in the index */
	bool verify_queued; /* s->lock: on the verify queue */
	bool inval_pending; /* s->lock: dropped; the page cache is not invalidated yet */
	bool dropped_elsewhere; /* s->lock: that drop came from another process's hash */
	unsigned failures; /* s->lock: failed hashes in this mount */
	bool given_up; /* s->lock: failed twice: reads fail, nothing is fetched */
	unsigned fetch_failures; /* s->lock: fetches that failed after the engine's retries */
	uint8_t fetch_reason; /* s->lock: enum fetch_reason of the last of them */
	char fetch_error[200]; /* s->lock: its words */

	/* s->lock: per block, a digest of the bytes streamed to readers without caching
	 * (sched_stream.c); 0: none yet. NULL until the blob's first stream. */
	uint64_t *stream_dig;
	bool stream_dig_verified; /* s->lock: every digest is from a stream that hashed right */

	struct verify_hasher *hasher; /* verifier thread: the prefix hashed so far */
	uint64_t hasher_epoch; /* verifier thread: the epoch the hasher started at */
};

/* A landed block whose bit the committer is to sync and commit. */
struct sched_pending {
	struct sched_blob *b;
	uint64_t block;
	uint64_t gen; /* the blob's generation when it landed */
};

struct sched {
	struct cache_db *db;
	struct budget *budget;
	struct xfer *x;
	const struct inode_table *t;
	uint32_t bs;
	bool strict;
	void (*on_drop)(void *ud, uint64_t ino);
	void *drop_ud;
	const struct sched_hooks *hooks;
	struct xet_read *xr; /* NULL: every blob by /resolve (--xet off) */

	struct sched_blob *blobs;
	size_t nblobs;
	struct sched_blob **blob_of_ino; /* index ino; NULL for directories and empty files */
	struct blob_fds *fds; /* the open data files, a bounded set */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* committer work, fetch drain, flush progress, invalidations */
	struct sched_pending *queue; /* lock: landed blocks not yet committed */
	size_t qn, qcap;
	bool commit_now; /* lock: a reader waits on the index: skip the batching delay */
	uint64_t queued_gen; /* lock: batches handed to the committer */
	uint64_t committed_gen; /* lock: batches committed */
	unsigned nfetches; /* lock: fetches between submit and done */
	unsigned nbackground; /* lock: of which background ones */
	uint64_t last_demand; /* lock: monotonic usec a read last parked (0: never) */
	uint64_t hot_ino, hot_off; /* lock: the file and end offset of that read */
	bool stopping; /* lock */
	pthread_t committer;

	struct sched_blob **vq; /* lock: blobs to hash further or to invalidate, in order */
	size_t vqn, vqcap;
	uint64_t verify_failures; /* lock */
	char last_error[256]; /* lock: the last verification or streamed read failure, in words */
	uint64_t last_error_at; /* lock: realtime usec of it (0: none) */
	pthread_cond_t vcond; /* verify queue work */
	pthread_t verifier;

	/* Reads streamed through memory because the cache had no room (sched_stream.c). */
	uint64_t stream_mem; /* lock: bytes of the buffers of streams in flight */
	unsigned streams_active; /* lock */
	uint64_t streamed_reads, streamed_bytes; /* lock: answered with bytes */
	uint64_t stream_last_at; /* lock: monotonic usec a stream last began (0: never) */
	char stream_why[320]; /* lock: why the cache had no room then */
};

/* Whether a read of blocks up to last is answered only once the whole blob hashed right: any
 * read of a small (git) file, a read of an LFS file's last block, any read with verify_strict,
 * until the blob is verified. */
static inline bool sched_needs_whole_locked(const struct sched *s, const struct sched_blob *b,
					    uint64_t last)
{
	return b->state != BLOB_VERIFIED &&
	       (s->strict || b->hash == BLOB_HASH_GITSHA1 || last + 1 == b->nblocks);
}

/* sched_blob.c */
/* Moves the waiters of b that can be answered now onto *ret_ready (their blocks present, and
 * for whole waiters the blob verified) or *ret_failed (their handle was opened at a generation
 * that failed, or the blob was given up: -EIO). */
void sched_take_answerable_locked(struct sched_blob *b, struct sched_waiter **ret_ready,
				  struct sched_waiter **ret_failed);
/* Calls each waiter's ready(err, fd) and frees the list. No lock held. */
void sched_answer(struct sched_waiter *list, int err, int fd);
/* Answers each waiter of list with b's data file (0), or -EIO when it cannot be opened. The
 * fd is referenced across the calls: a reply may splice from it. No lock held. */
void sched_answer_ready(struct sched *s, struct sched_blob *b, struct sched_waiter *list);
/* An fd of b's data file, referenced until sched_fd_put(), or -errno (said once per blob:
 * blob_fds_get()'s errors, -ESTALE for a file removed or replaced while mounted). Neither
 * takes s->lock; the set's lock is innermost. */
int sched_fd_get(struct sched *s, struct sched_blob *b);
void sched_fd_put(struct sched *s, struct sched_blob *b);
/* Removes and returns every waiter of b. */
struct sched_waiter *sched_take_all_locked(struct sched_blob *b);
/* Drops present blocks [first, first + count) of b from memory (not those in flight): raises
 * the epoch so the hasher starts over, and lowers the prefix. */
void sched_drop_locked(struct sched_blob *b, uint64_t first, uint64_t count);

/* Removes and returns the waiters of b that need a block neither present nor in flight:
 * nothing will ever answer them. */
struct sched_waiter *sched_take_orphans_locked(struct sched_blob *b);
/* Moves b->prefix past the blocks now present. */
void sched_advance_prefix_locked(struct sched_blob *b);

/* sched_fetch.c */
/* Stacks on *todo one fetch (at most max_blocks long) per run of blocks of [first, last] of b
 * that are neither present nor in flight, and marks them in flight. Returns how many (fewer
 * on out of memory). */
size_t sched_plan_locked(struct sched *s, struct sched_blob *b, uint64_t first, uint64_t last,
			 uint64_t max_blocks, enum xfer_prio prio, struct sched_fetch **todo);
/* What b's parked reads need fetched: their own blocks at demand priority and, for those that
 * wait for the whole blob, the rest in read-ahead sized pieces. */
void sched_plan_waiters_locked(struct sched *s, struct sched_blob *b, struct sched_fetch **todo);
/* A demand read of [first, last] never waits behind background traffic: a background or
 * read-ahead fetch that must deliver two or more blocks before first is cut where the read
 * begins; one about to deliver them is raised to demand priority. ret_cancel receives the ids
 * of fetches cut to nothing (at most ncancel; the caller cancels them after unlocking).
 * Returns how many. */
size_t sched_cut_locked(struct sched *s, struct sched_blob *b, uint64_t first, uint64_t last,
			uint64_t *ret_cancel, size_t ncancel);
/* Hands the stacked fetches to the engine, in the order they were planned (demand first),
 * each after asking the budget for room. No sched lock held. */
void sched_submit_all(struct sched_fetch *todo);
/* Cancels the request id of a fetch, the engine's or a Xet read's. No sched lock held. */
void sched_cancel(struct sched *s, uint64_t id);

/* sched_verify.c */
/* Queues b for the verifier (hash its new prefix, finish it, or invalidate after a drop). */
void sched_verify_push_locked(struct sched *s, struct sched_blob *b);
/* Records a failed generation that another process found (the index's bad_count passed
 * ours): drops every block, answers the waiters -EIO, and has the verifier invalidate the
 * page cache. */
void sched_blob_failed_elsewhere_locked(struct sched *s, struct sched_blob *b, uint64_t gen);
void *sched_verifier_main(void *arg);
/* Records that b's bytes at generation gen are wrong (actual: what was found, in words or
 * hex): the index first (BLOB_BAD, so that no merge brings the bits back), then memory drops
 * every block, raises the generation, gives the blob up at its second failure, and has the
 * verifier answer its reads and invalidate the page cache. No lock held; one LMDB write. */
void sched_verify_fail(struct sched *s, struct sched_blob *b, uint64_t gen, const char *actual);

/* sched_commit.c */
int sched_queue_push_locked(struct sched *s, struct sched_blob *b, uint64_t block);
void *sched_committer_main(void *arg);
