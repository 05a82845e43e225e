"""`hffs mount --hf-cache`: the mounted commit in the Hugging Face hub cache, found by the
official clients' lookup rules (huggingface_hub's file_download.py, written out below, and
@huggingface/hub's downloadFileToCacheDir, run with node when npm can install it) without a
byte of file data requested by the client; unmount takes out exactly what hffs added; a
crashed mount's leftovers are repaired; dataset and space folders; hostile repos add nothing."""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

import hubctl
from conftest import HFFS, clean_env, is_live_mount, run_hffs, wait_for

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
JS_HUB_VERSION = "2.17.5"  # the version whose downloadFileToCacheDir this test was read against


def data_requests(hub):
    """Requests for file bytes: GETs of resolve URLs (and their resolve-cache target), and any
    request to the CDN. HEADs and the API's metadata calls are not data."""
    out = []
    for e in hub.log():
        path = e["path"]
        if e["host"] == "cdn" or (e["method"] == "GET" and ("/resolve/" in path or
                                                             "/resolve-cache/" in path)):
            out.append(f'{e["method"]} {e["host"]} {path}')
    return out


def head_metadata(endpoint, repo, rev, path, repo_type="model"):
    """huggingface_hub's get_hf_file_metadata: HEAD, following only relative redirects (a
    Location without a host keeps scheme and host and drops the query); from the final reply
    commit = X-Repo-Commit, etag = X-Linked-Etag else ETag, quotes and W/ stripped."""
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    url = urlsplit(f"{endpoint}/{prefix}{repo}/resolve/{quote(rev, safe='')}/{quote(path)}")
    target = url.path
    for _ in range(5):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        conn.request("HEAD", target, headers={"Accept-Encoding": "identity"})
        r = conn.getresponse()
        r.read()
        conn.close()
        loc = r.getheader("Location")
        if r.status in (301, 302, 307, 308) and loc and not urlsplit(loc).netloc:
            target = urlsplit(loc).path
            continue
        etag = r.getheader("X-Linked-Etag") or r.getheader("ETag")
        assert etag, (path, r.status, r.getheaders())
        return r.getheader("X-Repo-Commit"), etag.removeprefix("W/").strip('"')
    raise AssertionError(f"too many redirects for {path}")


def py_lookup(hf, repo_folder, rev, path, online=None):
    """huggingface_hub's _hf_hub_download_to_cache_dir up to the point where it would download:
    a commit revision looks in snapshots/<rev>; else online the HEAD's commit and etag
    (pointer, else blob), offline refs/<rev> then the pointer. Returns the path it would
    return, or None where it would download (online) or raise (offline)."""
    storage = hf / repo_folder
    if COMMIT_RE.match(rev):
        p = storage / "snapshots" / rev / path
        return p if os.path.exists(p) else None
    if online is None:
        ref = storage / "refs" / rev
        if not os.path.isfile(ref):
            return None
        p = storage / "snapshots" / ref.read_text() / path
        return p if os.path.exists(p) else None
    commit, etag = online
    pointer, blob = storage / "snapshots" / commit / path, storage / "blobs" / etag
    if os.path.exists(pointer):
        return pointer
    return pointer if os.path.exists(blob) else None


def tree_state(root):
    """Every entry under root: {relative path: ("dir",) | ("link", target) | ("file", bytes)},
    without following links."""
    out = {}
    if not os.path.lexists(root):
        return out
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", p.read_bytes())
    return out


def dangling_links(root):
    return [str(p) for p in Path(root).rglob("*") if p.is_symlink() and not os.path.exists(p)]


def hf_env(hf, **extra):
    return clean_env(HF_HUB_CACHE=str(hf), **extra)


def test_python_lookup_online_offline_without_data_requests(hub, mount, tmp_path):
    hf = tmp_path / "hf"
    files = hub.files("org/model", "main")
    commit = hub.commit("org/model", "main")
    m = mount("org/model", "--hf-cache", "--prefetch", "none", env=hf_env(hf))
    folder = "models--org--model"
    assert (hf / folder / "refs" / "main").read_text() == commit
    hub.clear_log()
    for path in files:
        meta = head_metadata(hub.api_url, "org/model", "main", path)
        assert meta[0] == commit
        online = py_lookup(hf, folder, "main", path, online=meta)
        offline = py_lookup(hf, folder, "main", path)
        by_commit = py_lookup(hf, folder, commit, path)
        assert online and offline and by_commit, path
        assert online == offline == by_commit
        # The link is the official clients' shape, to the blob the etag names.
        depth = path.count("/")
        assert os.readlink(online) == "../" * depth + "../../blobs/" + meta[1], path
        assert os.path.getsize(online) == len(files[path])
    assert data_requests(hub) == []
    # The bytes come through the mount, fetched by hffs.
    for path, data in files.items():
        assert py_lookup(hf, folder, commit, path).read_bytes() == data, path
    assert m.unmount() == 0
    assert tree_state(hf) == {}, "unmount left entries in the HF cache"


