/* cmd_mount.c: `hffs mount`. Checks the arguments, then forks the daemon before any thread
 * or LMDB handle exists; the parent waits until the mount answers (or the daemon fails,
 * having said why on the inherited stderr) and exits with that outcome, as sshfs does. */
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/hf_layout.h"
#include "cli/mount_check.h"
#include "fetch/hub.h"
#include "fs/mount.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/parse.h"

static const char mount_usage[] =
	"Usage: hffs mount REPO MOUNTPOINT [OPTIONS]\n"
	"       hffs mount REPO [MOUNTPOINT] --hf-cache [OPTIONS]\n"
	"\n"
	"Mounts REPO (org/name, name, datasets/org/name or spaces/org/name) read-only at\n"
	"MOUNTPOINT, pinned to the commit REV resolves to now. Returns once the mount is ready\n"
	"and serves it in the background; files are fetched as they are read.\n"
	"\n"
	"Options:\n"
	"  -r, --revision REV      branch, tag, commit or refs/pr/N (default: main)\n"
	"      --endpoint URL      Hub endpoint (default: $HF_ENDPOINT or https://huggingface.co)\n"
	"      --cache-dir DIR     cache directory (default: $HFFS_CACHE_DIR, else\n"
	"                          $XDG_CACHE_HOME/hffs or ~/.cache/hffs)\n"
	"  -f, --foreground        serve in the foreground, logging to stderr\n"
	"      --connections N     parallel connections (default: 16)\n"
	"      --max-rate RATE     bandwidth cap in bytes/s, units allowed: 50M (default: none)\n"
	"      --stall-timeout S   seconds without a byte before a transfer is retried (30)\n"
	"      --io-timeout DURATION  how long a read waits for bytes through Hub or CDN\n"
	"                          failures before it fails with EIO (30s; 5m, 1h)\n"
	"      --range-align SIZE  start and end every range on a multiple of SIZE (but at\n"
	"                          EOF): a caching mirror's slice size, e.g. 1M (default: off)\n"
	"      --prefetch MODE     all: complete every file in the background (default);\n"
	"                          none: fetch only what is read\n"
	"      --verify MODE       default: a read needing a file's last block, and any read\n"
	"                          of a small (non-LFS) file, waits until the whole file\n"
	"                          matches its hash; strict: every read waits for that\n"
	"      --xet MODE          off: read every file by /resolve (default); auto: read\n"
	"                          files stored on Xet through the Xet protocol, falling\n"
	"                          back to /resolve per file; on: no fallback (reads fail)\n"
	"      --allow-non-empty   mount over a directory that has entries (they are hidden)\n"
	"      --allow-other       let users other than you read the mount (as root, or with\n"
	"                          user_allow_other in /etc/fuse.conf)\n"
	"      --hf-cache          also show the commit in the Hugging Face cache\n"
	"                          ($HF_HUB_CACHE, else $HF_HOME/hub, else\n"
	"                          ~/.cache/huggingface/hub), so code that loads REPO by id\n"
	"                          reads it through the mount, online or offline; without\n"
	"                          MOUNTPOINT one is picked under $XDG_RUNTIME_DIR/hffs (else\n"
	"                          DIR/mnt) and printed\n"
	"      --include GLOB      complete only files matching GLOB (repeatable)\n"
	"      --exclude GLOB      do not complete files matching GLOB (repeatable)\n"
	"      --cache-max-size SIZE  keep the cache's data under SIZE (e.g. 200G), evicting\n"
	"                          least recently used files no mount uses (default: none)\n"
	"      --min-free SIZE|PCT%  keep this much of the cache's disk free (default: 5%,\n"
	"                          at most 5G); completion pauses there and reads that\n"
	"                          cannot be cached are streamed through memory\n"
	"      --log-file FILE     daemon log (default: DIR/logs/<mountpoint>.log)\n"
	"      --metrics-file FILE  the mount's metrics in the Prometheus text format,\n"
	"                          rewritten every 5 s and removed at unmount (for\n"
	"                          node_exporter's textfile collector; default: none)\n"
	"  -d, --debug             debug logs and FUSE request tracing\n"
	"  -h, --help              this text\n"
	"\n"
	"Token: $HF_TOKEN, else the file $HF_TOKEN_PATH, else $HF_HOME/token.\n"
	"Offline: HF_HUB_OFFLINE=1 mounts a revision whose file list is cached, without network.\n";

