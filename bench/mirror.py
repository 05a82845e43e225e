"""The `mirror` benchmark (issue 18): N hffs clients loading the same model at once, straight
to the origin (the fake Hub and the CDN behind the shaped link) against behind the caching
mirror of contrib/mirror (run-mirror on the client side of the link, on 127.0.0.1; its own
upstream link is the shaped one). Per client: time from its mount command to the whole model
read (index and every shard, 1 MiB reads, hashed); per run: the bytes the origin's CDN sent
and the requests the Hub's API saw.
"""
import json
import shutil
import socket
import statistics
import threading
import time
from pathlib import Path

import clients
import procs

HERE = Path(__file__).resolve().parent
RUN_MIRROR = HERE.parent / "contrib" / "mirror" / "run-mirror"
SLICE = "1m"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mirror:
    """run-mirror in front of the bench's fake Hub, on 127.0.0.1 (it execs nginx: the PID is
    the master's, stopped by procs.stop with its workers)."""

    def __init__(self, upstream, cache_dir):
        self.upstream, self.cache_dir = upstream, Path(cache_dir)
        self.proc = None
        self.url = None

    def start(self, timeout=20):
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        addr = f"127.0.0.1:{free_port()}"
        env = procs.clean_env(MIRROR_WORKERS="2", MIRROR_SLICE=SLICE, MIRROR_MAX_SIZE="8g")
        self.proc = procs.spawn([str(RUN_MIRROR), self.upstream, addr, str(self.cache_dir)],
                                self.cache_dir.parent / f"{self.cache_dir.name}.out", env)
        self.url = f"http://{addr}"
        host, port = addr.split(":")
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"run-mirror exited {self.proc.returncode}; see "
                                   f"{self.cache_dir.parent / (self.cache_dir.name + '.out')}")
            try:
                with socket.create_connection((host, int(port)), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the mirror does not listen after {timeout} s")
                time.sleep(0.05)

    def stop(self):
        procs.stop(self.proc)
        self.proc = None


def hub_log_lines(b):
    path = b.run_dir / "fakehub-requests.jsonl"
    return path.read_text(errors="replace").splitlines() if path.exists() else []


def one_client(b, i, tag, endpoint, extra, paths, result):
    """Mounts, reads the model whole, checks every file's sha256; result[i] is its record."""
    mp = b.run_dir / f"mnt-{tag}-{i}"
    mp.mkdir(parents=True, exist_ok=True)
    cache = b.run_dir / f"cache-{tag}-{i}"
    args = [*extra, *(["--connections", str(b.args.connections)] if b.args.connections else [])]
    m = clients.HffsMount(str(b.hffs), b.repo, endpoint, cache, mp,
                          b.run_dir / f"{tag}-{i}.log", args)
    rec = {}
    try:
        m.start()
        rec["mount"] = m.t_ready - m.t_start
        nbytes = sum(b.sizes[p] for p in paths)
        r = m.bounded(lambda: clients.read_sequential([mp / p for p in paths], m.t_start),
                      b.timeout(nbytes) * 4, "reading")
        rec["ready"] = time.monotonic() - m.t_start
        bad = [n for n, d in r["sha256"].items() if d != b.sha256s[n]]
        if bad:
            rec["error"] = f"WRONG BYTES: {bad}"
    except (clients.HffsError, OSError) as e:
        rec["error"] = f"{type(e).__name__}: {e}"
    finally:
        m.stop()
        if not b.args.keep:
            shutil.rmtree(cache, ignore_errors=True)
    result[i] = rec


def run_clients(b, n, mode, tag):
    index = "model.safetensors.index.json"
    paths = [index, *b.shards]
    mirror = None
    b.cold(b.shards)
    offset = b.nginx.log_offset()
    hub0 = len(hub_log_lines(b))
    run = {"clients": n, "mode": mode}
    try:
        if mode == "mirror":
            mirror = Mirror(b.hub.api_url, b.run_dir / f"mirror-{tag}")
            mirror.start()
            endpoint, extra = mirror.url, ["--range-align", SLICE.upper()]
        else:
            endpoint, extra = b.hub.api_url, []
        result = {}
        threads = [threading.Thread(target=one_client,
                                    args=(b, i, tag, endpoint, extra, paths, result),
                                    daemon=True) for i in range(n)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        run["wall"] = time.monotonic() - t0
        run["per_client"] = [result.get(i, {"error": "no result"}) for i in range(n)]
    except RuntimeError as e:
        run["error"] = str(e)
    finally:
        if mirror:
            mirror.stop()
            if not b.args.keep:
                shutil.rmtree(mirror.cache_dir, ignore_errors=True)
    cdn = b.nginx.requests_since(offset)
    hub = [json.loads(x) for x in hub_log_lines(b)[hub0:]]
    run["origin_cdn_bytes"] = sum(e["bytes"] for e in cdn)
    run["origin_cdn_requests"] = len(cdn)
    run["origin_api_requests"] = len(hub)
    run["origin_resolves"] = sum(1 for e in hub if "/resolve/" in e["path"])
    run["model_bytes"] = sum(b.sizes[p] for p in b.shards)
    ready = [c["ready"] for c in run.get("per_client", []) if "ready" in c]
    errors = [c["error"] for c in run.get("per_client", []) if "error" in c]
    if errors and "error" not in run:
        run["error"] = f"{len(errors)} client(s) failed: {errors[0]}"
    if ready:
        run["ready_median"] = statistics.median(ready)
        run["ready_max"] = max(ready)
    log(f"  mirror bench, {n} client(s) {mode}: " + (run.get("error") or
        f"ready median {run['ready_median']:.2f} s, max {run['ready_max']:.2f} s, origin CDN "
        f"{run['origin_cdn_bytes'] / run['model_bytes']:.2f}x the model, "
        f"{run['origin_resolves']} resolves at the Hub"))
    return run


def bench_mirror(b):
    """N = each of --mirror-clients, straight to the origin and behind the mirror."""
    if b.hffs is None:
        return {"error": f"not measured: {b.hffs_why}"}
    runs = {}
    for n in b.args.mirror_clients:
        for mode in ("direct", "mirror"):
            key = f"{mode}-{n}"
            runs[key] = []
            for rep in range(b.args.repeats):
                log(f"mirror: {n} client(s) {mode}, repeat {rep + 1}/{b.args.repeats}")
                runs[key].append(run_clients(b, n, mode, b.next_tag(key)))
    summary = {}
    for key, rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        if ok:
            summary[key] = {k: statistics.median(r[k] for r in ok)
                            for k in ("ready_median", "ready_max", "origin_cdn_bytes",
                                      "origin_resolves", "wall")}
            summary[key]["n"] = len(ok)
    return {"files": b.shards, "bytes": sum(b.sizes[p] for p in b.shards), "slice": SLICE,
            "clients": b.args.mirror_clients, "runs": runs, "summary": summary}
