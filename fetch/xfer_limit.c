/* xfer_limit.c: the engine's token bucket (xfer_limit.h). Pure arithmetic over the caller's
 * state; engine thread only. */
#include "fetch/xfer_limit.h"

#include "util/cleanup.h"
#include "util/timeutil.h"

/* 100 ms of the rate, and at least two receive buffers. */
static uint64_t limit_burst(const struct xfer_limit *l)
{
	return MAX(l->rate / 10, 2 * XFER_RECV_BUFFER_CAPPED);
}

size_t xfer_limit_chunk(const struct xfer_limit *l)
{
	return l->rate ? XFER_RECV_BUFFER_CAPPED : XFER_RECV_BUFFER;
}

void xfer_limit_set(struct xfer_limit *l, uint64_t rate, uint64_t now)
{
	l->rate = rate;
	l->tokens = (int64_t)limit_burst(l);
	l->tokens_at = now;
}

void xfer_limit_refill(struct xfer_limit *l, uint64_t now)
{
	uint64_t dt = MIN(now - l->tokens_at, USEC_PER_SEC);

	l->tokens_at = now;
	if (!l->rate)
		return;
	l->tokens += (int64_t)(l->rate * dt / USEC_PER_SEC);
	l->tokens = MIN(l->tokens, (int64_t)limit_burst(l));
}

bool xfer_limit_must_wait(const struct xfer_limit *l, enum xfer_prio p)
{
	if (!l->rate)
		return false;
	return l->tokens <= 0 || (p != XFER_PRIO_DEMAND && l->demand_paused > 0);
}

void xfer_limit_take(struct xfer_limit *l, size_t len)
{
	if (l->rate)
		l->tokens -= (int64_t)len;
}

void xfer_limit_pause(struct xfer_limit *l, bool demand)
{
	l->paused++;
	l->demand_paused += demand;
}

void xfer_limit_unpause(struct xfer_limit *l, bool demand)
{
	l->paused--;
	l->demand_paused -= demand;
}

uint64_t xfer_limit_due(const struct xfer_limit *l, uint64_t now)
{
	if (!l->paused || !l->rate || l->tokens > 0)
		return UINT64_MAX;
	return now + (uint64_t)(1 - l->tokens) * USEC_PER_SEC / l->rate;
}
