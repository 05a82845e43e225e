"""docs/benchmarks.md from a results dict (bench/run.py). Tables, ratios and verdicts are
generated; the "Reading" paragraph of each section is written by hand between
`<!-- reading:NAME -->` and `<!-- /reading -->` and carried over from the existing file.
"""
import re
from pathlib import Path

MiB = 1 << 20
READING_RE = re.compile(r"<!-- reading:(\w+) -->\n(.*?)<!-- /reading -->", re.S)
NO_READING = "_Not yet read: run the benchmark and write what the numbers say here._\n"

# Targets of the issues "Transfer engine" and "Load while downloading".
TARGETS = {"vs_aria2c": 1.0, "vs_link": 0.90, "rss_mib": 100, "ttft_vs_link": 1.2,
           "load_vs_aria2c": 1.05}


def stat(summary, key, scale=1.0, digits=1):
    """'median (min-max)' of a summarize() entry, scaled; '-' when absent."""
    s = summary.get(key) if summary else None
    if not s:
        return "-"
    f = f"{{:.{digits}f}}"
    mid, lo, hi = (f.format(s[k] * scale) for k in ("median", "min", "max"))
    return mid if s["n"] == 1 or lo == hi else f"{mid} ({lo}-{hi})"


def med(summary, key):
    s = summary.get(key) if summary else None
    return s["median"] if s else None


def verdict(ok):
    return "**met**" if ok else "**missed**"


def errors(runs):
    """Distinct error strings of a list of runs."""
    return sorted({r["error"] for r in runs if "error" in r})


