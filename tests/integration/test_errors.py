"""Everything `hffs mount` refuses, each with one clear line and a non-zero exit."""
import functools
import http.server
import subprocess
import threading

import pytest

from conftest import TOKEN, TOKEN_UNAPPROVED, clean_env, run_hffs


def mount_fails(hub, cache_dir, tmp_path, repo, *args, env=None):
    mp = tmp_path / "mp"
    mp.mkdir(exist_ok=True)
    try:
        p = run_hffs("mount", repo, mp, "--foreground", "--cache-dir", cache_dir,
                     "--endpoint", hub.api_url, *args, env=env, timeout=30)
    finally:  # a mount that wrongly succeeded is killed by the timeout: detach it
        subprocess.run(["fusermount3", "-uz", str(mp)], capture_output=True)
    assert p.returncode != 0, p.stderr
    errors = [line for line in p.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, p.stderr
    assert "Traceback" not in p.stderr
    return errors[0]


@pytest.mark.parametrize("repo,env,words", [
    ("org/absent", None, ["org/absent", "not found"]),
    ("org/private", None, ["org/private", "token"]),
    ("org/private", {"HF_TOKEN": "hf_wrong"}, ["token", "rejected"]),
    ("org/gated", None, ["gated"]),
    ("org/gated", {"HF_TOKEN": TOKEN_UNAPPROVED}, ["gated", "access"]),
])
def test_hub_refusals(hub, cache_dir, tmp_path, repo, env, words):
    line = mount_fails(hub, cache_dir, tmp_path, repo, env=clean_env(**(env or {})))
    for w in words:
        assert w.lower() in line.lower(), line


@pytest.mark.parametrize("spec,words", [
    ("datasets/org/model", ["dataset 'org/model' not found", "a model 'org/model' exists",
                            "did you mean 'org/model'?"]),
    ("org/ds", ["'org/ds' not found", "a dataset 'org/ds' exists",
                "did you mean 'datasets/org/ds'?"]),
    ("spaces/org/absent", ["space 'org/absent' not found"]),
])
def test_wrong_repo_type_is_named(hub, cache_dir, tmp_path, spec, words):
    """A 404 keeps the type the person gave, and names a repo of another type with that id."""
    line = mount_fails(hub, cache_dir, tmp_path, spec)
    for w in words:
        assert w in line, line
    if "absent" in spec:
        assert "did you mean" not in line, line


def test_an_endpoint_that_is_no_hub_is_named(hub, cache_dir, tmp_path):
    """A web server that is not a Hub API (a 404 page, the CDN's 403) is said to be one,
    instead of "not found" or "forbidden" about the repo."""
    www = tmp_path / "www"  # an empty site: every path is a 404 page
    www.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for endpoint in (f"http://127.0.0.1:{server.server_address[1]}", hub.cdn_url):
            mp = tmp_path / "mp"
            mp.mkdir(exist_ok=True)
            p = run_hffs("mount", "org/model", mp, "--foreground", "--cache-dir", cache_dir,
                         "--endpoint", endpoint, timeout=30)
            assert p.returncode == 1, p.stderr
            assert f"'{endpoint}' does not answer like a Hugging Face Hub API" in p.stderr, \
                p.stderr
            assert "check --endpoint or HF_ENDPOINT" in p.stderr
            assert "did you mean" not in p.stderr
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_missing_revision(hub, cache_dir, tmp_path):
    line = mount_fails(hub, cache_dir, tmp_path, "org/model", "--revision", "v404")
    assert "v404" in line and "revision" in line.lower()


def test_gated_with_approved_token_mounts(hub, mount):
    m = mount("org/gated", env=clean_env(HF_TOKEN=TOKEN))
    for rel, data in hub.files("org/gated").items():
        assert (m.path / rel).read_bytes() == data


def test_token_from_hf_home_and_token_path(hub, mount, tmp_path):
    home = tmp_path / "hfhome"
    home.mkdir()
    (home / "token").write_text(f"  {TOKEN}\r\n")
    m = mount("org/private", env=clean_env(HF_HOME=str(home)))
    assert (m.path / "config.json").read_bytes() == hub.files("org/private")["config.json"]
    tok = tmp_path / "tok"
    tok.write_text(TOKEN)
    m2 = mount("org/private", env=clean_env(HF_TOKEN_PATH=str(tok)))
    assert (m2.path / "config.json").exists()


@pytest.mark.parametrize("repo", ["org/hostile-dotdot", "org/hostile-abs"])
def test_hostile_tree_is_refused(hub, cache_dir, tmp_path, repo):
    line = mount_fails(hub, cache_dir, tmp_path, repo)
    assert "'" in line and ("unsafe" in line or "refus" in line or "invalid" in line), line


@pytest.mark.parametrize("spec", ["a/b/c", "bad-/name", "org/na..me", "org/name.git", ""])
def test_invalid_repo_id(hub, cache_dir, tmp_path, spec):
    line = mount_fails(hub, cache_dir, tmp_path, spec)
    assert "repo" in line.lower()


def test_missing_mountpoint(hub, cache_dir, tmp_path):
    p = run_hffs("mount", "org/model", tmp_path / "nope", "--foreground", "--cache-dir",
                 cache_dir, "--endpoint", hub.api_url)
    assert p.returncode == 1 and "nope" in p.stderr


def test_unreachable_hub_without_cache(cache_dir, tmp_path):
    mp = tmp_path / "mp"
    mp.mkdir()
    p = run_hffs("mount", "org/model", mp, "--foreground", "--cache-dir", cache_dir,
                 "--endpoint", "http://127.0.0.1:9")
    assert p.returncode == 1
    assert "127.0.0.1" in p.stderr or "reach" in p.stderr or "connect" in p.stderr.lower()
