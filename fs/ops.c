/* ops.c: FUSE low-level handlers for a read-only commit. Every inode is immutable, so entries
 * and attributes are cached by the kernel for a day and file pages are kept across opens. The
 * only place that turns -errno into a FUSE error reply. */
#include "fs/ops.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "fs/xattr.h"
#include "util/log.h"
#include "util/timeutil.h"

/* A commit never changes: the kernel may keep entries and attributes as long as it likes. */
#define CACHE_TIMEOUT_S 86400.0

static struct mount_ctx *ctx_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void fill_stat(const struct mount_ctx *m, const struct inode *e, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = e->ino;
	st->st_mode = e->is_dir ? S_IFDIR | 0555 : S_IFREG | 0444;
	st->st_nlink = e->is_dir ? 2 : 1;
	st->st_uid = m->uid;
	st->st_gid = m->gid;
	st->st_size = (off_t)e->size;
	st->st_blksize = m->block_size;
	st->st_blocks = (blkcnt_t)((e->size + 511) / 512);
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec = (time_t)m->mtime;
}

/* The largest read request whose reply libfuse can splice. It splices (file -> pipe ->
 * /dev/fuse, one copy) only when the reply plus three pages of slack fit in its pipe, else it
 * copies twice (pread into a buffer, writev). A pipe grows past /proc/sys/fs/pipe-max-size
 * (1 MiB by default) only with CAP_SYS_RESOURCE, which containers often drop: then requests
 * are kept that much under the pipe's size. */
static unsigned ops_max_request(void)
{
	const unsigned want = 1U << 20, page = (unsigned)sysconf(_SC_PAGESIZE);
	int p[2], got;

	if (pipe(p) < 0)
		return want;
	if (fcntl(p[0], F_SETPIPE_SZ, (int)(want + 4 * page)) >= 0) {
		got = (int)(want + 4 * page);
	} else {
		(void)fcntl(p[0], F_SETPIPE_SZ, (int)want);
		got = fcntl(p[0], F_GETPIPE_SZ);
	}
	close(p[0]);
	close(p[1]);
	if (got < (int)(8 * page))
		return want;
	return MIN(want, ((unsigned)got / page - 4) * page);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct mount_ctx *m = userdata;

	/* libfuse derives max_pages from max_write: requests of about 1 MiB instead of 128 KiB
	 * ones, the difference between one round trip per block and eight. */
	conn->max_write = ops_max_request();
	conn->max_readahead = m->readahead_kb * 1024U;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->want |= FUSE_CAP_ASYNC_READ;
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mount_ctx *m = ctx_of(req);
	const struct inode *e = inode_lookup(m->t, parent, name);
	struct fuse_entry_param ep;

	if (!e) {
		/* A negative entry with a timeout: absent names stay absent under a commit. */
		memset(&ep, 0, sizeof(ep));
		ep.entry_timeout = CACHE_TIMEOUT_S;
		fuse_reply_entry(req, &ep);
		return;
	}
	memset(&ep, 0, sizeof(ep));
	ep.ino = e->ino;
	ep.generation = 1;
	ep.attr_timeout = ep.entry_timeout = CACHE_TIMEOUT_S;
	fill_stat(m, e, &ep.attr);
	fuse_reply_entry(req, &ep);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mount_ctx *m = ctx_of(req);
	const struct inode *e = inode_get(m->t, ino);
	struct stat st;

	(void)fi;
	if (!e) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_stat(m, e, &st);
	fuse_reply_attr(req, &st, CACHE_TIMEOUT_S);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct inode *e = inode_get(ctx_of(req)->t, ino);

	if (!e) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!e->is_dir) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* Offsets: 1 is ".", 2 is "..", 3 + i is child i. */
static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct mount_ctx *m = ctx_of(req);
	const struct inode *d = inode_get(m->t, ino);
	_cleanup_free_ char *buf = NULL;
	size_t used = 0;

	(void)fi;
	if (!d || !d->is_dir) {
		fuse_reply_err(req, d ? ENOTDIR : ENOENT);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (uint64_t i = (uint64_t)off; i < d->nchildren + 2; i++) {
		const struct inode *c = i == 0 ? d :
					i == 1 ? inode_get(m->t, d->parent) :
						 inode_get(m->t, d->children[i - 2]);
		const char *name = i == 0 ? "." : i == 1 ? ".." : c->name;
		struct stat st = { .st_ino = c->ino, .st_mode = c->is_dir ? S_IFDIR : S_IFREG };
		size_t n = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)i + 1);

		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

