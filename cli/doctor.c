/* doctor.c: `hffs doctor`'s report and its checks of this machine: FUSE, the cache directory
 * and its index, mounts left dead, each through the code the mount itself uses (cache_open,
 * cli_mounts_list, cli_budget). Single thread; knows nothing of the network. */
#include "cli/doctor.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cli/cli.h"
#include "cli/mount_check.h"
#include "cli/mounts.h"
#include "util/cleanup.h"
#include "util/jsonw.h"

static const char *const status_words[] = { "OK", "WARN", "FAIL" };

void doctor_add(struct doctor *d, const char *name, enum doctor_status status, const char *fix,
		const char *fmt, ...)
{
	struct doctor_check *c;
	va_list ap;

	assert(d->n < sizeof(d->v) / sizeof(d->v[0]));
	if (d->n == sizeof(d->v) / sizeof(d->v[0]))
		return;
	c = &d->v[d->n++];
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->status = status;
	snprintf(c->fix, sizeof(c->fix), "%s", fix && status != DOCTOR_OK ? fix : "");
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
}

int doctor_print(const struct doctor *d, bool json)
{
	bool failed = false;
	struct jsonw w;

	for (size_t i = 0; i < d->n; i++)
		failed |= d->v[i].status == DOCTOR_FAIL;
	if (!json) {
		for (size_t i = 0; i < d->n; i++) {
			const struct doctor_check *c = &d->v[i];

			printf("%-4s  %-10s %s%s%s\n", status_words[c->status], c->name, c->detail,
			       *c->fix ? ". Fix: " : "", c->fix);
		}
		return failed;
	}
	jsonw_init(&w, stdout);
	jsonw_begin_object(&w, NULL);
	jsonw_begin_array(&w, "checks");
	for (size_t i = 0; i < d->n; i++) {
		const struct doctor_check *c = &d->v[i];

		jsonw_begin_object(&w, NULL);
		jsonw_string(&w, "name", c->name);
		jsonw_string(&w, "status", status_words[c->status]);
		jsonw_string(&w, "detail", c->detail);
		jsonw_string(&w, "fix", *c->fix ? c->fix : NULL);
		jsonw_end_object(&w);
	}
	jsonw_end_array(&w);
	jsonw_bool(&w, "ok", !failed);
	jsonw_end_object(&w);
	fputc('\n', stdout);
	return failed;
}

/* The first executable name on PATH, into buf. */
static bool find_on_path(const char *name, char *buf, size_t len)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = strdup(path && *path ? path : "/usr/bin:/bin");
	char *save = NULL;

	if (!copy)
		return false;
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		if ((size_t)snprintf(buf, len, "%s/%s", *dir ? dir : ".", name) < len &&
		    access(buf, X_OK) == 0)
			return true;
	}
	return false;
}

void doctor_check_fuse(struct doctor *d)
{
	const char *dev = secure_getenv("HFFS_DOCTOR_FUSE_DEV");
	char path[PATH_MAX];
	struct stat st;

	if (!dev || !*dev)
		dev = "/dev/fuse";
	if (stat(dev, &st) < 0)
		doctor_add(d, "fuse", DOCTOR_FAIL,
			   "load the kernel module (modprobe fuse); in a container, pass the "
			   "device (docker run --device /dev/fuse --cap-add SYS_ADMIN)",
			   "%s: %s: mounts cannot start", dev, strerror(errno));
	else if (!S_ISCHR(st.st_mode))
		doctor_add(d, "fuse", DOCTOR_FAIL, "recreate it: mknod -m 666 /dev/fuse c 10 229",
			   "%s is not a character device", dev);
	else if (access(dev, R_OK | W_OK) < 0)
		doctor_add(d, "fuse", DOCTOR_FAIL,
			   "let your user open it (chmod 666 /dev/fuse, as fuse3 installs it)",
			   "%s: %s", dev, strerror(errno));
	else
		doctor_add(d, "fuse", DOCTOR_OK, NULL, "%s can be opened", dev);

	if (!find_on_path("fusermount3", path, sizeof(path)))
		doctor_add(d, "fusermount", DOCTOR_FAIL, "install fuse3 (apt install fuse3)",
			   "fusermount3 is not on PATH: mounts cannot start or be unmounted");
	else if (geteuid() != 0 &&
		 (stat(path, &st) < 0 || !(st.st_mode & S_ISUID) || st.st_uid != 0))
		doctor_add(d, "fusermount", DOCTOR_FAIL,
			   "make it setuid root as fuse3 installs it (chmod u+s), or mount as root",
			   "%s is not setuid root: only root can mount", path);
	else
		doctor_add(d, "fusermount", DOCTOR_OK, NULL, "%s", path);
}

void doctor_check_allow_other(struct doctor *d)
{
	const char *conf = secure_getenv("HFFS_DOCTOR_FUSE_CONF");
	bool allows;

	if (!conf || !*conf)
		conf = "/etc/fuse.conf";
	allows = cli_fuse_conf_allows_other(conf);
	if (geteuid() == 0)
		doctor_add(d, "allow_other", DOCTOR_OK, NULL,
			   "root may mount with --allow-other; %s %s user_allow_other (users' own "
			   "mounts with allow_other%s)",
			   conf, allows ? "has" : "has no line",
			   allows ? " may use it" : ", fstab 'user' mounts included, are refused");
	else if (allows)
		doctor_add(d, "allow_other", DOCTOR_OK, NULL, "%s has user_allow_other", conf);
	else
		doctor_add(d, "allow_other", DOCTOR_FAIL,
			   "as root: echo user_allow_other >> /etc/fuse.conf",
			   "%s has no line user_allow_other: fusermount3 refuses --allow-other to "
			   "users other than root",
			   conf);
}

