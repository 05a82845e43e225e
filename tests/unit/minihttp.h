/* minihttp.h: a tiny HTTP/1.1 server for the C unit tests of fetch/ (test_http.c, test_hub.c).
 * minihttp_start() binds 127.0.0.1 port 0 and forks a child that serves one request per
 * connection (Connection: close) through a handler the test supplies; the handler runs in the
 * child, so its static counters script faults ("503 the first time"). Every request is
 * appended to a log file the parent reads back (method, target, Authorization, User-Agent,
 * Accept-Encoding, Range, Accept). Every wait is bounded: the child dies after MINIHTTP_LIFETIME_S. */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/check.h"

#define MINIHTTP_LIFETIME_S 60
#define MINIHTTP_REQ_MAX 16384

struct mh_request {
	char method[16];
	char target[4096]; /* as sent: a path, or an absolute URL through a proxy */
	char authorization[512]; /* "" when absent */
	char user_agent[256];
	char accept_encoding[64];
	char range[64];
	char accept[128];
	int port; /* the server's own port */
};

/* What the handler fills; body NULL means empty. headers: extra "Name: value\r\n" lines. */
struct mh_reply {
	int status;
	char headers[4096];
	const char *body;
	size_t body_len; /* 0 with a body: strlen(body) */
	size_t stream_zeros; /* > 0: a body of this many zero bytes instead */
	unsigned delay_ms; /* sleep before replying (timeouts) */
	size_t cut_at; /* > 0: close the connection after this many body bytes (a short body) */
};

typedef void (*mh_handler)(const struct mh_request *req, struct mh_reply *rep);

struct minihttp {
	pid_t pid;
	int port;
	char log_path[256];
};

static inline void mh_header(struct mh_reply *rep, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Appends one header line (fmt without CRLF) to rep. */
static inline void mh_header(struct mh_reply *rep, const char *fmt, ...)
{
	size_t n = strlen(rep->headers);
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(rep->headers + n, sizeof(rep->headers) - n, fmt, ap);
	va_end(ap);
	n = strlen(rep->headers);
	(void)snprintf(rep->headers + n, sizeof(rep->headers) - n, "\r\n");
}

static inline void mh_copy_header(const char *line, const char *name, char *dst, size_t len)
{
	size_t n = strlen(name);
	const char *v;

	if (strncasecmp(line, name, n) != 0 || line[n] != ':')
		return;
	v = line + n + 1;
	while (*v == ' ')
		v++;
	snprintf(dst, len, "%.*s", (int)strcspn(v, "\r\n"), v);
}

/* Reads one request head (until CRLFCRLF) within 5 s. */
static inline bool mh_read_request(int fd, struct mh_request *req)
{
	char buf[MINIHTTP_REQ_MAX + 1];
	size_t len = 0;

	while (len < MINIHTTP_REQ_MAX) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0)
			return false;
		n = read(fd, buf + len, MINIHTTP_REQ_MAX - len);
		if (n <= 0)
			return false;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	buf[len] = '\0';
	if (sscanf(buf, "%15s %4095s", req->method, req->target) != 2)
		return false;
	for (char *line = strstr(buf, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
		mh_copy_header(line + 2, "authorization", req->authorization,
			       sizeof(req->authorization));
		mh_copy_header(line + 2, "user-agent", req->user_agent, sizeof(req->user_agent));
		mh_copy_header(line + 2, "accept-encoding", req->accept_encoding,
			       sizeof(req->accept_encoding));
		mh_copy_header(line + 2, "range", req->range, sizeof(req->range));
		mh_copy_header(line + 2, "accept", req->accept, sizeof(req->accept));
	}
	return true;
}

static inline void mh_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static inline void mh_serve_one(int cfd, int port, mh_handler handler, FILE *log)
{
	struct mh_request req = { .port = port };
	struct mh_reply rep = { .status = 200 };
	char head[8192];
	size_t body_len;
	int n;

	if (!mh_read_request(cfd, &req))
		return;
	fprintf(log, "%s %s auth=%s ua=%s ae=%s range=%s accept=%s\n", req.method, req.target,
		req.authorization[0] ? req.authorization : "-", req.user_agent,
		req.accept_encoding[0] ? req.accept_encoding : "-", req.range[0] ? req.range : "-",
		req.accept[0] ? req.accept : "-");
	fflush(log);
	handler(&req, &rep);
	if (rep.delay_ms)
		usleep(rep.delay_ms * 1000u);
	body_len = rep.stream_zeros ? rep.stream_zeros :
		   rep.body	    ? (rep.body_len ? rep.body_len : strlen(rep.body)) :
				      0;
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
		     rep.status, body_len, rep.headers);
	mh_write_all(cfd, head, (size_t)n);
	if (!strcmp(req.method, "HEAD"))
		return;
	if (rep.stream_zeros) {
		static char zeros[65536];

		for (size_t left = rep.stream_zeros; left;) {
			size_t k = left < sizeof(zeros) ? left : sizeof(zeros);

			mh_write_all(cfd, zeros, k);
			left -= k;
		}
	} else if (body_len) {
		mh_write_all(cfd, rep.body,
			     rep.cut_at && rep.cut_at < body_len ? rep.cut_at : body_len);
	}
}

