"""docs/benchmarks.md from a results dict (bench/run.py). Tables, ratios and verdicts are
generated; the "Reading" paragraph of each section is written by hand between
`<!-- reading:NAME -->` and `<!-- /reading -->` and carried over from the existing file.
"""
import argparse
import json
import os
import re
import sys
from pathlib import Path

MiB = 1 << 20
READING_RE = re.compile(r"<!-- reading:(\w+) -->\n(.*?)<!-- /reading -->", re.S)
# Sections made from other results than run.py's (fast links, memory, the picture): rendered
# by `bench/report.py --docs` and carried over when run.py rewrites the page.
SECTION_RE = re.compile(r"<!-- section:(\w+) -->\n.*?<!-- /section:\1 -->\n", re.S)
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


def mirror(res, reading, results_path):
    """The mirror section: a run of its own (--bench mirror), with its conditions inline."""
    mi, m, link = res["mirror"], res["meta"], res["link"]
    sm = mi["summary"]
    rows = []
    for n in mi["clients"]:
        d, r = sm.get(f"direct-{n}"), sm.get(f"mirror-{n}")
        if not d or not r:
            continue
        rows.append(f"| {n} | {d['ready_median']:.1f} (max {d['ready_max']:.1f}) | "
                    f"{r['ready_median']:.1f} (max {r['ready_max']:.1f}) | "
                    f"{d['origin_cdn_bytes'] / mi['bytes']:.2f}x | "
                    f"{r['origin_cdn_bytes'] / mi['bytes']:.2f}x | "
                    f"{d['origin_resolves']} | {r['origin_resolves']} |")
    cap = (f"{link['link_mbit']:g} Mbit/s link cap" if link.get("link_bytes_per_s") else
           "no link cap")
    return f"""\
<!-- section:mirror -->
## Many clients behind a caching mirror

N hffs clients (separate caches) mount the same model at once and read it whole (the index
and every shard, 1 MiB reads, hashed), either straight to the origin (the fake Hub and its
CDN behind the shaped link) or through `contrib/mirror/run-mirror` (nginx {m['peers'].get('nginx', '')},
slices of {mi['slice']}, on the clients' side of the link; clients use `--range-align`
{mi['slice'].upper()}). Model: {len(mi['files'])} shards, {mi['bytes'] / MiB:.0f} MiB. Link:
{cap}, {link['conn_rate'] / 1e6:g} MB/s per CDN connection, {link['ttfb_ms']} ms before every
CDN reply. Time to model ready counts from each client's mount command, in seconds; origin
CDN bytes are what the origin's CDN sent, as a multiple of the model; resolves are the Hub's
`/resolve/` requests. Run: `{m['command']}`, {m['date']}, tree at `{m['commit']}`,
{m['repeats']} repeat(s); raw results `{results_path}`.

| clients | model ready, direct | model ready, mirror | origin CDN bytes, direct | mirror | resolves, direct | mirror |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

### Reading

<!-- reading:mirror -->
{reading.get('mirror', NO_READING)}<!-- /reading -->
<!-- /section:mirror -->
"""


# Benches run on their own (not in the default set), each a section of its own (between
# section markers) that a full run keeps as it is, and a run of that bench replaces.
APART = {"mirror": mirror}


def document(res, results_path, reading, sections=()):
    extra = "".join("\n" + text for text in sections)
    return f"""\
# Benchmarks

Generated by `bench/run.py` (see `bench/README.md`) from `{results_path}`;
every number below comes from that file, except in a section that says it was measured
apart, and in the sections after "Load while downloading" (fast links, memory, the picture,
the mirror), which `bench/report.py` renders from their own results, named in each. The "Reading" paragraphs are written by hand after a run and kept when
the script rewrites this page: check that they still match the numbers.

{conditions(res, results_path)}
{transfer(res, reading)}
{ttft(res, reading)}
{load(res, reading)}{extra}"""


# The sections of a run.py run, each rewritable alone (write_section), from `## ` to the next.
RUN_SECTIONS = {"transfer": transfer, "ttft": ttft, "load": load}
HEADING_RE = re.compile(r"^## .*?(?=^## |^<!-- section:|\Z)", re.S | re.M)


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
    new = RUN_SECTIONS[name](res, reading)
    title = new.splitlines()[0]
    head, _, body = new.partition("\n\n")
    new = f"{head}\n\n{measured_apart(res, results_path)}\n{body}"
    found = [mt for mt in HEADING_RE.finditer(old) if mt.group(0).splitlines()[0] == title]
    if not found:
        raise SystemExit(f"{path} has no section '{title}'")
    mt = found[0]
    path.write_text(old[:mt.start()] + new.rstrip("\n") + "\n\n" + old[mt.end():].lstrip("\n")
                    if mt.end() < len(old) else old[:mt.start()] + new)


