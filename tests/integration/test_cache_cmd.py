"""hffs cache ls / rm / gc / verify on a cache filled by real mounts of the fake Hub.

Mounts use --prefetch none, so the cache holds exactly what the test read."""
import hashlib
import json
import os

import genrepo
from conftest import run_hffs

REPO = "org/model"
KEY = "models/org/model"
SHARD = "model-00001-of-00003.safetensors"


def cid_of(path, data):
    """The content id hffs keys a file by: sha256 for LFS files, the git blob sha1 otherwise."""
    if genrepo.is_lfs(path, len(data)):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def cids(src):
    """Content ids of the files with data (empty files have no blob)."""
    return {cid_of(p, d) for p, d in src.items() if d}


def blob_file(cache_dir, cid):
    return cache_dir / "blobs" / cid[:2] / cid


def cache(cache_dir, *args, check=False):
    return run_hffs("cache", *args, "--cache-dir", cache_dir, check=check)


def cache_json(cache_dir, *args):
    p = cache(cache_dir, *args, "--json")
    return p.returncode, json.loads(p.stdout)


def listing(cache_dir):
    rc, out = cache_json(cache_dir, "ls")
    assert rc == 0
    return {r["repo"]: r for r in out["repos"]}


def read_some(m, src, paths):
    for p in paths:
        with open(m.path / p, "rb") as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            assert f.read() == src[p], p


def fill(hub, mount, repo=REPO, paths=("config.json", SHARD), name=None):
    """Mounts repo, reads paths whole, unmounts; returns the repo's files."""
    src = hub.files(repo)
    m = mount(repo, "--prefetch", "none", name=name)
    read_some(m, src, paths)
    assert m.unmount() == 0
    return src


def test_no_cache_yet(cache_dir):
    empty = cache_dir / "none"
    p = cache(empty, "ls")
    assert p.returncode == 0 and "no hffs cache at" in p.stdout
    rc, out = cache_json(empty, "ls")
    assert rc == 0 and out["repos"] == [] and out["index"] is False
    for args in (("rm", REPO), ("verify",)):
        p = cache(empty, *args)
        assert p.returncode == 1 and "no hffs cache at" in p.stdout + p.stderr
    assert not (empty / "index").exists(), "a listing must not create a cache"
    assert cache(empty, "rm", "not a repo!").returncode == 2
    assert cache(empty, "frobnicate").returncode == 2


def test_ls_shows_sizes_and_coverage(hub, mount, cache_dir):
    src = fill(hub, mount)
    repos = listing(cache_dir)
    assert list(repos) == [KEY]
    revs = repos[KEY]["revisions"]
    assert len(revs) == 1
    r = revs[0]
    assert r["revision"] == "main" and r["commit"] == hub.commit(REPO)
    assert r["files"] == len(src)
    assert r["bytes_total"] == sum(len(d) for d in src.values())
    # Whole files read, nothing else: exactly their bytes are cached.
    assert r["bytes_cached"] == len(src["config.json"]) + len(src[SHARD])
    assert abs(r["coverage"] - r["bytes_cached"] / r["bytes_total"]) < 0.001
    assert r["disk"] >= r["bytes_cached"]
    assert r["last_use"] is not None and r["in_use"] is False
    assert repos[KEY]["disk"] == r["disk"]
    text = cache(cache_dir, "ls", check=True).stdout
    assert "org/model" in text and "main" in text and hub.commit(REPO)[:12] in text
    assert "MiB" in text


def test_verify_catches_a_corrupt_blob_and_it_is_refetched(hub, mount, cache_dir):
    src = fill(hub, mount)
    p = cache(cache_dir, "verify", check=True)
    assert "2 good, 0 bad" in p.stdout
    cid = cid_of(SHARD, src[SHARD])
    with open(blob_file(cache_dir, cid), "r+b") as f:
        f.seek(1000)
        f.write(b"junk" * 16)
    rc, out = cache_json(cache_dir, "verify")
    assert rc == 1
    assert [b["cid"] for b in out["bad"]] == [cid]
    assert out["bad"][0]["reason"] == "mismatch" and out["bad"][0]["dropped"] is True
    assert SHARD in out["bad"][0]["file"]
    rev = listing(cache_dir)[KEY]["revisions"][0]
    assert rev["bytes_cached"] == len(src["config.json"]), "the bad blob's blocks are dropped"
    # Dropped and refetched by the next mount: the file reads correctly again.
    m = mount(REPO, "--prefetch", "none", name="again")
    read_some(m, src, [SHARD])
    assert m.unmount() == 0
    assert cache(cache_dir, "verify").returncode == 0
    # With REPO: only its blobs.
    rc, out = cache_json(cache_dir, "verify", REPO)
    assert rc == 0 and out["checked"] == 2
    assert cache(cache_dir, "verify", "org/other").returncode == 1


