/* doctor.h: `hffs doctor`'s report (one line per check: OK, WARN or FAIL, what was checked,
 * and what to do when not OK) and its checks of this machine: FUSE, the cache directory and
 * its index, mounts left dead. The network checks are cmd_doctor.c's. Single thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum doctor_status {
	DOCTOR_OK,
	DOCTOR_WARN,
	DOCTOR_FAIL,
};

struct doctor_check {
	char name[24];
	enum doctor_status status;
	char detail[600];
	char fix[400]; /* "" when OK */
};

/* The checks so far, in order; a fixed array: doctor runs a known, small set. */
struct doctor {
	struct doctor_check v[32];
	size_t n;
};

/* Appends a check; fix (may be NULL) says what to do, printf-formatted detail what was found.
 * Beyond the array's size a check is dropped (a programmer error: asserted). */
void doctor_add(struct doctor *d, const char *name, enum doctor_status status, const char *fix,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Prints the report: one line per check, or with json one object {"checks": [{"name",
 * "status", "detail", "fix"}], "ok"}. Returns 0 when no check FAILed, else 1. */
int doctor_print(const struct doctor *d, bool json);

/* /dev/fuse (HFFS_DOCTOR_FUSE_DEV replaces the path: a test hook) and fusermount3 on PATH. */
void doctor_check_fuse(struct doctor *d);
/* For --allow-other: a user other than root needs a line user_allow_other in /etc/fuse.conf
 * (HFFS_DOCTOR_FUSE_CONF replaces the path: a test hook), as `hffs mount` checks it. */
void doctor_check_allow_other(struct doctor *d);
/* The cache directory dir: writable, 0700, free space against the default floor, the index
 * opens with this build's schema (never created here). */
void doctor_check_cache(struct doctor *d, const char *dir);
/* hffs mounts whose daemon is gone. */
void doctor_check_mounts(struct doctor *d);
