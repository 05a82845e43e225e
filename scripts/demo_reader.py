"""The demo's reader (scripts/demo): reads a model through an hffs mount the way a loader does,
checks every file against the Hub's content ids, then times a plain download of the same
files, and prints the comparison. Standard library only.

usage: demo_reader.py HFFS MOUNTPOINT REPO CACHE_DIR T0   (HF_ENDPOINT set; T0: time.monotonic()
of the `hffs mount` command)"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import time
import urllib.parse
import urllib.request


def tree(endpoint, repo):
    url, entries = f"{endpoint}/api/models/{repo}/tree/main?recursive=true", []
    while url:
        with urllib.request.urlopen(url, timeout=30) as r:
            entries += json.load(r)
            link = r.headers.get("Link", "")
            url = link[1:link.index(">")] if 'rel="next"' in link else None
    return [e for e in entries if e["type"] == "file"]


def tensors(path):
    """(name, start, end) of a safetensors file's tensors in file order, from its header."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    out = [(k, 8 + n + v["data_offsets"][0], 8 + n + v["data_offsets"][1])
           for k, v in header.items() if k != "__metadata__"]
    return sorted(out, key=lambda t: t[1])


def status_line(hffs, mp):
    p = subprocess.run([hffs, "status", mp, "--json"], capture_output=True, text=True,
                       timeout=30)
    try:
        m = json.loads(p.stdout)["mounts"][0]
    except (ValueError, KeyError, IndexError):
        return "(status unavailable)"
    live = m.get("live") or {}
    return (f"hffs status: {m['bytes_cached'] / 1e6:.0f} of {m['bytes_total'] / 1e6:.0f} MB "
            f"cached, {m['files_complete']} of {m['files_total']} files complete, "
            f"{live.get('rate', 0) / 1e6:.1f} MB/s, background: {live.get('phase', '?')}")


def load(hffs, mp, files, t0):
    """Reads like a loader; returns (seconds to the first tensor, seconds to every tensor)."""
    shards = sorted(e["path"] for e in files if e["path"].endswith(".safetensors"))
    index = os.path.join(mp, "model.safetensors.index.json")
    if os.path.exists(index):
        json.load(open(index))
    first = None
    for i, shard in enumerate(shards):
        path = os.path.join(mp, shard)
        ts = tensors(path)
        with open(path, "rb") as f:
            for name, a, b in ts:
                f.seek(a)
                assert len(f.read(b - a)) == b - a
                if first is None:
                    first = time.monotonic() - t0
                    print(f"  {first:6.2f} s  first tensor in hand: {name} "
                          f"({(b - a) / 1e6:.1f} MB of {shard})")
                    print(f"           {status_line(hffs, mp)}")
        print(f"  {time.monotonic() - t0:6.2f} s  {shard}: all {len(ts)} tensors read")
    done = time.monotonic() - t0
    if first is None:  # no safetensors: the first file read stands in
        first = done
    return first, done


def check(mp, files):
    for e in files:
        data = open(os.path.join(mp, e["path"]), "rb").read()
        if "lfs" in e:
            ok = hashlib.sha256(data).hexdigest() == e["lfs"]["oid"]
        else:
            ok = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == e["oid"]
        print(f"  {'ok ' if ok else 'BAD'} {len(data):>11}  {e['path']}")
        if not ok:
            sys.exit(f"{e['path']} does not match its content id")


def plain_download(endpoint, repo, files):
    """Every file fetched whole, one after another, as a simple downloader would."""
    t = time.monotonic()
    for e in files:
        url = f"{endpoint}/{repo}/resolve/main/{urllib.parse.quote(e['path'])}"
        with urllib.request.urlopen(url, timeout=120) as r:
            while r.read(1 << 20):
                pass
    return time.monotonic() - t


def main():
    hffs, mp, repo, _cache, t0 = sys.argv[1:6]
    endpoint = os.environ["HF_ENDPOINT"]
    files = tree(endpoint, repo)
    first, done = load(hffs, mp, files, float(t0))
    print("== every file read through the mount, checked against the Hub's content ids")
    check(mp, files)
    print("== the same files by a plain download (one after another, to memory)")
    plain = plain_download(endpoint, repo, files)
    print(f"  {plain:6.2f} s  every file downloaded; a loader could only start now")
    print(f"== with hffs, the first tensor after {first:.2f} s and every tensor after "
          f"{done:.2f} s; a plain download takes {plain:.2f} s before the first")


if __name__ == "__main__":
    main()
