/* xet_read.h: the scheduler's fetches of files stored on Xet, made through the Xet protocol
 * instead of /resolve (docs/design.md, "Xet reads through the scheduler"). A fetch is a byte
 * range of a file and a sink, exactly as an engine request (struct xfer_req): the sink gets
 * the file's bytes in order at their offsets and done() once, so the scheduler's presence,
 * commit and sha256 verification stay what they are for any blob. Behind it, on worker
 * threads of its own (the metadata exchanges block): the file is probed once per mount
 * (X-Xet-Hash), the read token is shared by the mount, each fetch asks the CAS for the
 * reconstruction of its range and its terms are fetched one after the other on the engine
 * (its retries, stalls, priorities and rate cap), decoded, each term's decoded length checked
 * against the plan. A signed URL refused (403) or a token refused asks a new plan, twice at
 * most. A file the probe finds plain is read by /resolve, in every mode.
 * In auto mode a Xet file whose probe, token, plan or xorb bytes fail (after the engine's
 * retries; bytes that do not decode to the plan) is read by /resolve for the rest of the
 * mount, the failed fetch from where it stopped (logged once); in on mode that fetch fails
 * with the words instead. A sink's refusal (a cut, a full disk) is never a fallback.
 * Locks: xr->lock is innermost: nothing else is called while it is held, but the engine's
 * submit/prio/cancel (whose queue lock is innermost too). Sinks and done() run unlocked. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "fetch/hub.h"
#include "fetch/hub_config.h"
#include "fetch/xfer.h"

/* --xet: off reads every file by /resolve; auto and on as above. */
enum xet_mode {
	XET_MODE_OFF,
	XET_MODE_AUTO,
	XET_MODE_ON,
};

/* Parses "off", "auto", "on": the mode, or -EINVAL. */
int xet_mode_parse(const char *s);
const char *xet_mode_str(enum xet_mode m);

/* The ids of this module's requests have this bit set; the engine counts its own from 1, so
 * an id says whose it is (xet_read_submit() may hand out the engine's id itself). */
#define XET_READ_ID_BIT (1ULL << 63)

struct xet_read;

struct xet_read_opts {
	const struct hub_config *cfg; /* borrowed for the life of xr, as the rest */
	const struct hub_repo *repo;
	const char *commit;
	struct xfer *x;
	enum xet_mode mode; /* auto or on */
	size_t nfiles; /* file slots: the caller's numbering of distinct contents */
};

/* Starts the worker threads. -ENOMEM, -EAGAIN (threads). */
int xet_read_new(const struct xet_read_opts *o, struct xet_read **ret);
/* Joins the workers (an exchange under way ends first, within the metadata timeout) and fails
 * every queued fetch with -ECANCELED (done() runs); later fetches that would go back to a
 * worker fail so too. Call before the engine is freed: then no worker submits to it. Safe to
 * call again. */
void xet_read_stop(struct xet_read *xr);
/* Stops xr if needed and frees it: every fetch must have ended (the engine freed first).
 * Takes NULL, returns NULL. */
struct xet_read *xet_read_free(struct xet_read *xr);

/* Fetches bytes [req->offset, req->offset + req->len) of file slot `file` (path names it in
 * the repo, for the probe and messages), as xfer_submit(req) would: req's strings are
 * copied; the sink may be called before this returns (from another thread); done() follows
 * exactly once unless this fails. *ret_id names it for xet_read_set_prio()/xet_read_cancel()
 * (with XET_READ_ID_BIT), or is the engine's own id (a file known plain goes straight to the
 * engine). -ENOMEM; xfer_submit()'s errors. Any thread; never blocks on the network. */
int xet_read_submit(struct xet_read *xr, size_t file, const char *path, const struct xfer_req *req,
		    uint64_t *ret_id);
/* Raises the priority of fetch id (its term on the wire and those to come). Unknown ids are
 * ignored (it ended). */
void xet_read_set_prio(struct xet_read *xr, uint64_t id, enum xfer_prio prio);
/* Cancels fetch id: done(-ECANCELED) unless it already ended. Unknown ids are ignored. */
void xet_read_cancel(struct xet_read *xr, uint64_t id);

struct xet_read_stats {
	unsigned files_xet; /* files the probe found on Xet */
	unsigned files_plain; /* files read by /resolve: not on Xet, or Xet failed (auto) */
	uint64_t bytes; /* file bytes handed to sinks from xorbs */
	uint64_t plans; /* reconstructions asked */
};
void xet_read_get_stats(struct xet_read *xr, struct xet_read_stats *ret);