/* Per open file: the read-ahead state of its reader(s), and the blob's generation when it
 * was opened (a handle that may have been served bytes of a generation that failed gets EIO
 * from then on). */
struct open_file {
	pthread_mutex_t lock;
	struct readahead ra; /* lock */
	uint64_t gen;
};

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	const struct inode *e = inode_get(ctx_of(req)->t, ino);
	struct open_file *of;
	uint64_t gen;

	if (!e) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (e->is_dir) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	of = calloc(1, sizeof(*of));
	if (!of) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_init(&of->lock, NULL);
	/* Waits, never on the network, while the kernel's pages of a blob that just failed its
	 * hash are invalidated: a new handle never sees them. */
	gen = sched_open(ctx_of(req)->sched, e);
	pthread_mutex_lock(&of->lock);
	of->gen = gen;
	pthread_mutex_unlock(&of->lock);
	fi->fh = (uint64_t)(uintptr_t)of;
	fi->keep_cache = 1; /* the bytes of a commit never change */
	if (fuse_reply_open(req, fi) < 0) {
		pthread_mutex_destroy(&of->lock);
		free(of);
	}
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

	(void)ino;
	if (of) {
		/* The kernel sends RELEASE only after every read of the handle was answered, but a
		 * worker may still be leaving op_read(): taking the lock once orders its last
		 * unlock before the destroy (and shows that order to ThreadSanitizer, which cannot
		 * see it through /dev/fuse). */
		pthread_mutex_lock(&of->lock);
		pthread_mutex_unlock(&of->lock);
		pthread_mutex_destroy(&of->lock);
		free(of);
	}
	fuse_reply_err(req, 0);
}

/* What a sequential reader will want next: the window to fetch at read-ahead priority
 * (*ret_len 0: none), and the generation the handle was opened at. The only place a read
 * touches the open file's state, under its lock, before the read can be answered: once it
 * is, the kernel may release the file on another worker (op_release() takes the lock). */
static void read_ahead_plan(struct mount_ctx *m, const struct inode *e, struct open_file *of,
			    uint64_t offset, uint64_t len, uint64_t *ret_off, uint64_t *ret_len,
			    uint64_t *ret_gen)
{
	uint64_t limit;

	*ret_off = *ret_len = *ret_gen = 0;
	if (!of)
		return;
	/* Not past the tensor a seek waits for (fs/tensors.h); outside of->lock: it takes
	 * tensors' and sched's locks. */
	limit = m->ra.max_window ? MIN(e->size, tensors_readahead_limit(m->tensors, e, offset)) : 0;
	pthread_mutex_lock(&of->lock);
	*ret_gen = of->gen;
	if (m->ra.max_window)
		readahead_update(&of->ra, &m->ra, offset, len, limit, ret_off, ret_len);
	pthread_mutex_unlock(&of->lock);
}

struct read_ctx {
	fuse_req_t req;
	struct mount_ctx *m;
	const struct inode *e;
	uint64_t offset;
	uint64_t len;
	struct readstats *stats;
	uint64_t start; /* monotonic usec when the read arrived */
};

static void reply_from_fd(fuse_req_t req, int fd, uint64_t offset, uint64_t len)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(len);

	bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	bv.buf[0].fd = fd;
	bv.buf[0].pos = (off_t)offset;
	fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
}

/* Engine thread: a streamed read's bytes, or its failure. */
static void stream_ready(void *ud, int err, const void *buf, size_t len)
{
	struct read_ctx *rc = ud;

	if (err)
		fuse_reply_err(rc->req, EIO);
	else
		fuse_reply_buf(rc->req, buf, len);
	readstats_count(rc->stats, rc->start, READSTATS_MISS, err ? 0 : len, err ? -EIO : 0);
	free(rc);
}

/* Engine or committer thread: the parked read's blocks landed, or will never land. A read
 * the cache has no room for is streamed instead: a read-only file system does not answer a
 * read with ENOSPC. */
static void read_ready(void *ud, int err, int fd, bool net)
{
	struct read_ctx *rc = ud;
	enum readstats_kind kind = net ? READSTATS_MISS : READSTATS_HIT;

	if (err == -ENOSPC &&
	    sched_stream(rc->m->sched, rc->e, rc->offset, rc->len, stream_ready, rc) == 0)
		return;
	if (err)
		fuse_reply_err(rc->req, EIO);
	else
		reply_from_fd(rc->req, fd, rc->offset, rc->len);
	readstats_count(rc->stats, rc->start, kind, rc->len, err);
	free(rc);
}

