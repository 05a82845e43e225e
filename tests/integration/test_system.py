"""hffs as system software: the man pages match --help, the mount(8) helper (mount -t hffs,
an fstab line, options to flags, the private token file, a user mount), --allow-other,
readiness for a systemd Type=notify unit and `systemd-analyze verify` of the unit.

The helper is installed as /sbin/mount.hffs (where mount(8) looks) for the length of a test
and removed after; the user-mount test adds its lines to /etc/fstab and a throwaway user,
and takes both out again; tests run as root on a throwaway machine."""
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import HFFS, ROOT, TOKEN, clean_env, is_live_mount, run_hffs, wait_for

MAN_DIR = Path(os.environ.get("HFFS_MAN_DIR", Path(HFFS).resolve().parents[1] / "docs" / "man"))
HELPER = Path("/sbin/mount.hffs")
COMMANDS = {  # command -> the heading of its section in hffs(1)
    ("mount",): "hffs mount", ("unmount",): "hffs unmount", ("status",): "hffs status",
    ("verify",): "hffs verify", ("cache",): "hffs cache", ("cache", "ls"): "hffs cache",
    ("cache", "rm"): "hffs cache", ("cache", "gc"): "hffs cache",
    ("cache", "verify"): "hffs cache",
}


def render(page):
    """The page as man(1) shows it, in one wide column without hyphenation breaks."""
    env = dict(os.environ, MANWIDTH="1000", MAN_KEEP_FORMATTING="0")
    p = subprocess.run(["man", "-l", str(page)], env=env, capture_output=True, text=True,
                       check=True)
    text = re.sub(r".\x08", "", p.stdout)  # overstrike bold and underline
    return re.sub("\u2010\n\\s*", "", text)


def sections(text):
    """{heading: body} of a rendered page (headings start in column 0)."""
    out, head = {}, None
    for line in text.splitlines():
        if line and not line[0].isspace():
            head = line.strip()
            out[head] = ""
        elif head:
            out[head] += line + "\n"
    return out


@pytest.mark.skipif(not shutil.which("man"), reason="man-db is not installed (scripts/deps)")
def test_man_pages_render_and_name_every_option_of_help():
    assert (MAN_DIR / "hffs.1").exists(), f"no built man page in {MAN_DIR} (is scdoc installed?)"
    page = sections(render(MAN_DIR / "hffs.1"))
    for cmd, heading in COMMANDS.items():
        help_text = run_hffs(*cmd, "--help", check=True).stdout
        body = next((b for h, b in page.items() if h.startswith(heading)), None)
        assert body is not None, f"hffs(1) has no section '{heading}'"
        for opt in sorted(set(re.findall(r"--[a-z][a-z-]*[a-z]", help_text)) - {"--help"}):
            assert opt in body, f"'hffs {' '.join(cmd)} --help' has {opt}; hffs(1) does not"
    top = run_hffs("--help", check=True).stdout
    assert "--version" in page["GLOBAL OPTIONS"] and "man hffs" in top
    helper = render(MAN_DIR / "mount.hffs.8")
    # Every option the helper maps is documented in mount.hffs(8).
    src = (ROOT / "dist" / "mount.hffs.in").read_text()
    mapped = re.findall(r"^\t(revision .*?)\)$", src, re.M | re.S)[0]
    for name in re.findall(r"[a-z_]+", mapped) + ["allow_other", "token_file"]:
        assert name in helper, f"mount.hffs maps '{name}'; mount.hffs(8) does not say so"


@pytest.fixture
def helper(tmp_path):
    """install(hffs_bin=HFFS): /sbin/mount.hffs naming hffs_bin; removed at teardown."""
    saved = tmp_path / "saved-mount.hffs"
    if HELPER.exists():
        shutil.copy2(HELPER, saved)

    def install(hffs_bin=HFFS):
        text = (ROOT / "dist" / "mount.hffs.in").read_text().replace("@HFFS@", str(hffs_bin))
        HELPER.write_text(text)
        HELPER.chmod(0o755)

    yield install
    if saved.exists():
        shutil.copy2(saved, HELPER)
    else:
        HELPER.unlink(missing_ok=True)


