"""FakeHub: a fakehub.py subprocess as a test object. Start it, point a client at api_url, read
its request log, script its faults, stop it. Used by tests/fakehub and tests/integration (which
put this folder on sys.path). Every wait has a deadline; the server is stopped by its PID.
"""
import http.client
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import repostore

HERE = Path(__file__).resolve().parent


class FakeHub:
    """fakehub.py serving `data_dir` (see genrepo.py), its files kept in `tmp_dir`.

    Options map to the server's flags: page_size, url_ttl, cdn_rate, direct_200, api_host,
    cdn_host, cas_host, xet_token_ttl; `tokens` is the tokens dict ({"hf_…": {"user", "gated_approved", "repos"?}}) and
    `faults` a rule list active from the start (README.md, "Faults")."""

    def __init__(self, data_dir, tmp_dir, *, page_size=None, url_ttl=None, cdn_rate=None,
                 tokens=None, faults=None, direct_200=False, api_host=None, cdn_host=None,
                 cas_host=None, xet_token_ttl=None):
        self.data_dir = Path(data_dir)
        self.tmp_dir = Path(tmp_dir)
        self.tokens, self.faults = tokens, faults
        self.flags = [("--page-size", page_size), ("--url-ttl", url_ttl),
                      ("--cdn-rate", cdn_rate), ("--api-host", api_host),
                      ("--cdn-host", cdn_host), ("--cas-host", cas_host),
                      ("--xet-token-ttl", xet_token_ttl)]
        self.direct_200 = direct_200
        self.port_file = self.tmp_dir / "ports.json"
        self.log_file = self.tmp_dir / "requests.jsonl"
        self.stderr_file = self.tmp_dir / "fakehub.stderr"
        self.proc = None
        self.api_url = self.cdn_url = self.cas_url = None

    def start(self, timeout=10):
        """Starts the server and waits (at most `timeout` s) until it listens."""
        assert self.proc is None, "already started"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.port_file.unlink(missing_ok=True)
        self.log_file.write_bytes(b"")
        cmd = [sys.executable, str(HERE / "fakehub.py"), "--data", str(self.data_dir),
               "--port-file", str(self.port_file), "--log", str(self.log_file)]
        cmd += [str(a) for flag, value in self.flags if value is not None for a in (flag, value)]
        if self.direct_200:
            cmd.append("--direct-200")
        for name, value in (("tokens", self.tokens), ("faults", self.faults)):
            if value is not None:
                path = self.tmp_dir / f"{name}.json"
                path.write_text(json.dumps(value))
                cmd += [f"--{name}", str(path)]
        with open(self.stderr_file, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=err, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fakehub did not start:\n{self.server_errors()}")
            time.sleep(0.02)
        ports = json.loads(self.port_file.read_text())
        self.api_url, self.cdn_url = ports["api_url"], ports["cdn_url"]
        self.cas_url = ports["cas_url"]
        return self

    def stop(self, timeout=10):
        """SIGTERM to the server's PID, then SIGKILL if it has not exited within `timeout` s.
        Safe to call twice."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def server_errors(self):
        """What the server wrote to stdout/stderr: empty unless something went wrong."""
        return self.stderr_file.read_text(errors="replace") if self.stderr_file.exists() else ""

    # -- request log

    def log_entries(self):
        """Every request so far, oldest first (README.md, "Request log")."""
        with open(self.log_file, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.endswith("\n")]

    def xorb_bytes(self):
        """Xet bytes fetched so far: the body bytes of every xorb request (README.md, "Xet")."""
        return sum(e["bytes"] for e in self.log_entries()
                   if e["host"] == "cdn" and e["path"].startswith("/xorb/"))

    def clear_log(self):
        """Empties the log (the server appends with O_APPEND, so this is safe while it runs)."""
        self.log_file.write_bytes(b"")

    # -- faults (never applied to /_fake/ requests)

    def set_faults(self, rules):
        """Replaces the rule set; raises ValueError if the server refuses a rule."""
        return self._control("POST", "/_fake/faults", rules)

    def get_faults(self):
        """The active rules, each with its `matched` and `fired` counters."""
        return self._control("GET", "/_fake/faults")

    def reset(self):
        """Drops every rule and counter."""
        return self._control("POST", "/_fake/reset", {})

    def _control(self, method, path, payload=None, timeout=10):
        url = urlsplit(self.api_url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
        try:
            body = None if payload is None else json.dumps(payload)
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = json.loads(resp.read() or b"null")
        finally:
            conn.close()
        if resp.status != 200:
            raise ValueError(f"{method} {path}: {resp.status} {data}")
        return data

    # -- expected contents

    def files(self, repo_id, revision=repostore.DEFAULT_BRANCH, repo_type="model"):
        """{path: bytes} the server holds for a revision."""
        return repostore.read_files(self.data_dir, repo_id, revision, repo_type)

    def sha256s(self, repo_id, revision=repostore.DEFAULT_BRANCH, repo_type="model"):
        """{path: sha256 hex} of the revision's contents."""
        return repostore.content_sha256s(self.data_dir, repo_id, revision, repo_type)

    def commit(self, repo_id, revision=repostore.DEFAULT_BRANCH, repo_type="model"):
        """The 40-hex commit the revision resolves to."""
        return repostore.commit_sha(self.data_dir, repo_id, revision, repo_type)
