/* log.c: the process-wide logger. Any thread; no locks (one write() per line). */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "hffs";
static enum log_level log_min = LOG_LEVEL_INFO;
static int log_fd = STDERR_FILENO;
static int log_copy_fd = -1; /* a second destination, always with timestamps */

void log_init(const char *prog, enum log_level min, int fd)
{
	log_prog = prog;
	log_min = min;
	log_fd = fd >= 0 ? fd : STDERR_FILENO;
}

void log_set_level(enum log_level min)
{
	log_min = min;
}

enum log_level log_get_level(void)
{
	return log_min;
}

int log_get_fd(void)
{
	return log_fd;
}

void log_set_copy_fd(int fd)
{
	__atomic_store_n(&log_copy_fd, fd, __ATOMIC_RELEASE);
}

/* One line as it goes to fd: a timestamp unless fd is a terminal. Returns its length. */
static size_t format_line(char *line, size_t len, int fd, enum log_level level, const char *fmt,
			  va_list ap)
{
	static const char *const names[] = { "debug", "info", "warning", "error" };
	size_t n = 0;

	if (!isatty(fd)) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, len, "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, len - n, ".%03ldZ ", ts.tv_nsec / 1000000);
	}
	n += (size_t)snprintf(line + n, len - n, "%s: ", log_prog);
	if (level != LOG_LEVEL_INFO)
		n += (size_t)snprintf(line + n, len - n, "%s: ", names[level]);
	if (n < len)
		n += (size_t)vsnprintf(line + n, len - n, fmt, ap);
	if (n >= len - 1)
		n = len - 2;
	line[n++] = '\n';
	return n;
}

void log_msgv(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	int copy = __atomic_load_n(&log_copy_fd, __ATOMIC_ACQUIRE);
	va_list again;
	size_t n;

	if (level < log_min)
		return;
	va_copy(again, ap);
	n = format_line(line, sizeof(line), log_fd, level, fmt, ap);
	(void)!write(log_fd, line, n);
	if (copy >= 0) {
		n = format_line(line, sizeof(line), copy, level, fmt, again);
		(void)!write(copy, line, n);
	}
	va_end(again);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msgv(level, fmt, ap);
	va_end(ap);
}
