"""Tests of the fake Hub itself: generated data, the API and CDN hosts against
docs/HUB_PROTOCOL.md, auth (§5), faults and the request log.

Run: /usr/bin/python3 -m pytest tests/fakehub
"""
import functools
import gzip
import hashlib
import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import genrepo  # noqa: E402
import repostore  # noqa: E402
from fakehub_fixture import FakeHub  # noqa: E402

ALICE = "hf_alice_valid"  # approved for org/gated, reads private repos
BOB = "hf_bob_valid"  # not approved, reads no private repo
TOKENS = {ALICE: {"user": "alice", "gated_approved": ["org/gated"]},
          BOB: {"user": "bob", "gated_approved": [], "repos": []}}
SHARD = 200_000
SHARD_NAME = "model-00001-of-00002.safetensors"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("hubdata")
    gen = dict(shards=2, shard_size=SHARD)
    genrepo.generate(d, "org/model", tags=["v1"], **gen)
    genrepo.generate(d, "org/model", from_commit_of="main", change_files=["config.json"])
    genrepo.generate(d, "org/model", pr=1, from_commit_of="v1", change_files=["README.md"])
    genrepo.generate(d, "org/private", private=True, **gen)
    genrepo.generate(d, "org/gated", gated="manual", **gen)
    genrepo.generate(d, "org/disabled", disabled=True, **gen)
    genrepo.generate(d, "gpt2", **gen)
    genrepo.generate(d, "org/data", repo_type="dataset", **gen)
    genrepo.generate(d, "org/hostile", hostile_paths=["../etc/passwd", "/abs/path", "a//b"],
                     **gen)
    return d


@pytest.fixture(scope="module")
def hub(data, tmp_path_factory):
    h = FakeHub(data, tmp_path_factory.mktemp("hub"), page_size=3, tokens=TOKENS)
    h.start()
    try:
        yield h
    finally:
        h.stop()
        assert h.server_errors() == ""


@pytest.fixture(autouse=True)
def no_faults(request):
    """Each test starts with no rules and an empty log on the shared server."""
    if "hub" in request.fixturenames:
        h = request.getfixturevalue("hub")
        h.reset()
        h.clear_log()


