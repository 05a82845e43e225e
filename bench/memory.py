#!/usr/bin/python3
"""The daemon's memory: a huge tree, and a repo read whole at two sizes.

    bench/memory.py --bench tree [--files 200000]       # mount time, find time, peak RSS
    bench/memory.py --bench rss [--sizes 2,20]           # peak RSS reading N GiB repos whole
    bench/memory.py ... --results /tmp/x.json --hffs build/cli/hffs --work-dir /var/tmp/hffs-mem

Needs no root and no namespace: the bundled fake Hub serves on 127.0.0.1 (API) and 127.0.0.2
(CDN), unshaped. Repos are generated under --work-dir (kept there: 200k files take ~15 s, a
20 GiB repo a few minutes) unless --clean. Figures are medians of --repeats runs; each run
starts from an empty cache. Peak RSS is the daemon's VmHWM; "after" is its RssAnon once the
read and completion are over; the peaks of RssAnon and RssFile (and Threads) are sampled every
50 ms during an rss run. The results JSON gets a "memory" key per benchmark.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fakehub"))

import genrepo  # noqa: E402
from procs import clean_env  # noqa: E402

GiB = 1 << 30
SHARD = 512 << 20


def status(pid):
    """The numeric fields of /proc/PID/status (kB for sizes)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if v.split() and v.split()[0].isdigit():
                out[k] = int(v.split()[0])
    return out


def status_kib(pid, key):
    return status(pid).get(key, 0)


class Sampler:
    """Samples the daemon's /proc/PID/status every 50 ms in a thread: the peaks of its
    anonymous and file-backed RSS (VmHWM has only their sum's), so a difference in peak RSS
    can be told apart: heap (malloc) or mapped files (the index's LMDB map)."""

    KEYS = ("RssAnon", "RssFile", "Threads")

    def __init__(self, pid):
        self.pid, self.peak = pid, {k: 0 for k in self.KEYS}
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_ev.wait(0.05):
            try:
                st = status(self.pid)
                for k in self.KEYS:
                    self.peak[k] = max(self.peak[k], st.get(k, 0))
            except OSError:
                return

    def stop(self):
        self.stop_ev.set()
        self.thread.join(5)
        return {"peak_rss_anon_mib": self.peak["RssAnon"] / 1024,
                "peak_rss_file_mib": self.peak["RssFile"] / 1024,
                "threads": self.peak["Threads"]}


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError(what)
        time.sleep(0.01)


class Hub:
    def __init__(self, data, work):
        self.port_file = work / f"hub-port-{os.getpid()}.json"
        self.port_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/fakehub/fakehub.py"), "--data", str(data),
             "--port-file", str(self.port_file), "--log", str(work / f"hub-{os.getpid()}.log")],
            stdout=subprocess.DEVNULL, stderr=open(work / "hub.err", "ab"))
        wait_for(self.port_file.exists, 30, "fake Hub start")
        self.url = json.loads(self.port_file.read_text())["api_url"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


class Mount:
    def __init__(self, hffs, hub, repo, work, prefetch, keep_cache=False):
        # Per process: two runs of this script may share the work dir.
        self.mnt = work / f"mnt-{os.getpid()}"
        self.cache = work / f"cache-{os.getpid()}"
        if not keep_cache:
            shutil.rmtree(self.cache, ignore_errors=True)
        self.mnt.mkdir(exist_ok=True)
        self.cache.mkdir(exist_ok=True)
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [hffs, "mount", repo, str(self.mnt), "--foreground", "--endpoint", hub.url,
             "--cache-dir", str(self.cache), "--prefetch", prefetch],
            stdout=subprocess.DEVNULL, stderr=open(work / "hffs.log", "ab"), env=clean_env())
        wait_for(lambda: os.path.ismount(self.mnt) or self.proc.poll() is not None, 600,
                 "mount")
        if self.proc.poll() is not None:
            raise RuntimeError(f"hffs exited {self.proc.returncode}; see {work}/hffs.log")
        self.mount_s = time.monotonic() - t0

    def kib(self, key):
        return status_kib(self.proc.pid, key)

    def stop(self):
        subprocess.run(["fusermount3", "-u", str(self.mnt)], check=False)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            subprocess.run(["fusermount3", "-uz", str(self.mnt)], check=False)
        try:
            self.mnt.rmdir()
        except OSError:
            pass


def gen(data, repo, **kw):
    """Generates repo into data once (a marker file says it is complete)."""
    done = data / f".done-{repo.replace('/', '_')}"
    if not done.exists():
        genrepo.generate(str(data), repo, **kw)
        done.touch()