enum {
	OPT_ENDPOINT = 256,
	OPT_CACHE_DIR,
	OPT_CONNECTIONS,
	OPT_MAX_RATE,
	OPT_STALL,
	OPT_IO_TIMEOUT,
	OPT_LOG_FILE,
	OPT_PAGE_SIZE,
	OPT_PREFETCH,
	OPT_INCLUDE,
	OPT_EXCLUDE,
	OPT_CACHE_MAX_SIZE,
	OPT_MIN_FREE,
	OPT_VERIFY,
	OPT_XET,
	OPT_ALLOW_NON_EMPTY,
	OPT_ALLOW_OTHER,
	OPT_HF_CACHE,
	OPT_METRICS_FILE,
	OPT_RANGE_ALIGN,
};

#define MAX_PATTERNS 64

/* "/models/qwen" -> "models-qwen.log": one log per mountpoint, stable across mounts. */
static char *default_log_path(const char *cache_dir, const char *mountpoint)
{
	_cleanup_free_ char *name = strdup(mountpoint[1] ? mountpoint + 1 : "root");
	char *r;

	if (!name)
		return NULL;
	for (char *p = name; *p; p++)
		if (*p == '/' || *p == ' ')
			*p = '-';
	if (asprintf(&r, "%s/logs/%.200s.log", cache_dir, name) < 0)
		return NULL;
	return r;
}

/* --hf-cache without a MOUNTPOINT: $XDG_RUNTIME_DIR/hffs/<repo folder>[@<rev>] (private to the
 * user, gone at logout like the mount), else <cache dir>/mnt/...; "/" in rev becomes "%2F".
 * malloc'd; NULL when the repo id is not one (the mount then says why) or on OOM. */
static char *hf_mountpoint(const char *cache_dir, const char *spec, const char *rev)
{
	const char *run = secure_getenv("XDG_RUNTIME_DIR");
	_cleanup_free_ char *base = NULL, *revpart = NULL;
	struct hub_repo repo;
	struct hub_error err;
	char dir[PATH_MAX];
	struct stat st;
	char *r;

	if (hub_repo_parse(spec, &repo, &err) < 0)
		return NULL;
	if (run && run[0] == '/' && stat(run, &st) == 0 && S_ISDIR(st.st_mode))
		r = asprintf(&base, "%s/hffs", run) < 0 ? NULL : base;
	else
		r = asprintf(&base, "%s/mnt", cache_dir) < 0 ? NULL : base;
	if (!r || hf_layout_repo_dir(base, hub_repo_type_plural(repo.type), repo.id, dir,
				     sizeof(dir)) < 0)
		return NULL;
	if (!strcmp(rev, "main"))
		return strdup(dir);
	revpart = malloc(3 * strlen(rev) + 1);
	if (!revpart)
		return NULL;
	r = revpart;
	for (const char *c = rev; *c; c++)
		r += *c == '/' ? sprintf(r, "%%2F") : sprintf(r, "%c", *c);
	*r = '\0';
	return asprintf(&r, "%s@%s", dir, revpart) < 0 ? NULL : r;
}

/* A dead FUSE daemon leaves "Transport endpoint is not connected" behind: clear it so the
 * next mount does not fail on (or stack over) it. statfs() is asked of the daemon every time,
 * while stat() of the root may be answered from the kernel's attribute cache. */
/* Entries of directory path other than . and .. (0 when it cannot be read: the mount then
 * says why). */
static size_t count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

