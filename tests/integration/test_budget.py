"""Cache budgets in the daemon: --cache-max-size and --min-free evict least recently used
blobs no mount uses, pause background completion with a reason in status, stream reads that
cannot be cached through memory (never ENOSPC) with a message about the cause, and keep
serving what is cached. The cache lives on a 64 MiB tmpfs, smaller than the repo."""
import errno
import json
import os
import subprocess

import pytest

import hubctl
import genrepo
from conftest import run_hffs, wait_for

MiB = 1 << 20
BIG_SHARD = 14 * MiB
BIG_SHARDS = 6  # 84 MiB: more than the tmpfs holds


@pytest.fixture(scope="module")
def hub_data(tmp_path_factory):
    d = hubctl.generate_standard_repos(tmp_path_factory.mktemp("hubdata-budget"))
    genrepo.generate(d, "org/big", shards=BIG_SHARDS, shard_size=BIG_SHARD, seed=11)
    return d


@pytest.fixture
def cache_dir(tmp_path):
    """A 64 MiB tmpfs, unmounted after the test's mounts (fixtures end in reverse order)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = tmp_path / "smallfs"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(d)], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)


def status(cache_dir, mp):
    p = run_hffs("status", "--json", "--cache-dir", cache_dir, check=True)
    return next(m for m in json.loads(p.stdout)["mounts"] if m["mountpoint"] == str(mp))


def file_cached(cache_dir, mp, rel):
    return next(f for f in status(cache_dir, mp)["files"] if f["path"] == rel)["bytes_cached"]


def data_bytes(cache_dir):
    """Disk bytes of the cache's data files."""
    total = 0
    for root, _, files in os.walk(cache_dir / "blobs"):
        for f in files:
            total += os.stat(os.path.join(root, f)).st_blocks * 512
    return total


def paused(cache_dir, mp):
    live = status(cache_dir, mp)["live"]
    return live is not None and live["paused"] is not None and live["phase"] == "paused"