def fetch(url, method="GET", headers=None, body=None, timeout=10):
    """(status, headers dict, body) of one request on a fresh connection, no redirects."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        target = u.path + (f"?{u.query}" if u.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def signed_url(hub, path, token=None):
    status, h, _ = fetch(f"{hub.api_url}/org/model/resolve/main/{path}", "HEAD",
                         {"Authorization": f"Bearer {token}"} if token else None)
    assert status == 302
    return h["Location"]


# --- generated data ------------------------------------------------------------------------------

def test_manifest_matches_contents_and_lfs_rule(data):
    files = repostore.read_files(data, "org/model", "v1")
    commit = repostore.Repo(repostore.read_manifest(data, "model", "org/model")).commits[
        repostore.commit_sha(data, "org/model", "v1")]
    for path, content in files.items():
        rec = commit.files[path]
        assert rec["size"] == len(content)
        assert rec["sha256"] == hashlib.sha256(content).hexdigest()
        assert rec["sha1"] == hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
        assert bool(rec["lfs"]) == path.endswith((".safetensors", ".bin")), path
        if rec["lfs"]:
            pointer = repostore.lfs_pointer(rec["sha256"], rec["size"])
            assert rec["lfs"] == {"pointer_sha1": repostore.git_blob_sha1(pointer),
                                  "pointer_size": len(pointer)}
    assert files["empty.txt"] == b"" and len(files["tiny.bin"]) == 1
    assert {"nested/deep/dir/file.txt", "docs/read me \u00e9.txt", "odd/a#b%c+d.txt"} <= set(files)
    assert len(files["tokenizer.json"]) > 1 << 20, "a regular file spanning several blocks"


def test_safetensors_shards_parse_and_match_the_index(data):
    np = pytest.importorskip("numpy")
    files = repostore.read_files(data, "org/model")
    index = json.loads(files["model.safetensors.index.json"])
    total = 0
    for name in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        raw = files[name]
        assert len(raw) % (1 << 20), "sizes are not whole MiB"
        hlen = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + hlen])
        header.pop("__metadata__")
        end = 0
        for tensor, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
            a, b = t["data_offsets"]
            assert a == end, "contiguous data"
            dtype = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "U8": np.uint8}
            arr = np.frombuffer(raw[8 + hlen + a:8 + hlen + b], dtype=dtype[t["dtype"]])
            assert arr.reshape(t["shape"]).size == arr.size
            assert index["weight_map"][tensor] == name
            end = b
        assert 8 + hlen + end == len(raw)
        total += end
    assert index["metadata"]["total_size"] == total


def test_later_commits_share_blobs(data):
    v1 = repostore.content_sha256s(data, "org/model", "v1")
    main = repostore.content_sha256s(data, "org/model", "main")
    pr = repostore.content_sha256s(data, "org/model", "refs/pr/1")
    assert {p for p in v1 if v1[p] != main[p]} == {"config.json"}
    assert {p for p in v1 if v1[p] != pr[p]} == {"README.md"}
    json.loads(repostore.read_files(data, "org/model")["config.json"])  # still valid JSON


def test_git_ids_match_git(data, tmp_path):
    git = shutil.which("git")
    if git is None:
        pytest.skip("git not installed")
    manifest = repostore.read_manifest(data, "model", "org/model")
    sha = manifest["refs"]["tags"]["v1"]
    commit = manifest["commits"][sha]
    for f in commit["files"]:
        p = tmp_path / f["path"]
        p.parent.mkdir(parents=True, exist_ok=True)
        content = Path(repostore.blob_path(data, f["sha256"])).read_bytes()
        p.write_bytes(repostore.lfs_pointer(f["sha256"], f["size"]) if f["lfs"] else content)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    run = lambda *a: subprocess.run([git, *a], cwd=tmp_path, env=env, check=True,  # noqa: E731
                                    capture_output=True, text=True).stdout.strip()
    run("init", "-q")
    run("add", "-A", ".")
    assert run("write-tree") == commit["tree"]
    assert run("rev-parse", f"{commit['tree']}:nested") == commit["dirs"]["nested"]


@pytest.mark.parametrize("n", [0, 1, 3, 4, 63, 64, 65, 128, 130, 1001])
def test_randbytes_in_pieces_is_one_call(n):
    """Large shards are drawn in pieces (one call overflows from 256 MiB); small pieces here
    stand in for RAND_PIECE."""
    one = genrepo.rng_for(0, "x").randbytes(n)
    assert genrepo.randbytes(genrepo.rng_for(0, "x"), n, piece=64) == one
    assert genrepo.randbytes(genrepo.rng_for(0, "x"), n, piece=4) == one


def test_cli_moves_branch_and_prints_sha(data, tmp_path):
    d = tmp_path / "d"
    cli = [sys.executable, str(Path(genrepo.__file__)), str(d), "--repo", "org/cli",
           "--shards", "1", "--shard-size", "4096"]
    first = subprocess.run(cli, check=True, capture_output=True, text=True).stdout.strip()
    second = subprocess.run(cli + ["--from-commit-of", "main", "--change-file", "empty.txt"],
                            check=True, capture_output=True, text=True).stdout.strip()
    assert len(first) == len(second) == 40 and first != second
    assert repostore.commit_sha(d, "org/cli") == second
    bad = subprocess.run(cli[:3] + ["--repo", "org/na..me"], capture_output=True, text=True)
    assert bad.returncode != 0 and "invalid repo id" in bad.stderr


# --- repo info and refs (§2) ---------------------------------------------------------------------

def test_repo_info_resolves_every_revision_form(hub):
    main, v1, pr = (hub.commit("org/model", r) for r in ("main", "v1", "refs/pr/1"))
    for rev, want in (("", main), ("/revision/main", main), ("/revision/HEAD", main),
                      ("/revision/v1", v1), (f"/revision/{v1}", v1),
                      ("/revision/refs%2Fpr%2F1", pr), ("/revision/refs/pr/1", pr)):
        status, _, body = fetch(f"{hub.api_url}/api/models/org/model{rev}")
        assert status == 200, rev
        info = json.loads(body)
        assert info["sha"] == want and info["id"] == "org/model", rev
    assert info["private"] is False and info["gated"] is False and info["_id"]
    assert {s["rfilename"] for s in info["siblings"]} == set(hub.files("org/model", pr))


def test_whoami(hub):
    token, entry = next(iter(TOKENS.items()))
    status, _, body = fetch(f"{hub.api_url}/api/whoami-v2",
                            headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and json.loads(body)["name"] == entry["user"]
    for headers in ({}, {"Authorization": "Bearer hf_unknown"}):
        status, h, _ = fetch(f"{hub.api_url}/api/whoami-v2", headers=headers)
        assert status == 401 and "Invalid credentials" in h["X-Error-Message"]


def test_repo_info_blobs_and_expand(hub):
    _, _, body = fetch(f"{hub.api_url}/api/models/org/model/revision/main?blobs=true")
    siblings = {s["rfilename"]: s for s in json.loads(body)["siblings"]}
    sums = hub.sha256s("org/model")
    shard = siblings[SHARD_NAME]
    assert shard["lfs"]["sha256"] == sums[SHARD_NAME]
    assert shard["size"] == shard["lfs"]["size"] and shard["lfs"]["pointerSize"] > 100
    cfg = hub.files("org/model")["config.json"]
    assert siblings["config.json"]["blobId"] == repostore.git_blob_sha1(cfg)
    assert "lfs" not in siblings["config.json"]
    _, _, body = fetch(f"{hub.api_url}/api/models/org/model?expand=sha&expand=gated")
    assert set(json.loads(body)) == {"_id", "id", "sha", "gated"}
    _, _, body = fetch(f"{hub.api_url}/api/models/gpt2/revision/main")
    assert json.loads(body)["id"] == "gpt2"
    _, _, body = fetch(f"{hub.api_url}/api/datasets/org/data")
    assert json.loads(body)["id"] == "org/data"


def test_refs(hub):
    _, _, body = fetch(f"{hub.api_url}/api/models/org/model/refs")
    refs = json.loads(body)
    assert refs["branches"] == [{"name": "main", "ref": "refs/heads/main",
                                 "targetCommit": hub.commit("org/model")}]
    assert refs["tags"][0]["name"] == "v1" and "pullRequests" not in refs
    _, _, body = fetch(f"{hub.api_url}/api/models/org/model/refs?include_prs=1")
    assert json.loads(body)["pullRequests"][0]["ref"] == "refs/pr/1"


# --- tree (§3) -----------------------------------------------------------------------------------

def list_tree(hub, url):
    """Every entry of a listing, following Link rel="next" verbatim; also the page count."""
    entries, pages = [], 0
    while url:
        status, headers, body = fetch(url)
        assert status == 200, (url, body)
        entries += json.loads(body)
        pages += 1
        link = headers.get("Link")
        url = None
        if link:
            assert link.startswith(f"<{hub.api_url}/") and link.endswith('>; rel="next"')
            url = link[1:link.index(">")]
            assert "cursor=" in url
    return entries, pages


def test_recursive_tree_pages_cover_everything_once(hub):
    files = hub.files("org/model")
    dirs = {os.path.dirname(p) for p in files} - {""}
    dirs |= {os.path.dirname(d) for d in dirs} - {""}
    dirs |= {os.path.dirname(d) for d in dirs} - {""}
    for flag in ("true", "True", "1"):
        entries, pages = list_tree(hub, f"{hub.api_url}/api/models/org/model/tree/main"
                                        f"?recursive={flag}&expand=false")
        paths = [e["path"] for e in entries]
        assert len(paths) == len(set(paths)) and pages == -(-len(paths) // 3)
        assert {e["path"] for e in entries if e["type"] == "file"} == set(files)
        assert {e["path"] for e in entries if e["type"] == "directory"} == dirs
    by_path = {e["path"]: e for e in entries}
    shard = by_path[SHARD_NAME]
    assert shard["lfs"]["oid"] == hub.sha256s("org/model")[SHARD_NAME]
    assert shard["oid"] != shard["lfs"]["oid"] and shard["size"] == shard["lfs"]["size"]
    assert by_path["nested"] == {"type": "directory", "oid": by_path["nested"]["oid"],
                                 "size": 0, "path": "nested"}


def test_tree_one_level_limit_expand_and_encoded_paths(hub):
    root, _ = list_tree(hub, f"{hub.api_url}/api/models/org/model/tree/main")
    assert "nested" in {e["path"] for e in root} and all("/" not in e["path"] for e in root)
    _, pages = list_tree(hub, f"{hub.api_url}/api/models/org/model/tree/main?limit=2")
    assert pages == -(-len(root) // 2)
    for sub in ("nested%2Fdeep", "nested/deep"):
        entries, _ = list_tree(hub, f"{hub.api_url}/api/models/org/model/tree/main/{sub}")
        assert [e["path"] for e in entries] == ["nested/deep/dir"]
    entries, _ = list_tree(hub, f"{hub.api_url}/api/models/org/model/tree/refs/pr/1/odd"
                                "?expand=true")
    pr = hub.commit("org/model", "refs/pr/1")
    assert all(e["lastCommit"]["id"] == hub.commit("org/model", "v1") != pr for e in entries)
    readme, _ = list_tree(hub, f"{hub.api_url}/api/models/org/model/tree/refs%2Fpr%2F1?expand=1")
    readme = next(e for e in readme if e["path"] == "README.md")
    assert readme["lastCommit"]["id"] == pr and readme["securityFileStatus"]


def test_tree_errors(hub):
    status, h, body = fetch(f"{hub.api_url}/api/models/org/model/tree/main/nope")
    assert (status, h["X-Error-Code"]) == (404, "EntryNotFound")
    assert h["X-Repo-Commit"] == hub.commit("org/model") and json.loads(body)["error"]
    status, h, _ = fetch(f"{hub.api_url}/api/models/org/model/tree/v404")
    assert (status, h["X-Error-Code"]) == (404, "RevisionNotFound")
    status, _, _ = fetch(f"{hub.api_url}/api/models/org/model/tree/main?cursor=garbage")
    assert status == 400


def test_hostile_paths_are_listed_verbatim(hub):
    entries, _ = list_tree(hub, f"{hub.api_url}/api/models/org/hostile/tree/main?recursive=1")
    paths = {e["path"] for e in entries if e["type"] == "file"}
    assert {"../etc/passwd", "/abs/path", "a//b"} <= paths


def test_paths_info_form_and_json(hub):
    url = f"{hub.api_url}/api/models/org/model/paths-info/main"
    form = "paths=config.json&paths=nested&paths=absent&expand=false"
    status, _, body = fetch(url, "POST", {"Content-Type": "application/x-www-form-urlencoded"},
                            form)
    assert status == 200
    assert [(e["path"], e["type"]) for e in json.loads(body)] == [("config.json", "file"),
                                                                  ("nested", "directory")]
    status, _, body = fetch(url, "POST", {"Content-Type": "application/json"},
                            json.dumps({"paths": [SHARD_NAME], "expand": True}))
    [e] = json.loads(body)
    assert e["lfs"]["oid"] == hub.sha256s("org/model")[SHARD_NAME] and "lastCommit" in e


# --- resolve (§4) --------------------------------------------------------------------------------

def test_regular_file_redirects_to_resolve_cache(hub):
    data = hub.files("org/model")["config.json"]
    commit = hub.commit("org/model")
    for method in ("HEAD", "GET"):
        status, h, _ = fetch(f"{hub.api_url}/org/model/resolve/main/config.json", method)
        assert status == 307
        loc = h["Location"]
        assert loc.startswith(f"/api/resolve-cache/models/org/model/{commit}/config.json?")
        assert "etag=" in loc
        # Python drops the Location's query (§4.1): the path alone must serve the file.
        status, h, body = fetch(hub.api_url + loc.split("?")[0], method)
        assert status == 200 and h["X-Repo-Commit"] == commit
        assert h["ETag"] == f'"{repostore.git_blob_sha1(data)}"'
        assert int(h["Content-Length"]) == len(data) and h["Accept-Ranges"] == "bytes"
        assert body == (data if method == "GET" else b"")


def test_lfs_file_redirects_to_the_cdn(hub):
    data = hub.files("org/model")[SHARD_NAME]
    status, h, _ = fetch(f"{hub.api_url}/org/model/resolve/main/{SHARD_NAME}", "HEAD")
    assert status == 302
    loc = urlsplit(h["Location"])
    assert f"{loc.scheme}://{loc.netloc}" == hub.cdn_url != hub.api_url
    for key in ("X-Amz-Algorithm", "X-Amz-Date", "X-Amz-Expires=3600", "X-Amz-Signature",
                "response-content-disposition"):
        assert key in loc.query
    sha256 = hashlib.sha256(data).hexdigest()
    assert h["X-Linked-Etag"] == f'"{sha256}"' and h["X-Linked-Size"] == str(len(data))
    assert h["X-Repo-Commit"] == hub.commit("org/model") and h["Accept-Ranges"] == "bytes"
    assert sha256 not in h["ETag"]
    status, h2, body = fetch(h["Location"])
    assert status == 200 and body == data and int(h2["Content-Length"]) == len(data)


@pytest.mark.parametrize("repo,path,token", [
    ("org/model", "empty.txt", None),
    ("gpt2", "config.json", None),
    ("org/private", "config.json", ALICE),
    ("org/gated", "config.json", ALICE),
])
def test_direct_200_cases(hub, repo, path, token):
    data = hub.files(repo)[path]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, h, body = fetch(f"{hub.api_url}/{repo}/resolve/main/{path}", headers=headers)
    assert status == 200 and body == data
    assert h["ETag"] == f'"{repostore.git_blob_sha1(data)}"'
    assert h["X-Repo-Commit"] == hub.commit(repo) and h["Content-Length"] == str(len(data))


def test_start_options_direct_200_cdn_rate_and_faults_file(data, tmp_path):
    rules = [{"host": "api", "path_re": "tokenizer", "fault": "status", "status": 500}]
    with FakeHub(data, tmp_path, direct_200=True, faults=rules, cdn_rate=4_000_000) as h:
        status, _, body = fetch(f"{h.api_url}/org/model/resolve/main/config.json")
        assert status == 200 and body == h.files("org/model")["config.json"]
        status, _, _ = fetch(f"{h.api_url}/org/model/resolve/main/tokenizer.json")
        assert status == 500
        assert fetch(signed_url(h, SHARD_NAME))[2] == h.files("org/model")[SHARD_NAME]
    assert h.server_errors() == ""


def test_cdn_base_sends_lfs_redirects_to_an_external_blob_server(data, tmp_path):
    """--cdn-base: Location is BASE/<sha256[:2]>/<sha256>?<presign>, which a static server of
    DATA (here the stdlib's, ignoring the query as nginx does) answers with the content."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(data))
    handler.log_message = lambda *a: None
    static = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=static.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{static.server_port}/blobs"
    ports = tmp_path / "ports.json"
    cmd = [sys.executable, str(Path(__file__).resolve().parent / "fakehub.py"), "--data",
           str(data), "--port-file", str(ports), "--log", str(tmp_path / "log.jsonl")]
    proc = subprocess.Popen(cmd + ["--cdn-base", base + "/"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not ports.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        api_url = json.loads(ports.read_text())["api_url"]
        content = repostore.read_files(data, "org/model")[SHARD_NAME]
        sha256 = hashlib.sha256(content).hexdigest()
        status, h, _ = fetch(f"{api_url}/org/model/resolve/main/{SHARD_NAME}", "HEAD")
        assert status == 302 and h["X-Linked-Etag"] == f'"{sha256}"'
        loc = urlsplit(h["Location"])
        assert f"{loc.scheme}://{loc.netloc}{loc.path}" == f"{base}/{sha256[:2]}/{sha256}"
        assert "X-Amz-Signature=" in loc.query
        status, _, body = fetch(h["Location"])
        assert status == 200 and body == content
        status, _, body = fetch(f"{api_url}/org/model/resolve/main/config.json")
        assert status == 307, "regular files are not affected"
    finally:
        proc.terminate()
        err = proc.communicate(timeout=10)[1]
        static.shutdown()
        static.server_close()
    assert err == b""
    bad = subprocess.run(cmd + ["--cdn-base", "ftp://x/?q=1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--cdn-base takes" in bad.stderr


def test_if_none_match_gives_304_on_resolve(hub):
    etag = f'"{repostore.git_blob_sha1(hub.files("org/model")["config.json"])}"'
    status, h, body = fetch(f"{hub.api_url}/org/model/resolve/main/config.json",
                            headers={"If-None-Match": etag})
    assert (status, h["ETag"], body) == (304, etag, b"")
    assert h["X-Repo-Commit"] == hub.commit("org/model")


def test_odd_names_round_trip(hub):
    files = hub.files("org/model")
    odd = [p for p in files if not p.isascii() or any(c in p for c in " #%+?")]
    assert len(odd) >= 4
    for path in odd:
        status, h, _ = fetch(f"{hub.api_url}/org/model/resolve/main/{quote(path)}")
        assert status == 307 and f"/{quote(path)}?" in h["Location"], path
        status, _, body = fetch(hub.api_url + h["Location"].split("?")[0])
        assert status == 200 and body == files[path], path


def test_raw_serves_the_git_blob(hub):
    sums = hub.sha256s("org/model")
    size = len(hub.files("org/model")[SHARD_NAME])
    status, h, body = fetch(f"{hub.api_url}/org/model/raw/main/{SHARD_NAME}")
    assert status == 200 and body == repostore.lfs_pointer(sums[SHARD_NAME], size)
    assert h["ETag"] == f'"{repostore.git_blob_sha1(body)}"'


def test_dataset_prefix_and_a_moving_branch(hub, data):
    status, _, body = fetch(f"{hub.api_url}/datasets/org/data/resolve/main/data/train.jsonl")
    assert status == 307
    old = hub.commit("org/model")
    new = genrepo.generate(data, "org/model", revision="moving", from_commit_of="main",
                           change_files=["nested/deep/dir/file.txt"])
    assert new != old
    _, _, body = fetch(f"{hub.api_url}/api/models/org/model/revision/moving")
    assert json.loads(body)["sha"] == new, "manifests are reloaded when they change"


# --- ranges and the CDN (§4.2, §4.3) -------------------------------------------------------------

@pytest.mark.parametrize("rng,first,last", [
    ("bytes=0-0", 0, 0), ("bytes=10-19", 10, 19), ("bytes=100-", 100, None),
    ("bytes=-7", -7, None), ("bytes=5-99999999", 5, None)])
def test_cdn_ranges(hub, rng, first, last):
    data = hub.files("org/model")[SHARD_NAME]
    want = data[first:None if last is None else last + 1]
    status, h, body = fetch(signed_url(hub, SHARD_NAME), headers={"Range": rng})
    assert status == 206 and body == want
    a = first % len(data)
    assert h["Content-Range"] == f"bytes {a}-{a + len(want) - 1}/{len(data)}"


def test_range_past_eof_is_416_everywhere(hub):
    size = len(hub.files("org/model")[SHARD_NAME])
    status, h, _ = fetch(signed_url(hub, SHARD_NAME), headers={"Range": f"bytes={size}-"})
    assert status == 416 and h["Content-Range"] == f"bytes */{size}"
    status, h, _ = fetch(f"{hub.api_url}/org/model/resolve/main/empty.txt",
                         headers={"Range": "bytes=0-0"})
    assert status == 416 and h["Content-Range"] == "bytes */0"
    loc = fetch(f"{hub.api_url}/org/model/resolve/main/config.json")[1]["Location"]
    status, h, body = fetch(hub.api_url + loc, headers={"Range": "bytes=3-5"})
    assert status == 206 and body == hub.files("org/model")["config.json"][3:6]


def test_cdn_refuses_authorization_and_bad_signatures(hub):
    url = signed_url(hub, SHARD_NAME, token=ALICE)
    status, _, body = fetch(url, headers={"Authorization": f"Bearer {ALICE}"})
    assert status == 400 and b"InvalidArgument" in body
    status, _, body = fetch(url.replace("X-Amz-Expires=3600", "X-Amz-Expires=99999"))
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    assert fetch(url)[0] == 200


def test_signed_url_expires(data, tmp_path):
    with FakeHub(data, tmp_path, url_ttl=1) as h:
        url = signed_url(h, SHARD_NAME)
        issued = time.mktime(time.strptime(url.split("X-Amz-Date=")[1][:16], "%Y%m%dT%H%M%SZ"))
        issued -= time.timezone
        while time.time() < issued + 1.05:
            time.sleep(0.05)
        status, _, body = fetch(url)
        assert status == 403 and b"Request has expired" in body


def test_expire_fault_counts_uses_per_issued_url(hub):
    hub.set_faults([{"host": "cdn", "fault": "expire", "after": 1}])
    url = signed_url(hub, SHARD_NAME)
    assert fetch(url, headers={"Range": "bytes=0-0"})[0] == 206
    status, _, body = fetch(url, headers={"Range": "bytes=0-0"})
    assert status == 403 and b"AccessDenied" in body
    assert fetch(signed_url(hub, SHARD_NAME), headers={"Range": "bytes=0-0"})[0] == 206
    cdn = [e["fault"] for e in hub.log_entries() if e["host"] == "cdn"]
    assert cdn == [None, "expire", None]


# --- auth and errors (§5) ------------------------------------------------------------------------

@pytest.mark.parametrize("repo,kind,token,status,code,message", [
    ("org/absent", "api", None, 401, "RepoNotFound", "Invalid username or password."),
    ("org/absent", "api", ALICE, 404, "RepoNotFound", "Repository not found"),
    ("org/private", "api", None, 401, "RepoNotFound", "Invalid username or password."),
    ("org/private", "file", BOB, 404, "RepoNotFound", "Repository not found"),
    ("org/private", "file", ALICE, 200, None, None),
    ("org/gated", "file", None, 401, "GatedRepo", "restricted"),
    ("org/gated", "file", BOB, 403, "GatedRepo", "not in the authorized list"),
    ("org/gated", "api", None, 200, None, None),  # gating guards contents, not listings
    ("org/model", "api", "hf_wrong", 401, None, "Invalid credentials in Authorization header"),
    ("org/model", "file", "hf_wrong", 401, None, "Invalid credentials in Authorization header"),
    ("org/disabled", "api", None, 403, None, "Access to this resource is disabled."),
])
def test_auth_table(hub, repo, kind, token, status, code, message):
    url = (f"{hub.api_url}/api/models/{repo}/revision/main" if kind == "api" else
           f"{hub.api_url}/{repo}/resolve/main/config.json")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for method in ("HEAD", "GET"):
        got, h, body = fetch(url, method, headers)
        assert got == status, (method, body)
        assert h.get("X-Error-Code") == code
        if message:
            assert message in h["X-Error-Message"]
            assert (json.loads(body)["error"] == h["X-Error-Message"] if method == "GET"
                    else body == b"")
        assert h["X-Request-Id"]


def test_missing_revision_and_path(hub):
    status, h, _ = fetch(f"{hub.api_url}/org/model/resolve/v404/config.json", "HEAD")
    assert (status, h["X-Error-Code"]) == (404, "RevisionNotFound")
    status, h, body = fetch(f"{hub.api_url}/org/model/resolve/main/nope.txt")
    assert (status, h["X-Error-Code"]) == (404, "EntryNotFound")
    assert h["X-Repo-Commit"] == hub.commit("org/model") and json.loads(body)["error"]


def test_keep_alive_across_replies_of_every_kind(hub):
    u = urlsplit(hub.api_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        for method, path in (("HEAD", "/org/model/resolve/main/config.json"),
                             ("GET", "/api/models/org/absent"), ("HEAD", "/api/models/org/absent"),
                             ("GET", "/org/model/resolve/main/empty.txt"),
                             ("GET", "/api/models/org/model/tree/main")):
            conn.request(method, path)
            resp = conn.getresponse()
            resp.read()
            assert not resp.will_close, path
    finally:
        conn.close()
    assert len(hub.log_entries()) == 5


# --- faults --------------------------------------------------------------------------------------

def test_status_fault_with_retry_after_skip_and_count(hub):
    hub.set_faults([{"host": "api", "method": "GET", "path_re": "/revision/", "fault": "status",
                     "status": 503, "retry_after": 7, "skip": 1, "count": 2}])
    url = f"{hub.api_url}/api/models/org/model/revision/main"
    got = [fetch(url) for _ in range(4)]
    assert [g[0] for g in got] == [200, 503, 503, 200]
    assert got[1][1]["Retry-After"] == "7" and json.loads(got[1][2])["error"]
    [rule] = hub.get_faults()
    assert (rule["matched"], rule["fired"]) == (4, 2)
    assert [e["fault"] for e in hub.log_entries() if "revision" in e["path"]] == [
        None, "status", "status", None]


def test_429_ratelimit_headers(hub):
    hub.set_faults([{"fault": "status", "status": 429, "count": 1,
                     "ratelimit": {"bucket": "resolvers", "r": 0, "t": 42}}])
    status, h, _ = fetch(f"{hub.api_url}/org/model/resolve/main/config.json", "HEAD")
    assert status == 429
    assert h["RateLimit"] == '"resolvers";r=0;t=42'
    assert h["RateLimit-Policy"] == '"fixed window";"resolvers";q=3000;w=300'


def test_reset_mid_body(hub):
    url = signed_url(hub, SHARD_NAME)
    hub.set_faults([{"host": "cdn", "fault": "reset", "at_byte": 1000, "count": 1}])
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        fetch(url)
    assert fetch(url)[2] == hub.files("org/model")[SHARD_NAME]
    first = [e for e in hub.log_entries() if e["host"] == "cdn"][0]
    assert (first["fault"], first["bytes"], first["status"]) == ("reset", 1000, 200)


def test_truncate_sends_a_short_body(hub):
    url = signed_url(hub, SHARD_NAME)
    hub.set_faults([{"host": "cdn", "fault": "truncate", "at_byte": 5000}])
    with pytest.raises(http.client.IncompleteRead) as e:
        fetch(url)
    assert len(e.value.partial) == 5000


def test_stall_then_close(hub):
    url = signed_url(hub, SHARD_NAME)
    hub.set_faults([{"host": "cdn", "fault": "stall", "at_byte": 10, "seconds": 1}])
    with pytest.raises((socket.timeout, TimeoutError)):
        fetch(url, timeout=0.3)


def test_corrupt_flips_bytes_at_a_file_offset(hub):
    data = hub.files("org/model")[SHARD_NAME]
    url = signed_url(hub, SHARD_NAME)
    hub.set_faults([{"host": "cdn", "fault": "corrupt", "at_byte": 150_000, "length": 3}])
    status, _, body = fetch(url, headers={"Range": "bytes=100000-199999"})
    assert status == 206 and len(body) == 100_000
    diff = [i for i in range(len(body)) if body[i] != data[100_000 + i]]
    assert diff == [50_000, 50_001, 50_002]
    # A range that misses the offset is untouched, and the rule does not count it.
    assert fetch(url, headers={"Range": "bytes=0-99"})[2] == data[:100]


def test_trickle_ignore_range_and_gzip(hub):
    data = hub.files("org/model")
    url = signed_url(hub, SHARD_NAME)
    hub.set_faults([{"host": "cdn", "fault": "trickle", "rate": 2_000_000, "count": 1},
                    {"host": "cdn", "fault": "ignore_range", "count": 1}])
    status, _, body = fetch(url, headers={"Range": "bytes=0-9999"})
    assert status == 200 and body == data[SHARD_NAME]
    assert hub.log_entries()[-1]["fault"] == "ignore_range+trickle"
    hub.set_faults([{"host": "api", "fault": "gzip"}])
    cache = hub.api_url + fetch(f"{hub.api_url}/org/model/resolve/main/config.json"
                                )[1]["Location"].split("?")[0]
    # http.client sends "Accept-Encoding: identity" unless told otherwise.
    status, h, body = fetch(cache, headers={"Range": "bytes=0-9", "Accept-Encoding": "gzip"})
    assert status == 200 and h["Content-Encoding"] == "gzip" and "Content-Length" not in h
    assert gzip.decompress(body) == data["config.json"]
    status, h, body = fetch(cache, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in h and body == data["config.json"]


def test_rename_redirects_relatively(hub):
    hub.set_faults([{"fault": "rename", "from": "org/old-name", "to": "org/model"}])
    status, h, _ = fetch(f"{hub.api_url}/api/models/org/old-name/revision/main?blobs=true")
    assert status == 307 and h["Location"] == "/api/models/org/model/revision/main?blobs=true"
    status, h, _ = fetch(f"{hub.api_url}/org/old-name/resolve/main/config.json", "HEAD")
    assert status == 307 and h["Location"] == "/org/model/resolve/main/config.json"
    assert fetch(f"{hub.api_url}/api/models/org/model")[0] == 200


def test_bad_rules_are_refused_and_control_is_never_faulted(hub):
    for bad in ([{"fault": "nope"}], [{"fault": "status"}], [{"fault": "reset", "at-byte": 1}],
                {"fault": "reset"}, [{"fault": "trickle", "rate": "fast"}]):
        with pytest.raises(ValueError):
            hub.set_faults(bad)
    hub.set_faults([{"fault": "status", "status": 500}])
    assert hub.get_faults()[0]["status"] == 500
    hub.reset()
    assert hub.get_faults() == []


# --- the request log -----------------------------------------------------------------------------

def test_log_records_requests(hub):
    url = signed_url(hub, SHARD_NAME, token=ALICE)
    fetch(url, headers={"Range": "bytes=0-99", "User-Agent": "hffs/test"})
    api, cdn = hub.log_entries()
    assert api == {"t": api["t"], "host": "api", "method": "HEAD",
                   "path": f"/org/model/resolve/main/{SHARD_NAME}", "query": None,
                   "authorization": f"Bearer {ALICE}", "range": None,
                   "user_agent": api["user_agent"], "status": 302, "bytes": 0, "fault": None}
    assert (cdn["host"], cdn["method"], cdn["authorization"], cdn["range"], cdn["user_agent"],
            cdn["status"], cdn["bytes"]) == ("cdn", "GET", None, "bytes=0-99", "hffs/test",
                                             206, 100)
    assert cdn["path"].startswith("/lfs/") and "X-Amz-Signature=" in cdn["query"]
    assert api["t"] <= cdn["t"] <= time.time()
    status, _, body = fetch(f"{hub.api_url}/_fake/log")
    assert status == 200 and len(json.loads(body)) >= 2


def _start_hub(data, tmp_path, port_file, cwd):
    cmd = [sys.executable, str(Path(__file__).resolve().parent / "fakehub.py"), "--data",
           str(data), "--port-file", str(port_file), "--log", str(tmp_path / "log.jsonl")]
    return subprocess.Popen(cmd, cwd=cwd, stderr=subprocess.PIPE)


def test_port_file_may_be_a_bare_name(data, tmp_path):
    proc = _start_hub(data, tmp_path, "ports.json", tmp_path)
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "ports.json").exists() and proc.poll() is None and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()
        assert json.loads((tmp_path / "ports.json").read_text())["pid"] == proc.pid
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_a_port_file_that_cannot_be_written_ends_the_hub(data, tmp_path):
    """A hub whose ports nobody can learn must not go on serving."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = _start_hub(data, tmp_path, blocker / "ports.json", tmp_path)
    try:
        assert proc.wait(timeout=10) != 0
        assert b"ports.json" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
