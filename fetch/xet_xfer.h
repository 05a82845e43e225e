/* xet_xfer.h: one fetch of a Xet reconstruction (a byte range of a signed xorb URL) on the
 * transfer engine, decoded as it arrives: the engine's retries, stall detection, priorities
 * and rate cap apply as to any range, and each whole chunk is handed on with its index in the
 * xorb. No Authorization goes to the URL (it is not the Hub's). A signed URL refused (403)
 * fails with -EACCES: the plan is stale and the caller asks for a new one. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "fetch/reason.h"
#include "fetch/xet_recon.h"
#include "fetch/xfer.h"

struct xet_xfer_cb {
	/* Engine thread: chunk index of the xorb (the fetch's chunk_start for the first) and
	 * its decoded bytes, valid during the call, in order, each once. Returns 0 or -errno
	 * to fail the fetch with it. Must not block on anything but the local disk. */
	int (*chunk)(void *ud, uint64_t index, const uint8_t *raw, size_t len);
	/* Engine thread, exactly once after a successful submit: 0 when every chunk of the
	 * fetch was handed on; else -errno, its reason and words: the engine's (HTTP, network,
	 * retries spent), or -EBADMSG/FETCH_PROTOCOL naming the xorb and what was malformed. */
	void (*done)(void *ud, int err, enum fetch_reason reason, const char *why);
	void *ud;
};

/* Queues fetch index `fetch` of plan r (r may be freed once this returns: what is needed is
 * copied) at prio. ret_id (optional) is the engine's id (xfer_cancel(), xfer_set_prio()).
 * -ENOMEM; xfer_submit()'s errors (then done() is not called). */
int xet_xfer_submit(struct xfer *x, const struct xet_recon *r, size_t fetch, enum xfer_prio prio,
		    const struct xet_xfer_cb *cb, uint64_t *ret_id);