/* Replies err to a read that arrived at start, and counts it. */
static void read_fail(struct mount_ctx *m, fuse_req_t req, uint64_t start, int err)
{
	fuse_reply_err(req, err);
	readstats_count(&m->reads, start, READSTATS_HIT, 0, err);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct mount_ctx *m = ctx_of(req);
	const struct inode *e = inode_get(m->t, ino);
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
	struct read_ctx *rc;
	uint64_t offset = (uint64_t)off, len, ra_off, ra_len, gen, start = now_usec();
	int fd = -1, r;

	if (!e || e->is_dir) {
		read_fail(m, req, start, e ? EISDIR : ENOENT);
		return;
	}
	if (offset >= e->size || !size) {
		fuse_reply_buf(req, NULL, 0);
		readstats_count(&m->reads, start, READSTATS_HIT, 0, 0);
		return;
	}
	len = MIN((uint64_t)size, e->size - offset);
	rc = malloc(sizeof(*rc));
	if (!rc) {
		read_fail(m, req, start, ENOMEM);
		return;
	}
	*rc = (struct read_ctx){ .req = req,
				 .m = m,
				 .e = e,
				 .offset = offset,
				 .len = len,
				 .stats = &m->reads,
				 .start = start };
	read_ahead_plan(m, e, of, offset, len, &ra_off, &ra_len, &gen);
	r = sched_read(m->sched, e, offset, len, gen, read_ready, rc, &fd);
	/* After the demand fetch is queued, so the window never goes before the read. */
	if (ra_len)
		(void)sched_prefetch(m->sched, e, ra_off, ra_len, m->ra_fetch, XFER_PRIO_READAHEAD);
	tensors_read(m->tensors, e, offset, len); /* the rest of the tensor the read is in */
	if (r == 0)
		return; /* parked: read_ready() replies */
	free(rc);
	if (r < 0) {
		read_fail(m, req, start, r == -ENOMEM ? ENOMEM : EIO);
		return;
	}
	/* The fd stays open until the reply has spliced from it. */
	reply_from_fd(req, fd, offset, len);
	sched_read_done(m->sched, e, fd);
	readstats_count(&m->reads, start, READSTATS_HIT, len, 0);
}

void ops_set_session(struct mount_ctx *m, struct fuse_session *se)
{
	pthread_mutex_lock(&m->se_lock);
	m->se = se;
	pthread_mutex_unlock(&m->se_lock);
}

void ops_drop_inode(void *ud, uint64_t ino)
{
	struct mount_ctx *m = ud;
	int r = 0;

	/* se_lock only keeps the session alive across the call (innermost: nothing else is
	 * taken under it). The kernel waits here for pages that reads in flight hold. */
	pthread_mutex_lock(&m->se_lock);
	if (m->se)
		r = fuse_lowlevel_notify_inval_inode(m->se, (fuse_ino_t)ino, 0, 0);
	pthread_mutex_unlock(&m->se_lock);
	if (r < 0 && r != -ENOENT)
		log_warn("cannot drop the kernel's cached pages of inode %llu: %s",
			 (unsigned long long)ino, strerror(-r));
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct mount_ctx *m = ctx_of(req);
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = m->block_size;
	sv.f_frsize = 512;
	sv.f_blocks = (fsblkcnt_t)((m->total_size + 511) / 512);
	sv.f_files = (fsfilcnt_t)inode_count(m->t);
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
	fuse_reply_statfs(req, &sv);
}

/* size 0 asks the length; else the value, or ERANGE when it does not fit (xattr(7)). */
static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct mount_ctx *m = ctx_of(req);
	const struct inode *e = inode_get(m->t, ino);
	char buf[1024];
	int n;

	if (!e) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	n = xattr_get(m, e, name, size ? buf : NULL, MIN(size, sizeof(buf)));
	if (n < 0)
		fuse_reply_err(req, -n);
	else if (!size)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct mount_ctx *m = ctx_of(req);
	const struct inode *e = inode_get(m->t, ino);
	char buf[512];
	size_t n;

	if (!e) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	n = xattr_list(m, e, buf, sizeof(buf));
	if (!size)
		fuse_reply_xattr(req, n);
	else if (n > size || n > sizeof(buf))
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, n);
}

const struct fuse_lowlevel_ops ops_lowlevel = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.release = op_release,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
};
