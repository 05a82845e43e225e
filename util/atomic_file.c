/* atomic_file.c: write a temporary file beside the target, then rename it over the target. */
#include "util/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"

int atomic_file_write(const char *path, mode_t mode, int (*fill)(FILE *f, void *ud), void *ud)
{
	_cleanup_free_ char *tmp = NULL;
	const char *slash = strrchr(path, '/');
	FILE *f;
	int fd, r;

	/* ".NAME.XXXXXX": hidden, so a collector that reads *.prom never takes it. */
	if (asprintf(&tmp, "%.*s.%s.XXXXXX", slash ? (int)(slash - path + 1) : 0, path,
		     slash ? slash + 1 : path) < 0)
		return -ENOMEM;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		r = -errno;
		close(fd);
		goto out_unlink;
	}
	r = fill(f, ud);
	if (r >= 0 && fflush(f) != 0)
		r = -errno;
	/* mkostemp made it 0600. The mode is set as given: reading the umask means changing
	 * it, for every thread of the process at once. */
	if (r >= 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (fclose(f) != 0 && r >= 0)
		r = -errno;
	if (r >= 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r >= 0)
		return 0;
out_unlink:
	(void)unlink(tmp);
	return r;
}
