"""Reading a mounted repo: the tree, attributes, and every byte, however it is read."""
import hashlib
import os
import stat
import threading

from conftest import TOKEN, clean_env, run_hffs, wait_for

BS = 1 << 20


def walk(root):
    files, dirs = {}, set()
    for d, dns, fns in os.walk(root):
        rel = os.path.relpath(d, root)
        for n in dns:
            dirs.add(os.path.normpath(os.path.join(rel, n)))
        for n in fns:
            files[os.path.normpath(os.path.join(rel, n))] = os.path.join(d, n)
    return files, dirs


def cdn_gets(hub):
    return [e for e in hub.log() if e["host"] == "cdn" and e["method"] == "GET"]


def test_tree_sizes_and_modes(hub, mount):
    m = mount("org/model")
    src = hub.files("org/model")
    files, dirs = walk(m.path)
    assert set(files) == set(src)
    implied = {os.path.dirname(p) for p in src} - {""}
    for p in list(implied):
        while p:
            dirs.discard(p)
            p = os.path.dirname(p)
    assert not dirs, f"directories that hold nothing: {dirs}"
    for rel, full in files.items():
        st = os.stat(full)
        assert st.st_size == len(src[rel]), rel
        assert stat.S_IMODE(st.st_mode) == 0o444 and stat.S_ISREG(st.st_mode), rel
    st = os.stat(m.path / "nested")
    assert stat.S_IMODE(st.st_mode) == 0o555 and stat.S_ISDIR(st.st_mode)
    assert len({os.stat(f).st_mtime for f in files.values()}) == 1
    # The tree came in several pages (page size 3), each Link followed verbatim.
    pages = [e for e in hub.log() if "/tree/" in e["path"]]
    assert len(pages) > 2 and any("cursor=" in (e["query"] or "") for e in pages)


def test_every_file_is_byte_identical(hub, mount):
    m = mount("org/model")
    for rel, data in hub.files("org/model").items():
        got = hashlib.sha256((m.path / rel).read_bytes()).hexdigest()
        assert got == hashlib.sha256(data).hexdigest(), rel


def test_unaligned_reads_across_blocks_and_eof(hub, mount):
    m = mount("org/model")
    src = hub.files("org/model")
    name = max((p for p in src if p.endswith(".safetensors")), key=lambda p: len(src[p]))
    data = src[name]
    size = len(data)
    assert size > 2 * BS + 1, "the generated shard must span several blocks"
    spans = [(0, 1), (BS - 7, 20), (BS - 1, BS + 2), (2 * BS - 3, 7), (3, BS * 2),
             (size - 5, 5), (size - 5, 100), (size, 10), (size + 4096, 10), (size - 1, 1)]
    fd = os.open(m.path / name, os.O_RDONLY)
    try:
        for off, n in spans:
            assert os.pread(fd, n, off) == data[off:off + n], (off, n)
    finally:
        os.close(fd)


def test_empty_file_needs_no_request(hub, mount):
    m = mount("org/model")
    empty = [p for p, d in hub.files("org/model").items() if not d]
    assert empty
    for p in empty:
        assert (m.path / p).read_bytes() == b""
    assert not [e for e in hub.log() if "/resolve/" in e["path"] and
                any(e["path"].endswith(p.split("/")[-1]) for p in empty)]


def test_names_with_spaces_unicode_and_reserved_characters(hub, mount):
    m = mount("org/model")
    src = hub.files("org/model")
    odd = [p for p in src if any(c in p for c in " #%+?") or not p.isascii()]
    assert len(odd) >= 2
    for p in odd:
        assert (m.path / p).read_bytes() == src[p], p


