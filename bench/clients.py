"""The clients under test: curl and aria2c downloading through the fake Hub's resolve URLs, and
hffs mounting the repo, read by readers that behave like model loaders.
"""
import hashlib
import json
import mmap
import os
import signal
import subprocess
import time
from pathlib import Path

import procs

MiB = 1 << 20
ARIA2_ARGS = ["--no-conf", "-x16", "-s16", "-k1M", "--file-allocation=falloc",
              "--allow-overwrite=true", "--auto-file-renaming=false", "--console-log-level=warn",
              "--summary-interval=0", "--download-result=hide"]


def tool_version(cmd):
    out = procs.run(cmd, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip()


def curl(url, out_path, log_path, timeout):
    """One connection, following the 302 to the CDN: what `curl -L -o` does."""
    return procs.run_measured(["curl", "-sS", "--fail", "-L", "-o", str(out_path), url], timeout,
                              log_path, procs.clean_env())


def aria2c(jobs, out_dir, log_path, timeout, written=False):
    """aria2c -x16 -s16 -k1M over `jobs` [(url, file name)], all at once (-j len(jobs)).
    written: trace the bytes it writes (procs.Measured)."""
    listing = Path(out_dir) / "aria2-input.txt"
    listing.write_text("".join(f"{url}\n  out={name}\n" for url, name in jobs))
    cmd = ["aria2c", *ARIA2_ARGS, f"-j{len(jobs)}", "-d", str(out_dir), "-i", str(listing)]
    return procs.run_measured(cmd, timeout, log_path, procs.clean_env(), written)


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MiB):
            h.update(chunk)
    return h.hexdigest()


# --- hffs ----------------------------------------------------------------------------------

def mounted(mountpoint):
    """True when /proc/self/mountinfo lists `mountpoint` (never touches the mount itself)."""
    target = os.path.realpath(mountpoint)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == target:
                return True
    return False


class HffsError(Exception):
    """hffs failed or hung; the message says how, and where its log is."""


