"""`hffs doctor`: all OK against a healthy fake Hub, and the right line FAILs, with words, for
each broken case (DNS, refused, proxy, bad token, private, gated, CDN down, wrong CA, clock
skew, no /dev/fuse, a broken index; with --allow-other, no user_allow_other for a user). Exit 0
only when nothing FAILs; 2 for bad usage."""
import http.server
import os
import shutil
import signal
import json
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from email.utils import formatdate

import pytest

from conftest import HFFS, TOKEN, TOKEN_UNAPPROVED, clean_env, run_hffs

# What the machine outside the test decides (its free disk, other processes' mounts): these
# lines may WARN, never FAIL.
MACHINE = {"disk", "mounts"}


def doctor(hub, cache_dir, *args, endpoint=None, **env):
    cache_dir.chmod(0o700)
    p = run_hffs("doctor", *args, "--json", "--endpoint", endpoint or hub.api_url,
                 "--cache-dir", cache_dir, env=clean_env(**env), timeout=60)
    assert p.returncode in (0, 1), p.stderr
    report = json.loads(p.stdout)
    checks = report["checks"]
    for c in checks:
        assert set(c) == {"name", "status", "detail", "fix"}, c
        assert c["status"] in ("OK", "WARN", "FAIL"), c
        assert (c["fix"] is None) == (c["status"] == "OK"), c
    failed = [c for c in checks if c["status"] == "FAIL"]
    assert p.returncode == (1 if failed else 0), p.stdout
    assert report["ok"] == (not failed)
    return p.returncode, {c["name"]: c for c in checks}


def assert_healthy(rc, checks, names):
    assert rc == 0, checks
    assert names <= set(checks), checks
    for name, c in checks.items():
        if name not in MACHINE:
            assert c["status"] == "OK", c


def fails(checks, name, *words):
    c = checks[name]
    assert c["status"] == "FAIL", checks
    text = (c["detail"] + " " + c["fix"]).lower()
    for w in words:
        assert w.lower() in text, c
    return c


NETWORK = {"dns", "proxy", "tcp", "tls", "clock", "token"}
LOCAL = {"fuse", "fusermount", "cache", "disk", "index", "mounts"}


def test_healthy_hub_is_all_ok(hub, cache_dir):
    rc, checks = doctor(hub, cache_dir, "org/model", HF_TOKEN=TOKEN)
    assert_healthy(rc, checks, NETWORK | LOCAL | {"repo", "access", "cdn"})
    assert "alice" in checks["token"]["detail"]
    assert "public" in checks["repo"]["detail"]
    assert hub.cdn_url.split("//")[1] in checks["cdn"]["detail"]  # through the redirect
    cdn = [e for e in hub.log() if e["host"] == "cdn"]
    assert len(cdn) == 1 and cdn[0]["range"] and cdn[0]["authorization"] is None


def test_xet_path(hub, cache_dir):
    """A repo on Xet: the file is probed, a read token fetched with the Hub token, the CAS asked
    with the Xet token alone, one xorb range fetched without any and decoded. A repo not on
    Xet is OK too, and asks nothing of the CAS."""
    rc, checks = doctor(hub, cache_dir, "org/xet", HF_TOKEN=TOKEN)
    assert_healthy(rc, checks, NETWORK | {"repo", "access", "cdn", "xet"})
    detail = checks["xet"]["detail"]
    assert "is on Xet" in detail and hub.cas_url.split("//")[1] in detail, detail
    log = hub.log()
    recon = [e for e in log if e["host"] == "cas" and "/reconstructions/" in e["path"]]
    xorbs = [e for e in log if e["path"].startswith("/xorb/")]
    assert recon and all(e["authorization"] and TOKEN not in e["authorization"] for e in recon)
    assert len(xorbs) == 1 and xorbs[0]["authorization"] is None and xorbs[0]["range"]
    hub.clear_log()
    rc, checks = doctor(hub, cache_dir, "org/model", HF_TOKEN=TOKEN)
    assert checks["xet"]["status"] == "OK" and "not stored on Xet" in checks["xet"]["detail"]
    assert not [e for e in hub.log() if e["host"] == "cas"]
    # HF_HUB_DISABLE_XET: the protocol is not spoken at all.
    hub.clear_log()
    rc, checks = doctor(hub, cache_dir, "org/xet", HF_HUB_DISABLE_XET="1")
    assert checks["xet"]["status"] == "OK" and "HF_HUB_DISABLE_XET" in checks["xet"]["detail"]
    assert not [e for e in hub.log() if e["host"] == "cas" or "xet-read-token" in e["path"]]


@pytest.mark.parametrize("fault,words", [
    ({"host": "cas", "fault": "status", "status": 503}, ("503", "xet cas")),
    ({"host": "cdn", "path_re": "^/xorb/", "fault": "status", "status": 403},
     ("403", "storage host")),
    ({"host": "cdn", "path_re": "^/xorb/", "fault": "corrupt", "at_byte": 0},
     ("xorb", "sent", "version")),
])
def test_xet_path_fails(hub, cache_dir, fault, words):
    hub.set_faults([fault])
    rc, checks = doctor(hub, cache_dir, "org/xet")
    assert checks["cdn"]["status"] == "OK"
    fails(checks, "xet", *words)
    assert rc == 1


