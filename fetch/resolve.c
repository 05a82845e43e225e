/* resolve.c: the signed-URL cache: a string-keyed hash of entries with an LRU list of the idle
 * ones. Engine thread only. Knows URLs only through http.h's signed-URL expiry parser. */
#include "fetch/resolve.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/http.h"
#include "util/cleanup.h"
#include "util/timeutil.h"

#define RESOLVE_IDLE_DEFAULT 1024
#define RESOLVE_MARGIN_MAX_S 60

/* Invariants: every entry is in exactly one hash chain; an entry is on the LRU list iff its
 * refs is 0, and nidle counts those; nidle <= max_idle between calls. */
struct resolve_cache {
	struct resolve_entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	size_t nidle, max_idle;
	struct resolve_entry *lru_head, *lru_tail; /* head: least recently used */
};

static uint64_t key_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

struct resolve_cache *resolve_cache_new(size_t max_idle)
{
	struct resolve_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->nbuckets = 64;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	c->max_idle = max_idle ? max_idle : RESOLVE_IDLE_DEFAULT;
	return c;
}

static void entry_free(struct resolve_entry *e)
{
	free(e->key);
	free(e->target);
	free(e);
}

struct resolve_cache *resolve_cache_free(struct resolve_cache *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < c->nbuckets; i++) {
		while (c->buckets[i]) {
			struct resolve_entry *e = c->buckets[i];

			c->buckets[i] = e->hnext;
			entry_free(e);
		}
	}
	free(c->buckets);
	free(c);
	return NULL;
}

size_t resolve_cache_count(const struct resolve_cache *c)
{
	return c->count;
}

static void lru_unlink(struct resolve_cache *c, struct resolve_entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		c->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		c->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
	c->nidle--;
}

static void lru_append(struct resolve_cache *c, struct resolve_entry *e)
{
	e->lru_next = NULL;
	e->lru_prev = c->lru_tail;
	if (c->lru_tail)
		c->lru_tail->lru_next = e;
	else
		c->lru_head = e;
	c->lru_tail = e;
	c->nidle++;
}

/* Doubles the bucket array when the load passes 1; keeps the old one on OOM (still correct). */
static void maybe_grow(struct resolve_cache *c)
{
	struct resolve_entry **nb;
	size_t n = c->nbuckets * 2;

	if (c->count <= c->nbuckets)
		return;
	nb = calloc(n, sizeof(*nb));
	if (!nb)
		return;
	for (size_t i = 0; i < c->nbuckets; i++) {
		while (c->buckets[i]) {
			struct resolve_entry *e = c->buckets[i];
			size_t j = key_hash(e->key) & (n - 1);

			c->buckets[i] = e->hnext;
			e->hnext = nb[j];
			nb[j] = e;
		}
	}
	free(c->buckets);
	c->buckets = nb;
	c->nbuckets = n;
}

struct resolve_entry *resolve_get(struct resolve_cache *c, const char *key)
{
	size_t i = key_hash(key) & (c->nbuckets - 1);
	struct resolve_entry *e;

	for (e = c->buckets[i]; e; e = e->hnext) {
		if (strcmp(e->key, key) == 0) {
			if (e->refs++ == 0)
				lru_unlink(c, e);
			return e;
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->key = strdup(key);
	if (!e->key) {
		free(e);
		return NULL;
	}
	e->refs = 1;
	e->hnext = c->buckets[i];
	c->buckets[i] = e;
	c->count++;
	maybe_grow(c);
	return e;
}

static void evict(struct resolve_cache *c, struct resolve_entry *e)
{
	struct resolve_entry **pp = &c->buckets[key_hash(e->key) & (c->nbuckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(c, e);
	c->count--;
	entry_free(e);
}

void resolve_put(struct resolve_cache *c, struct resolve_entry *e)
{
	if (--e->refs > 0)
		return;
	lru_append(c, e);
	while (c->nidle > c->max_idle)
		evict(c, c->lru_head);
}

uint64_t resolve_refresh_at(uint64_t expiry_s, uint64_t server_date_s, uint64_t now_real_usec)
{
	uint64_t now_s = now_real_usec / USEC_PER_SEC;
	uint64_t base_s = server_date_s ? server_date_s : now_s;
	uint64_t lifetime_s, margin_s;

	if (expiry_s <= base_s) {
		/* Expired by the server's own clock: drop it before the next range. Expired only by
		 * ours: our clock is wrong, so rely on the CDN's refusal instead. */
		return server_date_s ? now_real_usec : 0;
	}
	lifetime_s = expiry_s - base_s;
	/* Both dates are whole seconds: one more second covers their rounding. */
	margin_s = MIN(lifetime_s / 4, RESOLVE_MARGIN_MAX_S) + 1;
	if (lifetime_s <= margin_s)
		return now_real_usec;
	return now_real_usec + (lifetime_s - margin_s) * USEC_PER_SEC;
}

const char *resolve_target(struct resolve_entry *e, uint64_t now_real_usec)
{
	if (e->target && e->refresh_at && now_real_usec >= e->refresh_at)
		resolve_drop_target(e);
	return e->target;
}

int resolve_set_target(struct resolve_entry *e, const char *url, uint64_t server_date_s,
		       uint64_t now_real_usec)
{
	uint64_t expiry_s;

	resolve_drop_target(e);
	e->target = strdup(url);
	if (!e->target)
		return -ENOMEM;
	e->gen++;
	if (http_signed_url_expiry(url, &expiry_s) == 0)
		e->refresh_at = resolve_refresh_at(expiry_s, server_date_s, now_real_usec);
	return 0;
}

void resolve_drop_target(struct resolve_entry *e)
{
	if (!e->target)
		return;
	free(e->target);
	e->target = NULL;
	e->refresh_at = 0;
	e->gen++;
}
