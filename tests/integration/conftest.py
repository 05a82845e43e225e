"""Fixtures of the integration tests: a fake Hub on 127.0.0.1 serving generated repos, a cache
directory, and hffs mounts that are always unmounted and stopped by PID, even on failure.

Every wait has a deadline; no test asserts on wall-clock time."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fakehub"))

import hubctl  # noqa: E402  (tests/integration/hubctl.py: the fake Hub as a test object)

HFFS = os.environ.get("HFFS_BIN", str(ROOT / "build" / "cli" / "hffs"))
SANITIZER_MARKS = ("==ERROR", "runtime error:", "LeakSanitizer", "AddressSanitizer",
                   "ThreadSanitizer")
TOKEN = "hf_validtoken_alice"
TOKEN_UNAPPROVED = "hf_validtoken_bob"


@pytest.fixture(scope="session")
def hub_data(tmp_path_factory):
    """Repos generated once per session (reads never change them)."""
    return hubctl.generate_standard_repos(tmp_path_factory.mktemp("hubdata"))


@pytest.fixture
def hub(hub_data, tmp_path):
    h = hubctl.Hub(hub_data, tmp_path / "hub", page_size=3,
                   tokens={TOKEN: {"user": "alice", "gated_approved": ["org/gated"]},
                           TOKEN_UNAPPROVED: {"user": "bob", "gated_approved": []}})
    h.start()
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture
def cache_dir(tmp_path):
    """A cache directory. At teardown, the logs that background daemons (mounts started
    without --foreground) wrote into it must hold no sanitizer report: their stderr is that
    log, not a pipe the test reads."""
    d = tmp_path / "cache"
    d.mkdir()
    yield d
    for log in sorted((d / "logs").glob("*.log")):
        text = log.read_text(errors="replace")
        assert not any(m in text for m in SANITIZER_MARKS), f"{log}:\n{text}"


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGING_FACE", "HFFS_"))}
    env["HF_HOME"] = "/nonexistent-hf-home"  # no token file of the machine leaks in
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def run_hffs(*args, env=None, timeout=60, check=False):
    """Runs a short hffs command; returns CompletedProcess (text)."""
    p = subprocess.run([HFFS, *map(str, args)], env=env or clean_env(), capture_output=True,
                       text=True, timeout=timeout)
    assert not any(m in p.stderr for m in SANITIZER_MARKS), p.stderr
    if check:
        assert p.returncode == 0, f"hffs {args} failed ({p.returncode}): {p.stderr}"
    return p


class Mount:
    """An `hffs mount --foreground` process and its mountpoint."""

    def __init__(self, proc, path, log_path):
        self.proc, self.path, self.log_path = proc, Path(path), log_path

    def log(self):
        return Path(self.log_path).read_text(errors="replace")

    def unmount(self, timeout=60):
        """fusermount3 -u, retried while the mount is busy; then waits for the daemon to exit.
        Returns its exit status. A mount still busy after the retries, or a daemon that does not
        exit, fails with what held the mount or where the daemon's threads wait; either way the
        daemon is killed and the mountpoint lazily unmounted first."""
        busy = None
        if self.proc.poll() is None and os.path.ismount(self.path):
            busy = self._fusermount_u()
        if busy is not None:
            # Stacks before the kill: a kernel request the daemon never answers is one cause.
            stacks = self._stacks()
            holders = mount_holders(self.path)
            self.proc.kill()
            self.proc.wait(timeout=10)
            subprocess.run(["fusermount3", "-uz", str(self.path)], capture_output=True)
            raise AssertionError(f"fusermount3 -u {self.path} failed: {busy}\n"
                                 f"held by:\n{holders}\nlog:\n{self.log()}\n"
                                 f"threads:\n{stacks}")
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Where every thread waits: the diagnosis of a daemon that does not exit.
            stacks = self._stacks()
            self.proc.kill()
            self.proc.wait(timeout=10)
            subprocess.run(["fusermount3", "-uz", str(self.path)], capture_output=True)
            elsewhere = other_namespace_holders(self.path)
            raise AssertionError(f"hffs did not exit after unmount"
                                 f"{'; ' + elsewhere if elsewhere else ''}; log:\n"
                                 f"{self.log()}\nthreads:\n{stacks}")
        if os.path.ismount(self.path):
            subprocess.run(["fusermount3", "-uz", str(self.path)], capture_output=True)
        log = self.log()
        assert not any(m in log for m in SANITIZER_MARKS), log
        return self.proc.returncode

    def _fusermount_u(self, attempts=10, pause=0.3):
        """Runs fusermount3 -u until it succeeds, the mount is gone or the daemon exited, at
        most `attempts` times `pause` seconds apart (a reader closing late, a kernel request
        finishing). Returns None on success, else fusermount3's status and stderr."""
        for i in range(attempts):
            if i:
                time.sleep(pause)
            try:
                p = subprocess.run(["fusermount3", "-u", str(self.path)], capture_output=True,
                                   text=True, timeout=10)
                if p.returncode == 0:
                    return None
                last = f"exit {p.returncode}: {p.stderr.strip()}"
            except subprocess.TimeoutExpired:
                last = "timed out after 10 s"
            if self.proc.poll() is not None or not os.path.ismount(self.path):
                return None  # raced with the daemon's own exit; the caller sees its status
        return f"{last} ({attempts} attempts over {(attempts - 1) * pause:.1f} s)"

    def _stacks(self):
        """Every thread's backtrace, by gdb from / (a cwd in the mount would have gdb wait on
        the daemon it stopped)."""
        if not shutil.which("gdb"):
            return "(no gdb)"
        try:
            return subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-ex",
                                   "thread apply all bt"], capture_output=True, text=True,
                                  cwd="/", timeout=60).stdout
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if e.stdout else ""
            return f"{out}\n(gdb timed out after 60 s)"


