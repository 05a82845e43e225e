"""`hffs pull`: the download without a mount, into the Hugging Face hub cache (read back by the
lookup rules of huggingface_hub) or a local dir; resumed after kill -9 without a stored byte
fetched again; a second pull fetching nothing; --json lines; exit codes and words on 404, 401
and a corrupting CDN. Every wait is bounded; no timing is asserted."""
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import HFFS, SANITIZER_MARKS, TOKEN, clean_env, run_hffs

MiB = 1 << 20
REPO = "org/model"


def pull(hub, cache_dir, hf_cache, *args, repo=REPO, env_extra=None, timeout=120):
    """hffs pull repo ARGS against the fake Hub, the hub cache at hf_cache."""
    env = clean_env(HF_HUB_CACHE=str(hf_cache), **(env_extra or {}))
    return run_hffs("pull", repo, *args, "--endpoint", hub.api_url, "--cache-dir", cache_dir,
                    "--min-free", "0", env=env, timeout=timeout)


def git_oid(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def etag_of(data, lfs):
    return hashlib.sha256(data).hexdigest() if lfs else git_oid(data)


def lfs_paths(hub, repo=REPO):
    man = json.loads((Path(hub.data_dir) / "repos" / ("models--" + repo.replace("/", "--") +
                                                       ".json")).read_text())
    commit = man["refs"]["branches"]["main"]
    return {f["path"] for f in man["commits"][commit]["files"] if f["lfs"]}


def data_bytes(log):
    """Body bytes of every file data reply: CDN ranges and resolve replies of small files."""
    return sum(e["bytes"] for e in log if e["method"] == "GET" and e["status"] in (200, 206)
               and (e["host"] == "cdn" or "/resolve" in e["path"]))


def hf_lookup(hf_cache, repo, revision, path):
    """A file of the hub cache found as huggingface_hub finds it (file_download.py,
    try_to_load_from_cache): refs/<revision> gives the commit unless the revision is one,
    then snapshots/<commit>/<path> must exist (following its link)."""
    folder = Path(hf_cache) / ("models--" + repo.replace("/", "--"))
    commit = revision
    if not (len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)):
        commit = (folder / "refs" / revision).read_text()
    f = folder / "snapshots" / commit / path
    return f if f.exists() else None


def no_temporaries(root):
    left = [str(p) for p in Path(root).rglob("*") if p.name.startswith(".hffs-") or
            p.name.endswith(".incomplete")]
    assert not left, f"temporary files left: {left}"


def test_pull_into_the_hub_cache_as_hf_download_leaves_it(hub, cache_dir, tmp_path):
    src = hub.files(REPO)
    lfs = lfs_paths(hub)
    hf = tmp_path / "hf"
    p = pull(hub, cache_dir, hf)
    assert p.returncode == 0, p.stderr
    commit = hub.commit(REPO)
    folder = hf / "models--org--model"
    snap = folder / "snapshots" / commit
    assert p.stdout.strip().splitlines()[-1] == str(snap)
    assert (folder / "refs" / "main").read_text() == commit
    for rel, data in src.items():
        f = hf_lookup(hf, REPO, "main", rel)
        assert f is not None, rel
        assert f.read_bytes() == data, rel
        link = snap / rel
        assert link.is_symlink(), rel
        target = os.readlink(link)
        assert not os.path.isabs(target), target
        assert (link.parent / target).resolve() == (folder / "blobs" / etag_of(
            data, rel in lfs)).resolve(), rel
    no_temporaries(hf)
    # What another client stored is never replaced: a copy instead of a link (as on a file
    # system without symlinks), a blob. A tag gets its ref once every file is in place.
    (snap / "config.json").unlink()
    (snap / "config.json").write_bytes(src["config.json"])
    blob = folder / "blobs" / etag_of(src["README.md"], False)
    st = blob.stat()
    assert not (folder / "refs" / "v1").exists()
    p = pull(hub, cache_dir, hf, "--revision", "v1")
    assert p.returncode == 0, p.stderr
    assert not (snap / "config.json").is_symlink()
    assert (snap / "config.json").read_bytes() == src["config.json"]
    assert blob.stat().st_ino == st.st_ino and blob.stat().st_mtime_ns == st.st_mtime_ns
    assert (folder / "refs" / "v1").read_text() == commit
    # At the commit itself: the same snapshot, and no ref named after a commit.
    p = pull(hub, cache_dir, hf, "--revision", commit)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == str(snap)
    assert sorted(os.listdir(folder / "refs")) == ["main", "v1"]