def read_uncached(m, cache_dir, src, limit=24):
    """Reads uncached MiBs (backwards from the ends of the incomplete files, once the
    ranges completion had in flight when it paused have landed): every read gives the
    file's bytes although the cache has no room for them."""
    wait_for(lambda: status(cache_dir, m.path)["live"]["active"] == 0, timeout=60,
             what="completion's last ranges to land")
    st = status(cache_dir, m.path)
    reads = 0
    for f in st["files"]:
        if f["bytes_cached"] >= f["size"]:
            continue
        with open(m.path / f["path"], "rb") as fh:
            for off in range((f["size"] - 1) // MiB * MiB, -1, -MiB):
                assert os.pread(fh.fileno(), 4096, off) == src[f["path"]][off:off + 4096]
                reads += 1
                if reads >= limit:
                    return reads
    return reads


def test_max_size_evicts_lru_then_pauses_and_refuses(hub, mount, cache_dir):
    # Another repo's blobs fill the cache first, then its mount ends: they are evictable.
    old = mount("org/model", "--min-free", "0")
    wait_for(lambda: status(cache_dir, old.path)["live"]["phase"] == "complete", timeout=120,
             what="org/model complete")
    assert old.unmount() == 0
    before = data_bytes(cache_dir)
    assert before > 8 * MiB

    m = mount("org/big", "--cache-max-size", "40M", "--min-free", "0")
    wait_for(lambda: paused(cache_dir, m.path), timeout=120, what="completion paused")
    st = status(cache_dir, m.path)
    live = st["live"]
    assert "--cache-max-size" in live["paused"] and "full" in live["paused"], live
    assert live["space"]["cache_max_size"] == 40 * MiB
    assert live["space"]["evicted_blobs"] >= 3, live  # org/model's shards went first
    assert live["space"]["needed"] > live["space"]["room"]
    # Fills up to the limit (within two blocks: ranges in flight when it paused land, and the
    # paused completion tries smaller pieces every 5 s), never beyond (at most a block over:
    # data files take whole file system blocks).
    assert data_bytes(cache_dir) <= 40 * MiB + MiB
    wait_for(lambda: data_bytes(cache_dir) >= 38 * MiB, timeout=60, what="the cache to fill")
    assert data_bytes(cache_dir) <= 40 * MiB + MiB
    log = m.log()
    assert "background completion needs" in log and "evicted" in log, log
    assert "background completion paused" in log

    # Reads that cannot be cached are streamed, and the log says why in words.
    src = hub.files("org/big")
    assert read_uncached(m, cache_dir, src) > 0
    assert data_bytes(cache_dir) <= 40 * MiB + MiB
    wait_for(lambda: "streaming: the cache is full" in m.log(), timeout=10, what="the log line")
    assert "No space left" not in m.log()

    # What is cached is still served, byte for byte.
    for f in st["files"]:
        if f["state"] == "verified":
            assert (m.path / f["path"]).read_bytes() == src[f["path"]], f["path"]
    text = run_hffs("status", "--cache-dir", cache_dir, check=True).stdout
    assert "background completion paused" in text and "evicted" in text, text
    assert m.unmount() == 0


def test_min_free_on_a_small_disk_pauses_and_refuses(hub, mount, cache_dir):
    m = mount("org/big", "--min-free", "12M")
    wait_for(lambda: paused(cache_dir, m.path), timeout=120, what="completion paused")
    st = status(cache_dir, m.path)
    # About 12 MiB are free: the disk is not full, --min-free is what is short.
    assert "--min-free keeps" in st["live"]["paused"], st["live"]
    assert "disk is full" not in st["live"]["paused"]
    assert os.statvfs(cache_dir).f_bavail * os.statvfs(cache_dir).f_frsize >= 12 * MiB - MiB
    src = hub.files("org/big")
    assert read_uncached(m, cache_dir, src) > 0
    assert os.statvfs(cache_dir).f_bavail * os.statvfs(cache_dir).f_frsize >= 12 * MiB - MiB
    wait_for(lambda: "streaming: " in m.log(), timeout=10, what="the log line")
    assert (m.path / "config.json").read_bytes() == src["config.json"]
    assert m.unmount() == 0


def test_a_full_disk_streams_reads_and_keeps_serving(hub, mount, cache_dir):
    """The disk fills behind the budget's back (another program): the write fails (or the
    budget sees it first), the read is streamed, the daemon lives on and serves what it
    has."""
    m = mount("org/big", "--prefetch", "none", "--min-free", "0")
    src = hub.files("org/big")
    assert (m.path / "config.json").read_bytes() == src["config.json"]
    shard = "model-00001-of-00006.safetensors"
    with open(m.path / shard, "rb") as f:
        head = os.pread(f.fileno(), MiB, 0)
    assert head == src[shard][:MiB]
    # Leave less than a MiB free.
    filler = cache_dir / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * MiB)
        except OSError as e:
            assert e.errno == errno.ENOSPC
    # A shard no read touched (so no read-ahead either).
    other = "model-00004-of-00006.safetensors"
    with open(m.path / other, "rb") as f:
        assert os.pread(f.fileno(), 4096, 4 * MiB) == src[other][4 * MiB:4 * MiB + 4096]
    wait_for(lambda: "disk full" in m.log() or "disk is full" in m.log(), timeout=10,
             what="a log line about the full disk")
    # Still alive, still serving the cached bytes.
    assert m.proc.poll() is None
    with open(m.path / shard, "rb") as f:
        assert os.pread(f.fileno(), MiB, 0) == src[shard][:MiB]
    # Room again: reads are cached again (once the budget's refusal has lapsed).
    filler.unlink()

    assert file_cached(cache_dir, m.path, other) == 0  # streamed, not kept

    def cached_again():
        with open(m.path / other, "rb") as f:
            assert os.pread(f.fileno(), MiB, 8 * MiB) == src[other][8 * MiB:9 * MiB]
        return file_cached(cache_dir, m.path, other) > 0
    wait_for(cached_again, timeout=30, what="reads to be cached again once space is freed")
    assert m.unmount() == 0


def test_bad_limits_are_refused_with_a_reason(hub, cache_dir, tmp_path):
    mp = tmp_path / "mp"
    mp.mkdir()
    for args, words in ((["--cache-max-size", "lots"], "--cache-max-size takes a size"),
                        (["--cache-max-size", "0"], "no room"),
                        (["--min-free", "110%"], "--min-free takes a size"),
                        (["--min-free", "-1G"], "--min-free takes a size")):
        p = run_hffs("mount", "org/model", mp, "--cache-dir", cache_dir, "--endpoint",
                     hub.api_url, *args)
        assert p.returncode == 2 and words in p.stderr, (args, p.stderr)
        assert not os.path.ismount(mp)
