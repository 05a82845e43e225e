"""Metrics in the Prometheus text format: `hffs status --prometheus` and the daemon's
`--metrics-file`. A strict reader of the text exposition format 0.0.4 (below) checks both;
the counters move as reads happen (a cold read: misses and network bytes; a warm one: hits,
no network), the read latency histogram is cumulative and adds up, and the metrics file is
replaced whole (a reader never sees part of one) and removed at unmount.

Removed rather than left: node_exporter's textfile collector exports every file it finds, with
no notion of age, so a file left behind would export a mount that is gone, its counters
frozen, for as long as the machine runs; removing it ends the series, as a target that goes
away does. (A daemon killed with -9 cannot remove it: `hffs_live_updated_timestamp_seconds`
and node_exporter's `node_textfile_mtime_seconds` show its age.)"""
import json
import math
import os
import re
import threading
import time

import pytest

from conftest import run_hffs

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
VALUE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
HIST_SUFFIXES = ("_bucket", "_sum", "_count")


def parse_labels(text, line):
    """The labels of a sample, in order; every character accounted for (no trailing comma,
    no label twice, values escaped as the format says)."""
    labels, pos = [], 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        assert m, f"bad labels at {text[pos:]!r}: {line!r}"
        labels.append((m.group(1), m.group(2)))
        pos = m.end()
        if pos < len(text):
            assert text[pos] == "," and pos + 1 < len(text), f"bad label separator: {line!r}"
            pos += 1
    names = [n for n, _ in labels]
    assert len(names) == len(set(names)), f"a label twice: {line!r}"
    return labels


def check_histograms(series, types):
    """Each histogram series: buckets by increasing le, cumulative, the last +Inf, equal to
    _count; a _sum."""
    for fam in (n for n, t in types.items() if t == "histogram"):
        groups = {}
        for (name, labels), v in series.items():
            if name.startswith(fam) and name[len(fam):] in HIST_SUFFIXES:
                key = tuple(x for x in labels if x[0] != "le")
                groups.setdefault(key, {"buckets": []})
                if name.endswith("_bucket"):
                    le = dict(labels).get("le")
                    assert le is not None, f"{name} without le"
                    groups[key]["buckets"].append((float(le), v))
                else:
                    groups[key][name[len(fam):]] = v
        for key, g in groups.items():
            b = g["buckets"]
            assert b and b[-1][0] == math.inf, f"{fam}{key}: no +Inf bucket"
            assert all(x[0] < y[0] for x, y in zip(b, b[1:])), f"{fam}: le not increasing"
            assert all(x[1] <= y[1] for x, y in zip(b, b[1:])), f"{fam}: not cumulative"
            assert g.get("_count") == b[-1][1], f"{fam}{key}: _count is not the +Inf bucket"
            assert "_sum" in g, f"{fam}{key}: no _sum"


def parse_prometheus(text):
    """A strict reader of the text exposition format 0.0.4: every line a HELP, a TYPE or a
    sample; HELP and TYPE once per family and before its samples; a family's samples
    together; counters named *_total; a histogram's samples are its _bucket (with le), _sum
    and _count and add up; values are numbers; no series twice; the text ends with a newline.
    Returns ({(name, labels): value}, {family: type}) with labels a sorted tuple of pairs."""
    assert text.endswith("\n"), "the last line ends with a newline"
    types, helps, series, done, current = {}, {}, {}, set(), None
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name, _, doc = line[7:].partition(" ")
            assert NAME.fullmatch(name) and doc and name not in helps, line
            assert name not in done, f"HELP after the family's samples: {line}"
            helps[name] = doc
            continue
        if line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            assert name not in types and name not in done, f"TYPE repeated or late: {line}"
            assert typ in TYPES, line
            assert typ != "counter" or name.endswith("_total"), f"counter not _total: {line}"
            types[name] = typ
            continue
        assert not line.startswith("#") and line and line.strip() == line, repr(line)
        m = SAMPLE.fullmatch(line)
        assert m, f"not a sample: {line!r}"
        name, labels, value = m.group(1), m.group(2), m.group(3)
        fam = name
        if name not in types:
            base = next((name[:-len(s)] for s in HIST_SUFFIXES if name.endswith(s)), None)
            assert base and types.get(base) == "histogram", f"sample without a TYPE: {line}"
            fam = base
        assert fam in helps, f"sample without a HELP: {line}"
        assert VALUE.fullmatch(value), f"not a number: {line!r}"
        if fam != current:
            assert fam not in done, f"family {fam} split"
            if current:
                done.add(current)
            current = fam
        key = (name, tuple(sorted(parse_labels(labels or "", line))))
        assert key not in series, f"series twice: {line}"
        series[key] = float(value)
    check_histograms(series, types)
    return series, types