def write(path, res, results_path):
    """The whole page from a full run's results; the sections rendered from other results
    (fast links, memory, the picture, the mirror) are carried over from the existing page."""
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    reading = {name: text for name, text in READING_RE.findall(old)}
    kept = [m.group(0) for m in SECTION_RE.finditer(old)]
    path.write_text(document(res, results_path, reading, kept))


def write_sections(path, res, results_path):
    """Replaces (or appends) on the existing page the sections of the benches in res that run
    on their own (APART); everything else on the page stays as it is."""
    path = Path(path)
    old = path.read_text()
    reading = {name: text for name, text in READING_RE.findall(old)}
    for name, render in APART.items():
        if name not in res:
            continue
        new = render(res, reading, results_path)
        found = [m for m in SECTION_RE.finditer(old) if m.group(1) == name]
        if found:
            old = old[:found[0].start()] + new + old[found[0].end():]
        else:
            old = old.rstrip("\n") + "\n\n" + new
    path.write_text(old)


def verdicts(res):
    """One line per target, for the console."""
    out = []
    doc = document(res, "-", {})
    for line in doc.splitlines():
        if line.startswith("- ") and ("target" in line or "not yet measured" in line):
            out.append(line[2:].replace("**", ""))
    return out


# --- sections from other results: fast links, memory, the picture -----------------------------

def section(name, text):
    return f"<!-- section:{name} -->\n{text}<!-- /section:{name} -->\n"


def reading_block(name, reading):
    return f"### Reading\n\n<!-- reading:{name} -->\n{reading.get(name, NO_READING)}<!-- /reading -->\n"


def shown_path(path):
    path = Path(path).resolve()
    root = Path(__file__).resolve().parents[1]
    return path.relative_to(root) if path.is_relative_to(root) else path


def run_line(res):
    """One line of a run.py result's conditions: commit, date, command, link and repo."""
    m, link, repo = res["meta"], res["link"], res["repo"]
    cap = (f"link cap {link['link_mbit']:g} Mbit/s" if link.get("link_bytes_per_s") else
           "no link cap")
    where = "network namespace" if link["mode"] == "netns" else "loopback"
    return (f"hffs `{m['commit']}`, {m['date']}, `{m['command']}` ({m['repeats']} "
            f"repeat{'s' if m['repeats'] > 1 else ''}); {where}, {cap}, nginx "
            f"{link['conn_rate'] / 1e6:g} MB/s per connection and {link['ttfb_ms']} ms before "
            f"every reply; `{repo['id']}`, {len(repo['shards'])} shards of "
            f"{repo['shards'][0]['bytes'] / MiB:.0f} MiB")


FAST_NAMES = {"loopback": "unshaped loopback (per-connection cap only)",
              "latency30": "30 ms per CDN request, no link cap"}


