/* jsonw.c: a minimal streaming JSON writer (RFC 8259 string escaping; bytes >= 0x80 pass
 * through, so UTF-8 file names stay readable). */
#include "util/jsonw.h"

static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

static void prefix(struct jsonw *w, const char *key)
{
	if (w->need_comma[w->depth])
		fputc(',', w->f);
	w->need_comma[w->depth] = true;
	if (key) {
		put_string(w->f, key);
		fputc(':', w->f);
	}
}

void jsonw_init(struct jsonw *w, FILE *f)
{
	*w = (struct jsonw){ .f = f };
}

static void open_level(struct jsonw *w, const char *key, char c)
{
	prefix(w, key);
	fputc(c, w->f);
	if (w->depth < JSONW_DEPTH - 1)
		w->need_comma[++w->depth] = false;
}

static void close_level(struct jsonw *w, char c)
{
	if (w->depth > 0)
		w->depth--;
	fputc(c, w->f);
	if (w->depth == 0)
		fputc('\n', w->f);
}

void jsonw_begin_object(struct jsonw *w, const char *key)
{
	open_level(w, key, '{');
}

void jsonw_end_object(struct jsonw *w)
{
	close_level(w, '}');
}

void jsonw_begin_array(struct jsonw *w, const char *key)
{
	open_level(w, key, '[');
}

void jsonw_end_array(struct jsonw *w)
{
	close_level(w, ']');
}

void jsonw_string(struct jsonw *w, const char *key, const char *v)
{
	prefix(w, key);
	if (v)
		put_string(w->f, v);
	else
		fputs("null", w->f);
}

void jsonw_uint(struct jsonw *w, const char *key, uint64_t v)
{
	prefix(w, key);
	fprintf(w->f, "%llu", (unsigned long long)v);
}

void jsonw_int(struct jsonw *w, const char *key, int64_t v)
{
	prefix(w, key);
	fprintf(w->f, "%lld", (long long)v);
}

void jsonw_double(struct jsonw *w, const char *key, double v)
{
	prefix(w, key);
	fprintf(w->f, "%.3f", v);
}

void jsonw_bool(struct jsonw *w, const char *key, bool v)
{
	prefix(w, key);
	fputs(v ? "true" : "false", w->f);
}

void jsonw_null(struct jsonw *w, const char *key)
{
	prefix(w, key);
	fputs("null", w->f);
}
