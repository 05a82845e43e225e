"""hffs as system software: --allow-other, and readiness for a systemd Type=notify unit."""
import os
import pwd
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import HFFS, clean_env, is_live_mount


def test_allow_other_lets_another_user_read(mount, hub):
    nobody = pwd.getpwnam("nobody")

    def read_as_nobody(mp):
        # Through a directory fd root opened: the test's temporary directories are private
        # to root, and /proc/self/fd/N does not check the directories above the mount.
        fd = os.open(mp, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return subprocess.run(["setpriv", f"--reuid={nobody.pw_uid}",
                                   f"--regid={nobody.pw_gid}", "--clear-groups", "cat",
                                   f"/proc/self/fd/{fd}/config.json"], capture_output=True,
                                  pass_fds=(fd,))
        finally:
            os.close(fd)

    private = mount("org/model", name="private")
    shared = mount("org/model", "--allow-other", name="shared")
    p = read_as_nobody(private.path)
    assert p.returncode != 0 and b"Permission denied" in p.stderr, p.stderr
    p = read_as_nobody(shared.path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == hub.files("org/model")["config.json"]


def test_allow_other_without_fuse_conf_says_the_fix(tmp_path):
    conf = Path("/etc/fuse.conf")
    if conf.exists() and any(ln.strip() == "user_allow_other"
                             for ln in conf.read_text().splitlines()):
        pytest.skip("/etc/fuse.conf allows allow_other for every user here")
    nobody = pwd.getpwnam("nobody")
    mp = tmp_path / "mp"
    mp.mkdir()
    p = subprocess.run(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                        "--clear-groups", HFFS, "mount", "org/model", str(mp), "--allow-other",
                        "--cache-dir", str(tmp_path / "c")], capture_output=True, text=True,
                       env=clean_env(), timeout=60)
    assert p.returncode == 1
    assert "user_allow_other" in p.stderr and "/etc/fuse.conf" in p.stderr, p.stderr
    assert not os.path.ismount(mp)


def test_foreground_mount_tells_systemd_it_is_ready(mount, tmp_path):
    sock_path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(sock_path))
        s.settimeout(60)
        m = mount("org/model", env=clean_env(NOTIFY_SOCKET=str(sock_path)), wait=False)
        msg = s.recv(4096)
    assert msg == b"READY=1"
    assert is_live_mount(m.path), "READY=1 comes once the mount answers"
