"""Correct bytes or an error: with a CDN (or a proxy, a disk, RAM) that flips bytes, a reader of
the mount gets the file's true bytes or EIO, never other bytes; a second read on the same
mount gets the true bytes; a source that keeps lying is named and not hammered; status says
what the index knows at once."""
import errno
import hashlib
import json
import os
import re
import time

import pytest

from conftest import run_hffs, wait_for

MiB = 1 << 20
SHARD = "model-00002-of-00003.safetensors"


def status(cache_dir, mp):
    p = run_hffs("status", "--json", "--cache-dir", cache_dir, check=True)
    return next(m for m in json.loads(p.stdout)["mounts"] if m["mountpoint"] == str(mp))


def file_status(cache_dir, mp, rel):
    return next(f for f in status(cache_dir, mp)["files"] if f["path"] == rel)


def whole_read(path):
    """sha256 of the file read start to end, or 'EIO'."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while True:
                b = f.read(256 * 1024)
                if not b:
                    return h.hexdigest()
                h.update(b)
    except OSError as e:
        assert e.errno == errno.EIO, e
        return "EIO"


def corrupt_every_file_once(hub, repo):
    """One byte flipped in the first reply that carries byte 1000 (or the last byte of a
    smaller file) of every file: LFS files on the CDN, small files wherever they are served."""
    rules = []
    sha = hub.sha256s(repo)
    for rel, data in hub.files(repo).items():
        if not data:
            continue
        at = min(1000, len(data) - 1)
        if rel in sha:
            rules.append({"host": "cdn", "path_re": "/lfs/" + sha[rel], "fault": "corrupt",
                          "at_byte": at, "count": 1})
        else:
            rules.append({"path_re": "/resolve/[^/]+/" + re.escape(rel) + "$",
                          "fault": "corrupt", "at_byte": at, "count": 1})
    hub.set_faults(rules)
    return rules


def test_byte_flipping_cdn_never_yields_a_wrong_hash(hub, mount, cache_dir):
    src = hub.files("org/model")
    corrupt_every_file_once(hub, "org/model")
    m = mount("org/model", "--prefetch", "none")
    first = {}
    for rel, data in sorted(src.items()):
        got = whole_read(m.path / rel)
        want = hashlib.sha256(data).hexdigest()
        assert got in (want, "EIO"), f"{rel}: a whole read completed with wrong bytes"
        first[rel] = got
    flipped = [r for r in hub.get_faults() if r["fired"]]
    assert flipped, "the fault never fired: the test proves nothing"
    # The same mount, no cache dropped: every file reads true now.
    for rel, data in sorted(src.items()):
        assert whole_read(m.path / rel) == hashlib.sha256(data).hexdigest(), rel
    st = status(cache_dir, m.path)
    assert st["live"]["verify_failures"] >= 1
    assert "does not match its content id" in m.log()
    # Small files are checked before their first byte is served: they never fail a read
    # twice and never reach the reader wrong (their first read is EIO or true).
    assert all(f["state"] == "verified" for f in st["files"] if f["size"]), st["files"]


def test_a_reader_in_any_order_gets_eio_or_true_bytes(hub, mount):
    """Backwards, a MiB at a time: the last block is asked for first. (An mmap reader takes
    the same path through the kernel, but a failed page is SIGBUS, which would end pytest.)"""
    data = hub.files("org/model")[SHARD]
    sha = hub.sha256s("org/model")[SHARD]
    hub.set_faults([{"host": "cdn", "path_re": "/lfs/" + sha, "fault": "corrupt",
                     "at_byte": 2 * MiB + 7, "count": 1}])
    m = mount("org/model", "--prefetch", "none")
    got = bytearray(len(data))
    fd = os.open(m.path / SHARD, os.O_RDONLY)
    try:
        for off in range((len(data) - 1) // MiB * MiB, -1, -MiB):
            got[off:off + MiB] = os.pread(fd, MiB, off)
        outcome = bytes(got)
    except OSError as e:
        assert e.errno == errno.EIO
        outcome = "EIO"
    finally:
        os.close(fd)
    assert outcome in ("EIO", data), "a reader got to its end with wrong bytes"
    assert whole_read(m.path / SHARD) == hashlib.sha256(data).hexdigest()


def test_a_source_that_keeps_lying_is_named_and_not_hammered(hub, mount, cache_dir):
    data = hub.files("org/model")[SHARD]
    sha = hub.sha256s("org/model")[SHARD]
    hub.set_faults([{"host": "cdn", "path_re": "/lfs/" + sha, "fault": "corrupt",
                     "at_byte": MiB + 3}])
    m = mount("org/model")  # background completion on: it must not keep refetching either
    assert len(data) > 2 * MiB
    results = [whole_read(m.path / SHARD) for _ in range(3)]
    assert results.count("EIO") == 3, results

    def given_up():
        f = file_status(cache_dir, m.path, SHARD)
        live = status(cache_dir, m.path)["live"] or {}
        return f["state"] == "bad" and "twice" in (live.get("last_error") or "")
    wait_for(given_up, timeout=60, what="the shard marked bad, with the reason")
    live = status(cache_dir, m.path)["live"]
    assert f"do not match sha256 {sha} twice" in live["last_error"]
    assert "twice" in m.log()
    def cdn_requests():
        return len([e for e in hub.log() if e["host"] == "cdn" and sha in e["path"]])
    n = cdn_requests()
    # Two whole fetches of a 4-block file, in pieces: bounded, whatever the piece sizes.
    assert n <= 2 * (len(data) // MiB + 1) + 2, n
    # A given-up file fails at once, and nothing fetches it again (completion passes run
    # every few seconds: wait through two of them).
    with pytest.raises(OSError) as e:
        with open(m.path / SHARD, "rb") as f:
            f.read(10)
    assert e.value.errno == errno.EIO
    time.sleep(11)
    assert cdn_requests() == n
    # Fixed at the source: `hffs cache verify` releases it, and the same mount reads it.
    hub.set_faults([])
    p = run_hffs("cache", "verify", "--json", "--cache-dir", cache_dir)
    assert json.loads(p.stdout)["retried"] >= 1, p.stdout
    assert whole_read(m.path / SHARD) == hashlib.sha256(data).hexdigest()


def test_verify_strict_serves_nothing_before_the_whole_file_verifies(hub, mount, cache_dir):
    data = hub.files("org/model")[SHARD]
    sha = hub.sha256s("org/model")[SHARD]
    hub.set_faults([{"host": "cdn", "path_re": "/lfs/" + sha, "fault": "corrupt",
                     "at_byte": 5, "count": 1}])
    m = mount("org/model", "--prefetch", "none", "--verify", "strict")
    results = []
    for _ in range(2):
        try:
            with open(m.path / SHARD, "rb") as f:
                results.append(f.read(100))
        except OSError as e:
            assert e.errno == errno.EIO
            results.append("EIO")
    assert results[0] in ("EIO", data[:100]) and results[1] == data[:100], results
    # 100 bytes were asked for, and the whole file had to be verified to answer them.
    f = file_status(cache_dir, m.path, SHARD)
    assert f["bytes_cached"] == len(data)
    wait_for(lambda: file_status(cache_dir, m.path, SHARD)["state"] == "verified", timeout=5,
             what="the shard recorded verified")


def test_verify_takes_default_or_strict(hub, tmp_path, cache_dir):
    p = run_hffs("mount", "org/model", str(tmp_path), "--verify", "lax", "--cache-dir",
                 cache_dir)
    assert p.returncode == 2
    assert "--verify takes 'default' or 'strict'" in p.stderr


def test_status_is_exact_right_after_a_whole_read(hub, mount, cache_dir):
    data = hub.files("org/model")[SHARD]
    m = mount("org/model", "--prefetch", "none")
    assert whole_read(m.path / SHARD) == hashlib.sha256(data).hexdigest()
    wait_for(lambda: file_status(cache_dir, m.path, SHARD)["state"] == "verified", timeout=2,
             what="the shard shown verified after its last byte was read")
    st = status(cache_dir, m.path)
    f = file_status(cache_dir, m.path, SHARD)
    assert f["bytes_cached"] == len(data)
    if st["live"] and st["bytes_cached"] < st["bytes_total"]:
        # Nothing is being fetched (--prefetch none): no finish time is promised.
        assert st["live"]["eta_s"] in (-1, None) or st["live"]["rate"] > 0
