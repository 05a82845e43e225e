"""A repo of more distinct contents than the daemon may open files: its open-file limit
(RLIMIT_NOFILE) is lowered below the number of files, and every file still reads back
byte-identical, twice, in parallel, with completion on and off; the daemon keeps a bounded set
of data files open and never runs out of file descriptors."""
import hashlib
import os
import resource
import threading

import pytest

import genrepo
from conftest import wait_for

NFILES = 600  # distinct contents, more than NOFILE
NOFILE = 256  # the daemon's soft limit: 160 fds are left to the rest, 96 data files


@pytest.fixture(scope="module")
def hub_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("hubdata-fds")
    genrepo.generate(d, "org/many", shards=1, shard_size=genrepo.MIN_SHARD_SIZE, seed=21,
                     many_files=NFILES, many_distinct=NFILES)
    return d


def mount_limited(mount, *args):
    """A mount whose daemon starts with NOFILE as its soft open-file limit (inherited)."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(NOFILE, old[1]), old[1]))
    try:
        m = mount("org/many", *args, wait=False)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)
    wait_for(lambda: os.path.ismount(m.path) or m.proc.poll() is not None, timeout=60,
             what="the mount")
    assert m.proc.poll() is None, f"hffs mount exited {m.proc.returncode}:\n{m.log()}"
    return m


def blob_fds(pid, cache_dir):
    """The daemon's fds open on data files of the cache."""
    blobs, n = str(cache_dir / "blobs") + "/", 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith(blobs)
        except OSError:
            pass  # closed meanwhile
    return n


@pytest.mark.parametrize("prefetch", ["all", "none"])
def test_more_distinct_files_than_open_files(hub, mount, cache_dir, prefetch):
    src = hub.files("org/many")
    assert sum(p.startswith("many/") for p in src) == NFILES
    assert len({hashlib.sha1(d).digest() for d in src.values()}) > NOFILE
    m = mount_limited(mount, "--prefetch", prefetch)
    with open(f"/proc/{m.proc.pid}/limits") as f:
        assert any(line.startswith("Max open files") and line.split()[3] == str(NOFILE)
                   for line in f), "the daemon did not inherit the lowered limit"
    errors, most = [], [0]
    paths = sorted(src)

    def reader(k):
        # Every file, from a different starting point per thread: blobs are opened, closed
        # and opened again while others are read.
        for i, rel in enumerate(paths[k * 97 % len(paths):] + paths[:k * 97 % len(paths)]):
            try:
                got = (m.path / rel).read_bytes()
            except OSError as e:
                errors.append(f"{rel}: {e}")
                return
            if got != src[rel]:
                errors.append(f"{rel}: wrong bytes")
                return
            if i % 20 == 0:
                most[0] = max(most[0], blob_fds(m.proc.pid, cache_dir))

    for _ in range(2):  # the second pass reopens files closed after the first
        threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a reader hung"
        assert not errors, errors[:5]
    assert 0 < most[0] < NOFILE, most[0]
    log = m.log()
    assert "Too many open files" not in log and "cannot open" not in log, log[-3000:]