def profile(runs):
    """'requests / connections / MB for other files' the CDN saw (the run with the median
    request count)."""
    ok = [r["cdn"] for r in runs if "error" not in r and r.get("cdn")]
    if not ok:
        return "-"
    ok.sort(key=lambda c: c["requests"])
    c = ok[len(ok) // 2]
    out = f"{c['requests']} / {c['connections']}"
    if "cut_short" in c:
        out += f" / {c['cut_short']} / {c['other_bytes'] / 1e6:.0f}"
    return out


# --- sections ----------------------------------------------------------------------------------

def conditions(res, results_path):
    m, link, repo = res["meta"], res["link"], res["repo"]
    mc = m["machine"]
    shards = ", ".join(f"{s['bytes'] / MiB:.1f}" for s in repo["shards"])
    if link["mode"] == "netns" and not link["link_bytes_per_s"]:
        shape = ("servers in a network namespace of their own behind a veth pair; **no link "
                 "cap** (the per-connection rate is the only limit)")
    elif link["mode"] == "netns":
        shape = (f"servers in a network namespace of their own behind a veth pair; link cap "
                 f"**{link['link_mbit']:g} Mbit/s** ({link['link_bytes_per_s'] / 1e6:.0f} MB/s, "
                 f"`tbf` on the server side's egress, 20 ms of queue)")
    else:
        shape = f"loopback, **no link cap** ({link['note'] or 'asked for with --no-netns'})"
    calib = link.get("single_connection_raw_mbps")
    hffs = (f"`{m['commit']}` ({m['hffs_version']}, built from a `git archive` of HEAD)"
            if m["hffs"] and m["hffs_built_from_head"] else
            f"`{m['hffs']}` ({m['hffs_version']}), tree at `{m['commit']}`" if m["hffs"] else
            f"not measured: {m['hffs_missing']}")
    peers = (f"{m['peers']['curl'].split(' (')[0]}; {m['peers']['aria2c']} with "
             f"`{m['peers']['aria2c_args']}`; nginx {m['peers']['nginx']} as the CDN")
    rtt = link.get("tcp_connect_rtt_ms") or 0
    rows = [
        ("machine", f"{mc['cores']} cores ({mc['cpu']}), {mc['memory_gib']} GiB, "
                    f"Linux {mc['kernel']}"),
        ("hffs", hffs),
        ("peers", peers),
        ("repo", f"`{repo['id']}` from `tests/fakehub/genrepo.py`: {len(repo['shards'])} "
                 f"safetensors shards of {shards} MiB, {repo['total_bytes'] / MiB:.0f} MiB in "
                 f"{repo['files']} files"),
        ("link", shape),
        ("CDN edge", f"nginx `limit_rate` **{link['conn_rate'] / 1e6:g} MB/s per connection**, "
                     f"and **{link['ttfb_ms']} ms** before every reply (`echo_sleep`)"),
        ("round trip", f"the kernel has no `sch_netem`, so no per-packet delay: TCP sees "
                       f"{rtt:.2f} ms (connect time); the {link['ttfb_ms']} ms per request at "
                       "the CDN stands for the RTT a range request pays"),
        ("calibration", f"one connection, no delay, no per-connection cap: "
                        f"{f'{calib:.1f} MB/s' if calib else '-'} (what TCP carries on the link)"),
        ("method", f"cold client every run (fresh hffs cache dir, page cache dropped, server "
                   f"files read back in), {m['repeats']} repeats, median (min-max); MB = 10^6 "
                   "bytes; CPU = user + system seconds of the process (hffs: the daemon, during "
                   "the read); RSS = peak (VmHWM, or wait4's maxrss)"),
        ("run", f"`{m['command']}`, {m['date']}; raw results `{results_path}`"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"## Conditions\n\n| | |\n|---|---|\n{table}\n"


def transfer(res, reading):
    t = res.get("transfer")
    if not t:
        return "## Transfer engine: cold sequential read of one shard\n\nNot run.\n"
    link = res["link"]
    sm = t["summary"]
    names = {"curl": "curl -L (1 connection)", "aria2c": "aria2c -x16 -s16",
             "hffs": "hffs (default), 1 MiB reads", "hffs-noprefetch": "hffs --prefetch none"}
    rows = []
    for tool, label in names.items():
        s = sm.get(tool, {})
        rows.append(f"| {label} | {stat(s, 'mbps')} | {stat(s, 'wall', digits=2)} | "
                    f"{stat(s, 'cpu_per_gb', digits=2)} | {stat(s, 'peak_rss', 1 / MiB)} | "
                    f"{profile(t['runs'][tool])} |")
    hffs, aria = med(sm.get("hffs"), "mbps"), med(sm.get("aria2c"), "mbps")
    lines = []
    if hffs and aria:
        r = hffs / aria
        lines.append(f"- hffs / aria2c = **{r:.2f}** (target >= 1.00): {verdict(r >= 1)}")
    if hffs and link["link_bytes_per_s"]:
        r = hffs * 1e6 / link["link_bytes_per_s"]
        peer = f"; aria2c reaches {aria * 1e6 / link['link_bytes_per_s']:.0%}" if aria else ""
        lines.append(f"- hffs / link cap = **{r:.0%}** (target >= 90%): {verdict(r >= 0.9)}"
                     + peer)
    rss = med(sm.get("hffs"), "peak_rss")
    if rss:
        lines.append(f"- hffs peak RSS = **{rss / MiB:.1f} MiB** (target < 100 MiB): "
                     f"{verdict(rss / MiB < 100)}")
    if not hffs:
        lines.append("- hffs: not yet measured: " +
                     ("; ".join(errors(t["runs"]["hffs"])) or "no run"))
    read = med(sm.get("hffs"), "read_mbps")
    extra = (f"hffs's MB/s count from the `hffs mount` command to the last byte\n(mount "
             f"{stat(sm.get('hffs'), 'mount', digits=2)} s); the read alone ran at "
             f"{read:.1f} MB/s.\n" if read else "")
    return f"""\
## Transfer engine: cold sequential read of one shard

`{t['file']}`, {t['bytes'] / MiB:.1f} MiB. curl and aria2c download it through the Hub's
resolve URL (302 to the CDN) to a file; hffs mounts the repo cold and a reader reads the
file front to back with 1 MiB `read()`s, hashing every byte (checked against the content).
{extra}CPU s/GB for hffs is the daemon's only (the reader's own CPU, which includes the
kernel's FUSE copies, is in the raw results). The last column is what nginx logged during
the run: requests, connections, replies cut short by the client (each costs a connection),
and MB sent for files other than the one being read.

| client | MB/s | seconds | CPU s/GB | peak RSS MiB | CDN req / conns / cut / other MB |
|---|---|---|---|---|---|
{chr(10).join(rows)}

{chr(10).join(lines)}
{errors_note(t['runs'])}
### Reading

<!-- reading:transfer -->
{reading.get('transfer', NO_READING)}<!-- /reading -->
"""


def errors_note(runs_by_tool):
    out = []
    for tool, runs in runs_by_tool.items():
        for e in errors(runs):
            out.append(f"- {tool}: {e}")
    return ("\nFailures:\n" + "\n".join(out) + "\n") if out else ""


def ttft(res, reading):
    t = res.get("ttft")
    if not t:
        return "## Time to first tensor\n\nNot run.\n"
    sm = t["summary"]
    tensor = t["tensor"]
    aria = med(sm["aria2c"], "wall")
    lines = []
    # An A/B run (--hffs-b) adds the second binary's columns.
    names = ["hffs", "hffs-noprefetch"] + (["hffs-b", "hffs-b-noprefetch"]
                                           if sm.get("hffs-b") else [])
    for name in names:
        tt = med(sm.get(name), "t_tensor")
        if tt and t["bytes_at_link_s"]:
            r = tt / t["bytes_at_link_s"]
            goal = TARGETS["ttft_vs_link"]
            lines.append(f"- {name}: first tensor / its bytes at link speed = **{r:.2f}** "
                         f"(target <= {goal:.2f}): {verdict(r <= goal)}" +
                         (f"; / aria2c's whole shard = {tt / aria:.2f}" if aria else ""))
        elif not tt:
            lines.append(f"- {name}: not yet measured: " +
                         ("; ".join(errors(t["runs"].get(name, []))) or "no run"))
    where = (f"`{tensor['tensor']}`, {tensor['size'] / MiB:.1f} MiB at byte "
             f"{tensor['offset']:,} ({tensor['offset'] / t['bytes']:.0%} into the file)"
             if tensor else "-")
    link_s = f"{t['bytes_at_link_s']:.2f}" if t["bytes_at_link_s"] else "-"
    rows = [("mount ready", "mount", 3), ("header parsed", "t_header", 3),
            ("tensor in hand", "t_tensor", 2)]
    table = "\n".join(f"| hffs: {label} | " +
                      " | ".join(stat(sm.get(n), key, digits=d) for n in names) + " |"
                      for label, key, d in rows)
    aria_s = stat(sm["aria2c"], "wall", digits=2)
    head = "| seconds | hffs (default) | hffs --prefetch none |"
    if len(names) > 2:
        head = head[:-1] + "| hffs-b (default) | hffs-b --prefetch none |"
    more = " | ".join([aria_s] * len(names))
    at_link = " | ".join([link_s] * len(names))
    b_is = (f"\nhffs-b: `{res['meta']['hffs_b']}`, measured in the same run, each repeat "
            "right after hffs.\n" if len(names) > 2 else "")
    return f"""\
## Time to first tensor

A cold mount, then what a loader does for one tensor: read the shard's header (8-byte length,
JSON), then the tensor in the middle of the data order (index (n-1)/2 of the tensors of
`{t['file']}`):
{where}.
Times count from the `hffs mount` command. The baseline is the time the tensor's own bytes
take at the link's speed: size / link rate = {link_s} s (a reader that fetched exactly that
tensor at the full rate of the link could not have it sooner).

{head}
|---|---|---|{"---|---|" if len(names) > 2 else ""}
{table}
| aria2c -x16 -s16: the whole shard | {more} |
| the tensor's bytes at link speed | {at_link} |
{b_is}
{chr(10).join(lines)}
{errors_note({**t['runs'], 'aria2c': t['aria2c']})}
### Reading

<!-- reading:ttft -->
{reading.get('ttft', NO_READING)}<!-- /reading -->
"""


def shard_times(runs):
    """Median time at which each file was finished by a reader (s from mount start)."""
    ok = [r["result"]["done_at"] for r in runs if "error" not in r]
    if not ok:
        return "-"
    names = [n for n in ok[0] if n.endswith(".safetensors")]
    out = []
    for n in names:
        vals = sorted(d[n] for d in ok)
        out.append(f"{vals[len(vals) // 2]:.1f}")
    return ", ".join(out)


def load(res, reading):
    t = res.get("load")
    if not t:
        return "## Load while downloading\n\nNot run.\n"
    sm = t["summary"]
    names = {"aria2c": "aria2c -x16 -s16 -j4, all shards",
             "hffs-read": "hffs + reader, 1 MiB read()s front to back",
             "hffs-mmap": "hffs + reader, mmap and copy each tensor"}
    rows = []
    for tool, label in names.items():
        s = sm.get(tool, {})
        done = shard_times(t["runs"][tool]) if tool != "aria2c" else "-"
        rows.append(f"| {label} | {stat(s, 'wall', digits=1)} | {stat(s, 'mbps')} | "
                    f"{stat(s, 'cpu_per_gb', digits=2)} | {stat(s, 'peak_rss', 1 / MiB)} | "
                    f"{done} | {profile(t['runs'][tool])} |")
    aria = med(sm.get("aria2c"), "wall")
    lines = []
    for tool in ("hffs-read", "hffs-mmap"):
        w = med(sm.get(tool), "wall")
        if w and aria:
            r = w / aria
            lines.append(f"- {tool} / aria2c = **{r:.3f}** (target <= 1.05): {verdict(r <= 1.05)}")
        elif not w:
            lines.append(f"- {tool}: not yet measured: " +
                         ("; ".join(errors(t["runs"][tool])) or "no run"))
    return f"""\
## Load while downloading

A reader starts right after the mount and reads what a loader reads: the index JSON, then
every shard in order ({len(t['files'])} shards, {t['bytes'] / MiB:.0f} MiB), hashing all of it;
against aria2c downloading all shards at once. Seconds count from the `hffs mount` command
(hffs) or from aria2c's start; "shards done at" is when the reader finished each shard; the
last column is as in the transfer table ("other": the small files).

| client | s | MB/s | CPU s/GB | peak RSS MiB | shards done at s | CDN req/conn/cut/other MB |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

{chr(10).join(lines)}
{errors_note(t['runs'])}
### Reading

<!-- reading:load -->
{reading.get('load', NO_READING)}<!-- /reading -->
"""


def document(res, results_path, reading):
    return f"""\
# Benchmarks

Generated by `bench/run.py` (see `bench/README.md`) from `{results_path}`;
every number below comes from that file. The "Reading" paragraphs are written by hand after a run and kept when
the script rewrites this page: check that they still match the numbers.

{conditions(res, results_path)}
{transfer(res, reading)}
{ttft(res, reading)}
{load(res, reading)}"""


SECTIONS = {"transfer": transfer, "ttft": ttft, "load": load}
SECTION_RE = re.compile(r"^## .*?(?=^## |\Z)", re.S | re.M)


def measured_apart(res, results_path):
    """What a section rendered alone was measured with: the rest of the page is another run."""
    m, link = res["meta"], res["link"]
    hffs = (f"`{m['commit']}`" if m["hffs"] and m["hffs_built_from_head"] else
            f"`{m['hffs']}` (tree at `{m['commit']}`)")
    cap = (f"{link['link_mbit']:g} Mbit/s link cap" if link["link_bytes_per_s"] else
           "no link cap")
    return (f"_Measured apart from the rest of this page: hffs {hffs}, {m['date']}, "
            f"{cap}, {link['conn_rate'] / 1e6:g} MB/s per CDN connection, {link['ttfb_ms']} ms "
            f"per CDN request, {m['repeats']} repeats (`{m['command']}`; raw results "
            f"`{results_path}`); other conditions as above._\n")


def write_section(path, res, results_path, name):
    """Replaces section `name` of the page at path (from `## ` to the next) with the one res
    renders, keeping its Reading; the rest of the page stays as it is."""
    path = Path(path)
    old = path.read_text()
    reading = {n: text for n, text in READING_RE.findall(old)}
    new = SECTIONS[name](res, reading)
    title = new.splitlines()[0]
    head, _, body = new.partition("\n\n")
    new = f"{head}\n\n{measured_apart(res, results_path)}\n{body}"
    found = [mt for mt in SECTION_RE.finditer(old) if mt.group(0).splitlines()[0] == title]
    if not found:
        raise SystemExit(f"{path} has no section '{title}'")
    mt = found[0]
    path.write_text(old[:mt.start()] + new.rstrip("\n") + "\n\n" + old[mt.end():].lstrip("\n")
                    if mt.end() < len(old) else old[:mt.start()] + new)


def write(path, res, results_path):
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    reading = {name: text for name, text in READING_RE.findall(old)}
    path.write_text(document(res, results_path, reading))


def verdicts(res):
    """One line per target, for the console."""
    out = []
    doc = document(res, "-", {})
    for line in doc.splitlines():
        if line.startswith("- ") and ("target" in line or "not yet measured" in line):
            out.append(line[2:].replace("**", ""))
    return out


if __name__ == "__main__":
    import argparse
    import json

    ap = argparse.ArgumentParser(description="Rewrites one section of docs/benchmarks.md "
                                 "from a results JSON of bench/run.py (the rest stays).")
    ap.add_argument("--results", required=True, help="results JSON (run.py --results)")
    ap.add_argument("--section", required=True, choices=sorted(SECTIONS))
    ap.add_argument("--docs", default=str(Path(__file__).resolve().parent.parent / "docs" /
                                          "benchmarks.md"))
    a = ap.parse_args()
    write_section(a.docs, json.loads(Path(a.results).read_text()), a.results, a.section)
