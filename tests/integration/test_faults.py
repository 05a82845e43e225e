"""The network breaks; the bytes stay right. Every fault of the fake Hub, through the mount:
readers see no error while retries remain, files end byte-identical, and a reader whose
retries run out gets EIO (never wrong bytes) with a log line that says why."""
import errno
import json
import os
import threading
import time

import pytest

from conftest import run_hffs, wait_for

MiB = 1 << 20
SHARD = "model-00001-of-00003.safetensors"


def read_all(m, hub, repo="org/model"):
    for rel, data in hub.files(repo).items():
        assert (m.path / rel).read_bytes() == data, rel


@pytest.mark.parametrize("rule", [
    {"host": "cdn", "fault": "reset", "at_byte": 300000, "count": 3},
    {"host": "cdn", "fault": "truncate", "at_byte": 123457, "count": 3},
    {"host": "cdn", "fault": "status", "status": 503, "retry_after": 1, "count": 3},
    {"host": "cdn", "fault": "status", "status": 500, "count": 2},
    {"host": "api", "path_re": "resolve", "fault": "status", "status": 502, "count": 2},
    {"host": "cdn", "fault": "status", "status": 429,
     "ratelimit": {"bucket": "resolvers", "r": 0, "t": 1}, "count": 2},
    {"host": "cdn", "fault": "ignore_range", "count": 2},
    {"host": "cdn", "fault": "expire", "after": 2},
    {"host": "cdn", "fault": "stall", "at_byte": 65536, "seconds": 30, "count": 1},
    {"host": "cdn", "fault": "trickle", "rate": 4 * MiB, "count": 4},
], ids=lambda r: r["fault"] + str(r.get("status", "")))
def test_fault_is_survived(hub, mount, rule):
    hub.set_faults([rule])
    m = mount("org/model", "--prefetch", "none", "--stall-timeout", "2")
    read_all(m, hub)
    fired = sum(r.get("fired", 0) for r in hub.get_faults())
    assert fired >= 1, "the fault never fired: the test would prove nothing"


def test_no_authorization_reaches_the_cdn_under_faults(hub, mount):
    hub.set_faults([{"host": "cdn", "fault": "expire", "after": 1}])
    m = mount("org/model", "--prefetch", "none")
    read_all(m, hub)
    cdn = [e for e in hub.log() if e["host"] == "cdn"]
    assert cdn and not any(e["authorization"] for e in cdn)


def test_retries_exhausted_gives_eio_and_words(hub, mount):
    hub.set_faults([{"host": "cdn", "fault": "status", "status": 503}])
    m = mount("org/model", "--prefetch", "none")
    with pytest.raises(OSError) as e:
        (m.path / SHARD).read_bytes()
    assert e.value.errno == errno.EIO
    log = m.log()
    assert "503" in log and SHARD in log, log
    # Said while the reads waited, not only when they failed: the warning comes first.
    warn = log.find("transfers are failing and being retried (HTTP 503")
    assert 0 <= warn < log.find("failed: "), log
    # The mount survives: other files still read, and the shard does once the CDN recovers.
    hub.reset()
    assert (m.path / "config.json").read_bytes() == hub.files("org/model")["config.json"]
    assert (m.path / SHARD).read_bytes() == hub.files("org/model")[SHARD]


def test_permanent_error_fails_at_once(hub, mount):
    hub.set_faults([{"host": "cdn", "fault": "status", "status": 404}])
    m = mount("org/model", "--prefetch", "none")
    with pytest.raises(OSError) as e:
        with open(m.path / SHARD, "rb") as f:
            f.read(100)
    assert e.value.errno == errno.EIO
    tries = {}
    for x in hub.log():
        if x["host"] == "cdn" and x["status"] == 404:
            tries[x["range"]] = tries.get(x["range"], 0) + 1
    # Kernel read-ahead asks several ranges; each is tried once (plus one re-resolve).
    assert tries and max(tries.values()) <= 2, tries


def test_cached_reads_work_while_the_server_stalls(hub, mount):
    src = hub.files("org/model")
    m = mount("org/model", "--prefetch", "none")
    assert (m.path / "config.json").read_bytes() == src["config.json"]
    hub.set_faults([{"host": "any", "fault": "stall", "at_byte": 0, "seconds": 60}])
    # Cached: answered from disk however the server behaves.
    with open(m.path / "config.json", "rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        assert f.read() == src["config.json"]


def timed_read(path, off, n, out):
    """pread in a thread: out gets ("ok", bytes) or ("err", errno), and the seconds it took."""
    t0 = time.monotonic()
    try:
        with open(path, "rb") as f:
            out["result"] = ("ok", os.pread(f.fileno(), n, off))
    except OSError as e:
        out["result"] = ("err", e.errno)
    out["took"] = time.monotonic() - t0


@pytest.mark.parametrize("rule", [
    {"host": "cdn", "fault": "status", "status": 503},
    # Silent connections: the stall detector (30 s) would take longer than --io-timeout.
    {"host": "cdn", "fault": "stall", "at_byte": 0, "seconds": 60},
], ids=["503", "stall"])
def test_io_timeout_bounds_the_wait_for_eio(hub, mount, cache_dir, rule):
    hub.set_faults([rule])
    m = mount("org/model", "--prefetch", "none", "--io-timeout", "3s")
    out = {}
    t = threading.Thread(target=timed_read, args=(m.path / SHARD, MiB + 5, 4096, out))
    t.start()
    if rule["fault"] == "status":
        # While it waits, status says why and for how long at most.
        def retrying():
            p = run_hffs("status", "--json", "--cache-dir", cache_dir, check=True)
            live = json.loads(p.stdout)["mounts"][0]["live"]
            return live["retrying"] and live["io_timeout_s"] == 3
        wait_for(retrying, timeout=20, what="status to show the retries")
        text = run_hffs("status", "--cache-dir", cache_dir, check=True).stdout
        assert "EIO after 3 s without data (--io-timeout)" in text or not t.is_alive(), text
    t.join(timeout=60)
    assert not t.is_alive(), "the read never ended"
    assert out["result"] == ("err", errno.EIO), out
    # Roughly the option's time: well under the 28 s of the default retry count (a
    # generous bound; the kernel may send the read twice).
    assert out["took"] < 20, out
    log = m.log()
    assert "EIO after 3 s without data (--io-timeout)" in log or rule["fault"] == "stall", log
    assert "--io-timeout" in log, log


def test_a_read_outlives_a_short_outage(hub, mount):
    """A fault that clears before --io-timeout: the waiting read gets its bytes."""
    hub.set_faults([{"host": "cdn", "fault": "status", "status": 503}])
    m = mount("org/model", "--prefetch", "none", "--io-timeout", "2m")
    out = {}
    t = threading.Thread(target=timed_read, args=(m.path / SHARD, MiB + 5, 4096, out))
    t.start()
    wait_for(lambda: "transfers are failing and being retried" in m.log(), timeout=30,
             what="the retry warning")
    assert "EIO after 120 s without data (--io-timeout)" in m.log()
    hub.reset()
    t.join(timeout=90)
    assert not t.is_alive(), "the read never ended"
    assert out["result"] == ("ok", hub.files("org/model")[SHARD][MiB + 5:MiB + 5 + 4096])