static int check_mountpoint(const char *mp, bool allow_non_empty)
{
	_cleanup_free_ char *parent = NULL;
	struct statfs sfs;
	struct stat st, pst;
	size_t n;

	if (statfs(mp, &sfs) < 0 && errno == ENOTCONN) {
		log_warn("'%s' is a mount whose daemon died; unmounting it first", mp);
		(void)cli_fusermount("-uz", mp);
	}
	if (stat(mp, &st) < 0) {
		log_err("mountpoint '%s': %s", mp, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_err("mountpoint '%s' is not a directory", mp);
		return -ENOTDIR;
	}
	if (asprintf(&parent, "%s/..", mp) >= 0 && stat(parent, &pst) == 0 &&
	    pst.st_dev != st.st_dev && strcmp(mp, "/")) {
		log_err("'%s' is already a mount point; unmount it first (hffs unmount '%s')", mp,
			mp);
		return -EBUSY;
	}
	n = allow_non_empty ? 0 : count_entries(mp);
	if (n) {
		log_err("mountpoint '%s' is not empty: the mount would hide its %zu entr%s; use an "
			"empty directory, or --allow-non-empty",
			mp, n, n == 1 ? "y" : "ies");
		return -ENOTEMPTY;
	}
	return 0;
}

/* The daemon replaces path by renaming a file it writes beside it: its directory must take
 * new files, and path must not be a directory. Said now, not in a log later. */
static int check_metrics_file(const char *path)
{
	_cleanup_free_ char *dir = strdup(path);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	const char *why = NULL;
	struct stat st;

	if (!slash)
		return -ENOMEM;
	slash[slash == dir] = '\0'; /* "/x" -> "/" */
	if (stat(dir, &st) < 0)
		why = strerror(errno);
	else if (!S_ISDIR(st.st_mode))
		why = "it is not a directory";
	else if (access(dir, W_OK | X_OK) < 0)
		why = "it is not writable (the file is replaced by renaming a file written beside it)";
	if (why) {
		log_err("--metrics-file '%s': directory '%s': %s", path, dir, why);
		return -EINVAL;
	}
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		log_err("--metrics-file '%s' is a directory; name a file in it, e.g. '%s/hffs.prom'",
			path, path);
		return -EISDIR;
	}
	return 0;
}

/* Parent side: 0 once the daemon says the mount answers, else the daemon's exit status. */
static int wait_ready(pid_t pid, int fd)
{
	char b;
	ssize_t n;
	int status;

	do
		n = read(fd, &b, 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n == 1)
		return 0;
	if (waitpid(pid, &status, 0) < 0)
		return 1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status) ? WEXITSTATUS(status) : 1;
	log_err("the mount daemon died (signal %d) before the mount was ready", WTERMSIG(status));
	return 1;
}

static int daemonize(struct mount_opts *o, pid_t *ret_pid, int *ret_fd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		*ret_pid = pid;
		*ret_fd = p[0];
		return 1;
	}
	close(p[0]);
	(void)setsid();
	if (chdir("/") < 0)
		return -errno;
	int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nul >= 0) {
		dup2(nul, STDIN_FILENO);
		close(nul);
	}
	o->ready_fd = p[1];
	return 0;
}

