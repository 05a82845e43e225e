"""The command line a newcomer meets: help, version, background mounts, unmount, signals."""
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
