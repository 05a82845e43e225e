/* proc.h: whether a process recorded in the cache index is still an hffs daemon. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* True when pid is a running hffs process: a mount record whose daemon is gone (killed,
 * crashed, exited but not reaped yet) is no live mount, and a reused pid of another program
 * does not count. Reads /proc; any thread. */
bool proc_hffs_alive(pid_t pid);