def test_entries_of_other_clients_survive(hub, mount, tmp_path):
    """Another client's blob, snapshot link and ref are never replaced nor removed; the ref it
    wrote comes back at unmount, and nothing hffs added stays."""
    hf = tmp_path / "hf"
    folder = hf / "models--org--shared"
    v1, main = hub.commit("org/shared", "v1"), hub.commit("org/shared", "main")
    v1_files, main_files = hub.files("org/shared", "v1"), hub.files("org/shared", "main")
    etag = hub.sha256s("org/shared", "v1")["model-00001-of-00002.safetensors"]
    (folder / "blobs").mkdir(parents=True)
    (folder / "blobs" / etag).write_bytes(v1_files["model-00001-of-00002.safetensors"])
    (folder / "snapshots" / v1).mkdir(parents=True)
    os.symlink(f"../../blobs/{etag}", folder / "snapshots" / v1 / "model-00001-of-00002.safetensors")
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(v1)  # what a client saw before main moved
    before = tree_state(hf)

    m = mount("org/shared", "--hf-cache", "--prefetch", "none", env=hf_env(hf))
    assert (folder / "refs" / "main").read_text() == main
    assert (folder / "blobs" / etag).read_bytes() == v1_files["model-00001-of-00002.safetensors"]
    assert not (folder / "blobs" / etag).is_symlink()
    for path, data in main_files.items():
        p = py_lookup(hf, "models--org--shared", "main", path)
        assert p and p.read_bytes() == data, path
    assert m.unmount() == 0
    assert tree_state(hf) == before