def fastlink(fast, path, reading):
    rows, lines, conds = [], [], []
    for scen, entry in fast.items():
        res = entry["results"]
        conds.append(f"- {FAST_NAMES.get(scen, scen)}: {run_line(res)}")
        sm = res.get("transfer", {}).get("summary", {})
        for tool, r in entry["ratios"].items():
            if not r.get("mbps"):
                continue
            x = f"{r['vs_aria2c']:.2f}" if r.get("vs_aria2c") else "-"
            cx = f"{r['cpu_vs_aria2c']:.2f}" if r.get("cpu_vs_aria2c") else "-"
            rows.append(f"| {scen} | {tool} | {stat(sm.get(tool), 'mbps')} | "
                        f"{stat(sm.get(tool), 'cpu_per_gb', digits=2)} | "
                        f"{stat(sm.get(tool), 'peak_rss', 1 / MiB)} | {x} | {cx} |")
        h = entry["ratios"].get("hffs", {})
        if h.get("vs_aria2c"):
            lines.append(f"- {scen}: cold sequential read / aria2c = **{h['vs_aria2c']:.2f}** "
                         f"(target >= 1.00): {verdict(h['vs_aria2c'] >= 1)}")
        if h.get("cpu_vs_aria2c"):
            lines.append(f"- {scen}: daemon CPU s/GB / aria2c's = **{h['cpu_vs_aria2c']:.2f}** "
                         f"(target <= 1.10): {verdict(h['cpu_vs_aria2c'] <= 1.1)}")
        ld = res.get("load", {}).get("summary", {})
        w, a = med(ld.get("hffs-read"), "wall"), med(ld.get("aria2c"), "wall")
        if w and a:
            lines.append(f"- {scen}: model ready / aria2c all shards = **{w / a:.2f}** "
                         f"(target <= 1.00): {verdict(w / a <= 1)}")
    return section("fastlink", f"""\
## Fast links: where the link is not the limit

`bench/fastlink.py`: the transfer benchmark above (a cold sequential read of the first shard,
1 MiB reads; curl and aria2c download it) and, where run, the load benchmark (every shard
read right after the mount, against aria2c downloading them all), without a link cap, so
that the CDN's per-connection rate and the clients' own work are the limits; once with no
delay and once with 30 ms before every CDN reply. Ratios are to aria2c's figure in the same
run; raw results `{path}`.

{chr(10).join(conds)}

| scenario | client | MB/s | CPU s/GB | peak RSS MiB | MB/s / aria2c | CPU / aria2c |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

{chr(10).join(lines)}

{reading_block('fastlink', reading)}""")


def memory(mem, path, reading):
    m = mem["memory"]
    meta = m.get("meta", {})
    mc = meta.get("machine", {})
    cond = (f"hffs `{meta.get('commit', '?')}`, {meta.get('date', '?')}, "
            f"`{meta.get('command', 'bench/memory.py')}` (median of {meta.get('repeats', '?')} "
            f"run{'s' if meta.get('repeats') != 1 else ''}); {mc.get('cores', '?')} cores, {mc.get('memory_gib', '?')} GiB, Linux "
            f"{mc.get('kernel', '?')}; the bundled fake Hub on 127.0.0.1 (API) and 127.0.0.2 "
            f"(CDN), no link shaping; raw results `{path}`")
    parts, lines = [], []
    tree = m.get("tree")
    if tree:
        t = tree["median"]
        parts.append(f"""\
A repo of {tree['files']:,} files of a few bytes (1,000 distinct contents, 100 to a
directory), mounted with `--prefetch none` on an empty cache, then `find` over the mount;
then mounted again on the same cache (the tree from the index).

| | mount s | `find` s | entries | peak RSS at mount MiB | peak RSS MiB | anonymous after MiB | mount from the index s | its peak RSS MiB |
|---|---|---|---|---|---|---|---|---|
| {tree['files']:,} files | {t['mount_s']:.2f} | {t['find_s']:.2f} | {t['entries']:,.0f} | {t['peak_rss_at_mount_mib']:.1f} | {t['peak_rss_mib']:.1f} | {t['rss_anon_mib']:.1f} | {t.get('mount_cached_s', 0):.2f} | {t.get('peak_rss_cached_mib', 0):.1f} |
""")
        peak = max(t["peak_rss_mib"], t.get("peak_rss_cached_mib", 0))
        lines.append(f"- peak RSS, {tree['files']:,}-file repo = **{peak:.1f} MiB** (target < "
                     f"100 MiB): {verdict(peak < 100)}")
    sizes = sorted(m.get("rss", {}).values(), key=lambda v: v["gib"])
    if sizes:
        rows = "\n".join(
            f"| {v['gib']} GiB | {v['median']['bytes'] / 1e9:.2f} | {v['median']['read_s']:.1f} | "
            f"{v['median']['peak_rss_mib']:.1f} | {v['median'].get('peak_rss_anon_mib', 0):.1f} | "
            f"{v['median'].get('peak_rss_file_mib', 0):.1f} | "
            f"{v['median']['rss_anon_after_mib']:.1f} | {v['median'].get('threads', 0):.0f} |"
            for v in sizes)
        parts.append(f"""\
Repos of 512 MiB shards mounted with completion on (the default), every file read once with
1 MiB reads. Peak RSS is the daemon's VmHWM; the peaks of its anonymous and file-backed RSS
(the index's map) and of its threads are sampled every 50 ms; "anonymous after" is 2 s after
the read.

| repo | GB read | read s | peak RSS MiB | peak anonymous MiB | peak file MiB | anonymous after MiB | threads |
|---|---|---|---|---|---|---|---|
{rows}
""")
        peaks = [v["median"]["peak_rss_mib"] for v in sizes]
        lines.append(f"- peak RSS, repo read whole = **{max(peaks):.1f} MiB** at most "
                     f"(target < 100 MiB): {verdict(max(peaks) < 100)}")
        spread = (max(peaks) - min(peaks)) / min(peaks)
        lines.append(f"- flat in repo size: {sizes[0]['gib']} to {sizes[-1]['gib']} GiB differ "
                     f"by **{max(peaks) - min(peaks):.1f} MiB ({spread:.0%})** (target: within "
                     f"10%): {verdict(spread <= 0.10)}")
    return section("memory", f"""\
## Memory: a huge tree, and repos read whole

`bench/memory.py`. {cond}.

{chr(10).join(parts)}
{chr(10).join(lines)}

{reading_block('memory', reading)}""")


