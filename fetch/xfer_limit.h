/* xfer_limit.h: the engine's rate limiter, one token bucket for all transfers (--max-rate).
 * A write callback that finds it empty pauses its transfer (CURL_WRITEFUNC_PAUSE: curl keeps
 * the chunk and stops reading that socket, so the server's sending stalls on TCP flow
 * control); the engine refills the bucket and resumes paused transfers demand first. While a
 * demand transfer waits for tokens the others take none, so demand gets the whole cap.
 * Splitting CURLOPT_MAX_RECV_SPEED_LARGE over the active handles instead would waste the
 * share of a slow transfer and could not favour demand. Pure arithmetic; engine thread only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch/xfer.h"

/* Bytes curl hands a write callback at most (CURLOPT_BUFFERSIZE, set as a transfer starts):
 * 512 KiB, 32x fewer callbacks, pwrite()s and sink lock round trips than curl's 16 KiB; under
 * a rate cap 128 KiB, and the bucket holds at least two of those. */
#define XFER_RECV_BUFFER (512UL * 1024)
#define XFER_RECV_BUFFER_CAPPED (128UL * 1024)

struct xfer_limit {
	uint64_t rate; /* bytes/s, 0: unlimited */
	int64_t tokens; /* token bucket; negative: the debt of the last chunk taken */
	uint64_t tokens_at; /* monotonic usec of the last refill */
	unsigned paused; /* transfers paused by the limiter */
	unsigned demand_paused; /* of those, demand ones */
};

/* Sets the rate (0: none) at monotonic time now; the bucket starts full. */
void xfer_limit_set(struct xfer_limit *l, uint64_t rate, uint64_t now);
/* Adds the tokens earned since the last refill (a second's worth at most), up to 100 ms of
 * the rate. */
void xfer_limit_refill(struct xfer_limit *l, uint64_t now);
/* True when a transfer of priority p must pause now: the bucket is empty, or a demand
 * transfer waits for tokens and p is lower. */
bool xfer_limit_must_wait(const struct xfer_limit *l, enum xfer_prio p);
/* Takes len bytes from the bucket; a chunk may overdraw it, and that debt is paid before the
 * next, so the long-run rate is exact. */
void xfer_limit_take(struct xfer_limit *l, size_t len);
/* Counts a transfer paused (demand: of priority DEMAND), and one resumed or ended. */
void xfer_limit_pause(struct xfer_limit *l, bool demand);
void xfer_limit_unpause(struct xfer_limit *l, bool demand);
/* Monotonic usec when paused transfers may resume, or UINT64_MAX when none waits for tokens. */
uint64_t xfer_limit_due(const struct xfer_limit *l, uint64_t now);

/* The receive buffer a transfer starting now gets: XFER_RECV_BUFFER, or the capped one. A
 * transfer started before a cap was set keeps its larger chunks: the bucket goes below zero
 * by at most one chunk each, and the rate holds over time. */
size_t xfer_limit_chunk(const struct xfer_limit *l);