static void human(unsigned long long n, char *buf, size_t len)
{
	static const char units[] = "BKMGTP";
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) - 1) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %ciB" : "%.0f %c", v, units[u]);
}

/* The nearest existing ancestor of dir (dir itself when it exists), into buf. */
static void existing_ancestor(const char *dir, char *buf, size_t len)
{
	char *slash;

	snprintf(buf, len, "%s", dir);
	while (access(buf, F_OK) < 0 && (slash = strrchr(buf, '/'))) {
		if (slash == buf) {
			buf[1] = '\0';
			break;
		}
		*slash = '\0';
	}
}

static void check_space(struct doctor *d, const char *dir)
{
	struct evict_limits b;
	struct statvfs sv;
	char free_s[32], floor_s[32];
	unsigned long long avail;

	if (statvfs(dir, &sv) < 0) {
		doctor_add(d, "disk", DOCTOR_WARN, NULL, "cannot read the free space of '%s': %s",
			   dir, strerror(errno));
		return;
	}
	/* The floor a mount keeps by default (it says why on stderr if it cannot tell). */
	if (cli_budget(NULL, NULL, NULL, dir, &b) != 0) {
		doctor_add(d, "disk", DOCTOR_WARN, NULL, "cannot tell the free-space floor of '%s'",
			   dir);
		return;
	}
	avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
	human(avail, free_s, sizeof(free_s));
	human(b.min_free, floor_s, sizeof(floor_s));
	if (avail <= b.min_free)
		doctor_add(
			d, "disk", DOCTOR_WARN,
			"free space on that disk, or put the cache on a bigger one (--cache-dir "
			"or HFFS_CACHE_DIR)",
			"%s free under '%s', at or below the %s a mount keeps free: nothing more "
			"can be cached",
			free_s, dir, floor_s);
	else
		doctor_add(d, "disk", DOCTOR_OK, NULL, "%s free under '%s' (a mount keeps %s free)",
			   free_s, dir, floor_s);
}

static void check_index(struct doctor *d, const char *dir)
{
	char path[PATH_MAX];
	struct cache *c = NULL;
	int r;

	if ((size_t)snprintf(path, sizeof(path), "%s/index/data.mdb", dir) >= sizeof(path) ||
	    access(path, F_OK) < 0) {
		doctor_add(d, "index", DOCTOR_OK, NULL, "no index yet: the first mount creates it");
		return;
	}
	r = cache_open(dir, &c);
	if (r == -EPROTONOSUPPORT)
		doctor_add(d, "index", DOCTOR_FAIL,
			   "use the hffs version that wrote it, or remove the directory (its "
			   "files are fetched again)",
			   "the index in '%s' was written by another version of hffs (this one "
			   "reads schema %u)",
			   dir, (unsigned)DB_SCHEMA_VERSION);
	else if (r < 0)
		doctor_add(d, "index", DOCTOR_FAIL,
			   "check the permissions and the disk of that directory",
			   "cannot open the index in '%s': %s", dir, strerror(-r));
	else
		doctor_add(d, "index", DOCTOR_OK, NULL, "opens, schema %u",
			   (unsigned)db_schema_version(cache_index(c)));
	cache_close(c);
}

void doctor_check_cache(struct doctor *d, const char *dir)
{
	char at[PATH_MAX];
	struct stat st;

	existing_ancestor(dir, at, sizeof(at));
	if (stat(at, &st) < 0 || !S_ISDIR(st.st_mode)) {
		doctor_add(d, "cache", DOCTOR_FAIL,
			   "choose another directory (--cache-dir or HFFS_CACHE_DIR)",
			   "'%s' is not a directory", at);
		return;
	}
	if (access(at, W_OK | X_OK) < 0) {
		doctor_add(d, "cache", DOCTOR_FAIL,
			   "make it yours (chown), or choose another directory (--cache-dir or "
			   "HFFS_CACHE_DIR)",
			   "'%s' is not writable by you%s", at,
			   strcmp(at, dir) ? ": the cache directory cannot be created" : "");
		return;
	}
	if (strcmp(at, dir))
		doctor_add(d, "cache", DOCTOR_OK, NULL,
			   "'%s' does not exist yet; the first mount creates it", dir);
	else if (st.st_mode & 077)
		doctor_add(d, "cache", DOCTOR_WARN, "chmod 700 it",
			   "'%s' has mode %04o: other users can read what it caches, private and "
			   "gated repos included",
			   dir, (unsigned)(st.st_mode & 07777));
	else
		doctor_add(d, "cache", DOCTOR_OK, NULL, "'%s' is writable, mode 0700", dir);
	check_space(d, at);
	check_index(d, dir);
}

void doctor_check_mounts(struct doctor *d)
{
	struct cli_mount *v = NULL;
	size_t n = 0, dead = 0;
	int r = cli_mounts_list(&v, &n);

	if (r < 0) {
		doctor_add(d, "mounts", DOCTOR_WARN, NULL, "cannot read the mount table: %s",
			   strerror(-r));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!v[i].dead)
			continue;
		dead++;
		doctor_add(d, "mounts", DOCTOR_WARN, "hffs unmount it (or mount there again)",
			   "'%s' (%s) is a mount whose daemon is gone: reads there fail with "
			   "'Transport endpoint is not connected'",
			   v[i].mountpoint, v[i].source);
	}
	if (!dead)
		doctor_add(d, "mounts", DOCTOR_OK, NULL, "%zu hffs mount%s, none dead", n,
			   n == 1 ? "" : "s");
	cli_mounts_free(v, n);
}
