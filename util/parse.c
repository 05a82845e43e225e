/* parse.c: numbers and sizes from the command line and the environment. Pure. */
#include "parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int parse_uint(const char *s, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int parse_duration(const char *s, uint64_t max_s, uint64_t *ret_s)
{
	char *end;
	unsigned long long v, mul = 1;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end == 's' || *end == 'm' || *end == 'h') {
		mul = *end == 'h' ? 3600 : *end == 'm' ? 60 : 1;
		end++;
	}
	if (*end)
		return -EINVAL;
	if (v > max_s / mul)
		return -ERANGE;
	*ret_s = v * mul;
	return 0;
}

int parse_size(const char *s, uint64_t *ret)
{
	static const char units[] = "BKMGTP";
	char *end;
	double v;
	const char *u;
	unsigned shift;

	if (!s || !((*s >= '0' && *s <= '9') || *s == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	while (*end == ' ')
		end++;
	if (!*end) {
		shift = 0;
	} else {
		u = strchr(units, *end >= 'a' && *end <= 'z' ? *end - 32 : *end);
		if (!u)
			return -EINVAL;
		shift = 10 * (unsigned)(u - units);
		end++;
		if (shift && (!strcasecmp(end, "ib") || !strcasecmp(end, "b")))
			end += strlen(end);
		if (*end)
			return -EINVAL;
	}
	v *= (double)(1ULL << shift);
	if (v >= 18446744073709551615.0)
		return -EINVAL;
	*ret = (uint64_t)v;
	return 0;
}

int parse_percent(const char *s, unsigned *ret)
{
	uint64_t v;
	size_t n = s ? strlen(s) : 0;
	char buf[8];

	if (n < 2 || n > sizeof(buf) || s[n - 1] != '%')
		return -EINVAL;
	memcpy(buf, s, n - 1);
	buf[n - 1] = '\0';
	if (parse_uint(buf, 100, &v) < 0)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

bool parse_env_bool(const char *v)
{
	return v && (!strcasecmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") ||
		     !strcasecmp(v, "true"));
}

const char *format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	unsigned i = 0;

	while (v >= 1024 && i < 5)
		v /= 1024, i++;
	if (i == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[i]);
	return buf;
}

const char *format_eta(int64_t s, char *buf, size_t len)
{
	if (s < 0)
		snprintf(buf, len, "unknown");
	else if (s >= 3600)
		snprintf(buf, len, "%lld:%02lld:%02lld", (long long)s / 3600,
			 (long long)s / 60 % 60, (long long)s % 60);
	else
		snprintf(buf, len, "%lld:%02lld", (long long)s / 60, (long long)s % 60);
	return buf;
}