def test_text_output_one_line_per_check(hub, cache_dir):
    cache_dir.chmod(0o700)
    p = run_hffs("doctor", "--endpoint", hub.api_url, "--cache-dir", cache_dir,
                 env=clean_env(HFFS_DOCTOR_FUSE_DEV="/nonexistent"))
    assert p.returncode == 1
    lines = p.stdout.splitlines()
    assert all(line.split()[0] in ("OK", "WARN", "FAIL") for line in lines), p.stdout
    fuse = [line for line in lines if line.split()[1] == "fuse"]
    assert fuse[0].startswith("FAIL") and "Fix:" in fuse[0] and "modprobe" in fuse[0]


def test_anonymous_and_gated_approved(hub, cache_dir):
    rc, checks = doctor(hub, cache_dir, "org/model")
    assert_healthy(rc, checks, NETWORK | {"repo", "access", "cdn"})
    assert "anonymous" in checks["token"]["detail"]
    rc, checks = doctor(hub, cache_dir, "org/gated", HF_TOKEN=TOKEN)
    assert_healthy(rc, checks, NETWORK | {"repo", "access", "cdn"})
    assert "gated" in checks["repo"]["detail"] and "granted" in checks["access"]["detail"]
    rc, checks = doctor(hub, cache_dir, "org/private", HF_TOKEN=TOKEN)
    assert_healthy(rc, checks, NETWORK | {"repo", "access", "cdn"})
    assert "private" in checks["repo"]["detail"]


def test_dns_failure(hub, cache_dir):
    rc, checks = doctor(hub, cache_dir, "org/model", endpoint="http://no-such-host.invalid")
    fails(checks, "dns", "no-such-host.invalid", "resolve")
    assert not {"tcp", "token", "repo"} & set(checks)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused(hub, cache_dir):
    rc, checks = doctor(hub, cache_dir, "org/model", endpoint=f"http://127.0.0.1:{free_port()}")
    assert checks["dns"]["status"] == "OK"
    fails(checks, "tcp", "127.0.0.1", "firewall")
    assert not {"token", "repo"} & set(checks)


def test_proxy_that_answers(hub, cache_dir):
    from test_proxy import ForwardingProxy

    proxy = ForwardingProxy()
    try:
        rc, checks = doctor(hub, cache_dir, "org/model", http_proxy=proxy.url)
    finally:
        proxy.stop()
    assert_healthy(rc, checks, {"proxy", "tcp", "token", "repo", "access", "cdn"})
    assert "dns" not in checks  # the proxy resolves the endpoint's name
    assert f"http_proxy={proxy.url}" in checks["proxy"]["detail"]
    assert any(r["url"].startswith(hub.cdn_url) for r in proxy.log())


def test_proxy_that_does_not_answer(hub, cache_dir):
    rc, checks = doctor(hub, cache_dir, http_proxy=f"http://127.0.0.1:{free_port()}")
    fails(checks, "proxy", "http_proxy", "proxy")


@pytest.mark.parametrize("repo,env,name,words", [
    ("org/model", {"HF_TOKEN": "hf_wrong"}, "token", ["rejected", "HF_TOKEN"]),
    ("org/absent", None, "repo", ["org/absent", "repo id"]),
    ("org/private", None, "repo", ["org/private", "HF_TOKEN"]),
    ("org/model@v404", None, "repo", ["v404", "revision"]),
    ("org/gated", None, "access", ["gated", "request access"]),
    ("org/gated", {"HF_TOKEN": TOKEN_UNAPPROVED}, "access", ["gated", "request access"]),
])
def test_hub_refusals(hub, cache_dir, repo, env, name, words):
    repo, _, rev = repo.partition("@")
    rc, checks = doctor(hub, cache_dir, repo, *(["--revision", rev] if rev else []),
                        **(env or {}))
    fails(checks, name, *words)
    assert rc == 1


def test_cdn_down(hub, cache_dir):
    hub.set_faults([{"host": "cdn", "fault": "status", "status": 503}])
    rc, checks = doctor(hub, cache_dir, "org/model")
    assert checks["access"]["status"] == "OK"
    fails(checks, "cdn", "503", "firewall")


def test_no_dev_fuse(hub, cache_dir):
    rc, checks = doctor(hub, cache_dir, HFFS_DOCTOR_FUSE_DEV="/nonexistent/fuse")
    fails(checks, "fuse", "/nonexistent/fuse", "modprobe")


def test_cache_mode_and_broken_index(hub, cache_dir):
    rc, checks = doctor(hub, cache_dir)
    assert checks["cache"]["status"] == "OK" and checks["index"]["status"] == "OK"
    cache_dir.chmod(0o755)
    p = run_hffs("doctor", "--json", "--endpoint", hub.api_url, "--cache-dir", cache_dir,
                 env=clean_env())
    cache = {c["name"]: c for c in json.loads(p.stdout)["checks"]}["cache"]
    assert cache["status"] == "WARN" and "chmod 700" in cache["fix"], cache
    (cache_dir / "index").mkdir()
    (cache_dir / "index" / "data.mdb").write_bytes(b"not an lmdb file" * 512)
    rc, checks = doctor(hub, cache_dir)
    fails(checks, "index", "cannot open the index", str(cache_dir))