int cmd_mount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "revision", required_argument, NULL, 'r' },
		{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
		{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
		{ "foreground", no_argument, NULL, 'f' },
		{ "connections", required_argument, NULL, OPT_CONNECTIONS },
		{ "max-rate", required_argument, NULL, OPT_MAX_RATE },
		{ "stall-timeout", required_argument, NULL, OPT_STALL },
		{ "io-timeout", required_argument, NULL, OPT_IO_TIMEOUT },
		{ "range-align", required_argument, NULL, OPT_RANGE_ALIGN },
		{ "log-file", required_argument, NULL, OPT_LOG_FILE },
		{ "tree-page-size", required_argument, NULL, OPT_PAGE_SIZE },
		{ "prefetch", required_argument, NULL, OPT_PREFETCH },
		{ "verify", required_argument, NULL, OPT_VERIFY },
		{ "xet", required_argument, NULL, OPT_XET },
		{ "allow-non-empty", no_argument, NULL, OPT_ALLOW_NON_EMPTY },
		{ "allow-other", no_argument, NULL, OPT_ALLOW_OTHER },
		{ "hf-cache", no_argument, NULL, OPT_HF_CACHE },
		{ "include", required_argument, NULL, OPT_INCLUDE },
		{ "exclude", required_argument, NULL, OPT_EXCLUDE },
		{ "cache-max-size", required_argument, NULL, OPT_CACHE_MAX_SIZE },
		{ "min-free", required_argument, NULL, OPT_MIN_FREE },
		{ "metrics-file", required_argument, NULL, OPT_METRICS_FILE },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct mount_opts o = {
		.revision = "main", .ready_fd = -1, .prefetch = true, .io_timeout_s = 30
	};
	bool allow_non_empty = false, new_cache;
	const char *include[MAX_PATTERNS], *exclude[MAX_PATTERNS];
	_cleanup_free_ char *cache_dir = NULL, *mountpoint = NULL, *log_path = NULL;
	_cleanup_free_ char *hf_root = NULL;
	char *picked = NULL; /* mountpoint, when --hf-cache picked it */
	_cleanup_free_ char *metrics_file = NULL;
	const char *cache_arg = NULL, *log_arg = NULL, *max_size_arg = NULL, *min_free_arg = NULL;
	const char *metrics_arg = NULL;
	struct evict_limits budget;
	bool foreground = false;
	uint64_t v;
	pid_t pid = 0;
	int c, r, fd = -1;

	while ((c = getopt_long(argc, argv, "r:fdh", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o.revision = optarg;
			break;
		case OPT_ENDPOINT:
			o.endpoint = optarg;
			break;
		case OPT_CACHE_DIR:
			cache_arg = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case OPT_CONNECTIONS:
			if (cli_connections_arg(optarg, &o.connections))
				return 2;
			break;
		case OPT_MAX_RATE:
			if (cli_max_rate_arg(optarg, &o.max_rate))
				return 2;
			break;
		case OPT_STALL:
			if (parse_uint(optarg, 3600, &v) < 0 || !v) {
				log_err("--stall-timeout takes seconds from 1 to 3600, not '%s'",
					optarg);
				return 2;
			}
			o.stall_timeout_s = (unsigned)v;
			break;
		case OPT_IO_TIMEOUT:
			if (parse_duration(optarg, 86400, &v) < 0 || !v) {
				log_err("--io-timeout takes a duration from 1s to 24h (e.g. 30s, 5m), "
					"not '%s'",
					optarg);
				return 2;
			}
			o.io_timeout_s = (unsigned)v;
			break;
		case OPT_RANGE_ALIGN:
			if (cli_range_align_arg(optarg, &o.range_align))
				return 2;
			break;
		case OPT_LOG_FILE:
			log_arg = optarg;
			break;
		case OPT_METRICS_FILE:
			metrics_arg = optarg;
			break;
		case OPT_CACHE_MAX_SIZE:
			max_size_arg = optarg;
			break;
		case OPT_MIN_FREE:
			min_free_arg = optarg;
			break;
		case OPT_PAGE_SIZE:
			if (parse_uint(optarg, 100000, &v) < 0) {
				log_err("--tree-page-size takes a number, not '%s'", optarg);
				return 2;
			}
			o.page_limit = (unsigned)v;
			break;
		case OPT_PREFETCH:
			if (strcmp(optarg, "all") && strcmp(optarg, "none")) {
				log_err("--prefetch takes 'all' or 'none', not '%s'", optarg);
				return 2;
			}
			o.prefetch = !strcmp(optarg, "all");
			break;
		case OPT_ALLOW_NON_EMPTY:
			allow_non_empty = true;
			break;
		case OPT_ALLOW_OTHER:
			o.allow_other = true;
			break;
		case OPT_HF_CACHE:
			o.hf_cache = true;
			break;
		case OPT_VERIFY:
			if (strcmp(optarg, "default") && strcmp(optarg, "strict")) {
				log_err("--verify takes 'default' or 'strict', not '%s'", optarg);
				return 2;
			}
			o.verify_strict = !strcmp(optarg, "strict");
			break;
		case OPT_XET: {
			int m = xet_mode_parse(optarg);

			if (m < 0) {
				log_err("--xet takes 'auto', 'on' or 'off', not '%s'", optarg);
				return 2;
			}
			o.xet = (enum xet_mode)m;
			break;
		}
		case OPT_INCLUDE:
		case OPT_EXCLUDE:
			if ((c == OPT_INCLUDE ? o.ninclude : o.nexclude) == MAX_PATTERNS) {
				log_err("at most %d --include and %d --exclude patterns",
					MAX_PATTERNS, MAX_PATTERNS);
				return 2;
			}
			if (c == OPT_INCLUDE)
				include[o.ninclude++] = optarg;
			else
				exclude[o.nexclude++] = optarg;
			break;
		case 'd':
			o.debug = true;
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case 'h':
			fputs(mount_usage, stdout);
			return 0;
		default:
			fputs("see 'hffs mount --help'\n", stderr);
			return 2;
		}
	}
	if (argc - optind != 2 && !(o.hf_cache && argc - optind == 1)) {
		fputs(mount_usage, stderr);
		return 2;
	}
	o.include = include;
	o.exclude = exclude;
	o.repo = argv[optind];
	r = cli_check_repo_arg(o.repo);
	if (!r && o.allow_other)
		r = cli_check_allow_other("/etc/fuse.conf");
	if (!r)
		r = o.endpoint ? cli_check_endpoint(o.endpoint, "--endpoint") :
				 cli_check_endpoint(secure_getenv("HF_ENDPOINT"), "HF_ENDPOINT");
	if (r)
		return r;
	cache_dir = cli_cache_dir(cache_arg);
	if (argc - optind == 2)
		mountpoint = cli_abspath(argv[optind + 1]);
	else if (cache_dir)
		mountpoint = picked = hf_mountpoint(cache_dir, o.repo, o.revision);
	if (!mountpoint || !cache_dir) {
		log_err("cannot determine the %s (set HOME or pass --cache-dir)",
			mountpoint ? "cache directory" : "mountpoint");
		return 1;
	}
	/* A new cache is the user's alone: it may hold the files of private repos. */
	new_cache = access(cache_dir, F_OK) < 0;
	r = cli_mkdir_p(cache_dir);
	if (r >= 0 && new_cache && chmod(cache_dir, 0700) < 0)
		r = -errno;
	if (r < 0) {
		log_err("cannot create the cache directory '%s': %s", cache_dir, strerror(-r));
		return 1;
	}
	r = cli_budget("--cache-max-size", max_size_arg, min_free_arg, cache_dir, &budget);
	if (r)
		return r;
	if (!budget.max_size) {
		log_err("--cache-max-size 0 leaves no room to cache anything; give a size such as 20G");
		return 2;
	}
	o.cache_max_size = budget.max_size;
	o.min_free = budget.min_free;
	if (o.hf_cache) {
		_cleanup_free_ char *root = hf_layout_root();

		hf_root = root ? cli_abspath(root) : NULL;
		if (!hf_root) {
			log_err("--hf-cache: cannot tell where the Hugging Face cache is (set "
				"HF_HUB_CACHE, HF_HOME or HOME)");
			return 1;
		}
		o.hf_root = hf_root;
	}
	if (picked && (r = cli_mkdir_p(picked)) < 0) {
		log_err("cannot create the mountpoint '%s': %s", picked, strerror(-r));
		return 1;
	}
	if (check_mountpoint(mountpoint, allow_non_empty) < 0)
		return 1;
	if (metrics_arg) {
		metrics_file = cli_abspath(metrics_arg);
		if (!metrics_file || check_metrics_file(metrics_file) < 0)
			return 1;
		o.metrics_file = metrics_file;
	}
	o.mountpoint = mountpoint;
	o.cache_dir = cache_dir;
	if (!foreground) {
		log_path = log_arg ? cli_abspath(log_arg) : default_log_path(cache_dir, mountpoint);
		if (log_path && !log_arg) {
			_cleanup_free_ char *dir = NULL;

			if (asprintf(&dir, "%s/logs", cache_dir) >= 0)
				(void)cli_mkdir_p(dir);
		}
		o.log_path = log_path;
		r = daemonize(&o, &pid, &fd);
		if (r < 0) {
			log_err("cannot start the mount daemon: %s", strerror(-r));
			return 1;
		}
		if (r > 0) {
			r = wait_ready(pid, fd);
			if (r == 0 && log_path)
				fprintf(stderr, "hffs: log: %s\n", log_path);
			if (r == 0 && picked)
				printf("%s\n", picked);
			return r;
		}
	}
	if (picked) { /* in the foreground, before it serves: a script reads it at once */
		printf("%s\n", picked);
		fflush(stdout);
	}
	r = mount_run(&o);
	return r < 0 ? 1 : 0;
}
