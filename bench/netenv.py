"""The benchmark's network: a shaped link to a server namespace, nginx serving the blob store
as the CDN, and the fake Hub's API pointing LFS redirects at it.

netns mode (preferred): the servers run in a network namespace of our own, joined to the root
namespace by a veth pair; the clients (curl, aria2c, the hffs daemon, the readers) stay in the
root namespace, so the FUSE mount is an ordinary one. The server side's egress carries a `tbf`
qdisc: the link cap. Addresses are a /30 of 10.217.0.0/16 on that veth only.

A fixed round-trip delay needs sch_netem. Where the kernel lacks it (as on the 2-core
Firecracker machines this was written on), the delay is modelled at the CDN instead: nginx
holds every request `ttfb_ms` before answering (echo module's echo_sleep), which is what a
far edge costs a range-request client per request; TCP itself then sees the veth's sub-ms RTT.

loopback mode (fallback when namespaces cannot be made): API on 127.0.0.1, nginx on 127.0.0.2,
no link cap (tc on `lo` would shape every other process on the machine); only nginx's
per-connection limit_rate and the per-request delay remain.
"""
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import procs

ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")
NGINX_PORT = 8080
HERE = Path(__file__).resolve().parent
FAKEHUB = HERE.parent / "tests" / "fakehub" / "fakehub.py"


class SetupError(Exception):
    """The environment could not be built; the message says what failed."""


def sh(*cmd, netns=None):
    procs.run(list(cmd), timeout=30, netns=netns)


class Network:
    """Where the servers listen and how the clients reach them. Call up() once, down() at the
    end (idempotent, also after a failed up())."""

    def __init__(self, want_netns, link_mbit, ttfb_ms):
        self.want_netns, self.link_mbit, self.ttfb_ms = want_netns, link_mbit, ttfb_ms
        self.mode = None  # "netns" or "loopback" once up
        self.netns = None
        self.api_host = self.cdn_host = None
        self.note = ""  # why the fallback was taken, or ""
        tag = os.getpid() % 10_000_000
        self._host_if, self._ns_if = f"hfb{tag}h", f"hfb{tag}n"

    @property
    def link_bytes_per_s(self):
        """The nominal link cap in bytes/s, or None when the link is not shaped."""
        return self.link_mbit * 1e6 / 8 if self.mode == "netns" and self.link_mbit else None

    def up(self):
        if self.want_netns:
            try:
                self._netns_up()
                self.mode = "netns"
                return
            except (subprocess.SubprocessError, OSError, SetupError) as e:
                err = getattr(e, "stderr", "") or str(e)
                self.note = f"network namespace unavailable ({err.strip()}): loopback fallback"
                self.down()
        self.mode, self.netns = "loopback", None
        self.api_host, self.cdn_host = "127.0.0.1", "127.0.0.2"

    def _free_subnet(self):
        used = procs.run(["ip", "-4", "-o", "addr", "show"]).stdout
        used += procs.run(["ip", "-4", "route", "show", "table", "all"]).stdout
        for n in range(256):
            if not re.search(rf"\b10\.217\.{n}\.", used):
                return f"10.217.{n}"
        raise SetupError("no free 10.217.N.0/30 subnet")

    def _netns_up(self):
        name = f"hffsb{os.getpid()}"
        prefix = self._free_subnet()
        sh("ip", "netns", "add", name)
        self.netns = name
        sh("ip", "link", "add", self._host_if, "type", "veth", "peer", "name", self._ns_if,
           "netns", name)
        sh("ip", "addr", "add", f"{prefix}.1/30", "dev", self._host_if)
        sh("ip", "link", "set", self._host_if, "up")
        sh("ip", "-n", name, "addr", "add", f"{prefix}.2/30", "dev", self._ns_if)
        sh("ip", "-n", name, "link", "set", self._ns_if, "up")
        sh("ip", "-n", name, "link", "set", "lo", "up")
        if self.link_mbit:
            # Server -> client is the direction that carries the data. A burst of 256 KiB
            # keeps the rate exact with GSO-sized packets; 20 ms of queue at most.
            sh("tc", "-n", name, "qdisc", "add", "dev", self._ns_if, "root", "tbf", "rate",
               f"{self.link_mbit}mbit", "burst", "256kb", "latency", "20ms")
        self.api_host = self.cdn_host = f"{prefix}.2"

    def describe_qdisc(self):
        if self.mode != "netns":
            return ""
        return procs.run(["tc", "-n", self.netns, "qdisc", "show", "dev", self._ns_if]).stdout

    def down(self):
        if self.netns:
            procs.run(["ip", "netns", "del", self.netns], check=False)
            self.netns = None
        procs.run(["ip", "link", "del", self._host_if], check=False)  # gone with the netns

    def tcp_rtt_ms(self, port, count=9):
        """Median TCP connect time to the API host: one round trip, in ms."""
        times = []
        for _ in range(count):
            t = time.monotonic()
            with socket.create_connection((self.api_host, port), timeout=5):
                times.append((time.monotonic() - t) * 1000)
        return statistics.median(times)


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host, port, proc, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SetupError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SetupError(f"nothing listens on {host}:{port} after {timeout} s")