static inline void mh_child(int lfd, int port, mh_handler handler, const char *log_path)
{
	FILE *log = fopen(log_path, "a");

	alarm(MINIHTTP_LIFETIME_S);
	/* a client that hangs up mid-body must not kill the server */
	(void)signal(SIGPIPE, SIG_IGN);
	if (!log)
		_exit(2);
	for (;;) {
		int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno == EINTR)
				continue;
			_exit(3);
		}
		mh_serve_one(cfd, port, handler, log);
		(void)shutdown(cfd, SHUT_WR);
		(void)close(cfd);
	}
}

/* Starts a server in a child; log_dir is a test tmpdir. */
static inline void minihttp_start(struct minihttp *s, mh_handler handler, const char *log_dir)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	static int seq;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ASSERT_TRUE(fd >= 0);
	ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_OK(listen(fd, 64));
	ASSERT_OK(getsockname(fd, (struct sockaddr *)&a, &alen));
	s->port = ntohs(a.sin_port);
	snprintf(s->log_path, sizeof(s->log_path), "%s/minihttp-%d.log", log_dir, seq++);
	fflush(NULL);
	s->pid = fork();
	ASSERT_TRUE(s->pid >= 0);
	if (s->pid == 0)
		mh_child(fd, s->port, handler, s->log_path);
	(void)close(fd);
}

static inline void minihttp_stop(struct minihttp *s)
{
	if (s->pid > 0) {
		(void)kill(s->pid, SIGKILL);
		(void)waitpid(s->pid, NULL, 0);
	}
	(void)unlink(s->log_path);
	s->pid = 0;
}

/* The request log so far (malloc'd; "" when empty). */
static inline char *minihttp_log(const struct minihttp *s)
{
	FILE *f = fopen(s->log_path, "r");
	char *buf = calloc(1, 1 << 20);
	size_t n = 0;

	ASSERT_NOT_NULL(buf);
	if (f) {
		n = fread(buf, 1, (1 << 20) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

/* Number of lines of the log containing needle. */
static inline int minihttp_count(const struct minihttp *s, const char *needle)
{
	char *log = minihttp_log(s);
	int count = 0;

	for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
		if (strstr(line, needle))
			count++;
	free(log);
	return count;
}

/* Truncates the log between cases. */
static inline void minihttp_clear(const struct minihttp *s)
{
	int fd = open(s->log_path, O_WRONLY | O_TRUNC | O_CLOEXEC);

	if (fd >= 0)
		(void)close(fd);
}
