/* cache_ls.h: `hffs cache ls`. Single thread; blocking (LMDB, stat of the data files). */
#pragma once

#include <stdbool.h>

#include "cli/cache_view.h"

/* Prints the listing of v (loaded by cache_view_load()) on stdout, as text or JSON; reads its
 * blob records. Returns the exit status: 0, or 1 when they could not be read (logged) or
 * memory ran out. */
int cli_cache_ls(struct cache_view *v, bool json);
