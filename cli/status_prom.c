/* status_prom.c: `hffs status --prometheus` (see status_prom.h): collects the mounts of a
 * report, then has fs/prom.c write them, with the report's totals. */
#include "cli/status_prom.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/prom.h"

int status_prom_add(struct status_prom *p, const char *cache_dir, const struct db_mount *m,
		    const struct live *l, size_t files, size_t files_complete, uint64_t total,
		    uint64_t cached)
{
	struct status_prom_mount *v = realloc(p->v, (p->n + 1) * sizeof(*v)), *e;

	if (!v)
		return -ENOMEM;
	p->v = v;
	e = &v[p->n];
	*e = (struct status_prom_mount){ .m = *m,
					 .has_live = l != NULL,
					 .files = files,
					 .files_complete = files_complete,
					 .bytes_total = total,
					 .bytes_cached = cached };
	if (l)
		e->live = *l;
	e->cache_dir = strdup(cache_dir);
	if (!e->cache_dir)
		return -ENOMEM;
	p->n++;
	return 0;
}

void status_prom_done(struct status_prom *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].cache_dir);
	free(p->v);
	*p = (struct status_prom){ 0 };
}

void status_prom_print(const struct status_prom *p, size_t dead, FILE *f)
{
	struct prom_mount *v = calloc(p->n + 1, sizeof(*v));

	for (size_t i = 0; v && i < p->n; i++) {
		const struct status_prom_mount *e = &p->v[i];

		v[i] = (struct prom_mount){ .m = &e->m,
					    .cache_dir = e->cache_dir,
					    .live = e->has_live ? &e->live : NULL,
					    .files = e->files,
					    .files_complete = e->files_complete,
					    .bytes_total = e->bytes_total,
					    .bytes_cached = e->bytes_cached };
	}
	if (v)
		prom_print(f, v, p->n);
	prom_print_totals(f, p->n, dead);
	free(v);
}
