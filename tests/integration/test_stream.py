"""Reads with a full cache: a read-only file system never answers a read with ENOSPC. When
the cache has no room (--cache-max-size, --min-free), uncached bytes are streamed through
memory without being kept, with the promise of cached reads: the file's bytes or EIO, and a
reader of a whole file never reaches its end with wrong bytes. Status says it streams."""
import errno
import hashlib
import json
import os

import pytest

from conftest import run_hffs, wait_for
from test_integrity import corrupt_every_file_once, whole_read

MiB = 1 << 20


def status(cache_dir, mp):
    p = run_hffs("status", "--json", "--cache-dir", cache_dir, check=True)
    return next(m for m in json.loads(p.stdout)["mounts"] if m["mountpoint"] == str(mp))


def data_bytes(cache_dir):
    total = 0
    for root, _, files in os.walk(cache_dir / "blobs"):
        for f in files:
            total += os.stat(os.path.join(root, f)).st_blocks * 512
    return total


def test_reads_stream_when_the_cache_is_too_small(hub, mount, cache_dir):
    m = mount("org/model", "--cache-max-size", "1M")
    src = hub.files("org/model")
    for rel, data in sorted(src.items()):
        assert (m.path / rel).read_bytes() == data, rel
    # Reads that skip around, and the last block first.
    shard = "model-00001-of-00003.safetensors"
    with open(m.path / shard, "rb") as f:
        size = len(src[shard])
        for off in (size - 100, 2 * MiB + 5, 17, size // 2):
            assert os.pread(f.fileno(), 4096, off) == src[shard][off:off + 4096]
    assert data_bytes(cache_dir) <= 2 * MiB
    live = status(cache_dir, m.path)["live"]
    assert live["streamed_reads"] > 0 and live["streamed_bytes"] > 0, live
    log = m.log()
    assert "streaming:" in log and "--cache-max-size" in log, log
    assert "No space left" not in log and "failed" not in log, log
    # The words: 1 MiB is not "full" while it holds less than a block of room.
    text = run_hffs("status", "--cache-dir", cache_dir, check=True).stdout
    assert "streamed without caching:" in text, text
    if live["paused"]:
        assert "ETA none (paused)" in text, text
    assert m.unmount() == 0


def test_reads_stream_below_min_free(hub, mount, cache_dir):
    st = os.statvfs(cache_dir)
    if st.f_bavail >= st.f_blocks * 0.99:
        pytest.skip("the test disk is more than 99% free")
    m = mount("org/model", "--min-free", "99%", "--prefetch", "none")
    src = hub.files("org/model")
    assert (m.path / "config.json").read_bytes() == src["config.json"]
    shard = "model-00002-of-00003.safetensors"
    assert (m.path / shard).read_bytes() == src[shard]
    log = m.log()
    assert "--min-free keeps" in log and "disk is full" not in log, log
    assert data_bytes(cache_dir) == 0
    wait_for(lambda: status(cache_dir, m.path)["live"]["streaming"] is not None
             or status(cache_dir, m.path)["live"]["streamed_reads"] > 0, timeout=10,
             what="status to say it streams")
    assert m.unmount() == 0


def test_streamed_reads_keep_the_promise(hub, mount, cache_dir):
    """A CDN that flips a byte of every file once: each whole read gives the true bytes or
    fails with EIO, never other bytes; a second read gives the true bytes."""
    corrupt_every_file_once(hub, "org/model")
    m = mount("org/model", "--cache-max-size", "1M", "--prefetch", "none")
    src = hub.files("org/model")
    for rel, data in sorted(src.items()):
        if not data:
            continue
        want = hashlib.sha256(data).hexdigest()
        first = whole_read(m.path / rel)
        assert first in (want, "EIO"), (rel, first)
        if first == "EIO":
            # The bytes it got are dropped from the kernel: a new open reads them again.
            assert whole_read(m.path / rel) == want, (rel, m.log())
    # The flipped bytes of the shards' streams were caught (not merely never read).
    assert "streamed without caching differ from" in m.log()
    # Every corrupted reply was caught somewhere: no file read whole gave other bytes.
    assert data_bytes(cache_dir) <= 2 * MiB
    assert m.unmount() == 0


def test_streamed_read_of_a_corrupt_end_fails(hub, mount, cache_dir):
    """An LFS file whose every CDN reply is corrupt at its last byte: the read of its end
    fails with EIO (its whole stream does not hash right), and says so."""
    rel = "model-00003-of-00003.safetensors"
    sha = hub.sha256s("org/model")[rel]
    size = len(hub.files("org/model")[rel])
    hub.set_faults([{"host": "cdn", "path_re": "/lfs/" + sha, "fault": "corrupt",
                     "at_byte": size - 1}])
    m = mount("org/model", "--cache-max-size", "1M", "--prefetch", "none")
    with open(m.path / rel, "rb") as f:
        try:
            os.pread(f.fileno(), 4096, size - 4096)
            raise AssertionError("a corrupt end was served")
        except OSError as e:
            assert e.errno == errno.EIO
    wait_for(lambda: "streamed without caching hashed to" in m.log(), timeout=10,
             what="the log line")
    assert m.unmount() == 0
