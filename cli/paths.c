/* paths.c: default locations and path helpers of the command line. */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/mounts.h"
#include "util/cleanup.h"

char *cli_cache_dir_for(const char *arg, const char *mp)
{
	_cleanup_free_ char *abs = mp && !arg ? cli_abspath(mp) : NULL;
	char *dir = abs ? cli_mount_cache_dir(abs) : NULL;

	return dir ? dir : cli_cache_dir(arg);
}

char *cli_abspath(const char *path)
{
	char cwd[PATH_MAX], *r;
	size_t n;

	if (path[0] == '/') {
		r = strdup(path);
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return NULL;
		if (asprintf(&r, "%s/%s", cwd, path) < 0)
			return NULL;
	}
	/* Trailing slashes would make two keys of one mountpoint. */
	n = r ? strlen(r) : 0;
	while (n > 1 && r[n - 1] == '/')
		r[--n] = '\0';
	return r;
}

char *cli_cache_dir(const char *arg)
{
	const char *env = secure_getenv("HFFS_CACHE_DIR");
	const char *xdg = secure_getenv("XDG_CACHE_HOME");
	const char *home = secure_getenv("HOME");
	char *r = NULL, *abs;

	if (arg && *arg)
		return cli_abspath(arg);
	if (env && *env)
		return cli_abspath(env);
	if (xdg && *xdg) {
		if (asprintf(&r, "%s/hffs", xdg) < 0)
			return NULL;
	} else if (home && *home) {
		if (asprintf(&r, "%s/.cache/hffs", home) < 0)
			return NULL;
	} else {
		return NULL;
	}
	abs = cli_abspath(r);
	free(r);
	return abs;
}

int cli_mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int cli_fusermount(const char *flag, const char *path)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", flag, "--", path, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}