def other_namespace_holders(path):
    """Processes of other mount namespaces that still have a copy of the mount at `path`
    (`ip netns exec` and `unshare -m` copy every mount): their copy keeps the FUSE connection,
    so the daemon never learns of the unmount. In words; "" when none."""
    mine = os.readlink("/proc/self/ns/mnt")
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/ns/mnt") == mine:
                continue
            with open(f"/proc/{pid}/mountinfo") as f:
                held = any(line.split()[4] == str(path) for line in f)
            if held:
                with open(f"/proc/{pid}/comm") as f:
                    out.append(f"pid {pid} ({f.read().strip()})")
        except OSError:
            continue
    return ("still mounted in another mount namespace, held by " + ", ".join(out[:8])
            if out else "")


def mount_holders(path):
    """What keeps `path` busy, in words: `fuser -vm` if present (bounded: it stats the mount,
    which a stuck daemon may not answer), then every process's cwd, root, fds and mappings
    under `path` (readlink and maps on /proc never reach the FUSE daemon)."""
    out = []
    if shutil.which("fuser"):
        try:
            p = subprocess.run(["fuser", "-vm", str(path)], capture_output=True, text=True,
                               cwd="/", timeout=10)
            # -v writes its table to stderr but the PIDs in it to stdout.
            table = [ln for ln in p.stderr.splitlines() if not ln.startswith("Cannot stat")]
            out.append(f"fuser -vm (PIDs {' '.join(p.stdout.split()) or 'none'}):\n"
                       + "\n".join(table))
        except subprocess.TimeoutExpired:
            out.append("fuser -vm: timed out after 10 s")
    prefix = str(path).rstrip("/")

    def under(target):
        target = target.removesuffix(" (deleted)")
        return target == prefix or target.startswith(prefix + "/")

    def links(pid):
        yield "cwd", f"/proc/{pid}/cwd"
        yield "root", f"/proc/{pid}/root"
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                yield f"fd {fd}", f"/proc/{pid}/fd/{fd}"
        except OSError:
            pass

    for pid in filter(str.isdigit, os.listdir("/proc")):
        hits = []
        for what, link in links(pid):
            try:
                target = os.readlink(link)
            except OSError:
                continue  # the process or fd went away
            if under(target):
                hits.append(f"{what} {target}")
        try:
            with open(f"/proc/{pid}/maps") as f:
                fields = [ln.split(None, 5) for ln in f]
            hits += [f"mmap {m}" for m in sorted({x[5].strip() for x in fields if len(x) == 6})
                     if under(m)]
        except OSError:
            pass
        if hits:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                cmd = "?"
            out.append(f"pid {pid} ({cmd}): " + ", ".join(hits))
    return "\n".join(out) or "(nothing found)"


@pytest.fixture
def mount(hub, cache_dir, tmp_path):
    """mount(repo, *args, env=None, wait=True, cache=None) -> Mount, unmounted at teardown;
    cache: a cache directory other than the cache_dir fixture's (another machine's)."""
    mounts = []

    def start(repo, *args, env=None, endpoint=None, name=None, wait=True, timeout=30,
              cache=None):
        mp = tmp_path / (name or f"mnt{len(mounts)}")
        mp.mkdir(exist_ok=True)
        log_path = tmp_path / f"{mp.name}.log"
        logf = open(log_path, "w")
        # No free-space floor unless the test sets one: the default (5% of the disk, at
        # most 5 GiB) would fail every fetch on a test machine with little disk left.
        floor = [] if "--min-free" in args else ["--min-free", "0"]
        proc = subprocess.Popen(
            [HFFS, "mount", repo, str(mp), "--foreground", "--cache-dir", str(cache or cache_dir),
             "--endpoint", endpoint or hub.api_url, *floor, *map(str, args)],
            env=env or clean_env(), stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        m = Mount(proc, mp, log_path)
        mounts.append(m)
        if wait:
            deadline = time.monotonic() + timeout
            while not is_live_mount(mp):
                if proc.poll() is not None:
                    raise AssertionError(f"hffs mount exited {proc.returncode}:\n{m.log()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"mount not ready in {timeout}s:\n{m.log()}")
                time.sleep(0.05)
        return m

    yield start
    errors = []
    for m in mounts:
        try:
            m.unmount()
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


def is_live_mount(path):
    """A mount whose daemon answers (statvfs always reaches the daemon; a dead mount's root
    may still stat fine from the kernel's attribute cache)."""
    try:
        os.statvfs(path)
    except OSError:
        return False
    return os.path.ismount(path)


def wait_for(cond, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
