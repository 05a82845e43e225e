/* log.c: the process-wide logger. Any thread; no locks (one write() per line). */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "hffs";
static enum log_level log_min = LOG_LEVEL_INFO;
static int log_fd = STDERR_FILENO;

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

void log_msgv(enum log_level level, const char *fmt, va_list ap)
{
	static const char *const names[] = { "debug", "info", "warning", "error" };
	char line[2048];
	size_t n = 0;

	if (level < log_min)
		return;
	if (!isatty(log_fd)) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ ", ts.tv_nsec / 1000000);
	}
	n += (size_t)snprintf(line + n, sizeof(line) - n, "%s: ", log_prog);
	if (level != LOG_LEVEL_INFO)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s: ", names[level]);
	if (n < sizeof(line))
		n += (size_t)vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(log_fd, line, n);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msgv(level, fmt, ap);
	va_end(ap);
}
