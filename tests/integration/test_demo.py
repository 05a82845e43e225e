"""scripts/demo, the README's main job, run as a new user would (root, no real Hub reachable):
it falls back to the bundled fake Hub, shows the first tensor against a plain download, ends
with every file verified and a live status, and prints next steps that exist. Small shards
(HFFS_DEMO_SHARD_SIZE) keep it to a few MB; the demo builds and runs its own gcc build, so the
sanitizer suites skip it."""
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, clean_env

pytestmark = pytest.mark.skipif(os.environ.get("HFFS_SANITIZED") == "1",
                                reason="the demo runs its own gcc build, not the sanitized one")


def test_demo_shows_the_point_and_ends_truthfully():
    env = clean_env(HF_ENDPOINT="http://127.0.0.1:9", HFFS_DEMO_SHARD_SIZE=str(2 << 20),
                    HFFS_DEMO_RATE="4000000")
    p = subprocess.run([str(ROOT / "scripts" / "demo")], capture_output=True, text=True,
                       env=env, timeout=900)
    out = p.stdout
    assert p.returncode == 0, out[-3000:] + p.stderr[-3000:]
    assert "using the bundled fake Hub on 127.0.0.1" in out
    m = re.search(r"^== with hffs, the first tensor after ([\d.]+) s and every tensor after "
                  r"([\d.]+) s; a plain download takes ([\d.]+) s before the first$", out, re.M)
    assert m, out[-3000:]
    first, every = float(m.group(1)), float(m.group(2))
    assert 0 < first <= every
    # Every file checked through the mount, and status says so: no partial file, no ETA left.
    checked = re.findall(r"^  (ok|BAD)\s+\d+  (.+)$", out, re.M)
    assert checked and all(v == "ok" for v, _ in checked), checked
    status = out.split("== hffs status", 1)[1].split("== hffs unmount", 1)[0]
    assert "100%" in status and "ETA 0:00" in status, status
    files = [ln for ln in status.splitlines() if ln.startswith("  ") and "[" in ln and "%" not in ln]
    assert len(files) == len(checked) and all(ln.split()[0] == "verified" for ln in files), status
    # Next steps point at things that exist after the run, and nothing needs sudo.
    steps = out.split("Next steps:", 1)[1]
    binary = re.search(r"the binary:\s+(\S+)", steps).group(1)
    assert Path(binary).is_file() and os.access(binary, os.X_OK)
    log = re.search(r"this run's log:\s+(\S+)", steps).group(1)
    assert Path(log).is_file()
    assert "sudo" not in steps
    # The demo's listing is the generated model, not the tests' hostile fixtures.
    listing = out.split("== ls -l", 1)[1].split("==", 1)[0]
    assert "model-00001-of-" in listing and all(len(ln) < 200 for ln in listing.splitlines())
