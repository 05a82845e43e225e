/* jsonw.h: writing JSON to a stdio stream, for `--json` output. Tracks commas per nesting
 * level; the caller keeps the structure balanced. Single thread. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSONW_DEPTH 16

struct jsonw {
	FILE *f;
	int depth;
	bool need_comma[JSONW_DEPTH];
};

void jsonw_init(struct jsonw *w, FILE *f);
void jsonw_begin_object(struct jsonw *w, const char *key); /* key NULL inside arrays/top */
void jsonw_end_object(struct jsonw *w);
void jsonw_begin_array(struct jsonw *w, const char *key);
void jsonw_end_array(struct jsonw *w);
void jsonw_string(struct jsonw *w, const char *key, const char *v); /* v NULL -> null */
void jsonw_uint(struct jsonw *w, const char *key, uint64_t v);
void jsonw_int(struct jsonw *w, const char *key, int64_t v);
void jsonw_double(struct jsonw *w, const char *key, double v);
void jsonw_bool(struct jsonw *w, const char *key, bool v);
void jsonw_null(struct jsonw *w, const char *key);
