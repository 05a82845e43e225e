"""Tests of the fake Xet CAS: the spec's chunking and hashing against reference vectors, xorbs,
repos made with genrepo --xet, the CAS as served, its faults, and the official JS client.

Run: /usr/bin/python3 -m pytest tests/fakehub/test_xet.py
"""
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import genrepo  # noqa: E402
import repostore  # noqa: E402
import xet  # noqa: E402
import xetstore  # noqa: E402
from fakehub_fixture import FakeHub  # noqa: E402

HERE = Path(__file__).resolve().parent
ALICE = "hf_alice_valid"
TOKENS = {ALICE: {"user": "alice", "gated_approved": []}}
PROBE = {"Accept": "application/vnd.xet-fileinfo+json, */*", "Range": "bytes=0-0"}
SHARDS, SHARD = 10, 400_000
CHANGED_TENSOR = "model.layers.3.self_attn.q_proj.weight"  # the middle tensor of shard 4

# Reference values of xet-core's aggregated-hash test (xet_core_structures/src/merklehash/
# aggregated_hashes.rs, test_correctness): eight chunk hashes (as strings, api.md), then node
# lists given as indices into them, each node sized index * 100, with the xorb hash and the file
# hash (salt zero) of each list. They check BLAKE3's keyed mode, both keys, the hash strings
# and the merkle tree's shape (the 64-node list has three levels).
REF_HASHES = ["0" * 64,
              "cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6",
              "c3e67584b5c4fc2a89837ec39e40f2c8a6bb0b2987ac94cd4b31e5fbdd210a72",
              "0d2beb91b9196929a5ddec9f6e306924ddf4a24268e3e59fd8464738d525af37",
              "adf8773496a9b7319b2e50dc98093f344053b17d8ad37100b9c07d9805988784",
              "4ac202caf347fc1e9c874b1ef6a1c5e619141eb775a6f43f0f0124ccd0060d9e",
              "b3b28636f65c149ea52eb1f94669466f70f033b54cea792824c696ba6ef3c389",
              "0e2c1a002aae913d2c0fc8ddfa4e9e14b7b311b3b0d458726d5d9f6a6318013c"]
