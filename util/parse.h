/* parse.h: numbers and sizes as people write them ("200G", "1.5GiB", "64M", "4096").
 * Pure functions; any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses a byte size with an optional unit K, M, G, T (powers of 1024; "KB"/"KiB"/"k" alike)
 * and an optional fraction. Returns 0, or -EINVAL for anything else (empty, junk, overflow). */
int parse_size(const char *s, uint64_t *ret);

/* Parses a non-negative decimal integer no larger than max. -EINVAL or -ERANGE. */
int parse_uint(const char *s, uint64_t max, uint64_t *ret);

/* Parses a duration in whole seconds: "90", "90s", "5m", "1h" (one unit, no spaces) into
 * seconds, no larger than max_s. -EINVAL (junk, no number), -ERANGE (above max_s). */
int parse_duration(const char *s, uint64_t max_s, uint64_t *ret_s);

/* Parses a percentage "10%" into 10. -EINVAL if not of that form or above 100. */
int parse_percent(const char *s, unsigned *ret);

/* Boolean environment value as HUB_PROTOCOL.md section 6 defines it: 1, ON, YES, TRUE. */
bool parse_env_bool(const char *v);

/* Formats a size in human units ("1.5 GiB", "512 B") into buf (at least 16 bytes). */
const char *format_size(uint64_t bytes, char *buf, size_t len);
/* Formats a time left in seconds as status and pull show it ("1:02:03", "4:05"; "unknown"
 * when s < 0) into buf (at least 24 bytes). */
const char *format_eta(int64_t s, char *buf, size_t len);
