/* backoff.c: retry delays, jittered and bounded, and the delays servers ask for.
 * Pure; any thread. Knows HTTP only through http.h's header parsers. */
#include "fetch/backoff.h"

#include <stddef.h>

#include "fetch/http.h"
#include "fetch/reason.h"
#include "util/timeutil.h"

void backoff_rng_init(struct backoff_rng *rng, uint64_t seed)
{
	if (!seed)
		seed = now_usec() ^ ((uint64_t)(uintptr_t)rng << 16) ^ now_realtime_usec();
	/* splitmix64 spreads a small or structured seed over all bits. */
	seed += 0x9e3779b97f4a7c15ULL;
	seed = (seed ^ (seed >> 30)) * 0xbf58476d1ce4e5b9ULL;
	seed = (seed ^ (seed >> 27)) * 0x94d049bb133111ebULL;
	seed ^= seed >> 31;
	rng->s = seed ? seed : 0x2545f4914f6cdd1dULL;
}

static uint64_t rng_next(struct backoff_rng *rng)
{
	uint64_t x = rng->s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng->s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

uint64_t backoff_rng_below(struct backoff_rng *rng, uint64_t n)
{
	if (!n)
		return 0;
	if (n == UINT64_MAX)
		return rng_next(rng);
	/* The modulo bias is below n / 2^64: irrelevant for delays. */
	return rng_next(rng) % (n + 1);
}

uint64_t backoff_delay(struct backoff_rng *rng, unsigned attempt, uint64_t base_usec,
		       uint64_t cap_usec)
{
	uint64_t ceiling = base_usec;

	if (attempt == 0)
		attempt = 1;
	for (unsigned i = 1; i < attempt && ceiling < cap_usec; i++)
		ceiling = ceiling > UINT64_MAX / 2 ? UINT64_MAX : ceiling * 2;
	if (ceiling > cap_usec)
		ceiling = cap_usec;
	return backoff_rng_below(rng, ceiling);
}

static uint64_t seconds_plus_one_usec(uint64_t s)
{
	/* A day is far beyond any sane request; clamping keeps the product from overflowing. */
	if (s > 86400)
		s = 86400;
	return (s + 1) * USEC_PER_SEC;
}

int backoff_server_delay(long status, const char *retry_after, const char *ratelimit,
			 uint64_t *ret_usec)
{
	uint64_t remaining, reset, secs;

	if (!fetch_status_is_transient(status))
		return 0;
	if (status == 429 && ratelimit &&
	    http_parse_ratelimit(ratelimit, &remaining, &reset) == 0 && remaining == 0) {
		*ret_usec = seconds_plus_one_usec(reset);
		return 1;
	}
	if (retry_after && http_parse_retry_after(retry_after, &secs) == 0) {
		*ret_usec = seconds_plus_one_usec(secs);
		return 1;
	}
	return 0;
}
