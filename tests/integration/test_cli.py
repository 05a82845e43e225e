"""The command line a newcomer meets: help, version, background mounts, unmount, signals."""
import json
import os
import signal
import subprocess
import time

from conftest import HFFS, clean_env, run_hffs, wait_for


def test_help_and_version():
    p = run_hffs("--help", check=True)
    assert "mount REPO MOUNTPOINT" in p.stdout and "status" in p.stdout
    p = run_hffs("--version", check=True)
    assert p.stdout.startswith("hffs ")
    p = run_hffs("mount", "--help", check=True)
    for opt in ("--revision", "--endpoint", "--cache-dir", "--foreground"):
        assert opt in p.stdout
    assert run_hffs().returncode == 2
    assert run_hffs("frobnicate").returncode == 2
    assert run_hffs("mount", "only-one-arg").returncode == 2


def test_background_mount_status_and_unmount(hub, cache_dir, tmp_path):
    mp = tmp_path / "bg"
    mp.mkdir()
    p = run_hffs("mount", "org/model", mp, "--cache-dir", cache_dir, "--endpoint", hub.api_url,
                 timeout=60)
    try:
        assert p.returncode == 0, p.stderr
        assert os.path.ismount(mp), "mount returns only once the mount answers"
        # The log begins with the start: the commit served and the mount-time lines, which
        # the terminal saw too.
        log = next(line for line in p.stderr.splitlines() if "hffs: log: " in line)
        first = open(log.split("hffs: log: ", 1)[1]).read().splitlines()
        assert "serving 'org/model' revision 'main' (commit" in first[0], first[:3]
        assert "serving 'org/model'" in p.stderr
        assert (mp / "config.json").read_bytes() == hub.files("org/model")["config.json"]
        st = run_hffs("status", "--cache-dir", cache_dir, check=True).stdout
        assert str(mp) in st
        p = run_hffs("unmount", mp, "--cache-dir", cache_dir, timeout=60)
        assert p.returncode == 0, p.stderr
        assert not os.path.ismount(mp)
        st = run_hffs("status", "--cache-dir", cache_dir, check=True).stdout
        assert str(mp) not in st
    finally:
        if os.path.ismount(mp):
            subprocess.run(["fusermount3", "-uz", str(mp)])


def test_sigterm_and_sigint_unmount_cleanly(hub, mount):
    for sig in (signal.SIGTERM, signal.SIGINT):
        m = mount("org/model")
        assert (m.path / "config.json").exists()
        m.proc.send_signal(sig)
        m.proc.wait(timeout=30)
        assert m.proc.returncode == 0, m.log()
        assert not os.path.ismount(m.path)


def test_dead_daemon_mountpoint_is_recovered(hub, mount):
    m = mount("org/model", name="dead")
    m.proc.kill()
    m.proc.wait(timeout=10)
    # The kernel mount stays, answering "Transport endpoint is not connected".
    try:
        os.statvfs(m.path)
        stale = False
    except OSError:
        stale = True
    assert stale
    m2 = mount("org/model", name="dead")
    assert (m2.path / "config.json").read_bytes() == hub.files("org/model")["config.json"]


def test_unmount_refuses_what_is_not_an_hffs_mount(cache_dir, tmp_path):
    """As root, `hffs unmount` on a tmpfs must not unmount it (its contents would be gone)."""
    d = tmp_path / "tmpfs"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "hffs-test", str(d)], check=True)
    try:
        (d / "precious").write_text("keep me")
        p = run_hffs("unmount", d, "--cache-dir", cache_dir)
        assert p.returncode == 1
        assert "is a tmpfs mount (hffs-test), not an hffs mount" in p.stderr, p.stderr
        assert (d / "precious").read_text() == "keep me"
    finally:
        subprocess.run(["umount", str(d)], check=True)
    p = run_hffs("unmount", d, "--cache-dir", cache_dir)
    assert p.returncode == 1 and "is not a mount point" in p.stderr, p.stderr


def test_a_non_empty_mountpoint_is_refused_unless_allowed(hub, mount, cache_dir, tmp_path):
    mp = tmp_path / "full"
    mp.mkdir()
    (mp / "mine.txt").write_text("hidden by a mount")
    p = run_hffs("mount", "org/model", mp, "--cache-dir", cache_dir, "--endpoint",
                 hub.api_url, "--min-free", "0")
    assert p.returncode != 0
    assert "is not empty: the mount would hide its 1 entry" in p.stderr, p.stderr
    assert "--allow-non-empty" in p.stderr
    assert not os.path.ismount(mp)
    m = mount("org/model", "--allow-non-empty", name="full")
    assert (m.path / "config.json").exists()
    assert m.unmount() == 0
    assert (mp / "mine.txt").read_text() == "hidden by a mount"


