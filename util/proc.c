/* proc.c: liveness of hffs daemons, from kill(pid, 0) and /proc/<pid>/{comm,stat}. */
#include "util/proc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* Whether /proc/<pid>/stat says the process is a zombie. */
static bool is_zombie(pid_t pid)
{
	char path[64], stat[256] = "", *paren;
	bool zombie = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fgets(stat, sizeof(stat), f) && (paren = strrchr(stat, ')')) && paren[1])
		zombie = paren[2] == 'Z';
	fclose(f);
	return zombie;
}

bool proc_hffs_alive(pid_t pid)
{
	char path[64], comm[32] = "";
	FILE *f;

	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return true;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	return !strncmp(comm, "hffs", 4) && !is_zombie(pid);
}
