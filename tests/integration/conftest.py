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
SANITIZER_MARKS = ("==ERROR", "runtime error:", "LeakSanitizer", "AddressSanitizer")
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
    d = tmp_path / "cache"
    d.mkdir()
    return d


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
        if self.proc.poll() is None and os.path.ismount(self.path):
            subprocess.run(["fusermount3", "-u", str(self.path)], capture_output=True,
                           timeout=timeout)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Where every thread waits: the diagnosis of a daemon that does not exit.
            stacks = subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-ex",
                                     "thread apply all bt"], capture_output=True, text=True,
                                    timeout=60).stdout if shutil.which("gdb") else ""
            self.proc.kill()
            self.proc.wait(timeout=10)
            subprocess.run(["fusermount3", "-uz", str(self.path)], capture_output=True)
            raise AssertionError(f"hffs did not exit after unmount; log:\n{self.log()}\n"
                                 f"threads:\n{stacks}")
        if os.path.ismount(self.path):
            subprocess.run(["fusermount3", "-uz", str(self.path)], capture_output=True)
        log = self.log()
        assert not any(m in log for m in SANITIZER_MARKS), log
        return self.proc.returncode


@pytest.fixture
def mount(hub, cache_dir, tmp_path):
    """mount(repo, *args, env=None, wait=True) -> Mount, unmounted at teardown."""
    mounts = []

    def start(repo, *args, env=None, endpoint=None, name=None, wait=True, timeout=30):
        mp = tmp_path / (name or f"mnt{len(mounts)}")
        mp.mkdir(exist_ok=True)
        log_path = tmp_path / f"{mp.name}.log"
        logf = open(log_path, "w")
        # No free-space floor unless the test sets one: the default (5% of the disk, at
        # most 5 GiB) would fail every fetch on a test machine with little disk left.
        floor = [] if "--min-free" in args else ["--min-free", "0"]
        proc = subprocess.Popen(
            [HFFS, "mount", repo, str(mp), "--foreground", "--cache-dir", str(cache_dir),
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
