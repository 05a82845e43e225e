"""The Debian package: built from the tree with dpkg-buildpackage, lintian clean, installed
with apt into a fresh minimal Debian 12 chroot (debootstrap), where `hffs --version`,
`man hffs`, an `hffs mount` and a `mount -t hffs` through the installed /sbin/mount.hffs read
the fake Hub's files right.

It downloads a minimal system and the runtime libraries from the Debian mirror and takes
minutes, so it runs only with HFFS_TEST_DEB=1 (docs/testing.md); HFFS_DEB_MIRROR picks
the mirror."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

MIRROR = os.environ.get("HFFS_DEB_MIRROR", "http://deb.debian.org/debian")
pytestmark = [
    pytest.mark.skipif(os.environ.get("HFFS_TEST_DEB") != "1",
                       reason="needs the Debian mirror and minutes: set HFFS_TEST_DEB=1"),
    pytest.mark.skipif(not all(map(shutil.which, ("dpkg-buildpackage", "debootstrap",
                                                  "dh"))),
                       reason="needs dpkg-dev, debhelper and debootstrap (scripts/deps)"),
]


def run(*args, timeout=900, **kw):
    p = subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=timeout,
                       **kw)
    assert p.returncode == 0, f"{args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


def mounts_under(path):
    prefix = str(path).rstrip("/") + "/"
    with open("/proc/self/mounts") as f:
        return [ln.split()[1] for ln in f if ln.split()[1].startswith(prefix)]


@pytest.fixture
def chroot(tmp_path):
    """A fresh minbase bookworm with /proc mounted and /dev/fuse; torn down only once nothing
    is mounted in it (a rmtree through a mount would reach the host)."""
    root = tmp_path / "chroot"
    run("debootstrap", "--variant=minbase", "bookworm", root, MIRROR, timeout=1800)
    os.mknod(root / "dev" / "fuse", 0o666 | 0o020000, os.makedev(10, 229))
    run("mount", "-t", "proc", "proc", root / "proc")
    try:
        yield root
    finally:
        for mp in sorted(mounts_under(root), key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        if not mounts_under(root):
            shutil.rmtree(root, ignore_errors=True)


def test_deb_builds_lints_installs_and_mounts(tmp_path, chroot, hub):
    src = tmp_path / "src" / "hffs"
    src.mkdir(parents=True)
    files = run("git", "ls-files", "-co", "--exclude-standard", "-z", cwd=ROOT).stdout
    for rel in filter(None, files.split("\0")):
        dst = src / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst)
    run("dpkg-buildpackage", "-us", "-uc", "-b", cwd=src)
    deb = tmp_path / "src" / "hffs_0.1.0_amd64.deb"
    assert deb.exists()
    deps = run("dpkg-deb", "-f", deb, "Depends").stdout
    assert "libfuse3" in deps and "-dev" not in deps, deps
    if shutil.which("lintian"):
        run("lintian", "--fail-on", "error,warning", tmp_path / "src" / "hffs_0.1.0_amd64.changes")

    shutil.copy2(deb, chroot / "tmp" / deb.name)
    env = dict(PATH="/usr/sbin:/usr/bin:/sbin:/bin", DEBIAN_FRONTEND="noninteractive",
               HOME="/root", LANG="C.UTF-8")

    def inside(*args, **kw):
        return run("chroot", chroot, *args, env=env, **kw)

    inside("apt-get", "update", "-qq")
    inside("apt-get", "install", "-y", "-qq", "--no-install-recommends", "man-db",
           f"/tmp/{deb.name}")
    assert inside("hffs", "--version").stdout.startswith("hffs 0.1.0")
    page = inside("man", "hffs")
    assert "hffs mount REPO MOUNTPOINT" in page.stdout and "--allow-other" in page.stdout
    assert "token_file" in inside("man", "8", "mount.hffs").stdout
    assert (chroot / "lib/systemd/system/hffs@.service").exists()

    want = hub.files("org/model")["config.json"]
    (chroot / "mnt" / "a").mkdir()
    inside("hffs", "mount", "org/model", "/mnt/a", "--endpoint", hub.api_url, "--min-free", "0")
    try:
        assert inside("cat", "/mnt/a/config.json").stdout.encode() == want
    finally:
        inside("hffs", "unmount", "/mnt/a")
    (chroot / "mnt" / "b").mkdir()
    inside("mount", "-t", "hffs", "org/model", "/mnt/b", "-o",
           f"revision=main,endpoint={hub.api_url},min_free=0,_netdev")
    try:
        assert inside("cat", "/mnt/b/config.json").stdout.encode() == want
        assert inside("hffs", "status").stdout.count("org/model") >= 1
    finally:
        inside("umount", "/mnt/b")
