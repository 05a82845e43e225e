/* backoff.h: how long to wait before the next attempt of a failed request. Exponential backoff
 * with full jitter, bounded by a cap, and the delays a server asks for (HUB_PROTOCOL.md 7):
 * numeric Retry-After + 1 s, and on 429 RateLimit r=0 -> t + 1 s.
 * Pure functions over a caller-owned random state; any thread (one state per thread). */
#pragma once

#include <stdint.h>

/* A small PRNG (xorshift64*) for the jitter; not for secrets. */
struct backoff_rng {
	uint64_t s; /* never 0 after backoff_rng_init() */
};

/* Seeds rng; a seed of 0 picks one from the clock and the address of rng. */
void backoff_rng_init(struct backoff_rng *rng, uint64_t seed);
/* Uniform in [0, n] (n inclusive); 0 when n is 0. */
uint64_t backoff_rng_below(struct backoff_rng *rng, uint64_t n);

/* Full jitter (the "Exponential Backoff And Jitter" AWS analysis): before retry number attempt
 * (1 = the first retry) wait a uniform time in [0, min(cap, base * 2^(attempt-1))]. attempt 0 is
 * treated as 1. Never more than cap_usec. Spreads the retries of many clients over time while
 * keeping the expected wait at half of plain doubling. */
uint64_t backoff_delay(struct backoff_rng *rng, unsigned attempt, uint64_t base_usec,
		       uint64_t cap_usec);

/* The delay a server asked for in a reply with HTTP status, from its Retry-After and RateLimit
 * header values (either may be NULL), as the official client's http_backoff reads them
 * (HUB_PROTOCOL.md 7), for a status that is retried (fetch_status_is_transient()) only:
 * on 429, "RateLimit: ...;r=0;t=N" asks for N + 1 s (the quota refills in N s); else a numeric
 * Retry-After N asks for N + 1 s (so a 503 with Retry-After waits as asked; a 503's RateLimit
 * is not read); the HTTP-date form and malformed values are ignored. Values above a day are
 * clamped to it. Returns 1 with *ret_usec set when the server asked for a delay, 0 when it
 * did not. The one reader of these headers: the engine and hub.c's pager both use it. */
int backoff_server_delay(long status, const char *retry_after, const char *ratelimit,
			 uint64_t *ret_usec);
