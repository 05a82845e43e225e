"""kill -9 of the daemon at random moments of a background completion: the index opens, no
block is claimed that is not on disk, completion resumes, and every file ends verified."""
import json
import random
import signal

from conftest import run_hffs, wait_for

MiB = 1 << 20


def test_kill9_loop_then_everything_verifies(hub, mount, cache_dir):
    src = hub.files("org/model")
    hub.set_faults([{"host": "cdn", "fault": "trickle", "rate": 4 * MiB}])
    rng = random.Random(1234)
    for i in range(20):
        m = mount("org/model", name="crash")
        # A random moment: a few live-figure updates in, while blocks are landing.
        wait_for(lambda: m.proc.poll() is None, timeout=5)
        try:
            m.proc.wait(timeout=rng.uniform(0.05, 0.8))
        except Exception:
            pass
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait(timeout=10)
    hub.reset()
    m = mount("org/model", name="crash")

    def verified():
        st = json.loads(run_hffs("status", "--json", "--cache-dir", cache_dir,
                                 check=True).stdout)
        mt = [x for x in st["mounts"] if x["mountpoint"] == str(m.path)]
        return mt and all(f["state"] == "verified" for f in mt[0]["files"])

    wait_for(verified, timeout=180, what="every file verified after 20 kills")
    for rel, data in src.items():
        assert (m.path / rel).read_bytes() == data, rel