def recorder(tmp_path):
    """A stand-in for hffs that writes its arguments, one a line, and its HF_ variables."""
    rec = tmp_path / "rec"
    rec.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$0.args"\n'
                   'env | grep "^HF_" | sort > "$0.env" || true\n')
    rec.chmod(0o755)
    return rec


def test_mount_options_map_to_flags_one_to_one(helper, tmp_path):
    rec = recorder(tmp_path)
    helper(rec)
    mp = tmp_path / "mp"
    mp.mkdir()
    opts = ("ro,defaults,_netdev,nofail,revision=v1,endpoint=http://h:1,cache_dir=/c,"
            "connections=4,max_rate=50M,stall_timeout=9,io_timeout=2m,range_align=1M,"
            "prefetch=none,verify=strict,xet=auto,"
            "include=*.json,include=*.txt,exclude=x/,cache_max_size=20G,min_free=1%,"
            "log_file=/l,metrics_file=/m.prom,allow_other,allow_non_empty,debug,hf_cache,"
            "x-systemd.automount")
    p = subprocess.run(["mount", "-t", "hffs", "org/model", str(mp), "-o", opts],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    args = Path(f"{rec}.args").read_text().splitlines()
    assert args == ["mount", "org/model", str(mp), "--revision", "v1", "--endpoint", "http://h:1",
                    "--cache-dir", "/c", "--connections", "4", "--max-rate", "50M",
                    "--stall-timeout", "9", "--io-timeout", "2m", "--range-align", "1M",
                    "--prefetch", "none", "--verify", "strict", "--xet", "auto",
                    "--include", "*.json", "--include", "*.txt", "--exclude", "x/",
                    "--cache-max-size", "20G", "--min-free", "1%", "--log-file", "/l",
                    "--metrics-file", "/m.prom", "--allow-other", "--allow-non-empty",
                    "--debug", "--hf-cache"]
    # Each flag the helper passes is one hffs mount takes.
    mount_help = run_hffs("mount", "--help", check=True).stdout
    for a in args:
        if a.startswith("--"):
            assert a in mount_help, a
    # Without cache_dir: the system's cache.
    subprocess.run(["mount", "-t", "hffs", "org/model", str(mp), "-o", "revision=main"],
                   check=True, capture_output=True)
    assert Path(f"{rec}.args").read_text().split()[-2:] == ["--cache-dir", "/var/cache/hffs"]
    # Typos, a value missing or given to a flag, and a token in the options are refused.
    for bad, words in (("revison=main", "unknown option 'revison'"),
                       ("revision=", "needs a value"), ("allow_other=1", "takes no value"),
                       ("token=hf_x", "token_file")):
        p = subprocess.run(["mount", "-t", "hffs", "org/model", str(mp), "-o", bad],
                           capture_output=True, text=True)
        assert p.returncode != 0 and words in p.stderr, (bad, p.stderr)
    assert not os.path.ismount(mp)


def test_token_file_must_be_root_owned_and_private(helper, tmp_path):
    rec = recorder(tmp_path)
    helper(rec)
    mp = tmp_path / "mp"
    mp.mkdir()
    tok = tmp_path / "token"
    tok.write_text(TOKEN + "\n")

    def mount_with_token():
        return subprocess.run(["mount", "-t", "hffs", "org/model", str(mp), "-o",
                               f"token_file={tok}"], capture_output=True, text=True,
                              env=dict(os.environ, HF_TOKEN="hf_from_env"))

    tok.chmod(0o644)
    p = mount_with_token()
    assert p.returncode != 0 and "readable by others" in p.stderr and "chmod 600" in p.stderr
    tok.chmod(0o640)
    assert "readable by others" in mount_with_token().stderr
    tok.chmod(0o600)
    os.chown(tok, pwd.getpwnam("nobody").pw_uid, 0)
    p = mount_with_token()
    assert p.returncode != 0 and "must be owned by root" in p.stderr
    os.chown(tok, 0, 0)
    p = mount_with_token()
    assert p.returncode == 0, p.stderr
    env = Path(f"{rec}.env").read_text().splitlines()
    assert f"HF_TOKEN_PATH={tok}" in env and not any(e.startswith("HF_TOKEN=") for e in env)
    p = subprocess.run(["mount", "-t", "hffs", "org/model", str(mp), "-o",
                        f"token_file={tmp_path}/absent"], capture_output=True, text=True)
    assert p.returncode != 0 and "cannot be read" in p.stderr


def daemon_pid(mp, cache_dir):
    st = json.loads(run_hffs("status", str(mp), "--json", "--cache-dir", cache_dir,
                             check=True).stdout)
    return st["mounts"][0]["pid"]


def umount_and_wait(mp, pid):
    subprocess.run(["umount", str(mp)], check=True, capture_output=True)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="the daemon to exit")
    assert not os.path.ismount(mp)