def bench_tree(a, work):
    data = work / "tree-data"
    repo = f"bench/tree{a.files}"
    gen(data, repo, shards=1, shard_size=4096, many_files=a.files)
    hub = Hub(data, work)
    runs = []
    try:
        for _ in range(a.repeats):
            m = Mount(a.hffs, hub, repo, work, "none")
            try:
                mounted = m.kib("VmHWM") / 1024
                t0 = time.monotonic()
                out = subprocess.run(["find", str(m.mnt)], capture_output=True, check=True)
                find_s = time.monotonic() - t0
                runs.append({"mount_s": m.mount_s, "find_s": find_s,
                             "entries": out.stdout.count(b"\n"),
                             "peak_rss_at_mount_mib": mounted,
                             "peak_rss_mib": m.kib("VmHWM") / 1024,
                             "rss_anon_mib": m.kib("RssAnon") / 1024})
            finally:
                m.stop()
            # Again on the same cache: the tree comes from the index, not the Hub.
            m = Mount(a.hffs, hub, repo, work, "none", keep_cache=True)
            runs[-1].update(mount_cached_s=m.mount_s, peak_rss_cached_mib=m.kib("VmHWM") / 1024)
            m.stop()
    finally:
        hub.stop()
    return summarize({"files": a.files}, runs)


def read_all(mnt, files):
    buf = bytearray(1 << 20)
    total = 0
    for f in files:
        with open(mnt / f, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                total += n
    return total


def bench_rss(a, work):
    out = {}
    for gib in a.sizes:
        data = work / f"rss-data-{gib}"
        repo = f"bench/rss{gib}"
        gen(data, repo, shards=max(1, gib * GiB // SHARD), shard_size=SHARD)
        hub = Hub(data, work)
        runs = []
        try:
            for _ in range(a.repeats):
                m = Mount(a.hffs, hub, repo, work, "all")
                sampler = Sampler(m.proc.pid)
                try:
                    files = sorted(p.relative_to(m.mnt) for p in m.mnt.rglob("*")
                                   if p.is_file())
                    t0 = time.monotonic()
                    n = read_all(m.mnt, files)
                    read_s = time.monotonic() - t0
                    time.sleep(2)  # completion and the verifier settle
                    runs.append({"bytes": n, "read_s": read_s,
                                 "peak_rss_mib": m.kib("VmHWM") / 1024,
                                 "rss_anon_after_mib": m.kib("RssAnon") / 1024,
                                 **sampler.stop()})
                finally:
                    m.stop()
                    shutil.rmtree(m.cache, ignore_errors=True)
        finally:
            hub.stop()
            if a.clean:
                shutil.rmtree(data, ignore_errors=True)
        out[f"{gib}GiB"] = summarize({"gib": gib}, runs)
    return out


def summarize(head, runs):
    keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float))]
    med = {k: statistics.median(r[k] for r in runs) for k in keys}
    return {**head, "median": med, "runs": runs}


def meta(a):
    """The conditions: commit of the tree (the binary is a.hffs), when, how, where."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    version = subprocess.run([a.hffs, "--version"], capture_output=True, text=True).stdout
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo")
               if line.startswith("MemTotal"))
    return {"commit": commit, "hffs_version": version.strip(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": " ".join(["bench/memory.py", *sys.argv[1:]]), "repeats": a.repeats,
            "machine": {"cores": os.cpu_count(), "memory_gib": round(mem / 1024 / 1024, 1),
                        "kernel": os.uname().release}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", action="append", choices=("tree", "rss"), required=True)
    ap.add_argument("--hffs", default=str(ROOT / "build/cli/hffs"))
    ap.add_argument("--work-dir", type=Path, default=Path("/var/tmp/hffs-mem"))
    ap.add_argument("--files", type=int, default=200000, help="tree: files in the repo")
    ap.add_argument("--sizes", default="2,20", help="rss: repo sizes in GiB")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--clean", action="store_true", help="rss: delete the repos afterwards")
    ap.add_argument("--results", type=Path, help="JSON file to add the figures to")
    a = ap.parse_args()
    a.sizes = [int(s) for s in a.sizes.split(",")]
    a.work_dir.mkdir(parents=True, exist_ok=True)
    res = {}
    for b in a.bench:
        res[b] = bench_tree(a, a.work_dir) if b == "tree" else bench_rss(a, a.work_dir)
        print(json.dumps({b: res[b]}, indent=1), flush=True)
    if a.results:
        old = json.loads(a.results.read_text()) if a.results.exists() else {}
        old.setdefault("memory", {}).update(res)
        old["memory"]["hffs"] = a.hffs
        old["memory"]["meta"] = meta(a)
        a.results.write_text(json.dumps(old, indent=1) + "\n")


if __name__ == "__main__":
    main()