def test_concurrent_reads_of_one_block_share_one_fetch(hub, mount):
    m = mount("org/model", "--prefetch", "none")
    src = hub.files("org/model")
    name = next(p for p in src if p.endswith(".safetensors"))
    cdn_path = "/lfs/" + hub.sha256s("org/model")[name]
    hub.set_faults([{"host": "cdn", "fault": "trickle", "rate": 2 * BS}])
    hub.clear_log()
    results, barrier = [], threading.Barrier(8)

    def reader():
        fd = os.open(m.path / name, os.O_RDONLY)
        try:
            barrier.wait(timeout=10)
            results.append(os.pread(fd, 4096, BS + 100))
        finally:
            os.close(fd)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [src[name][BS + 100:BS + 4196]] * 8
    gets = [e for e in cdn_gets(hub)
            if e["status"] in (200, 206) and e["path"].startswith(cdn_path)]
    assert len(gets) == 1, gets


def test_cached_blocks_need_no_request_and_lfs_resolves_once(hub, mount):
    m = mount("org/model", "--prefetch", "none")
    src = hub.files("org/model")
    name = max((p for p in src if p.endswith(".safetensors")), key=lambda p: len(src[p]))
    assert (m.path / name).read_bytes() == src[name]
    resolves = [e for e in hub.log() if "/resolve/" in e["path"] and name in e["path"]]
    assert len(resolves) == 1, "the signed URL is kept for every later range"
    hub.clear_log()
    # Drop the kernel's page cache for the file so the read reaches the daemon.
    with open(m.path / name, "rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        assert f.read() == src[name]
    assert not [e for e in hub.log() if e["host"] == "cdn" or "/resolve/" in e["path"]]


def test_no_token_reaches_the_cdn(hub, mount):
    env = clean_env(HF_TOKEN=TOKEN)
    m = mount("org/private", env=env)
    for rel, data in hub.files("org/private").items():
        assert (m.path / rel).read_bytes() == data, rel
    log = hub.log()
    api = [e for e in log if e["host"] == "api" and not e["path"].startswith("/_fake")]
    assert api and all(e["authorization"] == f"Bearer {TOKEN}" for e in api)
    cdn = [e for e in log if e["host"] == "cdn"]
    assert cdn and all(not e["authorization"] for e in cdn)


def test_status_reports_coverage(hub, mount, cache_dir):
    import json
    m = mount("org/model", "--prefetch", "none")
    src = hub.files("org/model")
    (m.path / "config.json").read_bytes()
    shard = next(p for p in src if p.endswith(".safetensors"))
    with open(m.path / shard, "rb") as f:
        # Random access: the kernel's read-ahead (16 MiB) would otherwise take the file whole.
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_RANDOM)
        assert os.pread(f.fileno(), 10, 0) == src[shard][:10]
    def mount_status():
        p = run_hffs("status", "--json", "--cache-dir", cache_dir, check=True)
        [mt] = [x for x in json.loads(p.stdout)["mounts"] if x["mountpoint"] == str(m.path)]
        return mt

    # Landed blocks reach the index in batches (every 50 ms at most): wait for the reads.
    wait_for(lambda: all(f["bytes_cached"] for f in mount_status()["files"]
                         if f["path"] in ("config.json", shard)), timeout=30,
             what="the reads to show in status")
    mt = mount_status()
    assert mt["repo"] == "models/org/model" and mt["revision"] == "main"
    assert len(mt["commit"]) == 40
    files = {f["path"]: f for f in mt["files"]}
    assert set(files) == set(src)
    assert files["config.json"]["bytes_cached"] == len(src["config.json"])
    assert files["config.json"]["state"] in ("complete", "verified")
    assert 0 < files[shard]["bytes_cached"] < len(src[shard])
    assert files[shard]["state"] == "partial"
    assert mt["bytes_total"] == sum(len(d) for d in src.values())
    assert mt["bytes_cached"] == sum(f["bytes_cached"] for f in mt["files"])
    assert mt["files_total"] == len(src)
    text = run_hffs("status", str(m.path), "--cache-dir", cache_dir, check=True).stdout
    assert "org/model" in text and "config.json" in text