NGINX_CONF = """\
{load_module}daemon off;
master_process on;
worker_processes 1;
user root;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format bench '$msec $connection $status $body_bytes_sent "$http_range" $request_time '
                     '$uri';
    access_log {run}/access.log bench;
    client_body_temp_path {run}/tmp/body;
    proxy_temp_path {run}/tmp/proxy;
    fastcgi_temp_path {run}/tmp/fastcgi;
    uwsgi_temp_path {run}/tmp/uwsgi;
    scgi_temp_path {run}/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 120s;
    keepalive_requests 100000;
    default_type application/octet-stream;
    types {{ }}
    server {{
        listen {host}:{port};
        root {blobs};
        # The CDN edge: every request waits {ttfb_ms} ms, then each connection is paced.
        location / {{
{delay}        }}
        location @blob {{
            limit_rate {conn_rate};
        }}
        # Calibration only: the raw link, no delay and no per-connection cap.
        location /raw/ {{
            alias {blobs}/;
        }}
    }}
}}
"""


class Nginx:
    """nginx serving DATA/blobs as the CDN: `conn_rate` bytes/s per connection (limit_rate),
    `ttfb_ms` before each reply. Its access log records every request for the profile."""

    def __init__(self, run_dir, blobs, host, conn_rate, ttfb_ms, netns):
        self.run_dir, self.blobs, self.host = Path(run_dir), Path(blobs), host
        self.conn_rate, self.ttfb_ms, self.netns = conn_rate, ttfb_ms, netns
        self.proc = None
        self.port = None
        self.version = procs.run(["nginx", "-v"]).stderr.strip().partition("/")[2]

    @property
    def base_url(self):
        return f"http://{self.host}:{self.port}"

    @property
    def access_log(self):
        return self.run_dir / "access.log"

    def start(self):
        if self.ttfb_ms and not ECHO_MODULE.exists():
            raise SetupError(f"{ECHO_MODULE} missing (apt-get install libnginx-mod-http-echo)")
        self.port = NGINX_PORT if self.netns else free_port(self.host)
        (self.run_dir / "tmp").mkdir(parents=True, exist_ok=True)
        if self.ttfb_ms:
            load = f"load_module {ECHO_MODULE};\n"
            delay = (f"            echo_sleep {self.ttfb_ms / 1000:.3f};\n"
                     "            echo_exec @blob;\n")
        else:
            load, delay = "", f"            limit_rate {int(self.conn_rate)};\n"
        conf = NGINX_CONF.format(load_module=load, run=self.run_dir, host=self.host,
                                 port=self.port, blobs=self.blobs, ttfb_ms=self.ttfb_ms,
                                 conn_rate=int(self.conn_rate), delay=delay)
        path = self.run_dir / "nginx.conf"
        path.write_text(conf)
        self.proc = procs.spawn(["nginx", "-e", str(self.run_dir / "error.log"), "-p",
                                 str(self.run_dir), "-c", str(path)],
                                self.run_dir / "nginx.out", netns=self.netns)
        wait_port(self.host, self.port, self.proc)

    def stop(self):
        procs.stop(self.proc)  # SIGTERM: fast shutdown of master and workers
        self.proc = None

    def log_offset(self):
        return self.access_log.stat().st_size if self.access_log.exists() else 0

    def requests_since(self, offset):
        """Access-log entries written after byte `offset`: a list of dicts."""
        out = []
        with open(self.access_log, "rb") as f:
            f.seek(offset)
            for line in f.read().decode(errors="replace").splitlines():
                m = re.fullmatch(r'(\S+) (\d+) (\d+) (\d+) "([^"]*)" (\S+) (\S+)', line)
                if m:
                    out.append({"t": float(m[1]), "conn": int(m[2]), "status": int(m[3]),
                                "bytes": int(m[4]), "range": m[5], "secs": float(m[6]),
                                "blob": m[7].rpartition("/")[2]})
        return out


class FakeHubServer:
    """tests/fakehub/fakehub.py with --cdn-base at nginx, in the server namespace."""

    def __init__(self, run_dir, data_dir, host, cdn_base, netns):
        self.run_dir, self.data_dir, self.host = Path(run_dir), Path(data_dir), host
        self.cdn_base, self.netns = cdn_base, netns
        self.proc = None
        self.api_url = None
        self.port = None

    def start(self, timeout=15):
        port_file = self.run_dir / "fakehub-ports.json"
        port_file.unlink(missing_ok=True)
        # The bench's interpreter (/usr/bin/python3): the fake Hub needs Debian's modules.
        cmd = [sys.executable, str(FAKEHUB), "--data", str(self.data_dir), "--port-file",
               str(port_file), "--log",
               str(self.run_dir / "fakehub-requests.jsonl"), "--api-host", self.host,
               "--cdn-host", self.host, "--cdn-base", self.cdn_base]
        self.proc = procs.spawn(cmd, self.run_dir / "fakehub.out", netns=self.netns)
        deadline = time.monotonic() + timeout
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SetupError("fakehub did not start: " +
                                 (self.run_dir / "fakehub.out").read_text(errors="replace"))
            time.sleep(0.05)
        ports = json.loads(port_file.read_text())
        self.api_url, self.port = ports["api_url"], ports["api"]

    def stop(self):
        procs.stop(self.proc)
        self.proc = None