def figure(res, info, png, path, reading):
    marks = "; ".join(f"{label} at {x:.1f} s" for label, x in info["marks"].items())
    return section("figure", f"""\
## Bytes over time while a model loads

![bytes over time: hffs fetched (for the file being read, and for other files) and what its
reader has in hand, against aria2c]({png})

The load benchmark (every shard read right after the mount, here `{info['reader']}`: mmap
and copy each tensor) against aria2c downloading all shards, from one run:
{run_line(res)}; repeat {info['repeat'] + 1}, the median hffs run. The CDN's access log
gives each of hffs's replies (ranges of at most 16 MiB) its bytes and time, spread evenly
over it; bytes for the file the reader was in at that moment are told apart from bytes for
other files, which only background completion fetches. aria2c's curve is what it had written
to its files (its `wchar`, sampled every 50 ms). {marks}. Drawn by `bench/plot.py` from
`{path}`.

{reading_block('figure', reading)}""")


def update(docs, parts):
    """Replaces (or appends) the named sections of docs in place; the rest is kept as is."""
    docs = Path(docs)
    text = docs.read_text()
    reading = {name: body for name, body in READING_RE.findall(text)}
    for name, render in parts:
        new = render(reading)
        m = re.search(rf"<!-- section:{name} -->\n.*?<!-- /section:{name} -->\n", text, re.S)
        text = (text[:m.start()] + new + text[m.end():] if m else
                text.rstrip("\n") + "\n\n" + new)
    docs.write_text(text)


def main():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    ap = argparse.ArgumentParser(
        description="Adds or replaces the fast-link, memory and picture sections of "
                    "docs/benchmarks.md from their own results, or one section of a run.py "
                    "run (--results, --section); the rest of the page is kept.")
    ap.add_argument("--docs", type=Path,
                    default=Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md")
    ap.add_argument("--results", type=Path, help="a results JSON of bench/run.py, with --section")
    ap.add_argument("--section", choices=sorted([*RUN_SECTIONS, *APART]),
                    help="rewrite only this section from --results (the rest stays)")
    ap.add_argument("--fastlink", type=Path, help="bench/fastlink.py's merged results")
    ap.add_argument("--memory", type=Path, help="bench/memory.py's results")
    ap.add_argument("--figure-from", type=Path, help="bench/run.py results with `load`")
    ap.add_argument("--figure", type=Path, help="the PNG to write (next to --docs)")
    a = ap.parse_args()
    if a.section:
        if not a.results:
            ap.error("--section needs --results")
        res = json.loads(a.results.read_text())
        if a.section in APART:
            write_sections(a.docs, res, shown_path(a.results))
        else:
            write_section(a.docs, res, shown_path(a.results), a.section)
    parts = []
    if a.fastlink:
        fast = json.loads(a.fastlink.read_text())
        parts.append(("fastlink", lambda r: fastlink(fast, shown_path(a.fastlink), r)))
    if a.memory:
        mem = json.loads(a.memory.read_text())
        parts.append(("memory", lambda r: memory(mem, shown_path(a.memory), r)))
    if a.figure_from and a.figure:
        import plot

        res = json.loads(a.figure_from.read_text())
        info = plot.plot(res, a.figure)
        png = os.path.relpath(a.figure, a.docs.parent)
        parts.append(("figure", lambda r: figure(res, info, png, shown_path(a.figure_from), r)))
    update(a.docs, parts)


if __name__ == "__main__":
    main()
