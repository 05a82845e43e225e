#!/usr/bin/python3
"""hffs against curl and aria2c on a shaped local link: transfer rate, time to first tensor,
and loading while downloading. Writes bench/results/<mode>.json and docs/benchmarks.md.

    sudo bench/run.py            # full: 4 shards of 512 MiB, 3 repeats (about 25 minutes)
    sudo bench/run.py --small    # 4 shards of 64 MiB (about 5 minutes)

Needs root (mount, network namespace, drop_caches, apt-get) and /dev/fuse. bench/README.md
says what each benchmark measures and which options there are.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "fakehub"))

import clients  # noqa: E402
import gendata  # noqa: E402
import mirror  # noqa: E402
import netenv  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402
import repostore  # noqa: E402

MiB = 1 << 20
PACKAGES = {"nginx": "nginx", "aria2c": "aria2", "tc": "iproute2", "ip": "iproute2",
            "fusermount3": "fuse3", "curl": "curl"}
TOOLS = ("curl", "aria2c", "hffs", "hffs-noprefetch")
TOOLS_B = TOOLS + ("hffs-b", "hffs-b-noprefetch")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- setup -------------------------------------------------------------------------------------

def ensure_packages(ttfb_ms):
    """apt-get installs what is missing, without letting a package start its service."""
    need = sorted({pkg for cmd, pkg in PACKAGES.items() if not shutil.which(cmd)})
    if ttfb_ms and not netenv.ECHO_MODULE.exists():
        need.append("libnginx-mod-http-echo")
    if not need:
        return
    log(f"installing {' '.join(need)}")
    policy = Path("/usr/sbin/policy-rc.d")
    ours = not policy.exists()
    if ours:
        policy.write_text("#!/bin/sh\n# bench/run.py: no service starts during its install\n"
                          "exit 101\n")
        policy.chmod(0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, timeout=600,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-q", *need], check=True, env=env,
                       timeout=900, stdout=subprocess.DEVNULL)
    finally:
        if ours:
            policy.unlink()


def git(*args):
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


def build_hffs(work):
    """Builds HEAD from a `git archive` snapshot (so the binary is exactly the commit the
    results name) under WORK/src/<sha>; cached per commit. Returns (binary, None) or
    (None, why)."""
    sha = git("rev-parse", "HEAD")
    src = work / "src" / sha[:12]
    binary = src / "build" / "cli" / "hffs"
    if binary.exists():
        return binary, None
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    log(f"building hffs {sha[:12]} in {src}")
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", "HEAD"], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(src)], stdin=archive.stdout, check=True, timeout=120)
    archive.wait(timeout=60)
    out = subprocess.run([str(src / "scripts" / "build"), "build", "-Dtests=false"], cwd=src,
                         capture_output=True, text=True, timeout=1200)
    if out.returncode != 0 or not binary.exists():
        why = (out.stdout + out.stderr).strip().splitlines()[-12:]
        return None, f"scripts/build failed at {sha[:12]}: " + " | ".join(why)
    return binary, None


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def warm(paths):
    """Reads files into the page cache: the server side of every run is warm, the client's
    cold."""
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while f.read(8 * MiB):
                pass


# --- statistics -------------------------------------------------------------------------------

def summarize(runs, keys):
    """{key: {"median", "min", "max"}} over the runs that have the key (errors skipped)."""
    out = {}
    for k in keys:
        vals = [r[k] for r in runs if r.get(k) is not None and "error" not in r]
        if vals:
            out[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
                      "n": len(vals)}
    return out


def cut_short(entry):
    """True for a ranged reply that ended before its range did: the client hung up."""
    m = re.fullmatch(r"bytes=(\d+)-(\d+)", entry["range"])
    return bool(m) and entry["status"] == 206 and entry["bytes"] < int(m[2]) - int(m[1]) + 1


def request_profile(entries, wanted):
    """What the CDN saw during one run: requests, connections, reply sizes, and the bytes
    that went to blobs other than `wanted` (sha256s of the files the run reads)."""
    sizes = sorted(e["bytes"] for e in entries if e["status"] in (200, 206))
    return {"requests": len(entries), "connections": len({e["conn"] for e in entries}),
            "cut_short": sum(1 for e in entries if cut_short(e)),
            "bytes": sum(e["bytes"] for e in entries),
            "other_bytes": sum(e["bytes"] for e in entries if e.get("blob") not in wanted),
            "statuses": sorted({e["status"] for e in entries}),
            "median_reply_bytes": statistics.median(sizes) if sizes else 0,
            "max_reply_bytes": sizes[-1] if sizes else 0}


def cdn_timeline(entries, wall0, path_of):
    """Each CDN reply of a run as [start s, end s, bytes, file] (s after `wall0`, a
    time.time(); start is the end less nginx's $request_time), for bench/plot.py."""
    return [[round(e["t"] - e["secs"] - wall0, 3), round(e["t"] - wall0, 3), e["bytes"],
             path_of.get(e["blob"], e["blob"])] for e in entries]


# --- the benchmark context ---------------------------------------------------------------------

class Bench:
    """Everything a measurement needs: the servers, the repo, the binaries, the run dir."""

    def __init__(self, args, work, data, run_dir, hffs, hffs_why, net, nginx, hub):
        self.args, self.work, self.data, self.run_dir = args, work, data, run_dir
        self.hffs, self.hffs_why = hffs, hffs_why
        self.net, self.nginx, self.hub = net, nginx, hub
        self.repo = gendata.REPO
        self.sha256s = repostore.content_sha256s(data, self.repo, "main")
        self.sizes = {p: os.path.getsize(self.blob(p)) for p in self.sha256s}
        self.shards = sorted(p for p in self.sizes if p.endswith(".safetensors"))
        self.out_dir = run_dir / "out"
        self.mnt = run_dir / "mnt"
        self.mnt.mkdir(parents=True, exist_ok=True)
        self.counter = 0
        self.aria2_shard_runs = []  # aria2c downloads of shards[0], shared by two benchmarks

    def url(self, path):
        return f"{self.hub.api_url}/{self.repo}/resolve/main/{path}"

    def blob(self, path):
        return repostore.blob_path(self.data, self.sha256s[path])

    def timeout(self, nbytes):
        """Deadline for moving `nbytes`: 6x the time at the rate of one capped connection,
        plus a minute."""
        return 60 + 6 * nbytes / self.args.conn_rate

    def cold(self, paths):
        """A cold client: empty output dir, page cache dropped, server files warm again."""
        shutil.rmtree(self.out_dir, ignore_errors=True)
        self.out_dir.mkdir(parents=True)
        drop_caches()
        warm([self.blob(p) for p in paths])

    def next_tag(self, name):
        self.counter += 1
        return f"{self.counter:03d}-{name}"

    # -- peers

    def peer(self, tool, paths, timeline=False):
        """curl (one file) or aria2c (all at once) downloading `paths`; checked byte for byte.
        timeline: keep every CDN reply's time and size (cdn_timeline()) and, for aria2c, the
        bytes it had written to its files over time (procs.Measured.written)."""
        nbytes = sum(self.sizes[p] for p in paths)
        tag = self.next_tag(tool)
        offset = self.nginx.log_offset()
        wall0 = time.time()
        if tool == "curl":
            (path,) = paths
            m = clients.curl(self.url(path), self.out_dir / path, self.run_dir / f"{tag}.log",
                             self.timeout(nbytes))
        else:
            m = clients.aria2c([(self.url(p), p) for p in paths], self.out_dir,
                               self.run_dir / f"{tag}.log", self.timeout(nbytes), timeline)
        run = {"wall": m.wall, "bytes": nbytes, "mbps": nbytes / m.wall / 1e6, "cpu": m.cpu,
               "cpu_per_gb": m.cpu / nbytes * 1e9, "peak_rss": m.peak_rss,
               "cdn": request_profile(self.nginx.requests_since(offset), self.blobs_of(paths))}
        if timeline:
            run["cdn_timeline"] = cdn_timeline(self.nginx.requests_since(offset), wall0,
                                               self.path_of)
            run["written"] = m.written
        if m.timed_out or m.rc != 0:
            run["error"] = (f"{tool} {'timed out' if m.timed_out else f'exited {m.rc}'}; "
                            f"see {self.run_dir / (tag + '.log')}")
        else:
            bad = [p for p in paths if clients.file_sha256(self.out_dir / p) != self.sha256s[p]]
            if bad:
                run["error"] = f"{tool} wrote wrong bytes for {bad}"
        log(f"  {tool}: " + (run.get("error") or f"{run['mbps']:.1f} MB/s in {m.wall:.2f} s"))
        return run

    # -- hffs

    def mount(self, name, extra=()):
        tag = self.next_tag(name)
        cache = self.run_dir / f"cache-{tag}"
        shutil.rmtree(cache, ignore_errors=True)
        args = list(extra)
        if self.args.connections:
            args += ["--connections", str(self.args.connections)]
        if self.args.hffs_debug:
            args += ["--debug"]
        binary = self.args.hffs_b if name.startswith("hffs-b") else self.hffs
        return clients.HffsMount(str(binary), self.repo, self.hub.api_url, cache, self.mnt,
                                 self.run_dir / f"{tag}.log", args), cache

    def blobs_of(self, paths):
        return {self.sha256s[p] for p in paths}

    @property
    def path_of(self):
        return {sha: p for p, sha in self.sha256s.items()}

    def with_mount(self, name, extra, work, nbytes, paths, timeline=False):
        """Cold mount, `work(mount)` timed from the mount command's start, unmount. Returns the
        run record: wall times, daemon CPU during work, peak RSS, CDN profile (with timeline,
        every reply: cdn_timeline()), work's result."""
        if self.hffs is None:
            return {"error": f"not measured: {self.hffs_why}"}
        m, cache = self.mount(name, extra)
        offset = self.nginx.log_offset()
        run = {"bytes": nbytes}
        wall0 = None
        try:
            m.start()
            wall0 = time.time() - (time.monotonic() - m.t_start)
            run["mount"] = m.t_ready - m.t_start
            cpu0, t0 = m.cpu(), time.monotonic()
            result = m.bounded(lambda: work(m), self.timeout(nbytes), "reading")
            t1 = time.monotonic()
            run.update(result=result, read=t1 - t0, wall=t1 - m.t_start, cpu=m.cpu() - cpu0,
                       peak_rss=m.peak_rss(), status=m.status())
            run["mbps"] = nbytes / run["wall"] / 1e6
            run["read_mbps"] = nbytes / run["read"] / 1e6
            run["cpu_per_gb"] = run["cpu"] / nbytes * 1e9
            run["reader_cpu_per_gb"] = result.get("thread_cpu", 0) / nbytes * 1e9
        except (clients.HffsError, OSError) as e:
            run["error"] = f"{type(e).__name__}: {e}"
        finally:
            run["unmount"] = m.stop()
            run["cdn"] = request_profile(self.nginx.requests_since(offset),
                                         self.blobs_of(paths))
            if timeline and wall0 is not None:
                run["cdn_timeline"] = cdn_timeline(self.nginx.requests_since(offset), wall0,
                                                   self.path_of)
            if not self.args.keep:
                shutil.rmtree(cache, ignore_errors=True)
        if "error" not in run:
            if run.get("status") and run["status"].get("pid") not in (None, m.pid):
                run["note"] = f"status names pid {run['status'].get('pid')}, ours is {m.pid}"
            self.check_hashes(run)
        if "error" in run:
            log(f"  {name}: {run['error']}")
        elif run["result"].get("bytes"):
            log(f"  {name}: {run['mbps']:.1f} MB/s in {run['wall']:.2f} s")
        else:
            log(f"  {name}: {run['wall']:.2f} s")
        return run

    def check_hashes(self, run):
        """Readers name files by their base name; every file here is at the repo's top."""
        for name, digest in run["result"].get("sha256", {}).items():
            if digest != self.sha256s[name]:
                run["error"] = f"WRONG BYTES: {name} read through the mount has sha256 {digest}"

    def hffs_read(self, name, paths, reader, extra=(), timeline=False):
        nbytes = sum(self.sizes[p] for p in paths)

        def work(m):
            return reader([m.mountpoint / p for p in paths], m.t_start)
        return self.with_mount(name, extra, work, nbytes, paths, timeline)


# --- benchmarks --------------------------------------------------------------------------------

def bench_transfer(b):
    """Cold sequential read of one shard through the mount vs curl and aria2c."""
    shard = b.shards[0]
    runs = {t: [] for t in b.args.tools}
    for rep in range(b.args.repeats):
        log(f"transfer: repeat {rep + 1}/{b.args.repeats}, {shard}")
        for tool in b.args.tools:
            b.cold([shard])
            if tool in ("curl", "aria2c"):
                runs[tool].append(b.peer(tool, [shard]))
            else:
                extra = ["--prefetch", "none"] if tool.endswith("-noprefetch") else []
                runs[tool].append(b.hffs_read(tool, [shard], clients.read_sequential, extra))
    b.aria2_shard_runs = runs.get("aria2c", [])
    keys = ("wall", "mbps", "read_mbps", "mount", "cpu", "cpu_per_gb", "reader_cpu_per_gb",
            "peak_rss")
    return {"file": shard, "bytes": b.sizes[shard], "runs": runs,
            "summary": {t: summarize(r, keys) for t, r in runs.items()}}


def bench_ttft(b):
    """Cold mount, header, then the middle tensor of the first shard; with background
    completion (the default) and without."""
    shard = b.shards[0]
    variants = {"hffs": [], "hffs-noprefetch": ["--prefetch", "none"]}
    if b.args.hffs_b:
        variants.update({"hffs-b": [], "hffs-b-noprefetch": ["--prefetch", "none"]})
    runs = {v: [] for v in variants}

    def work(m):
        return clients.first_tensor(m.mountpoint / shard, m.t_start)

    for rep in range(b.args.repeats):
        log(f"ttft: repeat {rep + 1}/{b.args.repeats}")
        for name, extra in variants.items():
            b.cold([shard])
            run = b.with_mount(f"{name}-ttft", extra, work, b.sizes[shard], [shard])
            if "error" not in run:
                r = run["result"]
                want = clients.range_sha256(b.blob(shard), r["offset"], r["offset"] + r["size"])
                if r["tensor_sha256"] != want:
                    run["error"] = f"WRONG BYTES: tensor {r['tensor']} at {r['offset']}"
                run.update(t_header=r["t_header"], t_tensor=r["t_tensor"])
            runs[name].append(run)
    if not b.aria2_shard_runs:
        for rep in range(b.args.repeats):
            log(f"ttft: aria2c {rep + 1}/{b.args.repeats}")
            b.cold([shard])
            b.aria2_shard_runs.append(b.peer("aria2c", [shard]))
    ok = [r for v in runs.values() for r in v if "error" not in r]
    tensor = ok[0]["result"] if ok else None
    # The link's speed: its cap; without one (loopback), what aria2c reached.
    aria2_ok = [r["mbps"] * 1e6 for r in b.aria2_shard_runs if "error" not in r]
    rate = b.net.link_bytes_per_s or (statistics.median(aria2_ok) if aria2_ok else None)
    keys = ("mount", "t_header", "t_tensor", "peak_rss")
    return {"file": shard, "bytes": b.sizes[shard], "runs": runs,
            "tensor": tensor and {k: tensor[k] for k in ("tensor", "offset", "size")},
            "link_rate": rate,
            # Issue 14's baseline: the tensor's own bytes at the link's speed (what a reader
            # that fetched exactly that tensor, at full link rate, would wait).
            "bytes_at_link_s": tensor and rate and tensor["size"] / rate,
            "aria2c": b.aria2_shard_runs,
            "summary": {**{v: summarize(r, keys) for v, r in runs.items()},
                        "aria2c": summarize(b.aria2_shard_runs, ("wall",))}}


def bench_load(b):
    """Every shard front to back right after mount (1 MiB reads, then mmap per tensor) vs
    aria2c downloading all shards."""
    index = "model.safetensors.index.json"
    paths = [index, *b.shards]
    readers = {"hffs-read": clients.read_sequential, "hffs-mmap": clients.read_mmap_tensors}
    if b.args.hffs_b:
        readers.update({"hffs-b-read": clients.read_sequential,
                        "hffs-b-mmap": clients.read_mmap_tensors})
    runs = {"aria2c": [], **{k: [] for k in readers}}
    for rep in range(b.args.repeats):
        log(f"load: repeat {rep + 1}/{b.args.repeats}")
        b.cold(b.shards)
        runs["aria2c"].append(b.peer("aria2c", b.shards, timeline=True))
        for name, reader in readers.items():
            b.cold(b.shards)
            if name.endswith("-mmap"):
                # mmap the shards; the index is tiny and read as any loader reads JSON
                def reader_fn(ps, t0, _r=reader):
                    clients.read_sequential(ps[:1], t0)
                    return _r(ps[1:], t0)
                runs[name].append(b.hffs_read(name, paths, reader_fn, timeline=True))
            else:
                runs[name].append(b.hffs_read(name, paths, reader, timeline=True))
    keys = ("wall", "mbps", "cpu", "cpu_per_gb", "reader_cpu_per_gb", "peak_rss", "mount")
    return {"files": b.shards, "bytes": sum(b.sizes[p] for p in b.shards), "runs": runs,
            "summary": {t: summarize(r, keys) for t, r in runs.items()}}


BENCHES = {"transfer": bench_transfer, "ttft": bench_ttft, "load": bench_load,
           "mirror": mirror.bench_mirror}


# --- main --------------------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="4 shards of 64 MiB: a quick run")
    ap.add_argument("--shards", type=int, help="shards in the repo (default 4)")
    ap.add_argument("--shard-size", type=int, help="tensor bytes per shard (default 512 MiB)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bench", default="transfer,ttft,load",
                    help="comma-separated subset of transfer,ttft,load,mirror (mirror: N "
                    "clients behind contrib/mirror against N straight to the origin; not in "
                    "the default set)")
    ap.add_argument("--mirror-clients", default="1,4,8",
                    help="mirror: the client counts N to measure (default 1,4,8)")
    ap.add_argument("--link-mbit", type=float, default=400, help="link cap, Mbit/s (0: none)")
    ap.add_argument("--conn-rate", type=float, default=40e6,
                    help="per-connection cap at the CDN (nginx limit_rate), bytes/s")
    ap.add_argument("--ttfb-ms", type=int, default=20,
                    help="CDN delay before each reply, ms (the RTT stand-in; 0: none)")
    ap.add_argument("--no-netns", action="store_true", help="loopback only, no link cap")
    ap.add_argument("--hffs", help="hffs binary to measure (default: build HEAD)")
    ap.add_argument("--connections", type=int, help="hffs --connections (default: hffs's)")
    ap.add_argument("--hffs-debug", action="store_true",
                    help="hffs --debug: its debug log (and libfuse's tracing) in the run dir's "
                    "logs; slows the daemon, so not for figures")
    ap.add_argument("--hffs-b", help="a second hffs binary, measured in the same run as the "
                    "tools hffs-b and hffs-b-noprefetch (A/B pairs back to back)")
    ap.add_argument("--tools", help="transfer: comma-separated subset of "
                    f"{','.join(TOOLS_B)} (default {','.join(TOOLS)}, and the hffs-b pair with "
                    "--hffs-b)")
    ap.add_argument("--work-dir", default="/var/tmp/hffs-bench",
                    help="data, builds and runs (generated repos are cached here)")
    ap.add_argument("--results", help="JSON out (default bench/results/<full|small>.json)")
    ap.add_argument("--docs", help="markdown out (default docs/benchmarks.md for full runs)")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the run dir and hffs caches")
    a = ap.parse_args(argv)
    a.mode = "small" if a.small else "full"
    a.shards = a.shards or 4
    a.shard_size = a.shard_size or (64 * MiB if a.small else 512 * MiB)
    a.benches = [x for x in a.bench.split(",") if x]
    a.mirror_clients = [int(x) for x in a.mirror_clients.split(",") if x]
    a.tools = (a.tools.split(",") if a.tools else
               list(TOOLS) + (["hffs-b", "hffs-b-noprefetch"] if a.hffs_b else []))
    if any(t not in TOOLS_B for t in a.tools) or (not a.hffs_b and
                                                   any(t.startswith("hffs-b") for t in a.tools)):
        ap.error(f"--tools takes names from {','.join(TOOLS_B)}; hffs-b needs --hffs-b")
    if a.hffs_b:
        a.hffs_b = Path(a.hffs_b).resolve()
    if any(x not in BENCHES for x in a.benches) or a.repeats < 1:
        ap.error(f"--bench takes names from {','.join(BENCHES)}; --repeats >= 1")
    a.results = Path(a.results or HERE / "results" / f"{a.mode}.json")
    if not a.no_docs and (a.docs or a.mode == "full"):
        a.docs = Path(a.docs or ROOT / "docs" / "benchmarks.md")
    else:
        a.docs = None
    if not set(TOOLS) <= set(a.tools):
        a.docs = None  # the page compares all four
    return a


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), "?")
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo")
               if line.startswith("MemTotal"))
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "memory_gib": round(mem / 1024 / 1024, 1)}


