/* mountinfo.c: reads /proc/self/mountinfo lines ("id parent major:minor root mountpoint
 * options [optional fields] - fstype source super-options"), whose paths escape space, tab,
 * newline and backslash as \ooo octal. */
#include "util/mountinfo.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"

/* Copies the field at *p (up to a space) into buf, unescaping \ooo; advances *p past it and
 * one space. False when the line ends first or the field does not fit. */
static bool next_field(const char **p, char *buf, size_t len)
{
	size_t n = 0;
	const char *s = *p;

	if (!*s || *s == '\n')
		return false;
	while (*s && *s != ' ' && *s != '\n') {
		char c = *s++;

		if (c == '\\' && s[0] >= '0' && s[0] <= '3' && s[1] >= '0' && s[1] <= '7' &&
		    s[2] >= '0' && s[2] <= '7') {
			c = (char)((s[0] - '0') * 64 + (s[1] - '0') * 8 + (s[2] - '0'));
			s += 3;
		}
		if (n + 1 >= len)
			return false;
		buf[n++] = c;
	}
	buf[n] = '\0';
	if (*s == ' ')
		s++;
	*p = s;
	return true;
}

/* Parses one line into its mount point and *ret. 0, or -EBADMSG. */
static int parse_line(const char *line, char *mountpoint, size_t len, struct mountinfo_entry *ret)
{
	char field[4096];
	const char *p = line;

	for (int i = 0; i < 4; i++) /* id, parent, major:minor, root */
		if (!next_field(&p, field, sizeof(field)))
			return -EBADMSG;
	if (!next_field(&p, mountpoint, len))
		return -EBADMSG;
	do /* options, then optional fields up to the separator */
		if (!next_field(&p, field, sizeof(field)))
			return -EBADMSG;
	while (strcmp(field, "-"));
	if (!next_field(&p, ret->fstype, sizeof(ret->fstype)))
		return -EBADMSG;
	if (!next_field(&p, ret->source, sizeof(ret->source)))
		ret->source[0] = '\0';
	return 0;
}

int mountinfo_each_in(FILE *f,
		      int (*fn)(void *ud, const char *mountpoint, const struct mountinfo_entry *e),
		      void *ud)
{
	_cleanup_free_ char *line = NULL;
	char mp[4096];
	struct mountinfo_entry e;
	size_t cap = 0;

	while (getline(&line, &cap, f) > 0) {
		int r = parse_line(line, mp, sizeof(mp), &e);

		if (r < 0)
			return r;
		r = fn(ud, mp, &e);
		if (r < 0)
			return r;
	}
	return 0;
}

int mountinfo_each(int (*fn)(void *ud, const char *mountpoint, const struct mountinfo_entry *e),
		   void *ud)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int r;

	if (!f)
		return -errno;
	r = mountinfo_each_in(f, fn, ud);
	fclose(f);
	return r;
}

struct find_ctx {
	const char *mountpoint;
	struct mountinfo_entry *ret;
	bool found;
};

/* Later lines are mounted on top of earlier ones: the last match is what is seen. */
static int find_one(void *ud, const char *mountpoint, const struct mountinfo_entry *e)
{
	struct find_ctx *c = ud;

	if (!strcmp(mountpoint, c->mountpoint)) {
		*c->ret = *e;
		c->found = true;
	}
	return 0;
}

int mountinfo_find_in(FILE *f, const char *mountpoint, struct mountinfo_entry *ret)
{
	struct find_ctx c = { .mountpoint = mountpoint, .ret = ret };
	int r = mountinfo_each_in(f, find_one, &c);

	return r < 0 ? r : c.found ? 0 : -ENOENT;
}

int mountinfo_find(const char *mountpoint, struct mountinfo_entry *ret)
{
	struct find_ctx c = { .mountpoint = mountpoint, .ret = ret };
	int r = mountinfo_each(find_one, &c);

	return r < 0 ? r : c.found ? 0 : -ENOENT;
}