def test_dead_mount(hub, cache_dir, mount):
    m = mount("org/model", "--prefetch", "none", name="dead")
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait(timeout=10)
    try:
        p = run_hffs("doctor", "--json", "--endpoint", hub.api_url, "--cache-dir", cache_dir,
                     env=clean_env())
        dead = [c for c in json.loads(p.stdout)["checks"]
                if c["name"] == "mounts" and str(m.path) in c["detail"]]
        assert dead and dead[0]["status"] == "WARN", p.stdout
        assert "hffs unmount" in dead[0]["fix"] and "not connected" in dead[0]["detail"]
    finally:
        subprocess.run(["fusermount3", "-uz", str(m.path)], capture_output=True)


def test_usage(hub, cache_dir):
    assert run_hffs("doctor", "--bogus").returncode == 2
    assert run_hffs("doctor", "a/b", "c/d").returncode == 2
    assert run_hffs("doctor", "https://hub.example.org/org/model").returncode == 2
    assert run_hffs("doctor", "--help").returncode == 0


def make_cert(tmp_path, name):
    key, crt = tmp_path / f"{name}.key", tmp_path / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", crt], check=True, capture_output=True)
    return key, crt


class WhoamiHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"name": "tls-user"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class SkewedHandler(WhoamiHandler):
    """A Hub whose clock is two hours ahead of ours."""

    def date_time_string(self, timestamp=None):
        return formatdate(time.time() + 7200, usegmt=True)


def test_clock_skew(hub, cache_dir):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SkewedHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        rc, checks = doctor(hub, cache_dir, endpoint=f"http://127.0.0.1:{srv.server_address[1]}",
                            HF_TOKEN=TOKEN)
    finally:
        srv.shutdown()
        srv.server_close()
    fails(checks, "clock", "behind", "signed", "sync the clock")
    assert checks["token"]["status"] == "OK"


@pytest.fixture
def tls_server(tmp_path):
    key, crt = make_cert(tmp_path, "server")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WhoamiHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"https://127.0.0.1:{srv.server_address[1]}", crt
    finally:
        srv.shutdown()
        srv.server_close()


def test_wrong_ca(hub, cache_dir, tmp_path, tls_server):
    url, crt = tls_server
    _, other = make_cert(tmp_path, "other")
    rc, checks = doctor(hub, cache_dir, endpoint=url, HF_TOKEN=TOKEN, SSL_CERT_FILE=str(other))
    assert checks["tcp"]["status"] == "OK"
    fails(checks, "tls", "SSL_CERT_FILE=" + str(other))
    rc, checks = doctor(hub, cache_dir, endpoint=url, HF_TOKEN=TOKEN, SSL_CERT_FILE=str(crt))
    assert checks["tls"]["status"] == "OK" and str(crt) in checks["tls"]["detail"]
    assert "tls-user" in checks["token"]["detail"]


def test_allow_other_needs_user_allow_other_when_not_root(tmp_path):
    """--allow-other adds a line: OK for root (with what users would meet); for another user
    FAIL without `user_allow_other` in the FUSE config (as fusermount3 reads it), OK with."""
    d = tempfile.mkdtemp(prefix="hffs-doctor-")  # nobody must read the config: not tmp_path
    try:
        os.chmod(d, 0o755)
        conf = os.path.join(d, "fuse.conf")
        with open(conf, "w") as f:
            f.write("# user_allow_other\nmount_max = 1000\n")
        os.chmod(conf, 0o644)

        def run(*pre, hook=conf):
            env = clean_env(HF_HUB_OFFLINE="1", HFFS_DOCTOR_FUSE_CONF=hook)
            p = subprocess.run([*pre, HFFS, "doctor", "--json", "--allow-other", "--cache-dir",
                                str(tmp_path / "cache")], env=env, capture_output=True,
                               text=True, timeout=60)
            assert p.returncode in (0, 1), p.stderr
            return {c["name"]: c for c in json.loads(p.stdout)["checks"]}

        root = run()["allow_other"]
        assert root["status"] == "OK" and "has no line" in root["detail"], root
        nobody = ["runuser", "-u", "nobody", "--", "env"]
        fails(run(*nobody), "allow_other", "user_allow_other", "echo user_allow_other >>")
        with open(conf, "a") as f:
            f.write("  user_allow_other  # shared mounts\n")
        assert run(*nobody)["allow_other"]["status"] == "OK"
        assert "has user_allow_other" in run()["allow_other"]["detail"]
        # Only when asked.
        p = run_hffs("doctor", "--json", "--cache-dir", tmp_path / "cache",
                     env=clean_env(HF_HUB_OFFLINE="1"))
        assert "allow_other" not in {c["name"] for c in json.loads(p.stdout)["checks"]}
    finally:
        shutil.rmtree(d)