def test_mount_t_hffs_and_fstab_mount_read_and_umount(helper, hub, cache_dir, tmp_path):
    helper()
    want = hub.files("org/model")
    tok = tmp_path / "token"
    tok.write_text(TOKEN + "\n")
    tok.chmod(0o600)
    mp = tmp_path / "direct"
    mp.mkdir()
    p = subprocess.run(["mount", "-t", "hffs", "org/model", str(mp), "-o",
                        f"revision=main,cache_dir={cache_dir},endpoint={hub.api_url},"
                        "min_free=0"], capture_output=True, text=True, env=clean_env())
    try:
        assert p.returncode == 0, p.stderr
        assert is_live_mount(mp)
        assert (mp / "config.json").read_bytes() == want["config.json"]
        assert "fuse.hffs" in Path("/proc/self/mounts").read_text()
        umount_and_wait(mp, daemon_pid(mp, cache_dir))
        # An fstab line as the README gives it, a gated repo, the token from token_file.
        fstab = tmp_path / "fstab"
        mp = tmp_path / "fromfstab"
        mp.mkdir()
        fstab.write_text(f"# test fstab\norg/gated {mp} hffs ro,revision=main,"
                         f"cache_dir={cache_dir},endpoint={hub.api_url},min_free=0,"
                         f"token_file={tok},_netdev,nofail 0 0\n")
        p = subprocess.run(["mount", "-T", str(fstab), str(mp)], capture_output=True,
                           text=True, env=clean_env())
        assert p.returncode == 0, p.stderr
        for name, data in hub.files("org/gated").items():
            assert (mp / name).read_bytes() == data, name
        umount_and_wait(mp, daemon_pid(mp, cache_dir))
    finally:
        for d in (tmp_path / "direct", tmp_path / "fromfstab"):
            if os.path.ismount(d):
                subprocess.run(["umount", "-l", str(d)], capture_output=True)


