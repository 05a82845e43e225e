"""Proxies, as the official client reads them (HUB_PROTOCOL.md 6): HTTP_PROXY routes both the
metadata calls (fetch/http.c) and the transfers (fetch/xfer.c); a lowercase http_proxy beats
it, even empty (fetch/http_env.h); NO_PROXY lets hosts bypass it; a proxy that refuses fails
the mount in words. The proxy is a small forwarding one in this file, on 127.0.0.1."""
import http.client
import http.server
import socket
import subprocess
import threading
from collections import Counter
from urllib.parse import urlsplit

import pytest

from conftest import clean_env, run_hffs, wait_for

REPO = "org/model"
# What decides the route, in either case: REQUEST_METHOD turns HTTP_PROXY off (CGI).
ROUTE_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "request_method")
# Hop-by-hop headers (RFC 9110 7.6.1) and those this proxy sets itself.
HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization",
       "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade", "content-length"}


class ForwardingProxy:
    """A threaded HTTP/1.1 proxy for absolute-form GET and HEAD of http:// URLs. Records each
    request as {method, url, authorization (bool), range}, forwards it on a fresh connection
    and returns the reply unchanged but for hop-by-hop headers (redirects are not followed).
    Anything else gets 501 (recorded too). Bound to 127.0.0.1 on port 0; stop() ends the
    server and every client connection."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        self.conns = set()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30  # an idle keep-alive connection ends

            def do_GET(self):
                u = urlsplit(self.path)
                with proxy.lock:
                    proxy.requests.append({
                        "method": self.command, "url": self.path,
                        "authorization": "Authorization" in self.headers,
                        "range": self.headers.get("Range")})
                if self.command not in ("GET", "HEAD") or u.scheme != "http" or not u.hostname:
                    self.close_connection = True  # a body, if any, is left unread
                    return self.reply(501, [], b"absolute-form GET/HEAD of http:// only\n")
                target = (u.path or "/") + (f"?{u.query}" if u.query else "")
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                up = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
                try:
                    up.request(self.command, target, headers=headers)
                    resp = up.getresponse()
                    body = resp.read()
                    head = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP]
                    length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                except OSError as e:
                    return self.reply(502, [], f"upstream: {e}\n".encode())
                finally:
                    up.close()
                self.reply(resp.status, head, body, length)

            do_HEAD = do_POST = do_PUT = do_CONNECT = do_GET

            def reply(self, status, headers, body, head_length=None):
                self.send_response_only(status)
                for k, v in headers:
                    self.send_header(k, v)
                if status >= 200 and status not in (204, 304):
                    self.send_header("Content-Length", head_length or str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def log_message(self, fmt, *args):
                pass  # self.requests is the log

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def process_request(self, request, client_address):
                with proxy.lock:
                    proxy.conns.add(request)
                super().process_request(request, client_address)

            def shutdown_request(self, request):
                with proxy.lock:
                    proxy.conns.discard(request)
                super().shutdown_request(request)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def log(self):
        with self.lock:
            return list(self.requests)

    def stop(self):
        self.server.shutdown()  # serve_forever returns within poll_interval
        self.server.server_close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:  # wakes handler threads blocked on a keep-alive connection
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(timeout=10)


@pytest.fixture
def proxy():
    """Listed before `mount` by the tests, so that mounts are gone before it stops."""
    p = ForwardingProxy()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def dead_port():
    """A port on 127.0.0.1 that refuses connections: bound, never listening, and held for the
    test, so nothing else can take it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def proxy_env(**proxies):
    """clean_env without the machine's proxy variables, plus `proxies`."""
    env = {k: v for k, v in clean_env().items() if k.lower() not in ROUTE_VARS}
    env.update(proxies)
    return env


def read_all(m, hub, timeout=120):
    """Reads every file of REPO through the mount and compares it with the fake Hub's bytes,
    on a thread, so that a hung read fails the test instead of hanging it."""
    src = hub.files(REPO)
    got = {}

    def run():
        for rel in src:
            got[rel] = (m.path / rel).read_bytes()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"reads not done in {timeout}s:\n{m.log()}"
    assert set(got) == set(src)
    for rel, data in src.items():
        assert got[rel] == data, rel


def kinds(log, hub):
    """The proxy log counted by what was asked: on the API host a revision, a tree page, a
    resolve or the resolve-cache a regular file's resolve redirects to; on the CDN host a
    ranged GET; or something else."""
    api, cdn = urlsplit(hub.api_url).netloc, urlsplit(hub.cdn_url).netloc
    out = Counter()
    for e in log:
        u = urlsplit(e["url"])
        if u.netloc == api:
            out["revision" if "/revision/" in u.path else "tree" if "/tree/" in u.path else
                "resolve-cache" if u.path.startswith("/api/resolve-cache/") else
                "resolve" if "/resolve/" in u.path else "api other"] += 1
        elif u.netloc == cdn:
            out["cdn range GET" if e["method"] == "GET" and e["range"] else "cdn other"] += 1
        else:
            out["elsewhere"] += 1
    return out