def test_pull_into_a_local_dir_with_hf_metadata_and_filters(hub, cache_dir, tmp_path):
    src = hub.files(REPO)
    out = tmp_path / "out"
    p = pull(hub, cache_dir, tmp_path / "hf", "--local-dir", out, "--include", "*.json",
             "--include", "*.safetensors", "--exclude", "model-00002*")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == str(out)
    want = {r for r in src if (r.endswith(".json") or r.endswith(".safetensors"))
            and not r.startswith("model-00002")}
    got = {str(f.relative_to(out)) for f in out.rglob("*")
           if f.is_file() and ".cache" not in f.relative_to(out).parts}
    assert got == want
    commit = hub.commit(REPO)
    lfs = lfs_paths(hub)
    for rel in want:
        assert (out / rel).read_bytes() == src[rel], rel
        # huggingface_hub's _local_folder.py: commit, etag, then a time not before the file.
        meta = (out / ".cache" / "huggingface" / "download" / (rel + ".metadata")).read_text()
        c, etag, ts = meta.split("\n")[:3]
        assert c == commit and etag == etag_of(src[rel], rel in lfs), rel
        assert (out / rel).stat().st_mtime - 1 <= float(ts), rel
    assert (out / ".cache" / "huggingface" / ".gitignore").read_text() == "*"
    no_temporaries(out)
    # The same bytes as in the hub cache layout, from the same cache: nothing fetched again.
    hub.clear_log()
    p = pull(hub, cache_dir, tmp_path / "hf", "--include", "*.safetensors", "--exclude",
             "model-00002*")
    assert p.returncode == 0, p.stderr
    assert not list((tmp_path / "hf").rglob("model-00002*"))
    snap = Path(p.stdout.strip().splitlines()[-1])
    for rel in want:
        if rel.endswith(".safetensors"):
            assert (snap / rel).read_bytes() == (out / rel).read_bytes(), rel
    assert data_bytes(hub.log()) == 0


def test_second_pull_fetches_nothing_and_a_mount_reads_what_pull_stored(hub, mount, cache_dir,
                                                                          tmp_path):
    src = hub.files(REPO)
    hf = tmp_path / "hf"
    assert pull(hub, cache_dir, hf).returncode == 0
    hub.clear_log()
    p = pull(hub, cache_dir, hf)
    assert p.returncode == 0, p.stderr
    assert data_bytes(hub.log()) == 0, "a second pull fetched file data"
    # Offline, from the cache alone: not one request.
    hub.clear_log()
    out = tmp_path / "offline"
    p = pull(hub, cache_dir, hf, "--local-dir", out, env_extra={"HF_HUB_OFFLINE": "1"})
    assert p.returncode == 0, p.stderr
    assert not [e for e in hub.log() if not e["path"].startswith("/_fake/")]
    for rel, data in src.items():
        assert (out / rel).read_bytes() == data, rel
    m = mount(REPO, "--prefetch", "none")
    for rel, data in src.items():
        assert (m.path / rel).read_bytes() == data, rel
    assert m.unmount() == 0
    assert data_bytes(hub.log()) == 0, "the mount fetched what the pull had stored"


def test_a_pull_delivers_what_a_mount_fetched(hub, mount, cache_dir, tmp_path):
    src = hub.files(REPO)
    m = mount(REPO, "--prefetch", "none")
    for rel, data in src.items():
        assert (m.path / rel).read_bytes() == data, rel
    assert m.unmount() == 0
    hub.clear_log()
    out = tmp_path / "out"
    p = pull(hub, cache_dir, tmp_path / "hf", "--local-dir", out)
    assert p.returncode == 0, p.stderr
    assert data_bytes(hub.log()) == 0, "the pull fetched what the mount had stored"
    for rel, data in src.items():
        assert (out / rel).read_bytes() == data, rel


def cached_bytes(cache_dir):
    ls = json.loads(run_hffs("cache", "ls", "--json", "--cache-dir", cache_dir,
                             check=True).stdout)
    rev = ls["repos"][0]["revisions"][0]
    return rev["bytes_cached"], rev["bytes_total"]


