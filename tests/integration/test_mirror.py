"""The caching mirror of contrib/mirror (issue 18): Debian's nginx started by
contrib/mirror/run-mirror in front of the fake Hub, hffs clients with separate caches behind it
(HF_ENDPOINT = the mirror). Many clients, one download: the origin's CDN bytes stay near the
repo's; a private repo's bytes are served only to a request the Hub authorized; an origin that
fails or dies mid-transfer leaves every file byte-identical or EIO, never wrong. Also
--range-align without a mirror: every range on the wire is aligned, resumes included.

nginx is stopped by PID (SIGTERM, then SIGKILL of the master and its workers)."""
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, TOKEN, clean_env, wait_for

RUN_MIRROR = ROOT / "contrib" / "mirror" / "run-mirror"
MiB = 1 << 20
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK)
                                  else None)


def nginx_has_slice():
    if not NGINX:
        return False
    p = subprocess.run([NGINX, "-V"], capture_output=True, text=True)
    return "--with-http_slice_module" in p.stderr + p.stdout


needs_nginx = pytest.mark.skipif(not nginx_has_slice(),
                                 reason="nginx with the slice module is not installed "
                                        "(scripts/deps installs Debian's nginx)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mirror:
    """run-mirror in the foreground (it execs nginx: its PID is the master's)."""

    def __init__(self, upstream, cache, **env):
        self.upstream, self.cache, self.env = upstream, Path(cache), env
        self.proc = None

    def start(self, attempts=3, timeout=20):
        for _ in range(attempts):  # a port taken between free_port() and nginx's bind
            self.addr = f"127.0.0.1:{free_port()}"
            self.url = f"http://{self.addr}"
            env = dict(os.environ, MIRROR_WORKERS="2", MIRROR_MAX_SIZE="256m", **self.env)
            self.out = open(self.cache.parent / f"{self.cache.name}.out", "w")
            self.proc = subprocess.Popen([str(RUN_MIRROR), self.upstream, self.addr,
                                          str(self.cache)], env=env, stdout=self.out,
                                         stderr=subprocess.STDOUT)
            deadline = time.monotonic() + timeout
            while self.proc.poll() is None and time.monotonic() < deadline:
                try:
                    status, _, _ = http_get(f"{self.url}/api/whoami-v2", timeout=2)
                    if status == 401:  # the fake Hub's answer, through the mirror
                        return self
                except OSError:
                    pass
                time.sleep(0.1)
            self.stop()
        raise AssertionError(f"the mirror did not start:\n{self.output()}")

    def output(self):
        text = (self.cache.parent / f"{self.cache.name}.out").read_text(errors="replace")
        err = self.cache / "logs" / "error.log"
        return text + (err.read_text(errors="replace") if err.exists() else "")

    def access_log(self):
        return (self.cache / "logs" / "access.log").read_text(errors="replace").splitlines()

    def stop(self):
        if not self.proc:
            return
        workers = []
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                workers = [int(p) for p in f.read().split()]
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid in workers:  # a worker outliving a killed master
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.out.close()
        self.proc = None


@pytest.fixture
def mirror(hub, tmp_path):
    mirrors = []

    def start(**env):
        m = Mirror(hub.api_url, tmp_path / f"mirror{len(mirrors)}", **env)
        mirrors.append(m)
        return m.start()

    yield start
    for m in mirrors:
        m.stop()


def http_get(url, headers=None, timeout=10):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def lfs_files(hub, repo):
    """{path: (sha256, size)} of the LFS files at main, from the fake Hub's manifest."""
    manifest = json.loads((hub.data_dir / "repos" / f"models--{repo.replace('/', '--')}.json")
                          .read_text())
    files = manifest["commits"][manifest["refs"]["branches"]["main"]]["files"]
    return {f["path"]: (f["sha256"], f["size"]) for f in files if f["lfs"]}


def cdn_bytes(hub):
    return sum(e["bytes"] for e in hub.log() if e["host"] == "cdn")


def read_all(root, expected, results, key):
    """Reads every file of `expected` under root: results[key][path] = "ok", "EIO" or what
    else happened (wrong bytes among them)."""
    out = {}
    for path, want in expected.items():
        try:
            got = (Path(root) / path).read_bytes()
            out[path] = "ok" if got == want else f"WRONG BYTES ({len(got)} of {len(want)})"
        except OSError as e:
            out[path] = "EIO" if e.errno == errno.EIO else f"{e!r}"
    results[key] = out


def read_in_parallel(mounts, expected, timeout=240):
    results = {}
    threads = [threading.Thread(target=read_all, args=(m.path, expected, results, i),
                                daemon=True) for i, m in enumerate(mounts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a reader did not finish in time"
    return results


@needs_nginx
def test_four_clients_one_download(hub, mirror, mount, tmp_path):
    m = mirror()
    expected = hub.files("org/model")
    lfs = lfs_files(hub, "org/model")
    hub.clear_log()
    mounts = [mount("org/model", "--range-align", "1M", endpoint=m.url,
                    cache=tmp_path / f"client{i}") for i in range(4)]
    results = read_in_parallel(mounts, expected)
    for i in range(4):
        assert set(results[i].values()) == {"ok"}, results[i]
    for mt in mounts:
        mt.unmount()
    log = hub.log()
    cdn = [e for e in log if e["host"] == "cdn"]
    # Four clients, one download: the origin's CDN sent each LFS file about once.
    repo_lfs_bytes = sum(size for _, size in lfs.values())
    assert sum(e["bytes"] for e in cdn) <= 1.1 * repo_lfs_bytes, (repo_lfs_bytes, cdn)
    # Each file by content, in whole 1 MiB slices, never with a token.
    sizes = {sha: size for sha, size in lfs.values()}
    for e in cdn:
        assert e["authorization"] is None, e
        first, last = map(int, e["range"].removeprefix("bytes=").split("-"))
        size = sizes[e["path"].rsplit("/", 1)[1]]
        assert first % MiB == 0 and ((last + 1) % MiB == 0 or last >= size - 1), e
    # Anonymous resolves at a commit: the Hub's 302 is reused, not asked per range.
    lfs_resolves = [e for e in log if e["host"] == "api" and "/resolve/" in e["path"]
                    and e["path"].rsplit("/", 1)[1] in lfs]
    assert 0 < len(lfs_resolves) <= 2 * len(lfs), lfs_resolves
    # The mirror's clients reuse their connections (hffs keeps them alive).
    reuse = [int(x.split("conn=")[1].split("/")[1].split()[0]) for x in m.access_log()
             if x.startswith("127.0.0.1 ")]
    assert max(reuse) > 1, m.access_log()[-20:]
    # So do their metadata calls: a mount's tree pages (3 entries a page here) share
    # connections (fetch/http_exchange.c keeps a handle per thread).
    pages = [x for x in m.access_log() if x.startswith("127.0.0.1 ") and "/tree/" in x]
    conns = {x.split("conn=")[1].split("/")[0] for x in pages}
    assert len(conns) < len(pages) / 2, pages
    # Commits' trees were listed once by the origin and served from the mirror after.
    tree_pages = [e for e in log if e["host"] == "api" and "/tree/" in e["path"]]
    assert len(tree_pages) < 4 * len({(e["path"], e["query"]) for e in tree_pages}), tree_pages


@needs_nginx
def test_chained_mirrors_site_then_racks(hub, mirror, mount, tmp_path):
    """Two rack mirrors whose missing slices come from a site mirror: the origin's CDN sends
    the repo about once for both racks' clients."""
    slicer = f"127.0.0.1:{free_port()}"
    site = mirror(MIRROR_SLICER_LISTEN=slicer)
    racks = [mirror(MIRROR_PARENT=slicer) for _ in range(2)]
    expected = hub.files("org/model")
    lfs = lfs_files(hub, "org/model")
    hub.clear_log()
    for i, rack in enumerate(racks):
        m = mount("org/model", "--range-align", "1M", endpoint=rack.url,
                  cache=tmp_path / f"client{i}")
        assert set(read_in_parallel([m], expected)[0].values()) == {"ok"}
        m.unmount()
    assert cdn_bytes(hub) <= 1.1 * sum(size for _, size in lfs.values())
    served = [x for x in site.access_log() if "/_cdn/" in x and x.startswith("127.0.0.1 ")]
    assert any("cache=HIT" in x for x in served), site.access_log()[-20:]


@needs_nginx
def test_private_repo_bytes_only_after_the_hub_says_yes(hub, mirror, mount, tmp_path):
    m = mirror()
    expected = hub.files("org/private")
    lfs = lfs_files(hub, "org/private")
    commit = hub.commit("org/private")
    with_token = clean_env(HF_TOKEN=TOKEN)
    # A first client with the token fills the mirror.
    a = mount("org/private", "--range-align", "1M", endpoint=m.url, env=with_token,
              cache=tmp_path / "a")
    assert set(read_in_parallel([a], expected)[0].values()) == {"ok"}
    a.unmount()
    # Without the token: the mount is refused, and so is each byte the mirror holds.
    (tmp_path / "nope").mkdir()
    p = subprocess.run([os.environ.get("HFFS_BIN", str(ROOT / "build" / "cli" / "hffs")),
                        "mount", "org/private", str(tmp_path / "nope"), "--cache-dir",
                        str(tmp_path / "b"), "--endpoint", m.url, "--foreground"],
                       env=clean_env(), capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "org/private" in p.stderr, p.stderr
    for path, (sha, size) in lfs.items():
        for auth in ({}, {"Authorization": "Bearer hf_unknown"}):
            status, _, body = http_get(f"{m.url}/org/private/resolve/{commit}/{path}",
                                       headers={"Range": "bytes=0-1048575", **auth})
            assert status == 401, (path, status)
            assert expected[path][:64] not in body
    # Another client with the token: every byte from the mirror's cache, none from the CDN.
    hub.clear_log()
    c = mount("org/private", "--range-align", "1M", endpoint=m.url, env=with_token,
              cache=tmp_path / "c")
    assert set(read_in_parallel([c], expected)[0].values()) == {"ok"}
    c.unmount()
    assert cdn_bytes(hub) == 0, [e for e in hub.log() if e["host"] == "cdn"]
    resolves = [e for e in hub.log() if e["host"] == "api" and "/resolve/" in e["path"]]
    assert resolves and all(e["authorization"] == f"Bearer {TOKEN}" for e in resolves)


@needs_nginx
def test_origin_failing_mid_transfer(hub, mirror, mount, tmp_path):
    """Resets and short bodies from the CDN, then the origin gone: every file the clients
    read is byte-identical or EIO."""
    m = mirror(MIRROR_READ_TIMEOUT="5s")
    expected = hub.files("org/model")
    hub.set_faults([
        {"host": "cdn", "fault": "reset", "at_byte": 300000, "count": 3},
        {"host": "cdn", "fault": "truncate", "at_byte": 500000, "skip": 2, "count": 2},
        {"host": "cdn", "fault": "stall", "at_byte": 200000, "seconds": 8, "skip": 5,
         "count": 1},
    ])
    mounts = [mount("org/model", "--range-align", "1M", "--stall-timeout", "3", endpoint=m.url,
                    cache=tmp_path / f"client{i}") for i in range(2)]
    results = read_in_parallel(mounts, expected)
    for r in results.values():
        assert set(r.values()) <= {"ok", "EIO"}, r
    assert any(f["fired"] for f in hub.get_faults()), hub.get_faults()
    for mt in mounts:
        mt.unmount()

    # The origin dies while two new clients read: what the mirror holds is served, the rest
    # fails with EIO after the clients' retries.
    hub.reset()
    late = [mount("org/model", "--range-align", "1M", "--prefetch", "none", endpoint=m.url,
                  cache=tmp_path / f"late{i}") for i in range(2)]
    shards = {p: b for p, b in expected.items() if p.endswith(".safetensors")}
    results = {}
    threads = [threading.Thread(target=read_all, args=(mt.path, shards, results, i),
                                daemon=True) for i, mt in enumerate(late)]
    for t in threads:
        t.start()
    wait_for(lambda: cdn_bytes(hub) > 0 or results, timeout=60, what="a first CDN byte")
    hub.stop()
    for t in threads:
        t.join(240)
    assert not any(t.is_alive() for t in threads), "a reader did not finish in time"
    for r in results.values():
        assert set(r.values()) <= {"ok", "EIO"}, r


FORWARD_CONF = """\
{user}
daemon off;
worker_processes 1;
pid {run}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log {run}/access.log;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    proxy_cache_path {run}/cache levels=2 keys_zone=fwd:4m;
    proxy_http_version 1.1;
    server {{
        listen {addr};
        # Absolute-form requests of http:// URLs, passed on as they came.
        location / {{
            proxy_set_header Connection "";
            proxy_pass http://$http_host;
        }}
        # The CDN's objects, by host and path (they name the content), never by the signed
        # query string, in slices.
        location /lfs/ {{
            slice 1m;
            proxy_cache fwd;
            proxy_cache_key "$http_host$uri $slice_range";
            proxy_set_header Range $slice_range;
            proxy_set_header Connection "";
            proxy_cache_valid 200 206 1h;
            proxy_pass http://$http_host;
        }}
    }}
}}
"""


@needs_nginx
def test_forward_caching_proxy_for_an_http_endpoint(hub, mount, tmp_path):
    """HTTP_PROXY at nginx as a forward proxy caching the CDN's objects: two clients, the
    origin's CDN bytes about once, no token at the CDN. (An https:// endpoint would go
    through CONNECT tunnels, which no proxy can cache: docs/scale-out.md.)"""
    run = tmp_path / "fwd"
    run.mkdir()
    addr = f"127.0.0.1:{free_port()}"
    (run / "nginx.conf").write_text(FORWARD_CONF.format(
        run=run, addr=addr, user="user root;" if os.geteuid() == 0 else ""))
    with open(run / "out", "w") as out:
        proc = subprocess.Popen([NGINX, "-p", str(run), "-e", str(run / "error.log"), "-c",
                                 str(run / "nginx.conf")], stdout=out, stderr=subprocess.STDOUT)
    try:
        host, port = addr.split(":")

        def listening():
            assert proc.poll() is None, (run / "error.log").read_text()
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(listening, timeout=20, what="the forward proxy")
        expected = hub.files("org/model")
        lfs = lfs_files(hub, "org/model")
        env = {k: v for k, v in clean_env().items() if not k.lower().endswith("_proxy")}
        env["HTTP_PROXY"] = f"http://{addr}"
        hub.clear_log()
        for i in range(2):
            m = mount("org/model", "--range-align", "1M", env=clean_env(**env),
                      cache=tmp_path / f"client{i}")
            assert set(read_in_parallel([m], expected)[0].values()) == {"ok"}
            m.unmount()
        cdn = [e for e in hub.log() if e["host"] == "cdn"]
        assert all(e["authorization"] is None for e in cdn), cdn
        assert sum(e["bytes"] for e in cdn) <= 1.1 * sum(size for _, size in lfs.values())
        # Everything went through the proxy.
        assert len((run / "access.log").read_text().splitlines()) >= len(hub.log())
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def test_range_align_every_range_and_resume(hub, mount):
    """--range-align 2M straight to the fake Hub: reads at odd offsets and a transfer broken
    mid-range are all asked as ranges on 2 MiB boundaries (or up to EOF)."""
    lfs = lfs_files(hub, "org/model")
    expected = hub.files("org/model")
    path = sorted(lfs)[0]
    sha, size = lfs[path]
    hub.set_faults([{"host": "cdn", "fault": "reset", "at_byte": 300000, "count": 1}])
    m = mount("org/model", "--range-align", "2M", "--prefetch", "none")
    with open(m.path / path, "rb") as f:
        for off in (5, 2 * MiB + 777, MiB + 3):
            f.seek(off)
            assert f.read(100) == expected[path][off:off + 100]
    cdn = [e for e in hub.log() if e["host"] == "cdn" and sha in e["path"]]
    assert len(cdn) >= 3, cdn  # the broken one, its resume, the second half
    for e in cdn:
        first, last = map(int, e["range"].removeprefix("bytes=").split("-"))
        assert first % (2 * MiB) == 0, e
        assert (last + 1) % (2 * MiB) == 0 or last == size - 1, e