def traffic(hub):
    """The fake Hub's log as (method, absolute URL) pairs."""
    base = {"api": hub.api_url, "cdn": hub.cdn_url}
    return Counter((e["method"], base[e["host"]] + e["path"] +
                    (f"?{e['query']}" if e["query"] else "")) for e in hub.log())


def test_http_proxy_carries_metadata_and_transfers(hub, proxy, mount):
    m = mount(REPO, "--prefetch", "none", env=proxy_env(HTTP_PROXY=proxy.url))
    read_all(m, hub)
    assert m.unmount() == 0
    seen = kinds(proxy.log(), hub)
    # http.c: the revision, the tree pages; xfer.c: resolves and the CDN's ranged GETs.
    for k in ("revision", "tree", "resolve", "cdn range GET"):
        assert seen[k] >= 1, f"the proxy saw no {k}: {seen}"
    assert not seen["elsewhere"], seen
    cdn = urlsplit(hub.cdn_url).netloc
    assert not any(e["authorization"] for e in proxy.log() if urlsplit(e["url"]).netloc == cdn)
    # The fake Hub agrees: everything it served came through the proxy and nothing else; a
    # request the daemon dropped at unmount may still be on its way in, hence the wait.
    via = Counter((e["method"], e["url"]) for e in proxy.log())
    try:
        wait_for(lambda: traffic(hub) == via, timeout=10, what="the Hub's log to match")
    except AssertionError:
        at_hub = traffic(hub)
        raise AssertionError(f"only at the Hub: {at_hub - via}; only at the proxy: "
                             f"{via - at_hub}") from None


@pytest.mark.parametrize("lower", ["proxy", ""], ids=["proxy", "empty"])
def test_lowercase_http_proxy_wins(hub, proxy, dead_port, mount, lower):
    """http_proxy beats HTTP_PROXY, even set empty (then: no proxy at all), as urllib does."""
    env = proxy_env(HTTP_PROXY=f"http://127.0.0.1:{dead_port}",
                    http_proxy=proxy.url if lower else "")
    m = mount(REPO, "--prefetch", "none", env=env)
    read_all(m, hub)
    seen = kinds(proxy.log(), hub)
    if lower:
        for k in ("revision", "tree", "cdn range GET"):
            assert seen[k] >= 1, f"the proxy saw no {k}: {seen}"
    else:
        assert not proxy.log()


def mount_through_dead_proxy(hub, cache_dir, mp, bad):
    """`hffs mount` with HTTP_PROXY at the address bad (nothing listens): its result."""
    mp.mkdir()
    try:
        return run_hffs("mount", REPO, mp, "--foreground", "--cache-dir", cache_dir,
                        "--endpoint", hub.api_url, "--min-free", "0",
                        env=proxy_env(HTTP_PROXY=f"http://{bad}"), timeout=60)
    finally:  # a mount that wrongly succeeded is killed by the timeout: detach it
        subprocess.run(["fusermount3", "-uz", str(mp)], capture_output=True)


def test_refusing_proxy_fails_the_mount_in_words(hub, cache_dir, tmp_path, dead_port):
    bad = f"127.0.0.1:{dead_port}"
    p = mount_through_dead_proxy(hub, cache_dir, tmp_path / "mp", bad)
    assert p.returncode == 1, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    line = lines[0]
    # What failed (the repo), why in words, and the culprit: the proxy, not the Hub.
    assert f"'{REPO}'" in line and f"cannot connect to the proxy {bad}" in line, line
    assert not hub.log(), "the mount went around the proxy"


def test_refusing_proxy_is_not_taken_for_offline(hub, mount, cache_dir, tmp_path, dead_port):
    """HUB_PROTOCOL.md §6: a proxy error is raised, never treated as offline. With the
    revision in the cache, an unreachable Hub would mount from it; a dead proxy does not."""
    m = mount(REPO, "--prefetch", "none")
    assert m.unmount() == 0
    bad = f"127.0.0.1:{dead_port}"
    p = mount_through_dead_proxy(hub, cache_dir, tmp_path / "again", bad)
    assert p.returncode == 1, p.stderr
    assert f"cannot connect to the proxy {bad}" in p.stderr, p.stderr
    assert "last seen" not in p.stderr and "offline" not in p.stderr, p.stderr


@pytest.mark.parametrize("var,hosts", [("NO_PROXY", "127.0.0.1,127.0.0.2"),
                                       ("no_proxy", "127.0.0.2")], ids=["both", "cdn"])
def test_no_proxy_bypasses(hub, proxy, mount, var, hosts):
    """NO_PROXY, either case, per host: the metadata calls (http.c) and the transfers
    (xfer.c) each go direct to the hosts it lists and through the proxy to the others."""
    m = mount(REPO, "--prefetch", "none", env=proxy_env(HTTP_PROXY=proxy.url, **{var: hosts}))
    read_all(m, hub)
    seen = kinds(proxy.log(), hub)
    assert any(e["host"] == "cdn" and e["range"] for e in hub.log())
    if "127.0.0.1" in hosts:
        assert not seen, seen
    else:
        assert seen["revision"] >= 1 and seen["tree"] >= 1, seen
        assert set(seen) <= {"revision", "tree", "resolve", "resolve-cache"}, seen
