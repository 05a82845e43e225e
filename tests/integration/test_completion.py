"""Load while downloading: background completion, priorities, verification, read-ahead,
include/exclude, and progress that survives an unmount."""
import json
import mmap
import os
import struct
import threading
import time

import pytest

from conftest import run_hffs, wait_for

MiB = 1 << 20


def status(cache_dir, mp):
    p = run_hffs("status", "--json", "--cache-dir", cache_dir, check=True)
    return next(m for m in json.loads(p.stdout)["mounts"] if m["mountpoint"] == str(mp))


def wait_complete(cache_dir, mp, timeout=120):
    def done():
        st = status(cache_dir, mp)
        return (all(f["state"] == "verified" for f in st["files"]) and st["live"] and
                st["live"]["phase"] == "complete")
    wait_for(done, timeout=timeout, what="every file verified")
    return status(cache_dir, mp)


def data_ranges(log):
    """(path, first, last) of the bytes each data reply actually carried."""
    out = []
    for e in log:
        if e["host"] == "cdn" and e["method"] == "GET" and e["status"] == 206 and e["bytes"]:
            a = int(e["range"].split("=")[1].split("-")[0])
            out.append((e["path"].split("?")[0], a, a + e["bytes"] - 1))
    return out


def full_blocks(ranges, sizes):
    """Blocks each range carried whole (the last block of a file may be short)."""
    out = []
    for path, a, b in ranges:
        for blk in range((a + MiB - 1) // MiB, b // MiB + 1):
            if min((blk + 1) * MiB, sizes[path]) - 1 <= b:
                out.append((path, blk))
    return out


def test_prefetch_completes_and_verifies_everything_once(hub, mount, cache_dir):
    m = mount("org/model")
    st = wait_complete(cache_dir, m.path)
    assert st["bytes_cached"] == st["bytes_total"]
    assert st["files_complete"] == st["files_total"]
    assert st["live"] is not None and st["live"]["phase"] == "complete"
    sizes = {"/lfs/" + h: len(hub.files("org/model")[p])
             for p, h in hub.sha256s("org/model").items()}
    blocks = full_blocks(data_ranges(hub.log()), sizes)
    assert len(blocks) == len(set(blocks)), "a block was fetched twice"
    for rel, data in hub.files("org/model").items():
        assert (m.path / rel).read_bytes() == data


def test_include_exclude_limit_completion(hub, mount, cache_dir):
    m = mount("org/model", "--include", "*.json", "--exclude", "tokenizer*")
    wait_for(lambda: status(cache_dir, m.path)["live"]["phase"] == "complete", timeout=60,
             what="completion of the included files")
    files = {f["path"]: f for f in status(cache_dir, m.path)["files"]}
    for path, f in files.items():
        wanted = path.endswith(".json") and not path.startswith("tokenizer")
        if wanted and f["size"]:
            assert f["state"] == "verified", path
        elif f["size"]:
            assert f["bytes_cached"] == 0, path
    assert not [e for e in hub.log() if e["host"] == "cdn"], "no shard was fetched"


def test_corrupted_bytes_are_caught_and_refetched(hub, mount, cache_dir):
    shard = "model-00002-of-00003.safetensors"
    hub.set_faults([{"host": "cdn", "path_re": ".", "fault": "corrupt", "at_byte": 1000,
                     "count": 1}])
    m = mount("org/model")
    st = wait_complete(cache_dir, m.path)
    assert st["live"]["verify_failures"] >= 1
    assert "does not match its content id" in m.log()
    # No cache dropped: the kernel's pages of a dropped blob were invalidated by the mount.
    for rel, data in hub.files("org/model").items():
        assert (m.path / rel).read_bytes() == data, rel
    assert shard


def test_demand_read_overtakes_background(hub, mount, cache_dir):
    """With background completion crawling, a read elsewhere is served after at most a few
    transfers, not after the background queue (order in the request log, not time)."""
    hub.set_faults([{"host": "cdn", "fault": "trickle", "rate": 256 * 1024}])
    src = hub.files("org/model")
    m = mount("org/model", "--connections", "2")
    wait_for(lambda: any(e["host"] == "cdn" for e in hub.log()), timeout=60,
             what="background transfers")
    target = "model-00003-of-00003.safetensors"
    cdn_path = "/lfs/" + hub.sha256s("org/model")[target]
    off = len(src[target]) - 100
    hub.reset()
    before = len(hub.log())
    with open(m.path / target, "rb") as f:
        f.seek(off)
        assert f.read(100) == src[target][off:off + 100]
    log = hub.log()[before:]
    mine = next(i for i, e in enumerate(log)
                if e["host"] == "cdn" and e["path"].startswith(cdn_path) and e["range"] and
                int(e["range"].split("=")[1].split("-")[1]) >= off)
    others = [e for e in log[:mine] if e["host"] == "cdn"]
    assert len(others) <= 6, f"{len(others)} background transfers went first"


def test_tensor_in_the_middle_of_a_cold_shard_while_completing(hub, mount):
    """What a loader does for one tensor: the header, then the tensor in the middle of the
    data, while completion crawls through every shard; the tensor-aware read-ahead fetches the
    rest of it and the tensors after it. Its bytes and the rest of the shard read right."""
    hub.set_faults([{"host": "cdn", "fault": "trickle", "rate": 4 * MiB}])
    src = hub.files("org/model")
    m = mount("org/model")
    target = "model-00002-of-00003.safetensors"
    data = src[target]
    with open(m.path / target, "rb", buffering=0) as f:
        n = struct.unpack("<Q", os.pread(f.fileno(), 8, 0))[0]
        header = json.loads(os.pread(f.fileno(), n, 8))
        spans = sorted(tuple(t["data_offsets"]) for k, t in header.items()
                       if k != "__metadata__")
        a, b = spans[(len(spans) - 1) // 2]
        a, b = 8 + n + a, 8 + n + b
        got = b"".join(os.pread(f.fileno(), min(64 * 1024, b - o), o)
                       for o in range(a, b, 64 * 1024))
        assert got == data[a:b]
        # Then everything else, backwards: reads that land in tensors fetched ahead of them.
        for o in range(len(data) - len(data) % MiB, -1, -MiB):
            assert os.pread(f.fileno(), MiB, o) == data[o:o + MiB], o


def test_loader_maps_every_tensor_while_completing(hub, mount):
    np = pytest.importorskip("numpy")
    src = hub.files("org/model")
    m = mount("org/model")
    index = json.loads((m.path / "model.safetensors.index.json").read_bytes())
    for shard in sorted(set(index["weight_map"].values())):
        with open(m.path / shard, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            n = struct.unpack("<Q", mm[:8])[0]
            header = json.loads(mm[8:8 + n])
            for name, t in header.items():
                if name == "__metadata__":
                    continue
                a, b = t["data_offsets"]
                arr = np.frombuffer(mm, dtype=np.uint8, count=b - a, offset=8 + n + a)
                assert arr.tobytes() == src[shard][8 + n + a:8 + n + b], (shard, name)
                del arr
            mm.close()


def test_completion_resumes_after_unmount(hub, mount, cache_dir):
    hub.set_faults([{"host": "cdn", "fault": "trickle", "rate": 2 * MiB}])
    m = mount("org/model", "--connections", "4", name="resume")
    wait_for(lambda: status(cache_dir, m.path)["bytes_cached"] > 2 * MiB, timeout=60,
             what="some progress")
    m.unmount()
    first = data_ranges(hub.log())
    hub.reset()
    hub.clear_log()
    m2 = mount("org/model", "--connections", "4", name="resume")
    wait_complete(cache_dir, m2.path)
    sizes = {"/lfs/" + h: len(hub.files("org/model")[p])
             for p, h in hub.sha256s("org/model").items()}
    before = set(full_blocks(first, sizes))
    again = before & set(full_blocks(data_ranges(hub.log()), sizes))
    # Only a block still in a socket buffer when the unmount cut its transfer (at most one
    # per connection) may come twice; every block that had landed is kept.
    assert len(again) <= 4, again
    assert before, "the first mount fetched nothing: the test would prove nothing"
    for rel, data in hub.files("org/model").items():
        assert (m2.path / rel).read_bytes() == data


def test_verify_on_demand_by_mountpoint(hub, mount, cache_dir):
    m = mount("org/model", "--prefetch", "none")
    assert (m.path / "config.json").read_bytes() == hub.files("org/model")["config.json"]
    wait_for(lambda: run_hffs("verify", m.path, "--json", "--cache-dir", cache_dir).returncode
             == 0 and json.loads(run_hffs("verify", m.path, "--json", "--cache-dir",
                                          cache_dir).stdout)["checked"] >= 1,
             timeout=30, what="hffs verify to check the file read")
    p = run_hffs("verify", m.path, "--cache-dir", cache_dir)
    assert p.returncode == 0, p.stdout + p.stderr
