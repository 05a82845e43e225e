"""The network breaks; the bytes stay right. Every fault of the fake Hub, through the mount:
readers see no error while retries remain, files end byte-identical, and a reader whose
retries run out gets EIO (never wrong bytes) with a log line that says why."""
import errno
import os

import pytest

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