@pytest.fixture
def throwaway_user():
    """A user made for the test, its home in a fresh directory every user can enter, removed
    after (its processes are the test's to stop, by PID). /dev/fuse is opened to every user
    for the test, as udev makes it on a Debian host (0666; a container may give 0600)."""
    for tool in ("useradd", "userdel", "runuser"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")
    for suid in ("/bin/mount", "/bin/umount", shutil.which("fusermount3") or "/nonexistent"):
        if not os.path.exists(suid) or not os.stat(suid).st_mode & stat.S_ISUID:
            pytest.skip(f"{suid} is not setuid root: no user mounts on this machine")
    top = Path(tempfile.mkdtemp(prefix="hffs-user-"))
    top.chmod(0o755)
    name = f"hffst{os.getpid() % 100000}"
    subprocess.run(["useradd", "-M", "-d", str(top / "home"), "-s", "/bin/sh", name],
                   check=True, capture_output=True)
    fuse_mode = stat.S_IMODE(os.stat("/dev/fuse").st_mode)
    try:
        user = pwd.getpwnam(name)
        (top / "home").mkdir()
        os.chown(top / "home", user.pw_uid, user.pw_gid)
        os.chmod("/dev/fuse", 0o666)
        yield user, top
    finally:
        os.chmod("/dev/fuse", fuse_mode)
        subprocess.run(["userdel", name], capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


def fstab_add(line):
    """Appends line to /etc/fstab (mount(8) reads no other fstab for a user); returns the
    function that takes it out again, leaving every other line as it was."""
    with open("/etc/fstab", "a") as f:
        f.write(line + "\n")

    def remove():
        lines = Path("/etc/fstab").read_text().splitlines(True)
        Path("/etc/fstab").write_text("".join(ln for ln in lines if ln.rstrip("\n") != line))
    return remove


def test_user_fstab_mount_runs_as_the_user(helper, hub, throwaway_user):
    """An fstab line with `user`: the user mounts and unmounts it; the daemon runs as that user,
    with the user's own cache (mount(8) gives the helper no HOME) and the user's private
    token file; other users cannot read it (no allow_other)."""
    user, top = throwaway_user
    helper()
    home = top / "home"
    as_user = ["runuser", "-u", user.pw_name, "--"]
    mps = {n: home / n for n in ("mp", "badtoken")}
    tok = home / "token"
    tok.write_text(TOKEN + "\n")
    tok.chmod(0o600)
    for path in (*mps.values(), tok):
        path.mkdir() if path != tok else None
        os.chown(path, user.pw_uid, user.pw_gid)
    root_tok = top / "root-token"
    root_tok.write_text(TOKEN + "\n")
    root_tok.chmod(0o600)
    opts = f"user,noauto,revision=main,endpoint={hub.api_url},min_free=0,prefetch=none"
    removers = [fstab_add(f"org/gated {mps['mp']} hffs {opts},token_file={tok} 0 0"),
                fstab_add(f"org/gated {mps['badtoken']} hffs {opts},token_file={root_tok} 0 0")]
    pid = None
    try:
        p = subprocess.run([*as_user, "mount", str(mps["mp"])], capture_output=True, text=True,
                           env=clean_env(), timeout=60)
        assert p.returncode == 0, p.stderr
        cache = home / ".cache" / "hffs"
        assert f"log: {cache}/logs/" in p.stderr, p.stderr
        pid = daemon_pid(mps["mp"], cache)
        with open(f"/proc/{pid}/status") as f:
            uids = next(ln for ln in f if ln.startswith("Uid:")).split()[1:]
        assert set(map(int, uids)) == {user.pw_uid}, uids
        assert os.stat(cache).st_uid == user.pw_uid
        want = hub.files("org/gated")["config.json"]
        p = subprocess.run([*as_user, "cat", str(mps["mp"] / "config.json")],
                           capture_output=True, timeout=60)
        assert p.returncode == 0 and p.stdout == want, p.stderr
        p = subprocess.run(["runuser", "-u", "nobody", "--", "cat",
                            str(mps["mp"] / "config.json")], capture_output=True, timeout=60)
        assert p.returncode != 0 and b"Permission denied" in p.stderr, p.stderr
        # The token file must be the user's own: root's is refused by name.
        p = subprocess.run([*as_user, "mount", str(mps["badtoken"])], capture_output=True,
                           text=True, env=clean_env(), timeout=60)
        assert p.returncode != 0 and f"must be owned by {user.pw_name}" in p.stderr, p.stderr
        assert not os.path.ismount(mps["badtoken"])
        p = subprocess.run([*as_user, "umount", str(mps["mp"])], capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="the daemon to exit")
        assert not os.path.ismount(mps["mp"])
    finally:
        for mp in mps.values():
            if os.path.ismount(mp):
                subprocess.run(["fusermount3", "-uz", str(mp)], capture_output=True)
        if pid and os.path.exists(f"/proc/{pid}"):
            os.kill(pid, signal.SIGKILL)
        for remove in removers:
            remove()


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


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd is not installed")
def test_systemd_unit_verifies(tmp_path):
    unit = (ROOT / "dist" / "hffs@.service.in").read_text().replace(
        "@BINDIR@", str(Path(HFFS).resolve().parent))
    (tmp_path / "hffs@.service").write_text(unit)
    (tmp_path / "hffs@qwen.service").symlink_to(tmp_path / "hffs@.service")
    p = subprocess.run(["systemd-analyze", "verify", "--man=no",
                        str(tmp_path / "hffs@qwen.service")], capture_output=True, text=True,
                       env=dict(os.environ, SYSTEMD_UNIT_PATH=f"{tmp_path}:"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "hffs@" not in p.stderr, p.stderr  # no warning about the unit itself
