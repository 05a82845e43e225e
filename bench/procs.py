"""Process plumbing for the benchmarks: start children, time them, read their CPU and memory,
stop them by PID. Every wait here has a deadline.
"""
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
              "ALL_PROXY", "NO_PROXY")


def clean_env(**extra):
    """The environment for clients: no proxies and no Hub settings that would change what
    they do; `extra` added."""
    env = {k: v for k, v in os.environ.items()
           if k not in PROXY_VARS and not k.startswith(("HF_", "HFFS_", "HUGGING"))}
    env.update(extra)
    return env


def in_netns(cmd, netns):
    """`cmd` run inside network namespace `netns` (None: as is). nsenter execs the command,
    so the child's PID is the command's. Only the network namespace: `ip netns exec` would
    also give the command a copy of every mount, FUSE mounts of this machine included, and a
    copy held by a long-lived server keeps an unmounted FUSE daemon from ever exiting."""
    return ["nsenter", f"--net=/run/netns/{netns}", "--", *cmd] if netns else list(cmd)


def spawn(cmd, log_path, env=None, netns=None):
    """Starts `cmd` with stdout and stderr appended to `log_path`; returns the Popen."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(in_netns(cmd, netns), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)


@dataclass
class Measured:
    """One finished child: wall seconds from start to exit, CPU seconds (user + system, its
    own and its reaped children's), peak RSS in bytes, exit code, whether it was killed at
    its deadline; with written=True, the bytes it had written ([s, bytes], /proc/PID/io's
    wchar every 50 ms)."""
    wall: float
    cpu: float
    peak_rss: int
    rc: int
    timed_out: bool
    written: list = None


def sample_written(pid, started, out, done):
    """Appends [s since started, wchar of pid] to out every 50 ms until done is set."""
    while not done.wait(0.05):
        try:
            with open(f"/proc/{pid}/io") as f:
                wchar = next(int(line.split()[1]) for line in f if line.startswith("wchar:"))
        except (OSError, StopIteration):
            return
        out.append([round(time.monotonic() - started, 3), wchar])


def run_measured(cmd, timeout, log_path, env=None, written=False):
    """Runs `cmd` to completion (SIGKILL at `timeout` s) and measures it with wait4()."""
    killed = threading.Event()
    done, trace = threading.Event(), []

    def kill(pid):
        killed.set()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    started = time.monotonic()
    proc = spawn(cmd, log_path, env)
    timer = threading.Timer(timeout, kill, (proc.pid,))
    timer.start()
    sampler = threading.Thread(target=sample_written, args=(proc.pid, started, trace, done))
    if written:
        sampler.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
        done.set()
        if written:
            sampler.join()
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024,
                    proc.returncode, killed.is_set(), trace if written else None)


def proc_cpu(pid):
    """CPU seconds (utime + stime, all threads) of a live process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rpartition(b")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def proc_status(pid, key):
    """A `kB` figure of /proc/PID/status (VmHWM, VmRSS) in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def children(pid):
    """PIDs of the direct children of a live process (all its threads')."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return out


def stop(proc, sig=signal.SIGTERM, timeout=10):
    """Sends `sig` to the Popen's PID, waits up to `timeout` s, then SIGKILLs it and the
    children it had (nginx workers outlive a killed master). Safe on an exited process."""
    if proc is None or proc.poll() is not None:
        return
    kids = children(proc.pid)
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
        return
    except subprocess.TimeoutExpired:
        pass
    for pid in [proc.pid, *kids]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=timeout)


def run(cmd, timeout=60, check=True, netns=None, **kw):
    """subprocess.run with a deadline and captured text output."""
    return subprocess.run(in_netns(cmd, netns), timeout=timeout, check=check,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)


def call_bounded(fn, timeout, on_timeout):
    """Runs fn() on a daemon thread and returns its result. If it has not returned after
    `timeout` s, calls on_timeout() (which must make fn return, e.g. by killing the FUSE
    daemon it waits on), waits 30 s more, and raises TimeoutError."""
    box = {}

    def body():
        try:
            box["value"] = fn()
        except BaseException as e:  # re-raised on the caller's thread
            box["error"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        on_timeout()
        t.join(30)
        raise TimeoutError(f"no answer within {timeout:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]