REF_TREES = [
    ([], "0" * 64, "0" * 64),
    ([1], REF_HASHES[1], "8e16257caa3fe079d484d872a8975264b2ff683b0d6db9028cc7c0f968a45661"),
    ([1, 2, 3], "71ec1275fca074724e2dd666921b3277c7cee603e4d025bcab2d4050015be2bc",
     "54e55dccc6653c612bdb5576c5d3cb34bb31bc4e100248abccf4c908b3ef7715"),
    ([1, 2, 1, 2, 3, 4], "52c826f99507aa05d0b45e9837fa1709e0485425cfbcb1e80db3905cf98b3ee9",
     "91d21684db364c8883ab8209fa5eb2e781cf07f37e1fa43e731c30839afe422f"),
    (list(range(8)), "f62abe77e3fb9c954fe52b0028027ddc90c064c45951a4fd2211d87e5c0011db",
     "d1b068be5bbdb38992269e8efe61f601881e39f7a7585fd76883cc6ea5c23b44"),
    ([i % 8 for i in range(64)],
     "6554007c9b5d0a5e7918f79596a1b68815c1407535585435f5735db761f21b88",
     "a8640ab81d48854e00078e12b1ea8be5d90be0ffb5f73a15b7009981d093ddd8"),
    (list(range(8)) + [1] * 4, "e7fc30b73ec9930593f80fe777b334e9d3bb73e45e6a79fa5784b2603446158b",
     "69e1af2fd6023ce133e0d1b90e32d1d42ef79f5a710f2b0accfc3a735e98de9d"),
    ([i // 2 for i in range(16)],
     "636c65db520ec16e8166f9ec7a0cf9f74b26369077ac60160ec0221c86bc9f77",
     "6a90ad0d6f5246ac61f1de898c6944c03e14004a1368e6fb23387108c4d039e0"),
]


def splitmix64_bytes(n, seed):
    """The test data of xet-core's chunker tests: SplitMix64 outputs as little-endian bytes."""
    out, state, m = bytearray(), seed, (1 << 64) - 1
    while len(out) < n:
        state = (state + 0x9E3779B97F4A7C15) & m
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        out += (z ^ (z >> 31)).to_bytes(8, "little")
    return bytes(out[:n])


# --- the spec's functions --------------------------------------------------------------------------

@pytest.mark.parametrize("indices,xorb_hex,file_hex", REF_TREES)
def test_merkle_reference_vectors(indices, xorb_hex, file_hex):
    nodes = [(xet.hex_hash(REF_HASHES[i]), i * 100) for i in indices]
    assert xet.hash_hex(xet.xorb_hash(nodes)) == xorb_hex
    assert xet.hash_hex(xet.file_hash(nodes)) == file_hex


def test_hash_strings_reverse_each_8_bytes():
    """api.md's example: bytes 0..31 print as 0706050403020100 0f0e0d0c0b0a0908 ... (the
    spec's text drops the "10" of the third group, a typo: its byte list has it)."""
    raw = bytes(range(32))
    s = xet.hash_hex(raw)
    assert s == "07060504030201000f0e0d0c0b0a09081716151413121110" "1f1e1d1c1b1a1918"
    assert xet.hex_hash(s) == raw


def test_chunk_boundaries_reference_vectors():
    """xet-core's chunker tests (xet_data/src/deduplication/chunking.rs): 1 MB of SplitMix64
    data (seed 0), and 1 MB of one byte value (every chunk at the 128 KiB maximum)."""
    data = splitmix64_bytes(1_000_000, 0)
    assert (data[0], data[127], data[111111]) == (175, 132, 118)
    assert xet.chunk_ends(data) == [
        84493, 134421, 144853, 243318, 271793, 336457, 467529, 494581, 582000, 596735, 616815,
        653164, 678202, 724510, 815591, 827760, 958832, 991092, 1000000]
    assert xet.chunk_ends(bytes([59]) * 1_000_000) == [131072 * i for i in range(1, 8)] + [1000000]


def test_chunking_follows_the_rule_bytewise():
    """The vectorised chunker against the spec's byte-by-byte pseudocode, on data whose
    boundaries fall at varied places (min-size skips, mask hits, forced max cuts)."""
    data = splitmix64_bytes(300_000, 7) + bytes(200_000) + splitmix64_bytes(150_000, 8)
    ends, h, start = [], 0, 0
    table = [int(v) for v in xet.GEAR_TABLE]
    for i, b in enumerate(data):
        h = ((h << 1) + table[b]) & ((1 << 64) - 1)
        size = i + 1 - start
        if size < xet.MIN_CHUNK:
            continue
        if size >= xet.MAX_CHUNK or h & xet.MASK == 0:
            ends.append(i + 1)
            start, h = i + 1, 0
    if start < len(data):
        ends.append(len(data))
    assert xet.chunk_ends(data) == ends
    assert xet.chunk_ends(b"") == [] and xet.chunk_ends(b"x") == [1]


def test_chunk_serialization_round_trip_in_every_scheme():
    floats = bytes(b for i in range(20000) for b in (i % 251, (i * 7) % 256, 0x3c, 0xbc))
    for data in (splitmix64_bytes(70_000, 3), b'{"a": 1}' * 4000, floats, b"", b"abc"):
        for scheme in (xet.SCHEME_NONE, xet.SCHEME_LZ4, xet.SCHEME_BG4_LZ4):
            blob = xet.serialize_chunk(data, scheme)
            assert blob[0] == 0 and blob[4] == scheme
            assert int.from_bytes(blob[5:8], "little") == len(data)
            assert xet.decode_chunks(blob) == [(scheme, data)]
    # The writer's own choice: incompressible data raw, text LZ4, float-like data BG4.
    assert xet.compress(splitmix64_bytes(70_000, 3))[0] == xet.SCHEME_NONE
    assert xet.compress(b'{"a": 1}' * 4000)[0] == xet.SCHEME_LZ4
    assert xet.compress(floats)[0] == xet.SCHEME_BG4_LZ4
    assert xet.bg4_group(b"ABCDABCDAB") == b"AAABBBCCDD"
    assert xet.bg4_ungroup(b"AAABBBCCDD") == b"ABCDABCDAB"


def test_decode_refuses_malformed_chunks():
    good = xet.serialize_chunk(b"x" * 100, xet.SCHEME_NONE)
    for bad in (good[:5], good[:-1], b"\x01" + good[1:], good[:4] + b"\x07" + good[5:]):
        with pytest.raises(ValueError):
            xet.decode_chunks(bad)


# --- repos made with genrepo --xet ---------------------------------------------------------------

def xorb_files(data):
    """{xorb hash string: serialized size} of every xorb in the CAS."""
    root = Path(xetstore.xet_dir(data)) / "xorbs"
    return {p.name: p.stat().st_size for p in root.glob("*/*") if not p.name.endswith(".json")}


def new_raw_bytes(data, before):
    """Chunk bytes (uncompressed) of the xorbs made since `before` (xorb_files())."""
    total = 0
    for name in set(xorb_files(data)) - set(before):
        with open(xetstore.xorb_index_path(data, name)) as f:
            total += sum(c[3] for c in json.load(f)["chunks"])
    return total


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """org/xet: main (A), then B = A with one tensor changed (tag "b"), then C = A with one
    shard of ten changed (tag "c"); org/xet-copy: A's files under another id; org/private (Xet,
    private); org/lfs: not Xet. Records the new xorb bytes of each step."""
    d = tmp_path_factory.mktemp("xetdata")
    gen = dict(shards=SHARDS, shard_size=SHARD)
    genrepo.generate(d, "org/xet", tags=["a"], xet=True, **gen)
    steps = {}
    before = xorb_files(d)
    genrepo.generate(d, "org/xet", tags=["b"], from_commit_of="a",
                     change_tensors=[CHANGED_TENSOR])
    steps["tensor"] = new_raw_bytes(d, before)
    before = xorb_files(d)
    genrepo.generate(d, "org/xet", revision="c", tags=["c"], from_commit_of="a",
                     change_files=["model-00002-of-00010.safetensors"])
    steps["shard"] = new_raw_bytes(d, before)
    before = xorb_files(d)
    genrepo.generate(d, "org/xet-copy", xet=True, **gen)
    steps["copy"] = new_raw_bytes(d, before)
    genrepo.generate(d, "org/private", private=True, xet=True, shards=1, shard_size=SHARD,
                     seed=5)
    genrepo.generate(d, "org/gated", gated="manual", xet=True, shards=1, shard_size=4096)
    genrepo.generate(d, "org/lfs", shards=1, shard_size=SHARD)
    (d / "steps.json").write_text(json.dumps(steps))
    return d


@pytest.fixture(scope="module")
def hub(data, tmp_path_factory):
    h = FakeHub(data, tmp_path_factory.mktemp("xet-data"), tokens=TOKENS)
    h.start()
    try:
        yield h
    finally:
        h.stop()
        assert h.server_errors() == ""


@pytest.fixture(autouse=True)
def no_faults(request):
    if "hub" in request.fixturenames:
        h = request.getfixturevalue("hub")
        h.reset()
        h.clear_log()


def fetch(url, method="GET", headers=None, timeout=10):
    """(status, headers with lowercase names, body) of one request, no redirects."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, u.path + (f"?{u.query}" if u.query else ""), headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def links(value):
    """rel -> URL of a Link header (the JS client's parsing, XET_CLIENTS.md)."""
    return {rel: url for url, rel in re.findall(r'<(https?://[^>]+)>;\s+rel="([^"]+)"', value)}


def probe(hub, repo, rev, path, token=None):
    headers = dict(PROBE, **({"Authorization": f"Bearer {token}"} if token else {}))
    return fetch(f"{hub.api_url}/{repo}/resolve/{rev}/{path}", headers=headers)


def cas_token(hub, repo, rev, path, token=None):
    """(access token, reconstruction URL) as a client gets them: probe, then the xet-auth link."""
    status, h, _ = probe(hub, repo, rev, path, token)
    assert status == 200, (status, h)
    rel = links(h["link"])
    status, _, body = fetch(rel["xet-auth"],
                            headers={"Authorization": f"Bearer {token}"} if token else {})
    assert status == 200
    return json.loads(body)["accessToken"], rel["xet-reconstruction-info"]


def multipart_parts(content_type, body):
    """The parts of a multipart/byteranges body: [(Content-Range, bytes)]."""
    boundary = re.search(r"boundary=([^;\s]+)", content_type).group(1).encode()
    parts = []
    for piece in body.split(b"--" + boundary)[1:]:
        if piece.startswith(b"--"):
            break
        head, _, payload = piece[2:].partition(b"\r\n\r\n")
        assert payload.endswith(b"\r\n")
        crange = re.search(rb"Content-Range: bytes (\d+-\d+/\d+)", head).group(1).decode()
        parts.append((crange, payload[:-2]))
    return parts


def reconstruction(hub, token, url, version="v2", rng=None):
    url = url.replace("/v1/reconstructions/", f"/{version}/reconstructions/")
    headers = {"Authorization": f"Bearer {token}"}
    if rng:
        headers["Range"] = rng
    return fetch(url, headers=headers)


def download(hub, token, url, version="v2", first=0, last=None):
    """File bytes first..last (inclusive; None: to the end) through the CAS, as the spec's
    download protocol does, in Python. Raises ValueError on anything malformed."""
    status, _, body = reconstruction(hub, token, url, version,
                                     f"bytes={first}-{'' if last is None else last}")
    if status != 200:
        raise ValueError(f"reconstruction: {status} {body!r}")
    plan = json.loads(body)
    chunks = {}
    if version == "v2":
        fetches = [(x, e["url"], [(r["chunks"], r["bytes"]) for r in e["ranges"]])
                   for x, entries in plan["xorbs"].items() for e in entries]
    else:
        fetches = [(x, e["url"], [(e["range"], e["url_range"])])
                   for x, entries in plan["fetch_info"].items() for e in entries]
    for xorb, xurl, ranges in fetches:
        rng = "bytes=" + ",".join(f"{b['start']}-{b['end']}" for _, b in ranges)
        status, h, body = fetch(xurl, headers={"Range": rng})
        if status != 206:
            raise ValueError(f"xorb {xorb}: {status} {body[:200]!r}")
        parts = ([p for _, p in multipart_parts(h["content-type"], body)] if len(ranges) > 1
                 else [body])
        if len(parts) != len(ranges):
            raise ValueError("part count")
        for (crange, _), part in zip(ranges, parts):
            decoded = xet.decode_chunks(part)
            if len(decoded) != crange["end"] - crange["start"]:
                raise ValueError("chunk count")
            for i, (_, raw) in enumerate(decoded):
                chunks[(xorb, crange["start"] + i)] = raw
    out = b""
    for t in plan["terms"]:
        piece = b"".join(chunks[(t["hash"], i)] for i in range(t["range"]["start"],
                                                                t["range"]["end"]))
        if len(piece) != t["unpacked_length"]:
            raise ValueError("unpacked length")
        out += piece
    out = out[plan["offset_into_first_range"]:]
    return out if last is None else out[:last - first + 1]


def xet_files(hub, repo, rev):
    """{path: record} of the revision's Xet files."""
    manifest = repostore.read_manifest(hub.data_dir, "model", repo)
    commit = repostore.Repo(manifest).commits[hub.commit(repo, rev)]
    return {p: f for p, f in commit.files.items() if f.get("xet")}


def test_genrepo_xet_round_trip(hub):
    """Every LFS file of every revision rebuilds from the CAS (v1 and v2) to its bytes; its
    file hash is the spec's over its chunks; regular files are not on Xet."""
    for rev in ("a", "b", "c"):
        files = hub.files("org/xet", rev)
        on_xet = xet_files(hub, "org/xet", rev)
        assert set(on_xet) == {p for p in files if p.endswith((".safetensors", ".bin"))}
        for path, f in on_xet.items():
            content = files[path]
            assert f["xet"]["hash"] == xet.hash_hex(xet.file_hash(
                (h, len(c)) for h, c in xet.chunks(content)))
            token, url = cas_token(hub, "org/xet", rev, path)
            for version in ("v1", "v2"):
                assert download(hub, token, url, version) == content, (rev, path, version)


def test_dedup_across_revisions_and_repos(hub, data):
    """New xorb bytes follow what changed: one tensor, one shard of ten, nothing for a copy."""
    steps = json.loads((data / "steps.json").read_text())
    a, b = hub.files("org/xet", "a"), hub.files("org/xet", "b")
    changed = [p for p in a if a[p] != b[p]]
    assert changed == ["model-00004-of-00010.safetensors"]
    spans = {t[0]: t[4] - t[3] for t in genrepo.safetensors_spans(a[changed[0]])}
    tensor = spans[CHANGED_TENSOR]
    # The changed bytes plus at most the chunk on either side of them.
    assert tensor <= steps["tensor"] <= tensor + 2 * xet.MAX_CHUNK
    shard = len(hub.files("org/xet", "c")["model-00002-of-00010.safetensors"])
    lfs_total = sum(len(v) for p, v in a.items() if p.endswith(".safetensors"))
    assert shard // 2 <= steps["shard"] <= shard + 2 * xet.MAX_CHUNK
    assert steps["shard"] <= 0.15 * lfs_total, "a tenth of the tensors, about a tenth new bytes"
    assert steps["copy"] == 0
    copy = xet_files(hub, "org/xet-copy", "main")
    assert {p: f["xet"]["hash"] for p, f in copy.items()} == {
        p: f["xet"]["hash"] for p, f in xet_files(hub, "org/xet", "a").items()}
    # The changed file reuses its old chunks: its first and last terms point into A's xorb,
    # the new chunks between them into another.
    rec = json.loads(Path(xetstore.file_path(data, xet_files(hub, "org/xet", "b")[
        changed[0]]["xet"]["hash"])).read_text())
    old = json.loads(Path(xetstore.file_path(data, xet_files(hub, "org/xet", "a")[
        changed[0]]["xet"]["hash"])).read_text())
    xorbs = [t[0] for t in rec["terms"]]
    assert len(rec["terms"]) >= 3 and xorbs[0] == xorbs[-1] == old["terms"][0][0]
    assert any(x != xorbs[0] for x in xorbs[1:-1])


def test_genrepo_cli_xet(tmp_path):
    """The contract flag from the command line, with other options: a dataset with a tag and
    a PR changing a file; a model whose next commit changes a tensor (a Xet repo stays one)."""
    cli = [sys.executable, str(Path(__file__).resolve().parent / "genrepo.py"), str(tmp_path)]

    def run(*args):
        return subprocess.run(cli + list(args), capture_output=True, text=True, timeout=120)
    r = run("--repo", "org/ds", "--type", "dataset", "--xet", "--tag", "v1", "--shards", "2",
            "--shard-size", "70000")
    assert r.returncode == 0, r.stderr
    r = run("--repo", "org/ds", "--type", "dataset", "--from-commit-of", "v1",
            "--change-file", "data/train-00001-of-00002.bin", "--pr", "1")
    assert r.returncode == 0, r.stderr
    r = run("--repo", "org/m", "--xet", "--shards", "1", "--shard-size", "70000")
    assert r.returncode == 0, r.stderr
    r = run("--repo", "org/m", "--from-commit-of", "main", "--change-tensor", "nope")
    assert r.returncode != 0 and "nope" in r.stderr
    r = run("--repo", "org/m", "--from-commit-of", "main", "--change-tensor",
            "model.layers.0.attn_mask")
    assert r.returncode == 0, r.stderr
    store = xetstore.XetStore(tmp_path)
    for repo, rtype, rev in (("org/ds", "dataset", "v1"), ("org/ds", "dataset", "refs/pr/1"),
                             ("org/m", "model", "main")):
        manifest = repostore.read_manifest(tmp_path, rtype, repo)
        commit = repostore.Repo(manifest).commits[repostore.commit_sha(tmp_path, repo, rev,
                                                                       rtype)]
        files = repostore.read_files(tmp_path, repo, rev, rtype)
        lfs = {p for p, f in commit.files.items() if f["lfs"]}
        assert lfs and {p for p, f in commit.files.items() if f.get("xet")} == lfs
        for p in lfs:
            rec = store.file(commit.files[p]["xet"]["hash"])
            assert rec["size"] == len(files[p]) and sum(t[3] for t in rec["terms"]) == len(files[p])


def test_tree_and_paths_info_carry_xet_hash(hub):
    status, _, body = fetch(f"{hub.api_url}/api/models/org/xet/tree/b?recursive=true")
    assert status == 200
    entries = {e["path"]: e for e in json.loads(body) if e["type"] == "file"}
    on_xet = xet_files(hub, "org/xet", "b")
    for path, e in entries.items():
        assert e.get("xetHash") == (on_xet[path]["xet"]["hash"] if path in on_xet else None)
    conn = http.client.HTTPConnection(*urlsplit(hub.api_url).netloc.split(":"), timeout=10)
    conn.request("POST", "/api/models/org/xet/paths-info/b",
                 body=json.dumps({"paths": ["tiny.bin", "config.json"]}),
                 headers={"Content-Type": "application/json"})
    got = {e["path"]: e.get("xetHash") for e in json.loads(conn.getresponse().read())}
    conn.close()
    assert got == {"tiny.bin": on_xet["tiny.bin"]["xet"]["hash"], "config.json": None}


def test_resolve_probe_and_bridge(hub):
    """The probe is answered without a redirect (XET_CLIENTS.md §1); a plain resolve still
    redirects to the CDN, which serves the whole file (the bridge), with the Xet headers."""
    path = "model-00001-of-00010.safetensors"
    f = xet_files(hub, "org/xet", "main")[path]
    commit = hub.commit("org/xet", "main")
    for method in ("GET", "HEAD"):
        status, h, body = fetch(f"{hub.api_url}/org/xet/resolve/main/{path}", method, PROBE)
        assert status == 200 and h["content-type"] == "application/vnd.xet-fileinfo+json"
        assert h["x-xet-hash"] == f["xet"]["hash"] and h["x-linked-size"] == str(f["size"])
        assert h["x-linked-etag"] == f'"{f["sha256"]}"' and h["x-repo-commit"] == commit
        rel = links(h["link"])
        assert rel["xet-auth"] == f"{hub.api_url}/api/models/org/xet/xet-read-token/{commit}"
        assert rel["xet-reconstruction-info"] == (
            f"{hub.cas_url}/v1/reconstructions/{f['xet']['hash']}")
        assert (body == b"") == (method == "HEAD")
    status, h, _ = fetch(f"{hub.api_url}/org/xet/resolve/main/{path}")
    assert status == 302 and h["x-xet-hash"] == f["xet"]["hash"] and "xet-auth" in h["link"]
    status, _, body = fetch(h["location"])
    assert status == 200 and body == hub.files("org/xet")[path]
    # Not on Xet: the probe gets the plain answers.
    status, h, _ = probe(hub, "org/lfs", "main", "model-00001-of-00001.safetensors")
    assert status == 302 and "x-xet-hash" not in h
    status, h, _ = probe(hub, "org/xet", "main", "config.json")
    assert status == 307 and "x-xet-hash" not in h


def test_read_token_like_the_hub(hub):
    """auth.md: {accessToken, exp, casUrl} (and X-Xet-* headers), with the Hub's access rules."""
    url = f"{hub.api_url}/api/models/org/private/xet-read-token/main"
    status, h, _ = fetch(url)
    assert status == 401 and h["x-error-code"] == "RepoNotFound"
    status, h, body = fetch(url, headers={"Authorization": f"Bearer {ALICE}"})
    assert status == 200
    tok = json.loads(body)
    assert tok["casUrl"] == hub.cas_url and tok["exp"] > time.time()
    assert h["x-xet-access-token"] == tok["accessToken"] and h["x-xet-cas-url"] == hub.cas_url
    status, _, _ = fetch(f"{hub.api_url}/api/models/org/xet/xet-read-token/nope")
    assert status == 404
    gated = f"{hub.api_url}/api/models/org/gated/xet-read-token/main"
    status, h, _ = fetch(gated)
    assert status == 401 and h["x-error-code"] == "GatedRepo"
    status, h, _ = fetch(gated, headers={"Authorization": f"Bearer {ALICE}"})
    assert status == 403 and h["x-error-code"] == "GatedRepo"
    path = "model-00001-of-00001.safetensors"
    token, recon = cas_token(hub, "org/private", "main", path, ALICE)
    assert download(hub, token, recon) == hub.files("org/private")[path]


def test_cas_refuses_bad_tokens(hub):
    path = "model-00001-of-00010.safetensors"
    token, url = cas_token(hub, "org/xet", "main", path)
    v2 = url.replace("/v1/", "/v2/")
    assert fetch(v2)[0] == 401
    assert fetch(v2, headers={"Authorization": f"Bearer {token}x"})[0] == 401
    assert fetch(v2, headers={"Authorization": f"Bearer {ALICE}"})[0] == 401
    # A token reads its own repo's files only.
    other, _ = cas_token(hub, "org/private", "main", "model-00001-of-00001.safetensors", ALICE)
    assert fetch(v2, headers={"Authorization": f"Bearer {other}"})[0] == 404
    assert fetch(v2.replace(v2[-64:], "0" * 64),
                 headers={"Authorization": f"Bearer {token}"})[0] == 404
    # The expire fault: a token works twice, then the CAS calls it expired.
    hub.set_faults([{"host": "cas", "fault": "expire", "after": 2}])
    token, _ = cas_token(hub, "org/xet", "main", path)
    codes = [fetch(v2, headers={"Authorization": f"Bearer {token}"})[0] for _ in range(3)]
    assert codes == [200, 200, 401]
    token, _ = cas_token(hub, "org/xet", "main", path)  # a fresh token counts afresh
    assert fetch(v2, headers={"Authorization": f"Bearer {token}"})[0] == 200


def test_reconstruction_ranges(hub):
    """Range in file bytes: the terms cover exactly the chunks holding it, and
    offset_into_first_range places its first byte; 416 at or past EOF."""
    path = "model-00004-of-00010.safetensors"
    content = hub.files("org/xet", "b")[path]
    size = len(content)
    token, url = cas_token(hub, "org/xet", "b", path)
    ends = xet.chunk_ends(content)
    cases = [(0, 0), (1, 100), (ends[0] - 1, ends[0]), (ends[2] + 5, ends[5] + 7),
             (size - 1, size - 1), (size - 300, size + 1000), (12345, None)]
    for first, last in cases:
        want = content[first:None if last is None else last + 1]
        for version in ("v1", "v2"):
            assert download(hub, token, url, version, first, last) == want, (first, last)
        status, _, body = reconstruction(hub, token, url, "v2", f"bytes={first}-"
                                         f"{'' if last is None else last}")
        plan = json.loads(body)
        starts = [0] + ends[:-1]
        k = max(i for i, s in enumerate(starts) if s <= first)
        assert plan["offset_into_first_range"] == first - starts[k]
        stop = size - 1 if last is None else min(last, size - 1)
        n = sum(t["range"]["end"] - t["range"]["start"] for t in plan["terms"])
        assert n == sum(1 for s, e in zip(starts, ends) if s <= stop and e > first)
    for rng in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}"):
        assert reconstruction(hub, token, url, "v2", rng)[0] == 416
    assert reconstruction(hub, token, url, "v2", "bytes=5-1")[0] == 400


def test_v2_asks_one_url_for_several_ranges(hub):
    """The changed file uses two disjoint ranges of A's xorb: v2 signs both in one URL, served
    as multipart/byteranges in order; v1 gives one fetch entry per range."""
    path = "model-00004-of-00010.safetensors"
    token, url = cas_token(hub, "org/xet", "b", path)
    plan = json.loads(reconstruction(hub, token, url, "v2")[2])
    multi = [(x, e) for x, entries in plan["xorbs"].items() for e in entries
             if len(e["ranges"]) > 1]
    assert len(multi) == 1
    xorb, entry = multi[0]
    spans = [(r["bytes"]["start"], r["bytes"]["end"]) for r in entry["ranges"]]
    assert "X-Xet-Signed-Range=bytes%3D" in entry["url"]
    hub.clear_log()
    status, h, body = fetch(entry["url"], headers={
        "Range": "bytes=" + ",".join(f"{a}-{b}" for a, b in spans)})
    assert status == 206 and h["content-type"].startswith("multipart/byteranges; boundary=")
    parts = multipart_parts(h["content-type"], body)
    raw = open(xetstore.xorb_path(hub.data_dir, xorb), "rb").read()
    assert [(c.split("/")[0], p) for c, p in parts] == [
        (f"{a}-{b}", raw[a:b + 1]) for a, b in spans]
    assert hub.log_entries()[-1]["bytes"] == len(body)
    # One of the signed ranges alone is fine; anything else is refused.
    a, b = spans[0]
    assert fetch(entry["url"], headers={"Range": f"bytes={a}-{b}"})[0] == 206
    assert fetch(entry["url"], headers={"Range": f"bytes={a}-{b + 1}"})[0] == 403
    assert fetch(entry["url"])[0] == 403
    assert fetch(entry["url"].replace("Signature=", "Signature=0"),
                 headers={"Range": f"bytes={a}-{b}"})[0] == 403
    assert fetch(entry["url"], headers={"Range": f"bytes={a}-{b}",
                                        "Authorization": f"Bearer {token}"})[0] == 400
    v1 = json.loads(reconstruction(hub, token, url, "v1")[2])
    assert len(v1["fetch_info"][xorb]) == 2
    assert download(hub, token, url, "v1") == hub.files("org/xet", "b")[path]


def test_signed_xorb_urls_and_tokens_expire(data, tmp_path):
    """With --url-ttl 1 a xorb URL is refused (403) once its second has passed, and with
    --xet-token-ttl 1 the CAS refuses the token (401); a new token and a new reconstruction
    work again."""
    h = FakeHub(data, tmp_path, url_ttl=1, xet_token_ttl=1)
    h.start()
    try:
        path = "tiny.bin"
        token, url = cas_token(h, "org/xet", "main", path)
        plan = json.loads(reconstruction(h, token, url)[2])
        entry = next(iter(plan["xorbs"].values()))[0]
        rng = "bytes={start}-{end}".format(**entry["ranges"][0]["bytes"])
        assert fetch(entry["url"], headers={"Range": rng})[0] == 206
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status, _, body = fetch(entry["url"], headers={"Range": rng})
            if status != 206:
                break
            time.sleep(0.2)
        assert status == 403 and b"Request has expired" in body
        status, _, body = reconstruction(h, token, url)
        assert status == 401 and b"expired" in body
        token, url = cas_token(h, "org/xet", "main", path)
        assert download(h, token, url) == h.files("org/xet")[path]
    finally:
        h.stop()
    assert h.server_errors() == ""


def test_xorb_faults_and_byte_counts(hub):
    """The faults mechanism applies to the CAS and xorb hosts; the log counts xorb bytes."""
    path = "model-00001-of-00010.safetensors"
    content = hub.files("org/xet")[path]
    token, url = cas_token(hub, "org/xet", "main", path)
    hub.clear_log()
    assert download(hub, token, url) == content
    xorb_log = [e for e in hub.log_entries() if e["path"].startswith("/xorb/")]
    assert xorb_log and all(e["host"] == "cdn" and e["authorization"] is None for e in xorb_log)
    asked = sum(b - a + 1 for e in xorb_log for a, b in
                (map(int, r.split("-")) for r in e["range"][6:].split(",")))
    assert sum(e["bytes"] for e in xorb_log) == asked == hub.xorb_bytes()
    # Corrupt xorb bytes come back as wrong data or a malformed chunk, never silently right.
    hub.set_faults([{"host": "cdn", "path_re": "^/xorb/", "fault": "corrupt", "at_byte": 20000,
                     "length": 4, "count": 1}])
    try:
        assert download(hub, token, url) != content
    except (ValueError, RuntimeError):
        pass
    assert hub.get_faults()[0]["fired"] == 1
    hub.set_faults([{"host": "cdn", "path_re": "^/xorb/", "fault": "truncate", "at_byte": 1000,
                     "count": 1}])
    with pytest.raises((http.client.IncompleteRead, ValueError)):
        download(hub, token, url)
    hub.set_faults([{"host": "cas", "fault": "status", "status": 503, "retry_after": 1,
                     "count": 1}])
    status, h, _ = reconstruction(hub, token, url)
    assert status == 503 and h["retry-after"] == "1"
    hub.set_faults([{"host": "cdn", "path_re": "^/xorb/", "fault": "stall", "at_byte": 100,
                     "seconds": 3, "count": 1}])
    with pytest.raises(OSError):  # socket.timeout
        plan = json.loads(reconstruction(hub, token, url)[2])
        e = next(iter(plan["xorbs"].values()))[0]
        fetch(e["url"], headers={"Range": "bytes={start}-{end}".format(**e["ranges"][0]["bytes"])},
              timeout=1)
    hub.reset()
    assert download(hub, token, url) == content


# --- the official JS client -----------------------------------------------------------------------

JS_FILES = ["model-00004-of-00010.safetensors",  # changed mid-file: a multi-range xorb fetch
            "model-00010-of-00010.safetensors", "tiny.bin"]


def npm_dir():
    return Path(os.environ.get("HFFS_NPM_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hffs-fakehub" / "npm")


@pytest.fixture(scope="module")
def js_client():
    """(node, npm dir) with @huggingface/hub installed there (npm_install.sh, which
    scripts/test runs first); skips when node or the package cannot be had."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not found: the official JS client cannot run")
    r = subprocess.run([str(HERE / "npm_install.sh")], capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        pytest.skip(f"@huggingface/hub not installed: {r.stderr.strip()[-300:]}")
    return node, npm_dir()


def run_js(js_client, hub, tmp_path, repo, files, xorbs=()):
    node, npm = js_client
    request = {"hubUrl": hub.api_url, "repo": repo, "revision": "b" if repo == "org/xet" else
               "main", "dataKey": list(xet.DATA_KEY), "files": files,
               "xorbs": [{"name": x, "chunks": [[c[0], c[3]] for c in json.loads(Path(
                   xetstore.xorb_index_path(hub.data_dir, x)).read_text())["chunks"]]}
                         for x in xorbs]}
    (tmp_path / "request.json").write_text(json.dumps(request))
    r = subprocess.run([node, str(HERE / "xet_js_check.mjs"), str(npm),
                        str(tmp_path / "request.json"), str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_official_js_client_reads_xet_through_the_cas(hub, js_client, tmp_path):
    """@huggingface/hub's downloadFile reads Xet files through the probe, the read token,
    /v2/reconstructions and the xorb ranges (multi-range too), whole and sliced, and gets
    every byte right, as does its XetBlob given only the hash and the token URL (so the
    token's casUrl); the official hashing (xetchunk-wasm, blake3-jit) names the files and
    xorbs as the fake does."""
    content = hub.files("org/xet", "b")
    on_xet = xet_files(hub, "org/xet", "b")
    files = []
    for path in JS_FILES:
        size = len(content[path])
        slices = [[0, 1], [size // 3, size // 3 + 100_000], [size - 7, size]] if size > 1 else []
        files.append({"path": path, "slices": slices,
                      "chunkEnds": xet.chunk_ends(content[path]),
                      "forced": {"hash": on_xet[path]["xet"]["hash"], "size": size,
                                 "refreshUrl": f"{hub.api_url}/api/models/org/xet/"
                                               "xet-read-token/b"}})
    xorbs = {t[0] for p in JS_FILES for t in json.loads(Path(xetstore.file_path(
        hub.data_dir, on_xet[p]["xet"]["hash"])).read_text())["terms"]}
    out = run_js(js_client, hub, tmp_path, "org/xet", files, sorted(xorbs))
    for i, (f, got) in enumerate(zip(files, out["files"])):
        data = content[f["path"]]
        assert got["blob"] == "XetBlob" and got["size"] == len(data)
        assert (tmp_path / f"{i}.bin").read_bytes() == data, f["path"]
        assert (tmp_path / f"{i}-forced.bin").read_bytes() == data, f["path"]
        for j, (a, b) in enumerate(f["slices"]):
            assert (tmp_path / f"{i}-{j}.bin").read_bytes() == data[a:b], (f["path"], a, b)
        assert got["fileHash"] == on_xet[f["path"]]["xet"]["hash"]
        # xetchunk-wasm 0.2.0 cuts where the spec and xet-core do, except that after its
        # min-size skip-ahead it lacks xet-core's "at least MIN_CHUNK" check, so it may cut a
        # chunk up to 65 bytes short. Equal up to its first such cut.
        ours, theirs = f["chunkEnds"], got["jsChunkEnds"]
        n = next((k for k, (x, y) in enumerate(zip(ours, theirs)) if x != y), None)
        if n is None:
            assert ours == theirs
        else:
            start = ours[n - 1] if n else 0
            assert xet.MIN_CHUNK - 65 <= theirs[n] - start < xet.MIN_CHUNK, (f["path"], n)
    assert {x["name"]: x["xorbHash"] for x in out["xorbs"]} == {x: x for x in xorbs}
    log = hub.log_entries()
    assert [e for e in log if e["path"].startswith("/v2/reconstructions/")]
    assert all(e["host"] == "cas" and e["status"] == 200 for e in log
               if "/reconstructions/" in e["path"])
    xorb_gets = [e for e in log if e["path"].startswith("/xorb/")]
    assert xorb_gets and all(e["status"] == 206 and not e["authorization"] for e in xorb_gets)
    assert any("," in e["range"] for e in xorb_gets), "a multi-range (multipart) xorb fetch"
    assert not [e for e in log if e["path"].startswith("/lfs/")], "not through the bridge"


def test_official_js_client_reads_plain_files_without_the_cas(hub, js_client, tmp_path):
    """Files not on Xet (a regular file; an LFS file of a repo without Xet) take the plain
    path: no token, no CAS, no xorb."""
    out = run_js(js_client, hub, tmp_path, "org/lfs",
                 [{"path": "model-00001-of-00001.safetensors", "slices": [[10, 5000]]},
                  {"path": "config.json", "slices": [[1, 9]]}])
    content = hub.files("org/lfs")
    for i, path in enumerate(["model-00001-of-00001.safetensors", "config.json"]):
        assert out["files"][i]["blob"] == "WebBlob"
        assert (tmp_path / f"{i}.bin").read_bytes() == content[path]
    assert (tmp_path / "0-0.bin").read_bytes() == content["model-00001-of-00001.safetensors"][
        10:5000]
    assert (tmp_path / "1-0.bin").read_bytes() == content["config.json"][1:9]
    log = hub.log_entries()
    assert [e for e in log if e["path"].startswith("/lfs/")]
    assert not [e for e in log if e["host"] == "cas" or e["path"].startswith("/xorb/") or
                "xet-read-token" in e["path"]]