def values(series, name, mp, **labels):
    """{labels: value} of name's series for mountpoint mp with the given labels."""
    want = {("mountpoint", str(mp)), *labels.items()}
    return {lb: v for (n, lb), v in series.items() if n == name and want <= set(lb)}


def value(series, name, mp, **labels):
    vals = list(values(series, name, mp, **labels).values())
    assert len(vals) == 1, (name, labels, vals)
    return vals[0]


def status(mp=None, cache_dir=None):
    args = ["status", "--prometheus"] + ([str(mp)] if mp else [])
    args += ["--cache-dir", str(cache_dir)] if cache_dir else []
    return parse_prometheus(run_hffs(*args, check=True).stdout)


def read_uncached(path):
    """Reads path whole through the daemon: the kernel's cached pages of it are dropped
    first (the mount keeps them across opens)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def misses_now(series, mp):
    return value(series, "hffs_reads_total", mp, cache="miss")


def fetched(series, mp):
    return sum(values(series, "hffs_fetched_bytes_total", mp).values())


def test_prometheus_parser_is_strict():
    good = "# HELP a_total x\n# TYPE a_total counter\na_total{l=\"a\\\"b\"} 1\n"
    assert parse_prometheus(good)[0] == {("a_total", (("l", 'a\\"b'),)): 1.0}
    hist = ("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
            "h_sum 3\nh_count 2\n")
    assert parse_prometheus(hist)[0][("h_count", ())] == 2
    for bad in ("# HELP a x\n# TYPE a counter\na 1\n",
                "a 1\n", good + "a_total{l=\"a\\\"b\"} 2\n", good.replace(" 1\n", " x\n"),
                good.replace(" 1\n", " 1_0\n"),
                good + "# HELP b y\n# TYPE b counter\nb 1\n", good.rstrip("\n"),
                good.replace('{l="a\\"b"}', '{l="a"b"}'),
                good.replace('{l="a\\"b"}', '{l="a",}'),
                good.replace('{l="a\\"b"}', '{l="a",l="b"}'),
                hist.replace("h_count 2", "h_count 1"),  # _count is not the +Inf bucket
                hist.replace("} 1\n", "} 3\n"),  # not cumulative
                hist.replace('"+Inf"', '"2"'),  # no +Inf
                hist.replace("h_sum 3\n", ""),
                hist.replace('h_bucket{le="1"}', "h_bucket"),
                hist + "h_bucket{le=\"0.5\"} 0\n"):  # the family split
        with pytest.raises((AssertionError, ValueError)):
            parse_prometheus(bad)


def test_status_prometheus_parses_and_changes_as_reads_happen(mount, hub, cache_dir):
    files = hub.files("org/model")
    m = mount("org/model", "--prefetch", "none")
    before, types = status(cache_dir=cache_dir)
    assert before[("hffs_mounts", ())] == 1 and before[("hffs_dead_mounts", ())] == 0
    info = dict(next(iter(values(before, "hffs_mount_info", m.path))))
    assert info["repo"] == "models/org/model" and info["revision"] == "main"
    assert info["commit"] == hub.commit("org/model") and info["offline"] == "false"
    assert value(before, "hffs_files", m.path) == len(files)
    assert value(before, "hffs_size_bytes", m.path) == sum(map(len, files.values()))
    assert types["hffs_read_duration_seconds"] == "histogram"
    big = max(files, key=lambda f: len(files[f]))
    assert (m.path / big).read_bytes() == files[big]
    after, _ = status(cache_dir=cache_dir)
    for name in ("hffs_cached_bytes", "hffs_coverage_ratio", "hffs_files_complete"):
        assert value(after, name, m.path) > value(before, name, m.path), name
    assert fetched(after, m.path) >= len(files[big])
    assert value(after, "hffs_verify_failures_total", m.path) == 0
    # One mount by its mountpoint; --json and --prometheus are exclusive.
    one, _ = status(m.path)
    assert value(one, "hffs_files", m.path) == len(files)
    assert run_hffs("status", "--json", "--prometheus").returncode == 2


def test_reads_hits_misses_bytes_by_source_and_latency(mount, hub, tmp_path):
    """A cold read misses and brings bytes from the network (an LFS file's from the CDN host,
    a small file's from the Hub's origin); the same read again, warm, hits and brings none.
    The metrics file says what status says."""
    files = hub.files("org/model")
    big = max(files, key=lambda f: len(files[f]))
    small = "config.json"
    prom = tmp_path / "textfile" / "hffs.prom"
    prom.parent.mkdir()
    m = mount("org/model", "--prefetch", "none", "--metrics-file", prom)
    s0, _ = status(m.path)
    hit0 = value(s0, "hffs_reads_total", m.path, cache="hit")
    assert value(s0, "hffs_reads_total", m.path, cache="miss") == 0
    assert fetched(s0, m.path) == 0

    assert read_uncached(m.path / big) == files[big]
    cold, _ = status(m.path)
    misses = value(cold, "hffs_reads_total", m.path, cache="miss")
    assert misses > 0
    assert value(cold, "hffs_read_bytes_total", m.path, cache="miss") > 0
    assert sum(values(cold, "hffs_read_bytes_total", m.path).values()) >= len(files[big])
    cdn = value(cold, "hffs_fetched_bytes_total", m.path, source="cdn")
    assert cdn >= len(files[big]), "an LFS file's bytes come from the CDN host"
    assert read_uncached(m.path / small) == files[small]
    cold2, _ = status(m.path)
    assert value(cold2, "hffs_fetched_bytes_total", m.path, source="hub") >= len(files[small])
    assert value(cold2, "hffs_fetched_bytes_total", m.path, source="cdn") == cdn
    net = fetched(cold2, m.path)

    for _ in range(2):
        assert read_uncached(m.path / big) == files[big]
    warm, _ = status(m.path)
    hits = value(warm, "hffs_reads_total", m.path, cache="hit")
    assert hits > value(cold2, "hffs_reads_total", m.path, cache="hit") >= hit0
    assert value(warm, "hffs_read_bytes_total", m.path, cache="hit") >= 2 * len(files[big])
    assert value(warm, "hffs_reads_total", m.path, cache="miss") == \
        value(cold2, "hffs_reads_total", m.path, cache="miss")
    assert fetched(warm, m.path) == net, "a warm read fetches nothing"
    # Every read answered is in the histogram once.
    answered = sum(values(warm, "hffs_reads_total", m.path).values()) + \
        value(warm, "hffs_read_errors_total", m.path)
    assert value(warm, "hffs_read_duration_seconds_count", m.path) == answered
    assert value(warm, "hffs_read_duration_seconds_bucket", m.path, le="+Inf") == answered
    assert value(warm, "hffs_read_duration_seconds_sum", m.path) > 0
    assert value(warm, "hffs_read_errors_total", m.path) == 0
    assert value(warm, "hffs_cache_used_bytes", m.path) >= net - 2 * (1 << 20)

    # --json and the text report say the same figures.
    live = json.loads(run_hffs("status", str(m.path), "--json", check=True).stdout)
    live = live["mounts"][0]["live"]
    assert live["reads"] == {"hits": hits, "misses": misses_now(warm, m.path), "errors": 0}
    assert live["bytes_from"] == {
        "hub": value(warm, "hffs_fetched_bytes_total", m.path, source="hub"),
        "cdn": value(warm, "hffs_fetched_bytes_total", m.path, source="cdn")}
    text = run_hffs("status", str(m.path), check=True).stdout
    assert f"reads: {int(hits)} from the cache, {int(misses_now(warm, m.path))} waited" in text

    # The file catches up within its period (no read happens meanwhile) and says the same.
    def from_file():
        return parse_prometheus(prom.read_text())[0]

    deadline = time.monotonic() + 30
    while value(from_file(), "hffs_reads_total", m.path, cache="hit") != hits:
        assert time.monotonic() < deadline, "the metrics file did not catch up in 30 s"
        time.sleep(0.5)
    f = from_file()
    stable = ("hffs_mount_info", "hffs_files", "hffs_files_complete", "hffs_size_bytes",
              "hffs_cached_bytes", "hffs_coverage_ratio", "hffs_fetched_bytes_total",
              "hffs_reads_total", "hffs_read_bytes_total", "hffs_read_errors_total",
              "hffs_read_duration_seconds_bucket", "hffs_read_duration_seconds_count",
              "hffs_read_duration_seconds_sum", "hffs_retries_total", "hffs_stalls_total",
              "hffs_verify_failures_total", "hffs_mount_start_time_seconds")
    for name in stable:
        assert values(f, name, m.path) == values(warm, name, m.path), name
    # The same families, but the report's totals (a file per mount cannot say them).
    names = {n for n, _ in warm} - {"hffs_mounts", "hffs_dead_mounts"}
    assert {n for n, _ in f} == names


def test_metrics_file_is_replaced_whole_and_removed_at_unmount(mount, hub, tmp_path):
    files = hub.files("org/model")
    d = tmp_path / "textfile"
    d.mkdir()
    prom = d / "hffs.prom"
    m = mount("org/model", "--prefetch", "none", "--metrics-file", prom)
    stop = threading.Event()
    errors = []

    def reader():  # reads through the daemon all along, so the figures keep changing
        try:
            for i in range(10000):
                if stop.is_set():
                    return
                name = sorted(files)[i % len(files)]
                assert read_uncached(m.path / name) == files[name]
        except Exception as e:  # noqa: BLE001 (reported by the test)
            errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        deadline = time.monotonic() + 60
        while not prom.exists():
            assert time.monotonic() < deadline, "no metrics file"
            time.sleep(0.05)
        # Families that come and go with the figures: an ETA only while it is known.
        optional = {"hffs_eta_seconds", "hffs_cache_max_size_bytes"}
        families = set(parse_prometheus(prom.read_text())[1]) - optional
        assert "hffs_read_duration_seconds" in families
        inodes, reads, hits = set(), 0, []
        while (len(inodes) < 3 or reads < 200) and time.monotonic() < deadline:
            st = os.stat(prom)
            text = prom.read_text()
            series, types = parse_prometheus(text)  # never a part of a file
            assert set(types) - optional == families, "a file with families missing"
            assert st.st_mode & 0o777 == 0o644
            inodes.add(st.st_ino)
            hits.append(value(series, "hffs_reads_total", m.path, cache="hit"))
            reads += 1
            time.sleep(0.01)
    finally:
        stop.set()
        t.join(timeout=60)
    assert not t.is_alive() and not errors, errors
    assert len(inodes) >= 3, f"the file was replaced {len(inodes) - 1} times in 60 s"
    assert hits == sorted(hits) and hits[-1] > hits[0], "the counters moved as reads happened"
    m.unmount()
    assert not prom.exists(), "the metrics file outlived the mount"
    assert os.listdir(d) == [], "a temporary file was left behind"


def test_metrics_file_needs_a_writable_directory(tmp_path):
    mp = tmp_path / "mp"
    mp.mkdir()
    common = ("mount", "org/model", str(mp), "--cache-dir", str(tmp_path / "cache"),
              "--endpoint", "http://127.0.0.1:9")
    p = run_hffs(*common, "--metrics-file", str(tmp_path / "no" / "x"))
    assert p.returncode == 1 and "--metrics-file" in p.stderr and "No such file" in p.stderr
    p = run_hffs(*common, "--metrics-file", str(tmp_path))
    assert p.returncode == 1 and "is a directory" in p.stderr, p.stderr
    assert not os.path.ismount(mp)
