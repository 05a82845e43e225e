"""Reads of files stored on Xet through the Xet protocol (`hffs mount --xet auto|on`): every
file byte-identical, its bytes from xorbs and not from the bridge; expired URLs and tokens
renewed; a corrupt chunk ends in EIO, never in other bytes; the fallback to /resolve (auto) or
the failure (on) when the CAS is down; off and HF_HUB_DISABLE_XET speak no Xet at all."""
import errno
import hashlib
import json
import os
import threading

import pytest
import repostore

from conftest import clean_env, run_hffs, wait_for

REPO = "org/xet"
XORB = "^/xorb/"


def lfs_paths(hub, repo=REPO):
    """The repo's files on Xet: its files with an Xet hash in the fake's manifest (every LFS
    file of a --xet repo)."""
    commit = repostore._commit_of(hub.data_dir, repo, "main", "model")
    return sorted(p for p, f in commit.files.items() if f.get("xet"))


def xet_log(hub):
    log = hub.log()
    xorbs = [e for e in log if e["host"] == "cdn" and e["path"].startswith("/xorb/")]
    bridge = [e for e in log if e["host"] == "cdn" and e["path"].startswith("/lfs/")]
    plans = [e for e in log if e["host"] == "cas" and "/reconstructions/" in e["path"]]
    return xorbs, bridge, plans


def xet_status(cache_dir, m):
    """The live Xet figures `hffs status --json` shows for mount m."""
    out = run_hffs("status", "--json", "--cache-dir", cache_dir, check=True).stdout
    [mt] = [x for x in json.loads(out)["mounts"] if x["mountpoint"] == str(m.path)]
    return mt["live"]["xet"]


