/* xfer_list.c: the transfer engine's request containers: the intrusive lists a request moves
 * between (ready by priority, waiting, backoff, running) and the table of live requests by
 * id. Plain data structures; the caller holds x->lock where the engine shares them. */
#include "fetch/xfer_priv.h"

#include <errno.h>
#include <stdlib.h>

void xlist_push_tail(struct xlist *l, struct xreq *r)
{
	r->list = l;
	r->next = NULL;
	r->prev = l->tail;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
	l->n++;
}

void xlist_push_head(struct xlist *l, struct xreq *r)
{
	r->list = l;
	r->prev = NULL;
	r->next = l->head;
	if (l->head)
		l->head->prev = r;
	else
		l->tail = r;
	l->head = r;
	l->n++;
}

void xlist_remove(struct xreq *r)
{
	struct xlist *l = r->list;

	if (!l)
		return;
	if (r->prev)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	r->prev = r->next = NULL;
	r->list = NULL;
	l->n--;
}

struct xreq *xlist_pop(struct xlist *l)
{
	struct xreq *r = l->head;

	if (r)
		xlist_remove(r);
	return r;
}

/* Ids are consecutive, so the low bits spread them evenly. */
static size_t id_slot(const struct xreq_table *t, uint64_t id)
{
	return (size_t)id & (t->nbuckets - 1);
}

static void table_grow(struct xreq_table *t)
{
	size_t n = t->nbuckets ? t->nbuckets * 2 : 64;
	struct xreq **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		while (t->buckets[i]) {
			struct xreq *r = t->buckets[i];

			t->buckets[i] = r->hnext;
			r->hnext = nb[(size_t)r->id & (n - 1)];
			nb[(size_t)r->id & (n - 1)] = r;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->nbuckets = n;
}

int xreq_table_insert(struct xreq_table *t, struct xreq *r)
{
	size_t i;

	/* A failed growth leaves longer chains, still correct; only the first array is a must. */
	if (t->count >= t->nbuckets)
		table_grow(t);
	if (!t->nbuckets)
		return -ENOMEM;
	i = id_slot(t, r->id);
	r->hnext = t->buckets[i];
	t->buckets[i] = r;
	t->count++;
	return 0;
}

struct xreq *xreq_table_find(const struct xreq_table *t, uint64_t id)
{
	struct xreq *r;

	if (!t->nbuckets)
		return NULL;
	for (r = t->buckets[id_slot(t, id)]; r; r = r->hnext)
		if (r->id == id)
			return r;
	return NULL;
}

void xreq_table_remove(struct xreq_table *t, struct xreq *r)
{
	struct xreq **pp = &t->buckets[id_slot(t, r->id)];

	while (*pp && *pp != r)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = r->hnext;
		t->count--;
	}
	r->hnext = NULL;
}

void xreq_table_done(struct xreq_table *t)
{
	free(t->buckets);
	*t = (struct xreq_table){ 0 };
}
