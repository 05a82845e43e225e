/* xfer_engine.h: what the public calls of xfer.c ask of the engine: its network state and its
 * thread. Module-internal; no curl here. */
#pragma once

#include "fetch/hub_config.h"
#include "fetch/xfer_priv.h"

/* Initializes curl and the multi handle for o (slots: the pool's size), reading the proxy and
 * CA environment once, on the caller's thread. -ENOMEM (*ret may then be half-built: free it
 * with xnet_free()). */
int xnet_new(const struct hub_config *cfg, const struct xfer_opts *o, unsigned slots,
	     struct xnet **ret);
/* Frees n (takes NULL; returns NULL). The engine thread must have ended. */
struct xnet *xnet_free(struct xnet *n);
/* Wakes the engine thread's poll: a non-blocking write to a socketpair. Any thread. */
void xnet_wakeup(struct xnet *n);
/* The engine thread's body; arg is the struct xfer. Returns when xq_intake() says stop,
 * after every request ended with -ECANCELED. */
void *xnet_engine_main(void *arg);
