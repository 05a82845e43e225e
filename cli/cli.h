/* cli.h: what the subcommands share: their entry points and the default paths. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache/evict.h"

int cmd_mount(int argc, char **argv);
int cmd_unmount(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_pull(int argc, char **argv);

/* --cache-dir, else HFFS_CACHE_DIR, else $XDG_CACHE_HOME/hffs, else ~/.cache/hffs, made
 * absolute (not required to exist). malloc'd, NULL on OOM or no HOME. */
char *cli_cache_dir(const char *arg);
/* The cache directory for a command about mountpoint mp: --cache-dir (arg) when given, else
 * the one the live hffs mount at mp says it uses, else cli_cache_dir(NULL). malloc'd. */
char *cli_cache_dir_for(const char *arg, const char *mp);
/* Absolute form of a path the user gave, without following a dead mount. malloc'd. */
char *cli_abspath(const char *path);
/* mkdir -p with mode 0755. 0 or -errno. */
int cli_mkdir_p(const char *path);
/* Runs fusermount3 with args ("-u" or "-uz") on path; returns its exit status or -errno. */
int cli_fusermount(const char *flag, const char *path);
/* The cache's limits from a max size flag's value (NULL: none) and --min-free's (a size or a
 * percentage of dir's file system; NULL: the default floor). 0, or 2 after saying what is
 * wrong with which flag (max_flag names the first). */
int cli_budget(const char *max_flag, const char *max_size, const char *min_free, const char *dir,
	       struct evict_limits *b);
/* The transfer flags shared by mount and pull (transfer_args.c): --connections (1-256),
 * --max-rate (a size per second), --range-align (4K-1G). 0, or 2 after saying what is
 * wrong with the value. */
int cli_connections_arg(const char *arg, unsigned *ret);
int cli_max_rate_arg(const char *arg, uint64_t *ret);
int cli_range_align_arg(const char *arg, uint64_t *ret);
