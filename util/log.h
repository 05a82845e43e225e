/* log.h: one line per event to stderr or a log file, with a level filter.
 * Thread-safe (each line is one write()). fetch/, cache/ and util/ log at debug only. */
#pragma once

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERR,
};

/* prog prefixes every line; fd < 0 keeps stderr. Timestamps are added when fd is not a tty. */
void log_init(const char *prog, enum log_level min, int fd);
void log_set_level(enum log_level min);
enum log_level log_get_level(void);
int log_get_fd(void);
/* Also writes every line to fd (-1: stop). For a daemon's log file while its first lines
 * still go to the terminal that started it. Any thread; a line being written as it stops may
 * still reach fd, so the caller keeps fd open until no thread logs. */
void log_set_copy_fd(int fd);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_msgv(enum log_level level, const char *fmt, va_list ap);

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_err(...) log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