def read_whole(path):
    """The file's bytes, or 'EIO'."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        assert e.errno == errno.EIO, e
        return "EIO"


def pread(path, off, n):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, n, off)
    finally:
        os.close(fd)


@pytest.mark.parametrize("repo", [REPO, "org/xet-big"])
def test_xet_reads_are_byte_identical(hub, mount, cache_dir, repo):
    """Ranges first (plans that start inside a chunk, a file's middle before its start),
    then every file whole: the true bytes, the LFS files' bytes from xorbs only."""
    want = hub.files(repo)
    lfs = lfs_paths(hub, repo)
    assert lfs
    m = mount(repo, "--xet", "on", "--prefetch", "none")
    for p in lfs:
        size = len(want[p])
        for off, n in ((size // 2 + 12345, 70000), (1, 100), (size - 10, 10),
                       ((1 << 20) - 5000, 300000)):
            off = max(0, min(off, size - 1))
            assert pread(m.path / p, off, n) == want[p][off:off + n], (p, off)
    for p, data in want.items():
        assert read_whole(m.path / p) == data, p
    xorbs, bridge, plans = xet_log(hub)
    assert xorbs and plans and not bridge, (len(xorbs), len(plans), bridge)
    assert all(e["authorization"] is None for e in xorbs)
    assert sum(e["bytes"] for e in xorbs) >= sum(len(want[p]) for p in lfs) // 2
    st = xet_status(cache_dir, m)
    assert st["files"] == len(lfs) and st["resolve_files"] == 0, st
    assert st["bytes"] >= sum(len(want[p]) for p in lfs) and st["plans"] == len(plans), st


def test_xet_renews_urls_and_tokens(hub, mount):
    """The first xorb URL refused (403: expired) and the first Xet token refused by the CAS
    (401): a new plan and a new token are asked, and the bytes are the true ones."""
    want = hub.files(REPO)
    hub.set_faults([{"host": "cdn", "path_re": XORB, "fault": "status", "status": 403,
                     "count": 1},
                    {"host": "cas", "fault": "status", "status": 401, "count": 1}])
    m = mount(REPO, "--xet", "on", "--prefetch", "none")
    for p in lfs_paths(hub):
        assert read_whole(m.path / p) == want[p], p
    assert [r["fired"] for r in hub.get_faults()] == [1, 1], hub.get_faults()
    xorbs, bridge, plans = xet_log(hub)
    assert sorted(e["status"] for e in plans).count(401) == 1, plans
    assert [e["status"] for e in xorbs].count(403) == 1 and not bridge, xorbs
    tokens = [e for e in hub.log() if "xet-read-token" in e["path"]]
    # The workers (4) may each fetch the first token at once; the refusal fetches another.
    assert 2 <= len(tokens) <= 5, tokens


@pytest.mark.parametrize("verify", ["default", "strict"])
def test_xet_corrupt_chunk_is_eio_never_wrong_bytes(hub, mount, verify):
    """A xorb range with a flipped byte: the reader of that file gets EIO (with --verify
    strict even a read of its first bytes), never other bytes; read again, it is right."""
    want = hub.files(REPO)
    lfs = lfs_paths(hub)
    hub.set_faults([{"host": "cdn", "path_re": XORB, "fault": "corrupt", "at_byte": 4096,
                     "length": 3, "count": 1}])
    m = mount(REPO, "--xet", "on", "--prefetch", "none", "--verify", verify)
    got = {}
    for p in lfs:
        if verify == "strict":
            try:
                got[p] = pread(m.path / p, 0, 65536)
                assert got[p] == want[p][:65536], p
            except OSError as e:
                assert e.errno == errno.EIO, e
                got[p] = "EIO"
        else:
            got[p] = read_whole(m.path / p)
            assert got[p] in ("EIO", want[p]), f"{p}: a whole read ended with wrong bytes"
    assert "EIO" in got.values(), (hub.get_faults(), m.log())
    assert hub.get_faults()[0]["fired"] == 1
    for p in lfs:
        assert read_whole(m.path / p) == want[p], p


@pytest.mark.parametrize("mode", ["on", "auto"])
def test_xet_chunk_that_does_not_decode(hub, mount, cache_dir, mode):
    """A xorb range whose first chunk header is flipped (version 0 no more): with --xet on that
    fetch fails and the log names the xorb and why (the reader gets EIO, or the right bytes
    when the kernel asks again), and a second read is right; with --xet auto that file is read
    by /resolve from there, right the first time."""
    want = hub.files(REPO)
    lfs = lfs_paths(hub)
    hub.set_faults([{"host": "cdn", "path_re": XORB, "fault": "corrupt", "at_byte": 0,
                     "length": 1, "count": 1}])
    m = mount(REPO, "--xet", mode, "--prefetch", "none")
    got = {p: read_whole(m.path / p) for p in lfs}
    assert hub.get_faults()[0]["fired"] == 1
    assert all(got[p] in ("EIO", want[p]) for p in lfs)
    if mode == "on":
        assert list(got.values()).count("EIO") <= 1, m.log()
        assert "failed: xorb" in m.log() and "unknown version" in m.log(), m.log()
        for p in lfs:
            assert read_whole(m.path / p) == want[p], p
    else:
        assert all(got[p] == want[p] for p in lfs)
        assert "read by /resolve" in m.log() and "xorb fetch" in m.log(), m.log()
        _, bridge, _ = xet_log(hub)
        st = xet_status(cache_dir, m)
        assert bridge and st["resolve_files"] == 1 and st["files"] == len(lfs), st


def test_xet_cas_down_auto_falls_back_on_fails(hub, mount, cache_dir, tmp_path):
    """The CAS answers 503: auto reads every file by /resolve (and says so), on fails the
    read with EIO and the CAS's words in the log."""
    want = hub.files(REPO)
    lfs = lfs_paths(hub)
    hub.set_faults([{"host": "cas", "fault": "status", "status": 503}])
    m = mount(REPO, "--xet", "auto", "--prefetch", "none", name="auto")
    for p in lfs:
        assert read_whole(m.path / p) == want[p], p
    assert "read by /resolve" in m.log() and "503" in m.log(), m.log()
    xorbs, bridge, _ = xet_log(hub)
    assert bridge and not xorbs
    st = xet_status(cache_dir, m)
    assert st["files"] == len(lfs) and st["resolve_files"] == len(lfs) and not st["bytes"], st
    m.unmount()

    m = mount(REPO, "--xet", "on", "--prefetch", "none", "--cache-dir", tmp_path / "c2",
              name="on")
    assert read_whole(m.path / lfs[0]) == "EIO"
    assert "503" in m.log(), m.log()


@pytest.mark.parametrize("how", ["default", "disable_xet"])
def test_xet_off_speaks_no_xet(hub, mount, how):
    """Without --xet (off), or with HF_HUB_DISABLE_XET=1 whatever --xet says, files come by
    /resolve and neither the CAS nor the token endpoint is asked."""
    want = hub.files(REPO)
    if how == "default":
        m = mount(REPO, "--prefetch", "none")
    else:
        m = mount(REPO, "--xet", "on", "--prefetch", "none",
                  env=clean_env(HF_HUB_DISABLE_XET="1"))
    for p in lfs_paths(hub):
        assert hashlib.sha256(read_whole(m.path / p)).digest() == \
            hashlib.sha256(want[p]).digest(), p
    assert not [e for e in hub.log() if e["host"] == "cas" or "xet-read-token" in e["path"]
                or e["path"].startswith("/xorb/")]


def test_xet_background_completion_cuts_and_unmount(hub, mount, cache_dir):
    """Background completion over Xet (the default --prefetch all) on a slow CDN: a read in the
    middle of a file cuts in and gets the true bytes; an unmount while xorb ranges are on the
    wire ends the daemon cleanly (exit 0); the next mount completes every file, verified."""
    repo = "org/xet-big"
    want = hub.files(repo)
    lfs = lfs_paths(hub, repo)
    hub.set_faults([{"host": "cdn", "path_re": XORB, "fault": "trickle", "rate": 400000}])
    m = mount(repo, "--xet", "on", name="slow")
    p = lfs[-1]
    off = len(want[p]) // 2
    assert pread(m.path / p, off, 4096) == want[p][off:off + 4096]
    assert m.unmount() == 0
    hub.set_faults([])
    hub.clear_log()
    m = mount(repo, "--xet", "on", name="again")

    def status():
        out = run_hffs("status", "--json", "--cache-dir", cache_dir, check=True).stdout
        return [f for mnt in json.loads(out)["mounts"] for f in mnt["files"]]

    wait_for(lambda: all(f["state"] == "verified" for f in status() if f["path"] in lfs),
             timeout=60, what="every Xet file verified by background completion")
    for q in lfs:
        assert read_whole(m.path / q) == want[q], q
    _, bridge, _ = xet_log(hub)
    assert not bridge
    # Many fetches of a file at once, one probe (a /resolve of an LFS path with bytes=0-0:
    # with every LFS file on Xet, the engine resolves none); files the first mount completed
    # are not probed at all.
    probes = [e["path"] for e in hub.log() if e["host"] == "api" and "/resolve/" in e["path"]
              and e["range"] == "bytes=0-0" and e["path"].endswith(tuple(lfs))]
    assert probes and len(probes) == len(set(probes)), probes


def test_xet_auto_on_a_repo_not_on_xet(hub, mount, cache_dir):
    """--xet auto on a repo whose files are not on Xet: each LFS file is probed, found plain
    and read through /resolve; the CAS and the token endpoint are never asked."""
    repo = "org/model"
    want = hub.files(repo)
    m = mount(repo, "--xet", "auto", "--prefetch", "none")
    for p, data in want.items():
        assert read_whole(m.path / p) == data, p
    log = hub.log()
    assert not [e for e in log if e["host"] == "cas" or "xet-read-token" in e["path"]]
    commit = repostore._commit_of(hub.data_dir, repo, "main", "model")
    lfs = [p for p, f in commit.files.items() if f["lfs"]]
    st = xet_status(cache_dir, m)
    assert st["files"] == 0 and st["resolve_files"] == len(lfs), st


def test_xet_same_files_under_another_repo_fetch_nothing(hub, mount):
    """org/xet-copy holds org/xet's files under another repo id: once org/xet was read, its
    Xet files are served from the cache (keyed by content), no plan and no xorb asked."""
    m = mount(REPO, "--xet", "on", "--prefetch", "none", name="first")
    want = hub.files(REPO)
    for p in lfs_paths(hub):
        assert read_whole(m.path / p) == want[p], p
    assert m.unmount() == 0
    hub.clear_log()
    copy = "org/xet-copy"
    m = mount(copy, "--xet", "on", "--prefetch", "none", name="copy")
    want = hub.files(copy)
    lfs = lfs_paths(hub, copy)
    assert lfs
    for p in lfs:
        assert read_whole(m.path / p) == want[p], p
    xorbs, bridge, plans = xet_log(hub)
    assert not xorbs and not plans and not bridge, (xorbs, plans, bridge)


def test_xet_concurrent_readers_one_probe(hub, mount):
    """Readers of four blocks of one file at once: four fetches, one probe of the file, and
    each reader its bytes."""
    repo = "org/xet-big"
    want = hub.files(repo)
    p = lfs_paths(hub, repo)[0]
    m = mount(repo, "--xet", "on", "--prefetch", "none")
    offsets = [k * (1 << 20) + 777 for k in range(4)]
    barrier = threading.Barrier(len(offsets), timeout=30)
    got = {}

    def reader(off):
        fd = os.open(m.path / p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
            barrier.wait()
            got[off] = os.pread(fd, 4096, off)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=reader, args=(off,)) for off in offsets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    for off in offsets:
        assert got[off] == want[p][off:off + 4096], off
    probes = [e["path"] for e in hub.log() if e["host"] == "api" and "/resolve/" in e["path"]
              and e["range"] == "bytes=0-0" and e["path"].endswith(p)]
    assert len(probes) == 1, probes