class HffsMount:
    """`hffs mount --foreground` as a child process, so its PID is ours to measure and stop."""

    def __init__(self, binary, repo, endpoint, cache_dir, mountpoint, log_path, extra=()):
        self.binary, self.repo, self.endpoint = binary, repo, endpoint
        self.cache_dir, self.mountpoint, self.log_path = cache_dir, mountpoint, log_path
        self.extra = list(extra)
        self.proc = None
        self.t_start = self.t_ready = None

    @property
    def pid(self):
        return self.proc.pid

    def start(self, timeout=60):
        """Starts the daemon; returns once a stat of the mountpoint is answered by it."""
        cmd = [self.binary, "mount", self.repo, str(self.mountpoint), "--endpoint",
               self.endpoint, "--cache-dir", str(self.cache_dir), "--foreground", *self.extra]
        self.t_start = time.monotonic()
        self.proc = procs.spawn(cmd, self.log_path, procs.clean_env())
        deadline = self.t_start + timeout
        while not mounted(self.mountpoint):
            if self.proc.poll() is not None:
                raise HffsError(f"hffs mount exited with {self.proc.returncode}: "
                                f"{self.log_tail()}")
            if time.monotonic() > deadline:
                self.abort()
                raise HffsError(f"hffs did not mount within {timeout} s: {self.log_tail()}")
            time.sleep(0.005)
        self.bounded(lambda: os.stat(self.mountpoint), deadline - time.monotonic(), "stat")
        self.t_ready = time.monotonic()

    def bounded(self, fn, timeout, what):
        """fn() (which touches the mount); a hang past `timeout` s kills the daemon and raises
        HffsError."""
        try:
            return procs.call_bounded(fn, max(timeout, 1), self.abort)
        except TimeoutError as e:
            raise HffsError(f"{what} through the mount hung: {e}; {self.log_tail()}") from None

    def cpu(self):
        return procs.proc_cpu(self.pid)

    def peak_rss(self):
        return procs.proc_status(self.pid, "VmHWM")

    def status(self):
        """`hffs status MOUNTPOINT --json`: the mount's record (coverage, live figures)."""
        out = procs.run([self.binary, "status", str(self.mountpoint), "--json", "--cache-dir",
                         str(self.cache_dir)], timeout=20, check=False, env=procs.clean_env())
        try:
            mounts = json.loads(out.stdout)["mounts"]
            return mounts[0] if mounts else None
        except (ValueError, KeyError, IndexError):
            return {"error": (out.stderr or out.stdout).strip()[:500]}

    def log_tail(self, lines=15):
        try:
            text = Path(self.log_path).read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return f"log {self.log_path}:\n" + "\n".join(text[-lines:])

    def abort(self):
        """SIGKILL to the daemon (the kernel then fails every waiting request) and a lazy
        detach of the mountpoint."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        if mounted(self.mountpoint):
            procs.run(["fusermount3", "-uz", str(self.mountpoint)], check=False)

    def stop(self, timeout=45):
        """`hffs unmount`, then waits for the daemon to exit; falls back to SIGTERM, then
        abort(). Returns the seconds the clean path took, or None if it was not clean."""
        if self.proc is None:
            return None
        t = time.monotonic()
        clean = False
        if self.proc.poll() is None:
            unmount = procs.spawn([self.binary, "unmount", str(self.mountpoint), "--cache-dir",
                                   str(self.cache_dir), "--timeout", "30"], self.log_path,
                                  procs.clean_env())
            # The daemon is our child: reap it as soon as it exits, or `hffs unmount` sees a
            # zombie that still "runs" until its timeout.
            deadline = t + timeout
            while unmount.poll() is None and time.monotonic() < deadline:
                self.proc.poll()
                time.sleep(0.01)
            procs.stop(unmount, signal.SIGKILL, 5)
            try:
                self.proc.wait(timeout=max(1, deadline - time.monotonic()))
                clean = self.proc.returncode == 0 and unmount.returncode == 0
            except subprocess.TimeoutExpired:
                procs.stop(self.proc, signal.SIGTERM, 10)
        self.abort()
        return time.monotonic() - t if clean else None


# --- readers (run in this process; each call is bounded by the caller) ------------------

class Reader:
    """What a reader did: bytes read, seconds, its thread's CPU seconds, the sha256 of every
    file it read whole, when each file was finished (s after `t0`), its progress over time
    ([s, bytes] every 50 ms at most, and at each file's end) and, for a reader of tensors,
    when it had its first whole tensor."""

    STEP = 0.05

    def __init__(self, t0):
        self.t0 = t0
        self.bytes = 0
        self.cpu0 = time.thread_time()
        self.sha256 = {}
        self.done_at = {}
        self.progress = [[0.0, 0]]
        self.first_tensor_at = None

    def add(self, n):
        self.bytes += n
        t = time.monotonic() - self.t0
        if t - self.progress[-1][0] >= self.STEP:
            self.progress.append([round(t, 3), self.bytes])

    def finish(self, name, digest):
        self.sha256[name] = digest
        self.done_at[name] = time.monotonic() - self.t0
        self.progress.append([round(self.done_at[name], 3), self.bytes])

    def summary(self):
        return {"bytes": self.bytes, "thread_cpu": time.thread_time() - self.cpu0,
                "sha256": self.sha256, "done_at": self.done_at, "progress": self.progress,
                "first_tensor_at": self.first_tensor_at}


def read_sequential(paths, t0, chunk=MiB):
    """Reads each file front to back with `chunk`-byte read()s, hashing as it goes."""
    r = Reader(t0)
    buf = bytearray(chunk)
    view = memoryview(buf)
    for path in paths:
        h = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                h.update(view[:n])
                r.add(n)
        r.finish(Path(path).name, h.hexdigest())
    return r.summary()


def safetensors_header(f):
    """(data start, {name: (first, last+1) absolute}) of an open safetensors file."""
    hlen = int.from_bytes(os.pread(f.fileno(), 8, 0), "little")
    header = json.loads(os.pread(f.fileno(), hlen, 8))
    header.pop("__metadata__", None)
    start = 8 + hlen
    return start, {k: (start + v["data_offsets"][0], start + v["data_offsets"][1])
                   for k, v in header.items()}


def read_mmap_tensors(paths, t0, chunk=MiB):
    """As safetensors' safe_open does: parse the header, mmap the file, then copy every tensor
    out of the mapping in file order (in `chunk` pieces, hashed)."""
    r = Reader(t0)
    for path in paths:
        h = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            start, tensors = safetensors_header(f)
            size = os.fstat(f.fileno()).st_size
            with mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ) as mm:
                h.update(mm[:start])
                r.add(start)
                pos = start
                for first, end in sorted(tensors.values()):
                    assert first == pos, "safetensors data has no holes"
                    for off in range(first, end, chunk):
                        h.update(mm[off:min(off + chunk, end)])
                        r.add(min(off + chunk, end) - off)
                    pos = end
                    if r.first_tensor_at is None:
                        r.first_tensor_at = time.monotonic() - t0
                r.add(size - pos)  # bytes past the last tensor, if any (not hashed)
        r.finish(Path(path).name, h.hexdigest())
    return r.summary()


def first_tensor(path, t0):
    """Time to first tensor: the header of `path`, then the tensor in the middle of its data
    order (index (n-1)//2), read with 1 MiB preads. Returns the timeline and the tensor's
    place, plus the tensor's sha256 to check against the blob."""
    with open(path, "rb", buffering=0) as f:
        start, tensors = safetensors_header(f)
        t_header = time.monotonic() - t0
        ordered = sorted(tensors.items(), key=lambda kv: kv[1])
        name, (first, end) = ordered[(len(ordered) - 1) // 2]
        h = hashlib.sha256()
        for off in range(first, end, MiB):
            h.update(os.pread(f.fileno(), min(MiB, end - off), off))
        t_tensor = time.monotonic() - t0
    return {"t_header": t_header, "t_tensor": t_tensor, "tensor": name, "offset": first,
            "size": end - first, "data_start": start, "tensor_sha256": h.hexdigest()}


def range_sha256(path, first, end):
    """sha256 of bytes [first, end) of a local file (the blob, to check a reader)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(first)
        left = end - first
        while left:
            chunk = f.read(min(8 * MiB, left))
            if not chunk:
                raise OSError(f"{path} is shorter than {end}")
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()