def calibrate(b):
    """The raw link: curl of the first shard from nginx's undelayed, uncapped location."""
    shard = b.shards[0]
    sha = b.sha256s[shard]
    b.cold([shard])
    url = f"{b.nginx.base_url}/raw/{sha[:2]}/{sha}"
    m = procs.run_measured(["curl", "-sS", "--fail", "-o", str(b.out_dir / "raw"), url],
                           b.timeout(b.sizes[shard]), b.run_dir / "calibrate.log",
                           procs.clean_env())
    return {"single_connection_raw_mbps": b.sizes[shard] / m.wall / 1e6 if m.rc == 0 else None,
            "tcp_connect_rtt_ms": b.net.tcp_rtt_ms(b.hub.port)}


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        sys.exit("bench/run.py needs root and /dev/fuse")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(f"stopped by signal {s}"))
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    ensure_packages(args.ttfb_ms)
    if args.hffs:
        hffs, why = Path(args.hffs).resolve(), None
    else:
        hffs, why = build_hffs(work)
        if why:
            log(f"hffs will not be measured: {why}")
    log(f"repo: {args.shards} shards of {args.shard_size} bytes (cached in {work / 'data'})")
    data = Path(procs.run([sys.executable, str(HERE / "gendata.py"), str(work / "data"),
                           "--shards", str(args.shards), "--shard-size", str(args.shard_size)],
                          timeout=1800).stdout.strip())
    run_dir = work / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir()
    net = netenv.Network(not args.no_netns, args.link_mbit, args.ttfb_ms)
    nginx = hub = None
    try:
        net.up()
        if net.note:
            log(net.note)
        nginx = netenv.Nginx(run_dir / "nginx", data / "blobs", net.cdn_host, args.conn_rate,
                             args.ttfb_ms, net.netns)
        nginx.start()
        hub = netenv.FakeHubServer(run_dir, data, net.api_host, nginx.base_url, net.netns)
        hub.start()
        b = Bench(args, work, data, run_dir, hffs, why, net, nginx, hub)
        results = {"meta": meta(args, hffs, why, nginx), "repo": repo_info(b),
                   "link": {"mode": net.mode, "note": net.note, "link_mbit": args.link_mbit
                            if net.mode == "netns" else None,
                            "link_bytes_per_s": net.link_bytes_per_s,
                            "conn_rate": args.conn_rate, "ttfb_ms": args.ttfb_ms,
                            "qdisc": net.describe_qdisc().strip()}}
        log(f"link: {net.mode}, calibrating")
        results["link"].update(calibrate(b))
        log(f"link: {results['link']}")
        for name in args.benches:
            results[name] = BENCHES[name](b)
        results["meta"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    finally:
        for server in (hub, nginx):
            if server:
                server.stop()
        net.down()
        if not args.keep:
            shutil.rmtree(run_dir / "out", ignore_errors=True)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    log(f"results: {args.results}")
    if args.docs:
        rel = (args.results.relative_to(ROOT) if args.results.is_relative_to(ROOT) else
               args.results)
        if not set(args.benches) <= set(report.APART):
            report.write(args.docs, results, rel)
        if set(args.benches) & set(report.APART):
            report.write_sections(args.docs, results, rel)
        log(f"docs: {args.docs}")
    if set(TOOLS) <= set(args.tools):
        for line in report.verdicts(results):
            log(line)


def meta(args, hffs, why, nginx):
    version = None
    if hffs:
        version = clients.tool_version([str(hffs), "--version"])
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            # The commit the binary was built from (HEAD may have moved during the run).
            "commit": (Path(hffs).parents[2].name[:7] if hffs and not args.hffs else
                       git("rev-parse", "--short", "HEAD")),
            "hffs": str(hffs) if hffs else None, "hffs_version": version, "hffs_missing": why,
            "hffs_built_from_head": not args.hffs,
            "hffs_b": str(args.hffs_b) if args.hffs_b else None,
            "command": " ".join(["bench/run.py", *sys.argv[1:]]), "mode": args.mode,
            "repeats": args.repeats, "machine": machine(),
            "peers": {"curl": clients.tool_version(["curl", "--version"]),
                      "aria2c": clients.tool_version(["aria2c", "--version"]),
                      "aria2c_args": " ".join(clients.ARIA2_ARGS),
                      "nginx": nginx.version}}


def repo_info(b):
    return {"id": b.repo, "files": len(b.sizes), "total_bytes": sum(b.sizes.values()),
            "shards": [{"name": s, "bytes": b.sizes[s]} for s in b.shards]}


if __name__ == "__main__":
    main()