def test_kill9_mid_pull_resumes_without_fetching_a_stored_byte_again(hub, cache_dir, tmp_path):
    src = hub.files(REPO)
    out = tmp_path / "out"
    hub.set_faults([{"host": "cdn", "fault": "trickle", "rate": MiB}])
    proc = subprocess.Popen(
        [HFFS, "pull", REPO, "--local-dir", str(out), "--json", "--endpoint", hub.api_url,
         "--cache-dir", str(cache_dir), "--min-free", "0"],
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Until the shards are mid-transfer: some of their bytes are in, not all.
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            ev = json.loads(line)
            if (ev["type"] == "total" and ev["bytes"] >= 3 * MiB) or \
                    time.monotonic() > deadline:
                break
        assert proc.poll() is None, "the pull ended before it could be killed"
        # `hffs status` shows the running pull, its files pinned like a mount's.
        st = json.loads(run_hffs("status", "--json", "--cache-dir", cache_dir,
                                 check=True).stdout)
        assert [m for m in st["mounts"] if m["mountpoint"] ==
                f"pull:{out} (pid {proc.pid})" and m["pid"] == proc.pid], st
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    cached, total = cached_bytes(cache_dir)
    assert 0 < cached < total
    # What was placed is whole and verified; nothing partial has a real name.
    for f in out.rglob("*"):
        rel = str(f.relative_to(out))
        if f.is_file() and ".cache" not in f.relative_to(out).parts and \
                not f.name.startswith(".hffs-"):
            assert f.read_bytes() == src[rel], rel
    hub.reset()
    # The killed pull's replies are logged as the server finds their connections gone: wait
    # until the log stops growing, so that none of them counts as the second pull's.
    deadline, n = time.monotonic() + 15, -1
    while len(hub.log()) != n and time.monotonic() < deadline:
        n = len(hub.log())
        time.sleep(1)
    hub.clear_log()
    p = pull(hub, cache_dir, tmp_path / "hf", "--local-dir", out)
    assert p.returncode == 0, p.stderr
    # Exactly the bytes the cache lacked were fetched: none it held, none twice.
    assert data_bytes(hub.log()) == total - cached
    for rel, data in src.items():
        assert (out / rel).read_bytes() == data, rel
    no_temporaries(out)


def test_json_lines_parse_and_every_file_ends_verified(hub, cache_dir, tmp_path):
    src = hub.files(REPO)
    p = pull(hub, cache_dir, tmp_path / "hf", "--json")
    assert p.returncode == 0, p.stderr
    lines = [json.loads(ln) for ln in p.stdout.splitlines()]
    last = {}
    for ev in lines:
        assert ev["type"] in ("file", "total", "result"), ev
        if ev["type"] == "file":
            assert set(ev) == {"type", "file", "bytes", "total", "rate", "eta", "state",
                               "errors", "error"}, ev
            last[ev["file"]] = ev
    assert set(last) == set(src)
    for rel, ev in last.items():
        assert ev["state"] == "verified" and ev["bytes"] == ev["total"] == len(src[rel]), ev
    total = [ev for ev in lines if ev["type"] == "total"][-1]
    assert total["state"] == "verified" and total["files_done"] == total["files"] == len(src)
    assert lines[-1]["type"] == "result" and lines[-1]["exit"] == 0
    assert lines[-1]["path"].endswith("/snapshots/" + hub.commit(REPO))


def test_not_found_exits_3_with_words(hub, cache_dir, tmp_path):
    p = pull(hub, cache_dir, tmp_path / "hf", "--revision", "no-such-branch")
    assert p.returncode == 3, p.stderr
    assert "revision 'no-such-branch' not found" in p.stderr
    p = pull(hub, cache_dir, tmp_path / "hf", repo="org/no-such-repo")
    assert p.returncode == 3, p.stderr
    assert "not found" in p.stderr
    assert not (tmp_path / "hf" / "models--org--no-such-repo").exists()


def test_bad_token_and_gated_exit_4_with_words(hub, cache_dir, tmp_path):
    p = pull(hub, cache_dir, tmp_path / "hf", env_extra={"HF_TOKEN": "hf_not_a_valid_token"})
    assert p.returncode == 4, p.stderr
    assert "token" in p.stderr.lower()
    # Gated, anonymous: the listing is public, the files answer 401 GatedRepo.
    out = tmp_path / "gated"
    p = pull(hub, cache_dir, tmp_path / "hf", "--local-dir", out, repo="org/gated")
    assert p.returncode == 4, p.stderr
    assert "gated" in p.stderr.lower()
    assert not [f for f in out.rglob("*.safetensors")]
    # With an approved token it goes through.
    p = pull(hub, cache_dir, tmp_path / "hf", "--local-dir", out, repo="org/gated",
             env_extra={"HF_TOKEN": TOKEN})
    assert p.returncode == 0, p.stderr
    assert (out / "config.json").read_bytes() == hub.files("org/gated")["config.json"]


def test_corrupting_cdn_exits_5_and_the_file_never_appears(hub, cache_dir, tmp_path):
    src = hub.files(REPO)
    shard = "model-00001-of-00003.safetensors"
    hub.set_faults([{"host": "cdn", "path_re": "^/lfs/" + hashlib.sha256(src[shard]).hexdigest(),
                     "fault": "corrupt", "at_byte": 100, "length": 4}])
    hf, out = tmp_path / "hf", tmp_path / "out"
    for args in ((), ("--local-dir", out)):
        p = pull(hub, cache_dir, hf, *args)
        assert p.returncode == 5, p.stderr
        assert shard in p.stderr and "do not match" in p.stderr
        assert not any(ln.startswith("/") for ln in p.stdout.splitlines())
    commit = hub.commit(REPO)
    assert hf_lookup(hf, REPO, commit, shard) is None
    assert not (out / shard).exists()
    # The other files are in place and whole.
    assert (out / "config.json").read_bytes() == src["config.json"]
    assert hf_lookup(hf, REPO, commit, "config.json").read_bytes() == src["config.json"]
    no_temporaries(hf)
    no_temporaries(out)
    hub.reset()
    p = pull(hub, cache_dir, hf, "--local-dir", out)
    assert p.returncode == 0, p.stderr
    assert (out / shard).read_bytes() == src[shard]


def test_usage_errors_exit_2(cache_dir):
    p = run_hffs("pull")
    assert p.returncode == 2
    p = run_hffs("pull", REPO, "--connections", "0", "--cache-dir", cache_dir)
    assert p.returncode == 2 and "--connections" in p.stderr
    assert not any(m in p.stderr for m in SANITIZER_MARKS)


def test_pull_needs_no_fuse(hub, cache_dir, tmp_path):
    """In a mount namespace where /dev/fuse is /dev/null (no FUSE device there), a pull goes
    through: it never needs FUSE."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) to hide /dev/fuse")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -m refused: {probe.stderr.decode(errors='replace')}")
    out = tmp_path / "out"
    cmd = " ".join(shlex.quote(str(a)) for a in (
        HFFS, "pull", REPO, "--local-dir", out, "--include", "*.json", "--endpoint",
        hub.api_url, "--cache-dir", cache_dir, "--min-free", "0"))
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        f"mount --bind /dev/null /dev/fuse && exec {cmd}"],
                       env=clean_env(), capture_output=True, text=True, timeout=120)
    assert not any(m in p.stderr for m in SANITIZER_MARKS), p.stderr
    assert p.returncode == 0, p.stderr
    src = hub.files(REPO)
    for rel in (r for r in src if r.endswith(".json")):
        assert (out / rel).read_bytes() == src[rel], rel


def test_range_align_puts_every_cdn_range_on_the_boundaries(hub, cache_dir, tmp_path):
    """--range-align 1M (a caching mirror's slice): every range a pull asks of the CDN starts
    on a 1 MiB boundary and ends on one or at the file's end, the resume of a transfer broken
    mid-range too; the files are whole."""
    src = hub.files(REPO)
    big = max((d for p, d in src.items() if p in lfs_paths(hub)), key=len)
    hub.set_faults([{"host": "cdn", "path_re": hashlib.sha256(big).hexdigest(), "fault": "reset",
                     "at_byte": 300000, "count": 3}])
    local = tmp_path / "local"
    p = pull(hub, cache_dir, tmp_path / "hf", "--local-dir", str(local), "--range-align", "1M",
             "--quiet")
    assert p.returncode == 0, p.stderr
    for rel, data in src.items():
        assert (local / rel).read_bytes() == data, rel
    sizes = {hashlib.sha256(d).hexdigest(): len(d) for d in src.values()}
    ranged = [e for e in hub.log() if e["host"] == "cdn" and e.get("range")]
    assert ranged, "no ranged CDN request"
    for e in ranged:
        first, last = map(int, e["range"].removeprefix("bytes=").split("-"))
        size = next(n for sha, n in sizes.items() if sha in e["path"])
        assert first % MiB == 0, e
        assert (last + 1) % MiB == 0 or last == size - 1, e
    p = pull(hub, cache_dir, tmp_path / "hf", "--range-align", "3")
    assert p.returncode == 2 and "--range-align takes a size from 4K to 1G" in p.stderr
