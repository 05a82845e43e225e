/* mount_check.h: `hffs mount`'s arguments checked before anything starts, with the fix in
 * the message: a repo given as a URL or with a trailing slash, an endpoint without a scheme. */
#pragma once

#include <stdbool.h>

/* 0 when spec looks like a repo id (the Hub's own rules are checked later); else says what is
 * wrong, with the id to use when one can be read from it, and returns 2. */
int cli_check_repo_arg(const char *spec);
/* 0 for an http:// or https:// URL with a host (or NULL); else says so and returns 2. from
 * names where it came from ("--endpoint", "HF_ENDPOINT"). */
int cli_check_endpoint(const char *endpoint, const char *from);
/* 0 when --allow-other can work: the caller is root, or the FUSE config file conf (e.g.
 * /etc/fuse.conf) has a user_allow_other line, which fusermount3 requires; else says so with
 * the fix and returns 1. */
int cli_check_allow_other(const char *conf);
/* Whether the FUSE config file conf has a user_allow_other line, read as fusermount3 reads
 * it (blanks around, '#' comments). False when it cannot be read. */
bool cli_fuse_conf_allows_other(const char *conf);