def test_cache_subcommands_have_their_own_help():
    for sub, words in (("ls", "Lists the repos"), ("rm", "Removes REPO"),
                       ("gc", "Removes orphaned data"), ("verify", "Rehashes the complete")):
        p = run_hffs("cache", sub, "--help")
        assert p.returncode == 0 and p.stdout.startswith(f"Usage: hffs cache {sub}"), p.stdout
        assert words in p.stdout
    p = run_hffs("cache", "rm")
    assert p.returncode == 2 and "see 'hffs cache rm --help'" in p.stderr


def test_mounts_are_found_without_their_cache_dir(hub, mount, cache_dir, tmp_path):
    """status, verify and unmount of a mountpoint need no --cache-dir: the mount says which;
    status with no argument lists the mounts of every cache, and dead ones with the fix."""
    env = clean_env(HOME=str(tmp_path / "home"))  # the default cache is elsewhere
    m = mount("org/model", "--prefetch", "none")
    assert (m.path / "config.json").read_bytes() == hub.files("org/model")["config.json"]

    p = run_hffs("status", m.path, "--json", env=env, check=True)
    st = json.loads(p.stdout)
    assert [x["mountpoint"] for x in st["mounts"]] == [str(m.path)]
    assert st["mounts"][0]["cache_dir"] == str(cache_dir)

    p = run_hffs("status", "--json", env=env, check=True)
    listed = {x["mountpoint"]: x["cache_dir"] for x in json.loads(p.stdout)["mounts"]}
    assert listed.get(str(m.path)) == str(cache_dir), p.stdout

    p = run_hffs("verify", m.path, "--json", env=env)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["cache_dir"] == str(cache_dir)

    dead = mount("org/model", name="dead")
    dead.proc.kill()
    dead.proc.wait(timeout=10)
    p = run_hffs("status", env=env)
    assert f"{dead.path}: hffs:org/model, DEAD" in p.stdout, p.stdout
    assert f"run 'hffs unmount {dead.path}'" in p.stdout
    p = run_hffs("status", "--json", env=env)
    assert {"mountpoint": str(dead.path), "source": "hffs:org/model"} in \
        json.loads(p.stdout)["dead_mounts"]
    p = run_hffs("status", dead.path, env=env)
    assert p.returncode == 1 and "DEAD" in p.stdout
    assert run_hffs("unmount", dead.path, env=env).returncode == 0
    assert not os.path.ismount(dead.path)

    # unmount without --cache-dir still waits for the daemon to exit.
    assert run_hffs("unmount", m.path, env=env).returncode == 0
    assert m.proc.wait(timeout=1) == 0


def test_mount_arguments_are_checked_with_the_fix(tmp_path, cache_dir):
    mp = tmp_path / "mp"
    mp.mkdir()
    cases = [
        (["https://hub.example.org/org/model/tree/main"],
         "is a URL; give the repo id: hffs mount org/model MOUNTPOINT"),
        (["https://hub.example.org/datasets/org/ds"], "hffs mount datasets/org/ds MOUNTPOINT"),
        (["org/model/"], "ends with '/'; the repo id is 'org/model'"),
        (["org/model", "--endpoint", "localhost:8080"],
         "--endpoint 'localhost:8080' is not a URL: give it with its scheme"),
    ]
    for args, words in cases:
        p = run_hffs("mount", args[0], mp, *args[1:], "--cache-dir", cache_dir)
        assert p.returncode == 2 and words in p.stderr, (args, p.stderr)
    p = run_hffs("mount", "org/model", mp, "--cache-dir", cache_dir,
                 env=clean_env(HF_ENDPOINT="hub.local"))
    assert p.returncode == 2 and "HF_ENDPOINT 'hub.local' is not a URL" in p.stderr, p.stderr
    assert not os.path.ismount(mp)


def test_watch_in_a_short_terminal_keeps_the_summary_on_screen(hub, mount, cache_dir):
    import fcntl
    import pty
    import struct
    import termios
    m = mount("org/model", "--prefetch", "none")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 14, 120, 0, 0))
    try:
        p = subprocess.Popen([HFFS, "status", str(m.path), "--cache-dir", str(cache_dir),
                              "--watch", "--count", "1"], stdout=slave, stderr=slave,
                             env=clean_env())
        os.close(slave)
        slave = -1
        out = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not chunk:
                break
            out += chunk
        assert p.wait(timeout=30) == 0
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    text = out.decode(errors="replace").replace("\r", "")
    lines = [line for line in text.split("\n") if line.strip()]
    assert len(lines) <= 14, text
    assert "org/model@main" in text and "more files (the terminal is short" in text, text


def test_a_new_cache_is_private(hub, tmp_path):
    """It may hold the files of private repos: 0700, as `hffs doctor` expects."""
    cache, mp = tmp_path / "fresh-cache", tmp_path / "mp"
    mp.mkdir()
    p = run_hffs("mount", "org/model", mp, "--cache-dir", cache, "--endpoint", hub.api_url,
                 "--prefetch", "none", "--min-free", "0")
    try:
        assert p.returncode == 0, p.stderr
        assert (cache.stat().st_mode & 0o777) == 0o700
    finally:
        if os.path.ismount(mp):
            assert run_hffs("unmount", mp).returncode == 0