def js_hub_dir():
    """@huggingface/hub installed with npm into a cache dir (once), or None."""
    if not shutil.which("node") or not shutil.which("npm"):
        return None
    base = Path(os.environ.get("HFFS_TEST_NPM_DIR") or
                Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") /
                "hffs-tests" / f"npm-hub-{JS_HUB_VERSION}")
    if not (base / "node_modules" / "@huggingface" / "hub" / "package.json").exists():
        base.mkdir(parents=True, exist_ok=True)
        try:
            p = subprocess.run(["npm", "install", "--prefix", str(base), "--no-audit",
                                "--no-fund", f"@huggingface/hub@{JS_HUB_VERSION}"],
                               capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            return None
        if p.returncode != 0:
            return None
    return base


JS_SCRIPT = r"""
const { downloadFileToCacheDir, snapshotDownload } = require("@huggingface/hub");
const [hubUrl, repo, revision, cacheDir, ...paths] = process.argv.slice(2);
(async () => {
  const out = {};
  for (const path of paths)
    out[path] = await downloadFileToCacheDir({ repo, path, revision, hubUrl, cacheDir });
  out[""] = await snapshotDownload({ repo, revision, hubUrl, cacheDir });
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(String(e)); process.exit(1); });
"""


def run_js(hub, base, hf, repo, revision, paths):
    script = base / "dl.js"
    script.write_text(JS_SCRIPT)
    env = clean_env(NODE_PATH=str(base / "node_modules"))
    p = subprocess.run(["node", str(script), hub.api_url, repo, revision, str(hf), *paths],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_js_download_file_to_cache_dir(hub, mount, tmp_path):
    base = js_hub_dir()
    if base is None:
        pytest.skip("node and npm with the registry are needed to install @huggingface/hub")
    hf = tmp_path / "hf"
    files = hub.files("org/shared", "main")
    m = mount("org/shared", "--hf-cache", "--prefetch", "none", env=hf_env(hf))
    hub.clear_log()
    # On a branch it asks paths-info (expand=true) and looks under the file's last commit
    # (v1 for the files main did not change), then finds blobs/<etag> and links it itself.
    got = run_js(hub, base, hf, "org/shared", "main", sorted(files))
    assert data_requests(hub) == []
    assert any(e["method"] == "POST" and "/paths-info/" in e["path"] for e in hub.log())
    v1 = hub.commit("org/shared", "v1")
    assert f"/snapshots/{v1}/" in got["README.md"]
    for path, data in files.items():
        assert Path(got[path]).read_bytes() == data, path
    # snapshotDownload: the commit's snapshot folder, every file found there.
    snap = Path(got[""])
    assert snap == hf / "models--org--shared" / "snapshots" / hub.commit("org/shared", "main")
    for path, data in files.items():
        assert (snap / path).read_bytes() == data, path
    assert m.unmount() == 0
    assert dangling_links(hf) == []
    assert tree_state(hf) == {}


def watchdog_of(daemon_pid):
    """The PID of the daemon's watchdog child (comm "hffs-hf-watch"), found in /proc."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        comm, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:]
        if comm == "hffs-hf-watch" and int(rest.split()[1]) == daemon_pid:
            return int(d.name)
    raise AssertionError(f"no watchdog process for daemon {daemon_pid}")


def gone(pid):
    """The process has exited (a zombie nobody reaped yet counts)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def kill9(pid):
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: gone(pid), what=f"pid {pid} to die")


def test_crash_the_watchdog_cleans(hub, mount, tmp_path):
    """kill -9 of the daemon: its watchdog takes the entries out while the mount is dead
    (links into it fail with ENOTCONN), before anyone unmounts it."""
    hf = tmp_path / "hf"
    m = mount("org/model", "--hf-cache", "--prefetch", "none", env=hf_env(hf))
    assert (hf / "models--org--model" / "blobs").is_dir()
    watchdog = watchdog_of(m.proc.pid)
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait(timeout=10)
    wait_for(lambda: gone(watchdog), what="the watchdog to exit")
    assert tree_state(hf) == {}
    subprocess.run(["fusermount3", "-u", str(m.path)], capture_output=True, timeout=30)


def test_crash_without_watchdog_next_mount_repairs(hub, mount, tmp_path):
    """Daemon and watchdog both killed, then fusermount3 -u: the links point at an empty
    directory. huggingface_hub treats a dangling pointer as absent (os.path.exists), but the
    JS client lstat()s blobs/<etag> and would hand out a broken path: the next mount takes
    them out."""
    hf = tmp_path / "hf"
    m = mount("org/model", "--hf-cache", "--prefetch", "none", env=hf_env(hf))
    kill9(watchdog_of(m.proc.pid))
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait(timeout=10)
    subprocess.run(["fusermount3", "-u", str(m.path)], capture_output=True, timeout=30)
    assert dangling_links(hf), "the crash should have left links behind"
    for path in hub.files("org/model", "main"):
        assert py_lookup(hf, "models--org--model", "main", path) is None  # absent, no error
    # Any next mount with this cache repairs, with --hf-cache or not.
    m2 = mount("org/shared", "--prefetch", "none", env=hf_env(hf), name="m2")
    assert tree_state(hf) == {}
    assert "took out the Hugging Face cache entries of 1 mount" in m2.log()
    assert m2.unmount() == 0


def test_unmount_of_a_dead_mount_cleans(hub, mount, tmp_path):
    hf = tmp_path / "hf"
    m = mount("org/model", "--hf-cache", "--prefetch", "none", env=hf_env(hf))
    kill9(watchdog_of(m.proc.pid))
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait(timeout=10)
    assert tree_state(hf) != {}
    p = run_hffs("unmount", m.path, "--cache-dir", tmp_path / "cache", env=hf_env(hf))
    assert p.returncode == 0, p.stderr
    assert not os.path.ismount(m.path)
    assert tree_state(hf) == {}


def test_mountpoint_picked_and_printed(hub, cache_dir, tmp_path):
    hf, run = tmp_path / "hf", tmp_path / "run"
    run.mkdir(mode=0o700)
    env = hf_env(hf, XDG_RUNTIME_DIR=str(run))
    p = subprocess.Popen([HFFS, "mount", "org/model", "--hf-cache", "--foreground",
                          "--prefetch", "none", "--min-free", "0", "--cache-dir", str(cache_dir),
                          "--endpoint", hub.api_url, "-r", "v1"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    mp = None
    try:
        mp = p.stdout.readline().strip()
        assert mp == str(run / "hffs" / "models--org--model@v1")
        wait_for(lambda: is_live_mount(mp) or p.poll() is not None, what="the mount")
        assert is_live_mount(mp)
        commit = hub.commit("org/model", "v1")
        assert (hf / "models--org--model" / "refs" / "v1").read_text() == commit
        for path, data in hub.files("org/model", "v1").items():
            assert py_lookup(hf, "models--org--model", "v1", path).read_bytes() == data
        r = run_hffs("unmount", mp, "--cache-dir", cache_dir, env=env)
        assert r.returncode == 0, r.stderr
        p.wait(timeout=30)
        assert p.returncode == 0
        assert tree_state(hf) == {}
    finally:
        if p.poll() is None:
            if mp and os.path.ismount(mp):
                subprocess.run(["fusermount3", "-u", mp], capture_output=True, timeout=30)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        p.stdout.close()


def test_background_mount_picks_and_prints(hub, cache_dir, tmp_path):
    """The daemon and its watchdog hold neither the command's output nor the mount: the
    command returns, prints the mountpoint last, and `hffs unmount` ends both."""
    hf = tmp_path / "hf"
    env = hf_env(hf)
    env.pop("XDG_RUNTIME_DIR", None)
    p = run_hffs("mount", "org/model", "--hf-cache", "--prefetch", "none", "--min-free", "0",
                 "--cache-dir", cache_dir, "--endpoint", hub.api_url, env=env)
    mp = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    try:
        assert p.returncode == 0, p.stderr
        assert mp == str(cache_dir / "mnt" / "models--org--model")
        assert is_live_mount(mp)
        files = hub.files("org/model", "main")
        path = sorted(files)[0]
        assert py_lookup(hf, "models--org--model", "main", path).read_bytes() == files[path]
        r = run_hffs("unmount", mp, env=env)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: tree_state(hf) == {}, what="the HF cache to be cleaned")
    finally:
        if mp and os.path.ismount(mp):
            subprocess.run(["fusermount3", "-u", mp], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def typed_hub(tmp_path_factory):
    data = tmp_path_factory.mktemp("typed")
    hubctl.genrepo.generate(data, "org/ds", repo_type="dataset", shards=1, seed=11)
    hubctl.genrepo.generate(data, "org/sp", repo_type="space", seed=12)
    h = hubctl.Hub(data, tmp_path_factory.mktemp("typedhub"))
    h.start()
    yield h
    h.stop()


@pytest.mark.parametrize("spec,rtype,folder", [
    ("datasets/org/ds", "dataset", "datasets--org--ds"),
    ("spaces/org/sp", "space", "spaces--org--sp")])
def test_datasets_and_spaces(typed_hub, mount, tmp_path, spec, rtype, folder):
    hf = tmp_path / "hf"
    repo = spec.split("/", 1)[1]
    m = mount(spec, "--hf-cache", "--prefetch", "none", env=hf_env(hf),
              endpoint=typed_hub.api_url)
    commit = typed_hub.commit(repo, "main", rtype)
    typed_hub.clear_log()
    for path, data in typed_hub.files(repo, "main", rtype).items():
        meta = head_metadata(typed_hub.api_url, repo, "main", path, rtype)
        assert meta[0] == commit
        p = py_lookup(hf, folder, "main", path, online=meta)
        assert p and p == py_lookup(hf, folder, "main", path), path
    assert data_requests(typed_hub) == []
    assert m.unmount() == 0
    assert tree_state(hf) == {}


@pytest.mark.parametrize("repo", ["org/hostile-dotdot", "org/hostile-abs"])
def test_hostile_repo_adds_nothing(hub, cache_dir, tmp_path, repo):
    hf, mp = tmp_path / "hf", tmp_path / "mnt"
    mp.mkdir()
    p = run_hffs("mount", repo, mp, "--hf-cache", "--foreground", "--cache-dir", cache_dir,
                 "--endpoint", hub.api_url, env=hf_env(hf))
    assert p.returncode != 0
    assert not os.path.ismount(mp)
    assert tree_state(hf) == {}


def test_hf_cache_needs_a_place(hub, cache_dir, tmp_path):
    env = clean_env(HOME="")
    env.pop("HF_HOME")
    env.pop("XDG_CACHE_HOME", None)
    p = run_hffs("mount", "org/model", tmp_path, "--hf-cache", "--cache-dir", cache_dir,
                 "--endpoint", hub.api_url, env=env)
    assert p.returncode == 1
    assert "cannot tell where the Hugging Face cache is" in p.stderr
