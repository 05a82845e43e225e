#!/usr/bin/python3
"""Bytes over time while a model loads: one picture from a bench/run.py results JSON with the
`load` benchmark (run.py keeps every CDN reply of those runs and the reader's progress).

    bench/plot.py RESULTS.json docs/load-over-time.png [--reader hffs-mmap] [--repeat N]

Curves, in MB (10^6 bytes) against seconds from the `hffs mount` command (aria2c: from its
start): what aria2c had written to its files (its wchar, sampled every 50 ms; from the CDN's
log when the run has no trace); what hffs fetched from the CDN, split into bytes for the file
the reader was reading at that moment and bytes for other files (background completion); and
what the reader had in hand. Marks: the reader's first whole tensor, the model ready (the
reader done with every shard, each verified) and aria2c done. A reply's bytes are spread
evenly over its time in nginx's log ($msec less $request_time): right for hffs's ranges of at
most 16 MiB, not for aria2c's connections that stay open for most of a run at changing
rates. Needs python3-matplotlib.
"""
import argparse
import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STEP = 0.05  # s per bin
MiB = 1 << 20


def pick_repeat(runs, reader):
    """The repeat whose hffs run took the median time (runs without errors only)."""
    ok = [i for i, r in enumerate(runs[reader]) if "error" not in r and "cdn_timeline" in r
          and "error" not in runs["aria2c"][i] and "cdn_timeline" in runs["aria2c"][i]]
    if not ok:
        raise SystemExit(f"no repeat with a timeline for both {reader} and aria2c")
    walls = sorted(ok, key=lambda i: runs[reader][i]["wall"])
    return walls[(len(walls) - 1) // 2]


def binned(timeline, nbins, window=None):
    """Bytes per bin of the replies in timeline, each spread over [start, end]. window(name)
    gives a file's (from, to) seconds: then returns (inside, outside) of that window."""
    inside, outside = np.zeros(nbins), np.zeros(nbins)
    edges = np.arange(nbins + 1) * STEP
    for start, end, nbytes, name in timeline:
        end = max(end, start + 1e-6)
        overlap = np.clip(np.minimum(edges[1:], end) - np.maximum(edges[:-1], start), 0, None)
        part = nbytes * overlap / (end - start)
        if window:
            lo, hi = window(name)
            mid = (edges[:-1] + edges[1:]) / 2
            mask = (mid >= lo) & (mid <= hi)
            inside += np.where(mask, part, 0)
            outside += np.where(mask, 0, part)
        else:
            inside += part
    return inside, outside


def reader_windows(done_at, order):
    """{file: (started, finished)} of a reader that read `order` one after the other."""
    out, t = {}, 0.0
    for name in order:
        if name in done_at:
            out[name] = (t, done_at[name])
            t = done_at[name]
    return out


def plot(res, out, reader="hffs-mmap", repeat=None):
    load = res["load"]
    runs = load["runs"]
    i = pick_repeat(runs, reader) if repeat is None else repeat
    h, a = runs[reader][i], runs["aria2c"][i]
    result = h["result"]
    shards = load["files"]
    # The mmap reader reads the index JSON first (not in its own timeline): from 0.
    windows = reader_windows(result["done_at"], shards)
    index = "model.safetensors.index.json"
    windows[index] = (0.0, min(w[0] for w in windows.values()) if windows else 0.0)
    end = max(h["wall"], a["wall"], max((e[1] for e in h["cdn_timeline"]), default=0)) * 1.04
    nbins = int(end / STEP) + 1
    t = np.arange(1, nbins + 1) * STEP
    own, other = binned(h["cdn_timeline"], nbins,
                        lambda name: windows.get(Path(name).name, (-1.0, -1.0)))
    aria, _ = binned(a["cdn_timeline"], nbins)

    fig, ax = plt.subplots(figsize=(10, 5.6), dpi=100)
    own_c, other_c = np.cumsum(own) / 1e6, np.cumsum(other) / 1e6
    ax.stackplot(t, own_c, other_c, colors=["#4c72b0", "#a6bddb"], alpha=0.9,
                 labels=["hffs fetched: for the file being read",
                         "hffs fetched: for other files (background completion)"])
    prog = np.array(result["progress"], dtype=float)
    ax.plot(prog[:, 0], prog[:, 1] / 1e6, color="#c44e52", lw=2,
            label=f"hffs: the reader has in hand ({reader.split('-')[1]})")
    if a.get("written"):
        w = np.array([[0.0, 0]] + a["written"], dtype=float)
        ax.plot(w[:, 0], (w[:, 1] - w[0, 1]) / 1e6, color="#222222", lw=1.6, ls="--",
                label="aria2c -x16 -j4: written to its files")
    else:
        ax.plot(t, np.cumsum(aria) / 1e6, color="#222222", lw=1.6, ls="--",
                label="aria2c -x16 -j4: downloaded (CDN log)")
    marks = []
    if result.get("first_tensor_at"):
        marks.append((result["first_tensor_at"], "hffs: first tensor"))
    marks.append((max(result["done_at"].values()), "hffs: model ready"))
    marks.append((a["wall"], "aria2c: done"))
    top = load["bytes"] / 1e6 * 1.08
    for k, (x, label) in enumerate(marks):
        ax.axvline(x, color="#555555", lw=0.8, ls=":")
        ax.text(x, top * (0.97 - 0.06 * k), f" {label}\n {x:.1f} s", fontsize=8,
                va="top", ha="left")
    link = res["link"]
    cap = (f"{link['link_mbit']:g} Mbit/s link" if link.get("link_bytes_per_s") else
           "no link cap")
    ax.set_title(f"Loading {len(shards)} shards ({load['bytes'] / MiB:.0f} MiB) while they "
                 f"download: {cap}, {link['conn_rate'] / 1e6:g} MB/s per connection, "
                 f"{link['ttfb_ms']} ms per request; hffs {res['meta']['commit']}",
                 fontsize=9)
    ax.set_xlabel("seconds from the mount command (aria2c: from its start)")
    ax.set_ylabel("MB (10^6 bytes), cumulative")
    ax.set_xlim(0, end)
    ax.set_ylim(0, top)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return {"repeat": i, "reader": reader, "marks": {label: round(x, 2) for x, label in marks},
            "hffs_other_mb": round(float(other.sum()) / 1e6, 1),
            "hffs_own_mb": round(float(own.sum()) / 1e6, 1),
            "aria2c_mb": round(float(aria.sum()) / 1e6, 1),
            "aria2c_wall_median": statistics.median(r["wall"] for r in runs["aria2c"]
                                                    if "error" not in r)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--reader", default="hffs-mmap", choices=("hffs-mmap", "hffs-read"))
    ap.add_argument("--repeat", type=int, help="which repeat (default: hffs's median)")
    a = ap.parse_args()
    print(json.dumps(plot(json.loads(a.results.read_text()), a.out, a.reader, a.repeat)))


if __name__ == "__main__":
    main()
