"""The cache holds refs, trees and blocks: a second mount needs no server for what was read,
and no block is fetched twice."""
import datetime
import errno
import json
import os
import time
import urllib.request

import pytest

from conftest import clean_env


def ranges(log):
    """(path, first, last) of every successful data GET."""
    out = []
    for e in log:
        if e["method"] != "GET" or e["status"] not in (200, 206) or "/tree/" in e["path"]:
            continue
        if e["host"] == "cdn" or "/resolve" in e["path"]:
            r = e["range"] or "bytes=0-"
            a, b = r.split("=")[1].split("-")
            out.append((e["path"].split("?")[0], int(a), int(b) if b else None))
    return out


def test_remount_without_server_and_no_block_fetched_twice(hub, mount):
    src = hub.files("org/model")
    read = ["config.json", "tokenizer.json"] + [p for p in src if p.endswith(".safetensors")][:1]
    m = mount("org/model")
    for p in read:
        assert (m.path / p).read_bytes() == src[p]
    assert m.unmount() == 0
    m2 = mount("org/model")  # the server still answers; nothing should be asked of it
    for p in read:
        assert (m2.path / p).read_bytes() == src[p]
    assert m2.unmount() == 0
    log = hub.log()
    hub.stop()
    m3 = mount("org/model")  # no server at all: refs, tree and blocks from the cache
    for p in read:
        assert (m3.path / p).read_bytes() == src[p]
    seen = set()
    for path, a, b in ranges(log):
        for blk in range(a >> 20, ((b if b is not None else a) >> 20) + 1):
            assert (path, blk) not in seen, f"block {blk} of {path} fetched twice"
            seen.add((path, blk))
    tree_pages = [e for e in log if "/tree/" in e["path"]]
    first_mount_pages = len(tree_pages)
    assert first_mount_pages >= 1
    revs = [e for e in log if "/revision/" in e["path"]]
    assert len(revs) == 2, "each online mount resolves the revision once"


def test_offline_mode_serves_cache_and_fails_fast_on_misses(hub, mount):
    src = hub.files("org/model")
    m = mount("org/model", "--prefetch", "none")  # the shard must stay uncached
    assert (m.path / "config.json").read_bytes() == src["config.json"]
    m.unmount()
    hub.clear_log()
    m2 = mount("org/model", env=clean_env(HF_HUB_OFFLINE="1"))
    assert (m2.path / "config.json").read_bytes() == src["config.json"]
    shard = next(p for p in src if p.endswith(".safetensors"))
    with pytest.raises(OSError) as e:
        (m2.path / shard).read_bytes()
    assert e.value.errno == errno.EIO
    assert not [x for x in hub.log() if not x["path"].startswith("/_fake")], \
        "offline mode sends nothing"
    assert "offline" in m2.log().lower()
    assert "files are not fully cached: their uncached reads will fail (offline mode)" in \
        m2.log()


def test_offline_without_cache_is_a_clear_error(hub, cache_dir, tmp_path):
    from conftest import run_hffs
    mp = tmp_path / "mp"
    mp.mkdir()
    p = run_hffs("mount", "org/model", mp, "--foreground", "--cache-dir", cache_dir,
                 env=clean_env(HF_HUB_OFFLINE="1"))
    assert p.returncode == 1 and "offline" in p.stderr.lower()
    assert not os.path.ismount(mp)


def commit_date(hub, repo="org/model", rev="main"):
    """The revision's lastModified (its commit's date) as the fake Hub says it."""
    with urllib.request.urlopen(f"{hub.api_url}/api/models/{repo}/revision/{rev}") as r:
        when = json.load(r)["lastModified"]
    return int(datetime.datetime.strptime(when, "%Y-%m-%dT%H:%M:%S.%fZ")
               .replace(tzinfo=datetime.timezone.utc).timestamp())


def times(root):
    """{relative path: (mtime, ctime)} of everything under root, root included."""
    out = {".": (os.stat(root).st_mtime, os.stat(root).st_ctime)}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            st = os.stat(os.path.join(d, n))
            out[os.path.relpath(os.path.join(d, n), root)] = (st.st_mtime, st.st_ctime)
    return out


def test_mtimes_are_the_commit_date_at_every_mount(hub, mount):
    """rsync, make and cache checks see stable files: every time is the commit's date, online,
    at a remount, and offline from the cached tree."""
    when = commit_date(hub)
    assert when < time.time() - 86400  # the fake commits are dated in the past
    m = mount("org/model", "--prefetch", "none")
    first = times(m.path)
    assert len(first) > 10 and set(first.values()) == {(when, when)}, first
    assert m.unmount() == 0
    time.sleep(1.1)  # a mount time would differ now
    m2 = mount("org/model", "--prefetch", "none")
    assert times(m2.path) == first
    assert m2.unmount() == 0
    m3 = mount("org/model", "--prefetch", "none", env=clean_env(HF_HUB_OFFLINE="1"))
    assert times(m3.path) == first
    assert "date of commit" not in m3.log()
    # Another revision is another commit, with its own date.
    m4 = mount("org/model", "--prefetch", "none", "--revision", "v1")
    assert set(t for t, _ in times(m4.path).values()) == {commit_date(hub, rev="v1")}