def test_rm_removes_the_repo_and_its_data(hub, mount, cache_dir):
    src = fill(hub, mount)
    other = fill(hub, mount, repo="org/shared", paths=("config.json",), name="shared")
    read = [cid_of(p, src[p]) for p in ("config.json", SHARD)]
    assert all(blob_file(cache_dir, c).exists() for c in read)
    rc, out = cache_json(cache_dir, "rm", REPO)
    assert rc == 0, out
    assert out["revisions_removed"] == ["main"]
    assert out["commits_removed"] == [hub.commit(REPO)]
    # Every blob of the repo goes (read or not), but those org/shared has too.
    assert out["blobs_removed"] == len(cids(src) - cids(other))
    assert out["bytes_freed"] >= len(src[SHARD]) + len(src["config.json"])
    assert not any(blob_file(cache_dir, c).exists() for c in read)
    # What org/shared cached stays (a mount creates data files only for what it writes).
    assert blob_file(cache_dir, cid_of("config.json", other["config.json"])).exists()
    repos = listing(cache_dir)
    assert KEY not in repos and "models/org/shared" in repos
    p = cache(cache_dir, "rm", REPO)
    assert p.returncode == 1 and "not in the cache" in p.stderr


def test_rm_one_revision_keeps_shared_data(hub, mount, cache_dir):
    """org/shared at v1 and main share every file but two: removing v1 keeps the shared ones."""
    src_v1 = hub.files("org/shared", "v1")
    src_main = hub.files("org/shared")
    shared = next(p for p in src_v1 if p.endswith(".safetensors") and src_v1[p] == src_main[p])
    m = mount("org/shared", "--prefetch", "none", "--revision", "v1", name="v1")
    read_some(m, src_v1, ["config.json", shared])
    assert m.unmount() == 0
    m = mount("org/shared", "--prefetch", "none", name="main")
    read_some(m, src_main, ["config.json"])
    assert m.unmount() == 0
    revs = {r["revision"] for r in listing(cache_dir)["models/org/shared"]["revisions"]}
    assert revs == {"v1", "main"}
    rc, out = cache_json(cache_dir, "rm", "org/shared@v1")
    assert rc == 0, out
    assert out["revisions_removed"] == ["v1"]
    assert out["blobs_removed"] == len(cids(src_v1) - cids(src_main)) == 2
    assert not blob_file(cache_dir, cid_of("config.json", src_v1["config.json"])).exists()
    assert blob_file(cache_dir, cid_of(shared, src_v1[shared])).exists()
    assert blob_file(cache_dir, cid_of("config.json", src_main["config.json"])).exists()
    revs = [r["revision"] for r in listing(cache_dir)["models/org/shared"]["revisions"]]
    assert revs == ["main"]


def test_rm_refuses_while_mounted(hub, mount, cache_dir):
    src = hub.files(REPO)
    m = mount(REPO, "--prefetch", "none")
    read_some(m, src, ["config.json"])
    p = cache(cache_dir, "rm", REPO)
    assert p.returncode == 1 and "in use by the mount" in p.stderr and str(m.path) in p.stderr
    assert listing(cache_dir)[KEY]["in_use"] is True
    read_some(m, src, ["config.json"])
    assert m.unmount() == 0
    assert cache(cache_dir, "rm", REPO).returncode == 0


def test_gc_evicts_all_but_live_mounts(hub, mount, cache_dir):
    src = fill(hub, mount)
    old = {cid_of(p, src[p]) for p in ("config.json", SHARD)}
    live_src = hub.files("org/shared")
    live_paths = ["config.json", "model-00001-of-00002.safetensors"]
    live = {cid_of(p, live_src[p]) for p in live_paths}
    m = mount("org/shared", "--prefetch", "none", name="live")
    read_some(m, live_src, live_paths)
    # An orphan: a data file the index does not know.
    orphan = blob_file(cache_dir, "ab" * 32)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"x" * 5000)

    rc, out = cache_json(cache_dir, "gc", "--max-size", "1", "--min-free", "0")
    assert rc == 0, out
    assert out["orphan_files"] == 1 and not orphan.exists()
    assert out["evicted"] == len(old - live) and out["bytes_freed"] > len(src[SHARD]) // 2
    assert out["met"] is False and out["pinned_blobs"] == len(live)
    assert out["compacted"] is False and "live mount" in out["compact_skipped"]
    assert not any(blob_file(cache_dir, c).exists() for c in old - live)
    assert all(blob_file(cache_dir, c).exists() for c in live)
    read_some(m, live_src, live_paths)
    assert m.unmount() == 0

    p = cache(cache_dir, "gc", "--max-size", "1", "--min-free", "0", check=True)
    assert "evicted 2 blobs" in p.stdout and "index compacted" in p.stdout
    assert not any(blob_file(cache_dir, c).exists() for c in live)
    for repo in listing(cache_dir).values():
        for r in repo["revisions"]:
            assert r["bytes_cached"] == 0
    assert cache(cache_dir, "gc", "--max-size", "lots").returncode == 2
    assert cache(cache_dir, "gc", "--min-free", "5%", check=True).returncode == 0
