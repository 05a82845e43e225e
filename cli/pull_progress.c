/* pull_progress.c: drawing `hffs pull`'s progress: terminal bars, periodic lines, JSON lines.
 * Caller's thread. */
#include "cli/pull_progress.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/jsonw.h"
#include "util/parse.h"
#include "util/timeutil.h"

#define LINE_EVERY_USEC (5 * USEC_PER_SEC)
#define JSON_TOTAL_EVERY_USEC USEC_PER_SEC
#define TTY_MAX_BARS 8

const char *pull_state_str(enum pull_state st)
{
	static const char *const words[] = { "queued",	"downloading", "verifying",
					     "placing", "verified",    "failed" };

	return st <= PULL_FAILED ? words[st] : "?";
}

int64_t pull_eta(uint64_t left, uint64_t rate)
{
	if (!left)
		return 0;
	return rate ? (int64_t)((left + rate - 1) / rate) : -1;
}

int pull_view_init(struct pull_view *v, bool json, bool quiet, size_t nfiles)
{
	*v = (struct pull_view){ .out = stderr, .n = nfiles };
	v->mode = quiet			? PULL_PROGRESS_QUIET :
		  json			? PULL_PROGRESS_JSON :
		  isatty(STDERR_FILENO) ? PULL_PROGRESS_TTY :
					  PULL_PROGRESS_LINES;
	if (json)
		v->out = stdout;
	v->sent = malloc((nfiles + 1) * sizeof(*v->sent));
	v->sent_state = calloc(nfiles + 1, 1);
	v->said = calloc(nfiles + 1, sizeof(*v->said));
	if (!v->sent || !v->sent_state || !v->said) {
		pull_view_done(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nfiles; i++)
		v->sent[i] = UINT64_MAX;
	return 0;
}

void pull_view_done(struct pull_view *v)
{
	free(v->sent);
	free(v->sent_state);
	free(v->said);
	v->sent = NULL;
	v->sent_state = NULL;
	v->said = NULL;
}

/* "3/12 files, 1.2 GiB of 4.5 GiB, 45.0 MiB/s, ETA 1:12" */
static void total_words(const struct pull_progress *p, char *buf, size_t len)
{
	char s1[16], s2[16], s3[16], s4[32];
	int n;

	n = snprintf(buf, len, "%zu/%zu files, %s of %s, %s/s, ETA %s", p->ndone, p->nfiles,
		     format_size(p->bytes_done, s1, sizeof(s1)),
		     format_size(p->bytes_total, s2, sizeof(s2)),
		     format_size(p->rate, s3, sizeof(s3)),
		     format_eta(pull_eta(p->bytes_total - p->bytes_done, p->rate), s4, sizeof(s4)));
	if (p->nfailed && n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, ", %zu failed", p->nfailed);
	if (p->retrying[0] && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, "; retrying: %s", p->retrying);
}

/* Each failed file once, in words, on m (stderr, or the terminal's drawing). */
static void say_failures(struct pull_view *v, const struct pull_progress *p, FILE *m)
{
	for (size_t i = 0; i < p->nfiles && i < v->n; i++) {
		const struct pull_file *f = &p->files[i];

		if (f->state != PULL_FAILED || v->said[i])
			continue;
		v->said[i] = true;
		if (v->mode != PULL_PROGRESS_JSON)
			fprintf(m, "hffs: '%s': %s\n", f->path, f->error);
	}
}

static unsigned term_width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

/* One bar: the end of the path (the file name matters most), the bar, percent, rate. */
static void tty_bar(FILE *m, const struct pull_file *f, unsigned width)
{
	unsigned barw = width >= 100 ? 30 : 20, namew = width - barw - 32, fill;
	size_t len = strlen(f->path);
	char bar[64], s1[16];

	fill = f->size ? (unsigned)(MIN(f->done, f->size) * barw / f->size) : barw;
	memset(bar, '#', fill);
	memset(bar + fill, '-', barw - fill);
	bar[barw] = '\0';
	if (len > namew)
		fprintf(m, "...%-*s", (int)namew - 3, f->path + len - (namew - 3));
	else
		fprintf(m, "%-*s", (int)namew, f->path);
	fprintf(m, " [%s] %3u%% %10s/s %s\033[K\n", bar,
		f->size ? (unsigned)(MIN(f->done, f->size) * 100 / f->size) : 100,
		format_size(f->rate, s1, sizeof(s1)),
		f->state == PULL_VERIFYING ? "verifying" : "");
}

/* The drawing is made in memory and written at once: the terminal never shows it half
 * redrawn. The cursor goes back to the first line of the last drawing, each line is
 * overwritten and what is left below is cleared. */
static void show_tty(struct pull_view *v, const struct pull_progress *p, bool final)
{
	unsigned width = term_width(), bars = 0, more = 0;
	char line[512], *buf = NULL;
	size_t len = 0;
	FILE *m;

	m = open_memstream(&buf, &len);
	if (!m)
		return;
	if (v->lines_drawn)
		fprintf(m, "\r\033[%uA\033[J", v->lines_drawn);
	v->lines_drawn = 0;
	say_failures(v, p, m);
	if (final)
		goto out;
	for (size_t i = 0; i < p->nfiles; i++) {
		const struct pull_file *f = &p->files[i];

		if (f->state != PULL_FETCHING && f->state != PULL_VERIFYING)
			continue;
		if (bars == TTY_MAX_BARS) {
			more++;
			continue;
		}
		tty_bar(m, f, width);
		bars++;
	}
	if (more)
		fprintf(m, "... and %u more\033[K\n", more);
	total_words(p, line, sizeof(line));
	fprintf(m, "%.*s\033[K\n", (int)width - 1, line);
	v->lines_drawn = bars + (more ? 1 : 0) + 1;
out:
	if (fclose(m) == 0)
		fwrite(buf, 1, len, v->out);
	free(buf);
	fflush(v->out);
}

static void show_lines(struct pull_view *v, const struct pull_progress *p, bool final)
{
	uint64_t now = now_usec();
	char line[512];

	say_failures(v, p, stderr);
	if (!final && v->last_line && now - v->last_line < LINE_EVERY_USEC)
		return;
	if (!v->last_line && !final) { /* the first tick: nothing to say yet */
		v->last_line = now;
		return;
	}
	v->last_line = now;
	total_words(p, line, sizeof(line));
	fprintf(v->out, "hffs: pull: %s\n", line);
	fflush(v->out);
}

static void json_file(struct pull_view *v, const struct pull_file *f)
{
	struct jsonw w;
	int64_t eta = pull_eta(f->size - MIN(f->done, f->size), f->rate);

	jsonw_init(&w, v->out);
	jsonw_begin_object(&w, NULL);
	jsonw_string(&w, "type", "file");
	jsonw_string(&w, "file", f->path);
	jsonw_uint(&w, "bytes", f->done);
	jsonw_uint(&w, "total", f->size);
	jsonw_uint(&w, "rate", f->rate);
	if (eta < 0)
		jsonw_null(&w, "eta");
	else
		jsonw_int(&w, "eta", eta);
	jsonw_string(&w, "state", pull_state_str(f->state));
	jsonw_uint(&w, "errors", f->errors);
	jsonw_string(&w, "error", f->error[0] ? f->error : NULL);
	jsonw_end_object(&w);
}

static void json_total(struct pull_view *v, const struct pull_progress *p, bool final)
{
	struct jsonw w;
	int64_t eta = pull_eta(p->bytes_total - MIN(p->bytes_done, p->bytes_total), p->rate);

	jsonw_init(&w, v->out);
	jsonw_begin_object(&w, NULL);
	jsonw_string(&w, "type", "total");
	jsonw_uint(&w, "files", p->nfiles);
	jsonw_uint(&w, "files_done", p->ndone);
	jsonw_uint(&w, "files_failed", p->nfailed);
	jsonw_uint(&w, "bytes", p->bytes_done);
	jsonw_uint(&w, "total", p->bytes_total);
	jsonw_uint(&w, "fetched", p->fetched);
	jsonw_uint(&w, "rate", p->rate);
	if (eta < 0)
		jsonw_null(&w, "eta");
	else
		jsonw_int(&w, "eta", eta);
	jsonw_string(&w, "state", !final ? "downloading" : p->nfailed ? "failed" : "verified");
	jsonw_string(&w, "error", p->retrying[0] ? p->retrying : NULL);
	jsonw_end_object(&w);
}

/* A file's line when its state changed, or its bytes did and a second passed. */
static void show_json(struct pull_view *v, const struct pull_progress *p, bool final)
{
	uint64_t now = now_usec();
	bool periodic = final || now - v->last_line >= JSON_TOTAL_EVERY_USEC;

	for (size_t i = 0; i < p->nfiles && i < v->n; i++) {
		const struct pull_file *f = &p->files[i];
		bool changed = v->sent[i] == UINT64_MAX || v->sent_state[i] != f->state;

		if (!changed && !(periodic && v->sent[i] != f->done))
			continue;
		json_file(v, f);
		v->sent[i] = f->done;
		v->sent_state[i] = (uint8_t)f->state;
	}
	say_failures(v, p, stderr);
	if (periodic) {
		json_total(v, p, final);
		v->last_line = now;
	}
	fflush(v->out);
}

void pull_view_show(struct pull_view *v, const struct pull_progress *p, bool final)
{
	switch (v->mode) {
	case PULL_PROGRESS_TTY:
		show_tty(v, p, final);
		break;
	case PULL_PROGRESS_LINES:
		show_lines(v, p, final);
		break;
	case PULL_PROGRESS_JSON:
		show_json(v, p, final);
		break;
	case PULL_PROGRESS_QUIET:
		say_failures(v, p, stderr);
		break;
	}
}
