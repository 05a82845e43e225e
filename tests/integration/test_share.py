"""One cache, many mounts and many daemons: shared blobs are stored and fetched once, and two
daemons reading the same bytes at once both see them right."""
import os
import threading

MiB = 1 << 20


def blocks_fetched(log):
    """{(cdn path, block): times a reply carried that whole block}."""
    out = {}
    for e in log:
        if e["host"] == "cdn" and e["status"] == 206 and e["bytes"]:
            a = int(e["range"].split("=")[1].split("-")[0])
            for blk in range(a // MiB, (a + e["bytes"]) // MiB):
                k = (e["path"].split("?")[0], blk)
                out[k] = out.get(k, 0) + 1
    return out


def test_two_revisions_share_blobs(hub, mount):
    v1, main = hub.files("org/shared", "v1"), hub.files("org/shared", "main")
    shared = [p for p in v1 if p in main and v1[p] == main[p]]
    assert "model-00001-of-00002.safetensors" in shared
    a = mount("org/shared", "--revision", "v1", "--prefetch", "none")
    b = mount("org/shared", "--revision", "main", "--prefetch", "none")
    for m, files in ((a, v1), (b, main)):
        for rel, data in files.items():
            assert (m.path / rel).read_bytes() == data, rel
    again = {k: n for k, n in blocks_fetched(hub.log()).items() if n > 1}
    assert not again, f"blocks fetched twice: {again}"
    # The changed shard really differs, so it was fetched for each revision.
    assert v1["model-00002-of-00002.safetensors"] != main["model-00002-of-00002.safetensors"]


def test_two_daemons_one_cache_same_file(hub, mount):
    src = hub.files("org/model")
    hub.set_faults([{"host": "cdn", "fault": "trickle", "rate": 8 * MiB}])
    a = mount("org/model", "--prefetch", "none", name="a")
    b = mount("org/model", "--prefetch", "none", name="b")
    results = {}

    def read(m, key):
        results[key] = {rel: (m.path / rel).read_bytes() for rel in src}

    ts = [threading.Thread(target=read, args=(m, k)) for m, k in ((a, "a"), (b, "b"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
    assert results["a"] == src and results["b"] == src
    # And again from the shared cache, after both daemons committed what they fetched.
    a.unmount()
    b.unmount()
    c = mount("org/model", "--prefetch", "none", name="c")
    hub.clear_log()
    for rel, data in src.items():
        assert (c.path / rel).read_bytes() == data
    assert not [e for e in hub.log() if e["host"] == "cdn"]
