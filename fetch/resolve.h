/* resolve.h: the transfer engine's signed-URL cache (HUB_PROTOCOL.md 4.1-4.3). Per blob (content
 * id) it keeps the URL that serves the bytes, learnt from the resolve URL's redirect, with the
 * time to stop using it (before the signature expires), and which request is resolving it now,
 * so a blob is resolved once for all of its ranges. Module-internal to fetch/.
 * Engine thread only: no locks. Bounded: idle entries beyond a limit go, least recent first. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct xreq;
struct resolve_cache;

struct resolve_entry {
	char *key; /* content id (immutable) */
	char *target; /* URL serving the bytes; NULL: ask the resolve URL first */
	uint64_t refresh_at; /* realtime usec from which target is not used for a new range
				* (0: no known expiry; a refusal drops it instead) */
	uint64_t gen; /* bumped whenever target changes: a failure on an older target
				* does not drop a newer one */
	struct xreq *resolver; /* the request whose exchange is resolving now, or NULL; it holds a
				* reference, so resolver != NULL implies refs > 0 */
	unsigned refs; /* requests holding the entry; 0: idle, on the LRU list */
	struct resolve_entry *hnext, *lru_prev, *lru_next;
};

/* An empty cache keeping at most max_idle unreferenced entries (0 -> 1024). NULL on OOM. */
struct resolve_cache *resolve_cache_new(size_t max_idle);
/* Frees every entry, referenced or not. Takes NULL; returns NULL. */
struct resolve_cache *resolve_cache_free(struct resolve_cache *c);
/* Entries held now (referenced + idle). */
size_t resolve_cache_count(const struct resolve_cache *c);

/* Finds or creates the entry of key and takes a reference. NULL on OOM. */
struct resolve_entry *resolve_get(struct resolve_cache *c, const char *key);
/* Drops a reference. An idle entry stays cached until more than max_idle are idle; then the
 * least recently used idle entry is freed (possibly e itself: do not use e afterwards). */
void resolve_put(struct resolve_cache *c, struct resolve_entry *e);

/* The target to use for a range starting now, or NULL when there is none or it nears its
 * expiry (it is dropped then, so the caller resolves again). */
const char *resolve_target(struct resolve_entry *e, uint64_t now_real_usec);
/* Keeps url (copied) as the blob's target, learnt from a reply whose Date header said
 * server_date_s (unix seconds; 0 when absent). -ENOMEM (the old target is dropped). */
int resolve_set_target(struct resolve_entry *e, const char *url, uint64_t server_date_s,
		       uint64_t now_real_usec);
/* Forgets the target (a refusal, or a stale signature): the next range resolves again. */
void resolve_drop_target(struct resolve_entry *e);

/* When to stop using a URL whose signature expires at expiry_s (unix seconds, server clock):
 * the server's clock is mapped onto ours through its Date (server_date_s, 0: none) so a skewed
 * local clock neither discards a fresh URL nor keeps a dead one; the URL is dropped a margin
 * before expiry: a quarter of its lifetime, at most 60 s, plus 1 s for the rounding of the
 * dates. Pure; exposed for tests. */
uint64_t resolve_refresh_at(uint64_t expiry_s, uint64_t server_date_s, uint64_t now_real_usec);
