#!/usr/bin/python3
"""fakehub: a fake Hugging Face Hub for hffs tests, faithful to docs/HUB_PROTOCOL.md.

    fakehub.py --data DATA --port-file PORTFILE --log LOGFILE [--page-size 1000]
               [--api-host 127.0.0.1] [--cdn-host 127.0.0.2] [--url-ttl 3600]
               [--cdn-rate BYTES_PER_S] [--tokens TOKENFILE] [--faults FAULTFILE] [--direct-200]
               [--cdn-base URL] [--cas-host 127.0.0.3] [--xet-token-ttl 3600]

Three HTTP/1.1 keep-alive listeners on port 0, the API host (repo info, tree, resolve, Xet read
tokens), the CDN host (signed LFS and xorb URLs) and the Xet CAS host (reconstructions; cas.py),
each connection on its own daemon thread. With --cdn-base, LFS redirects
point at an external server that serves DATA/blobs instead (benchmarks put nginx there). The main thread only starts
them, writes PORTFILE and waits for SIGTERM/SIGINT. Every request is appended to LOGFILE as one
JSON line. Data layout, fault rules, control endpoints: README.md.
"""
import argparse
import base64
import calendar
import gzip
import hashlib
import hmac
import http
import json
import mimetypes
import os
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlencode, urlsplit
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__":  # cas.py imports this module by name: one module, not two
    sys.modules.setdefault("fakehub", sys.modules[__name__])

import cas  # noqa: E402
import faults  # noqa: E402
import repostore  # noqa: E402
import xetstore  # noqa: E402

TYPE_PREFIXES = {"models": "model", "datasets": "dataset", "spaces": "space"}
API_VERBS = ("revision", "tree", "refs", "paths-info", "xet-read-token")
FILE_VERBS = ("resolve", "raw")
TRUE_VALUES = ("true", "True", "1")  # §3: Python 1.x, Python 0.x, and 1
EXPAND_PAGE_SIZE = 50  # §3: pages hold 50 entries with expand=true
# §7: default quotas per 5-minute window (anonymous), used when a fault gives no `q`.
RATELIMIT_QUOTAS = {"api": 500, "resolvers": 3000, "pages": 100}
CHUNK = 64 * 1024
UNSATISFIABLE = "unsatisfiable"


class HubError(Exception):
    """An error reply of the API host (§5): status, X-Error-Code (or None), message."""

    def __init__(self, status, code, message, headers=()):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, list(headers)


class Request:
    """One parsed request. `raw_path` stays percent-encoded; `segs` are its raw segments."""

    def __init__(self, host, method, target, headers, body):
        self.t = time.time()
        self.host, self.method, self.headers, self.body = host, method, headers, body
        self.raw_path, _, query = target.partition("?")
        self.query = query or None
        self.params = parse_qs(query, keep_blank_values=True)
        self.path = unquote(self.raw_path)
        self.segs = self.raw_path[1:].split("/")
        self.is_control = self.raw_path.startswith("/_fake/")

    def param(self, name):
        values = self.params.get(name)
        return values[0] if values else None

    def flag(self, name):
        return self.param(name) in TRUE_VALUES


class Body:
    """`size` bytes from `offset` of a source: a blob file (`path`) or bytes (`data`)."""

    def __init__(self, data=b"", path=None, offset=0, size=None):
        self.data, self.path, self.offset = data, path, offset
        self.size = len(data) - offset if size is None else size

    def chunks(self, limit, chunk):
        """Yields the body's first `limit` bytes in pieces of at most `chunk` bytes."""
        if self.path is None:
            for pos in range(0, limit, chunk):
                yield self.data[self.offset + pos:self.offset + min(pos + chunk, limit)]
            return
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            pos = 0
            while pos < limit:
                piece = f.read(min(chunk, limit - pos))
                if not piece:
                    raise OSError(f"blob {self.path} is shorter than its manifest says")
                pos += len(piece)
                yield piece


EMPTY = Body()


class Reply:
    """What a handler answers: status, headers, the body a GET carries (HEAD sends only the
    headers) and the names of the faults already applied while building it."""

    def __init__(self, status, headers=(), body=EMPTY, fired=()):
        self.status, self.headers, self.body, self.fired = status, list(headers), body, list(fired)


def json_reply(obj, status=200, headers=()):
    data = json.dumps(obj, ensure_ascii=False).encode()
    return Reply(status, [("Content-Type", "application/json; charset=utf-8"), *headers],
                 Body(data))


def s3_error(status, code, message, headers=()):
    """An S3/CloudFront-style XML error, as the CDN answers (§4.3)."""
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
           f"<Message>{escape(message)}</Message><RequestId>{secrets.token_hex(8).upper()}"
           f"</RequestId></Error>")
    return Reply(status, [("Content-Type", "application/xml"), *headers], Body(xml.encode()))


def express_etag(data):
    """The weak ETag Express puts on a body (W/"<len hex>-<sha1 base64>"): what the Hub's
    redirects carry, which is never the file's content id (§4.1)."""
    digest = base64.b64encode(hashlib.sha1(data).digest()).decode()[:27]
    return f'W/"{len(data):x}-{digest}"'


def content_type(path):
    kind = mimetypes.guess_type(path, strict=False)[0] or "application/octet-stream"
    return kind + "; charset=utf-8" if is_text_type(kind) else kind


def is_text_type(kind):
    return kind.startswith("text/") or kind.split(";")[0] == "application/json"


def content_disposition(path):
    name = path.rpartition("/")[2]
    fallback = "".join(c if c.isascii() and c not in '"\\' and c.isprintable() else "_"
                       for c in name)
    return f"inline; filename*=UTF-8''{quote(name, safe='')}; filename=\"{fallback}\";"


def parse_range(value, size):
    """A single `bytes=` range as (first, last) clamped to the file; UNSATISFIABLE when it
    starts at or past EOF (§4.2); None when absent or not a single valid byte range, which
    the server may ignore (RFC 9110 §14.2), answering 200."""
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", (value or "").strip())
    if not m or m.groups() == ("", ""):
        return None
    first, last = m.groups()
    if not first:  # suffix range: the last n bytes
        n = int(last)
        return (max(0, size - n), size - 1) if n and size else UNSATISFIABLE
    first = int(first)
    if last and int(last) < first:
        return None
    if first >= size:
        return UNSATISFIABLE
    return first, min(int(last), size - 1) if last else size - 1


def accepts_gzip(headers):
    """True unless Accept-Encoding is sent and excludes gzip: an absent header accepts any
    coding (RFC 9110 §12.5.3), `identity` alone refuses it (§4.2)."""
    value = headers.get("Accept-Encoding")
    if value is None:
        return True
    for item in value.split(","):
        coding, _, param = item.partition(";")
        if (coding.strip().lower() in ("gzip", "*") and
                not re.fullmatch(r"\s*q\s*=\s*0(\.0*)?\s*", param)):
            return True
    return False


def split_revision(segs):
    """(revision, remaining raw segments). A revision is one segment, `%2F`-encoded or not;
    sent raw, refs/pr/N and refs/convert/NAME take three (§1)."""
    if not segs or not segs[0]:
        raise HubError(404, None, "Not Found")
    if len(segs) >= 3 and unquote(segs[0]) == "refs" and segs[1] in ("pr", "convert"):
        return "/".join(segs[:3]), segs[3:]
    return unquote(segs[0]), segs[1:]


class Signer:
    """S3-style presigned CDN URLs (§4.3): an HMAC over the path and every query parameter but
    the signature, valid for `ttl` seconds from X-Amz-Date."""

    def __init__(self, ttl):
        self.ttl = ttl
        self._secret = secrets.token_bytes(32)

    def _mac(self, path, params):
        canonical = "&".join(f"{k}={v}" for k, v in sorted(params) if k != "X-Amz-Signature")
        return hmac.new(self._secret, f"{path}\n{canonical}".encode(), hashlib.sha256).hexdigest()

    def sign(self, path, filename):
        """(path?query, signature) for a GET of `path` on the CDN."""
        date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        params = [("response-content-disposition", content_disposition(filename)),
                  ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
                  ("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"),
                  ("X-Amz-Credential", f"FAKEHUBKEY/{date[:8]}/us-east-1/s3/aws4_request"),
                  ("X-Amz-Date", date), ("X-Amz-Expires", str(self.ttl)),
                  ("X-Amz-SignedHeaders", "host"), ("x-id", "GetObject")]
        signature = self._mac(path, params)
        params.insert(6, ("X-Amz-Signature", signature))
        return f"{path}?{urlencode(params, quote_via=quote)}", signature

    def check(self, path, query):
        """(None, signature) for a valid URL, else (S3 message, signature or None)."""
        params = parse_qsl(query or "", keep_blank_values=True)
        given = dict(params)
        signature = given.get("X-Amz-Signature")
        if not signature or not hmac.compare_digest(signature, self._mac(path, params)):
            return ("The request signature we calculated does not match the signature you "
                    "provided"), None
        start = calendar.timegm(time.strptime(given["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
        if time.time() >= start + int(given["X-Amz-Expires"]):
            return "Request has expired", signature
        return None, signature


class RequestLog:
    """LOGFILE: one JSON object per line, appended and flushed under a lock."""

    def __init__(self, path):
        self.path = path
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8")

    def write(self, entry):
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def entries(self):
        with self._lock, open(self.path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def close(self):
        with self._lock:
            self._file.close()


class Hub:
    """State shared by both hosts and all handler threads (each member is thread-safe or
    read-only after start)."""

    def __init__(self, args):
        self.store = repostore.Store(args.data)
        self.tokens = load_json(args.tokens, {})
        self.faults = faults.FaultSet(load_json(args.faults, []))
        self.log = RequestLog(args.log)
        self.signer = Signer(args.url_ttl)
        self.page_size = args.page_size
        self.direct_200 = args.direct_200
        self.cdn_rate = args.cdn_rate
        self.cdn_base = args.cdn_base  # None: LFS redirects go to our own CDN host
        self.xet = xetstore.XetStore(args.data)
        self.xet_tokens = cas.Tokens(args.xet_token_ttl)
        self.xorb_signer = cas.XorbSigner(args.url_ttl)
        self.api_url = self.cdn_url = self.cas_url = None  # set once the listeners are bound

    def take(self, names, req, applies=None):
        """The due fault rule among `names` for this request (never for control requests)."""
        if req.is_control:
            return None
        return self.faults.take(names, req.host, req.method, req.path, applies)

    def status_fault(self, rule, req):
        """The reply of a `status` fault: §7's Retry-After and RateLimit headers as given."""
        status = rule.params["status"]
        headers = []
        if rule.params["retry_after"] is not None:
            headers.append(("Retry-After", str(rule.params["retry_after"])))
        limit = rule.params["ratelimit"]
        if limit:
            bucket = limit.get("bucket", "resolvers")
            quota = limit.get("q", RATELIMIT_QUOTAS.get(bucket, 1000))
            headers += [("RateLimit", f'"{bucket}";r={limit.get("r", 0)};t={limit.get("t", 60)}'),
                        ("RateLimit-Policy",
                         f'"fixed window";"{bucket}";q={quota};w={limit.get("w", 300)}')]
        phrase = status_phrase(status)
        if req.host == "cdn":
            reply = s3_error(status, phrase.replace(" ", ""), phrase, headers)
        else:
            reply = json_reply({"error": phrase}, status, headers)
        reply.fired.append(rule.fault)
        return reply

    def content(self, req, headers, body, etag=None):
        """A file body (§4.2): 304 on a matching If-None-Match, 206 with Content-Range for a
        single byte range, 416 with `bytes */size` past EOF, else 200; with the `gzip` and
        `ignore_range` faults."""
        headers = [*headers, ("Accept-Ranges", "bytes")]
        if etag:
            headers.append(("ETag", etag))
            if req.headers.get("If-None-Match") == etag:
                return Reply(304, headers)
        ctype = dict(headers).get("Content-Type", "")
        if req.method == "GET" and is_text_type(ctype) and accepts_gzip(req.headers):
            rule = self.take({"gzip"}, req)
            if rule:
                return gzip_reply(headers, body, rule)
        fired = []
        rng = req.headers.get("Range")
        if rng and self.take({"ignore_range"}, req):
            rng = None
            fired.append("ignore_range")
        span = parse_range(rng, body.size)
        if span is None:
            return Reply(200, headers, body, fired)
        if span == UNSATISFIABLE:
            headers = [h for h in headers if h[0] in ("X-Repo-Commit", "Accept-Ranges")]
            headers.append(("Content-Range", f"bytes */{body.size}"))
            if req.host == "cdn":
                return s3_error(416, "InvalidRange", "The requested range is not satisfiable",
                                headers)
            return json_reply({"error": "Requested range not satisfiable"}, 416, headers)
        first, last = span
        headers.append(("Content-Range", f"bytes {first}-{last}/{body.size}"))
        return Reply(206, headers, Body(body.data, body.path, body.offset + first,
                                        last - first + 1))


def gzip_reply(headers, body, rule):
    """The whole body gzipped, chunked and without Content-Length, Range ignored: a CDN
    compressing text (§4.2)."""
    data = gzip.compress(b"".join(body.chunks(body.size, CHUNK)), mtime=0)
    framed = b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data) if data else b"0\r\n\r\n"
    headers = [h for h in headers if h[0] != "Content-Range"]
    headers += [("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked"),
                ("Vary", "Accept-Encoding")]
    return Reply(200, headers, Body(framed), [rule.fault])


def status_phrase(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def load_json(path, default):
    if not path:
        return default
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# --- API host ----------------------------------------------------------------------------------

class ApiApp:
    """Routes of the API host: /api/… (§2, §3), /{prefix}{repo}/resolve|raw/… (§4),
    /api/resolve-cache/…, and the /_fake/ control endpoints."""

    def __init__(self, hub):
        self.hub = hub
        self.store = hub.store

    def handle(self, req):
        if req.is_control:
            return self.control(req)
        rule = self.hub.take({"status"}, req)
        if rule:
            return self.hub.status_fault(rule, req)
        segs = req.segs
        if segs[:2] == ["api", "whoami-v2"] and len(segs) == 2:
            return self.whoami(req)
        if segs[0] == "api" and len(segs) > 2:
            if segs[1] == "resolve-cache" and segs[2] in TYPE_PREFIXES:
                return self.resolve_cache(req, TYPE_PREFIXES[segs[2]], segs[3:])
            if segs[1] in TYPE_PREFIXES:
                return self.api(req, TYPE_PREFIXES[segs[1]], segs[:2], segs[2:])
        return self.files(req, segs)

    def whoami(self, req):
        """§2 `GET /api/whoami-v2`: the token's user; 401 without a token."""
        user = self.user(req)
        if user is None:
            raise HubError(401, None, "Invalid credentials in Authorization header")
        return json_reply({"type": "user", "name": user["user"],
                           "auth": {"type": "access_token"}}, 200, [])

    def error(self, req, err):
        """§5: X-Error-Code (when there is one) and X-Error-Message on every error reply, plus
        a JSON {"error"} body on GET."""
        headers = list(err.headers)
        if err.code:
            headers.append(("X-Error-Code", err.code))
        headers.append(("X-Error-Message", err.message))
        return json_reply({"error": err.message}, err.status, headers)

    # -- repo lookup and access (§5)

    def split_repo(self, rtype, segs, verbs):
        """(repo id, remaining segments): 'ns/name', unless the second segment is a verb and
        no repo 'ns/verb' exists (a namespace-less id such as 'gpt2')."""
        if len(segs) >= 2 and segs[1]:
            namespaced = f"{unquote(segs[0])}/{unquote(segs[1])}"
            if segs[1] not in verbs or self.store.repo(rtype, namespaced) is not None:
                return namespaced, segs[2:]
        return unquote(segs[0]), segs[1:]

    def user(self, req):
        """The token's entry, None when anonymous; an unknown token is a 401 with no code."""
        auth = req.headers.get("Authorization")
        if auth is None:
            return None
        scheme, _, token = auth.partition(" ")
        entry = self.hub.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if entry is None:
            raise HubError(401, None, "Invalid credentials in Authorization header")
        return entry

    def authorize(self, req, rtype, repo_id, files):
        """The repo if this request may see it; gating guards file contents only (listing a
        gated repo needs no access). Raises the §5 error otherwise."""
        user = self.user(req)
        repo = self.store.repo(rtype, repo_id)
        if repo is None or (repo.private and not can_read_private(user, repo)):
            if user is not None:
                raise HubError(404, "RepoNotFound", "Repository not found")
            raise HubError(401, "RepoNotFound", "Invalid username or password.")
        if repo.disabled:
            raise HubError(403, None, "Access to this resource is disabled.")
        if files and repo.gated and not (user and repo.id in user.get("gated_approved", ())):
            if user is None:
                raise HubError(401, "GatedRepo",
                               f"Access to {rtype} {repo.id} is restricted. You must have access "
                               "to it and be authenticated to access it. Please log in.")
            raise HubError(403, "GatedRepo",
                           f"Access to {rtype} {repo.id} is restricted and you are not in the "
                           f"authorized list. Visit {self.hub.api_url}/{repo.id} to ask for "
                           "access.")
        return repo

    @staticmethod
    def commit(repo, rev):
        sha = repo.resolve(rev)
        if sha is None:
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return repo.commits[sha]

    @staticmethod
    def entry_not_found(commit):
        # §5: the reply still carries X-Repo-Commit.
        return HubError(404, "EntryNotFound", "Entry not found",
                        [("X-Repo-Commit", commit.sha)])

    def renamed(self, req, repo_id, prefix, rest):
        """A relative 307 to the repo's new name when a `rename` fault covers it (§4.1)."""
        rule = self.hub.take({"rename"}, req, lambda r: r.params["from"] == repo_id)
        if rule is None:
            return None
        location = "/" + "/".join(prefix + rule.params["to"].split("/") + rest)
        if req.query:
            location += "?" + req.query
        reply = redirect(307, location, "Temporary Redirect")
        reply.fired.append(rule.fault)
        return reply

    # -- /api/{type}s/{repo}/…

    def api(self, req, rtype, prefix, segs):
        repo_id, rest = self.split_repo(rtype, segs, API_VERBS)
        moved = self.renamed(req, repo_id, prefix, rest)
        if moved:
            return moved
        verb = rest[0] if rest else None
        if req.method in ("GET", "HEAD"):
            if verb is None:  # §2: without a revision, the default branch
                return self.repo_info(req, rtype, repo_id, repostore.DEFAULT_BRANCH)
            if verb == "revision" and len(rest) > 1 and rest[1]:
                return self.repo_info(req, rtype, repo_id, unquote("/".join(rest[1:])))
            if verb == "refs" and len(rest) == 1:
                return self.refs(req, rtype, repo_id)
            if verb == "tree":
                rev, path = split_revision(rest[1:])
                return self.tree(req, rtype, repo_id, rev, unquote("/".join(path)))
            if verb == "xet-read-token" and len(rest) > 1 and rest[1]:
                return self.xet_read_token(req, rtype, repo_id, unquote("/".join(rest[1:])))
        if req.method == "POST" and verb == "paths-info" and len(rest) > 1 and rest[1]:
            return self.paths_info(req, rtype, repo_id, unquote("/".join(rest[1:])))
        raise HubError(404, None, "Not Found")

    def repo_info(self, req, rtype, repo_id, rev):
        """§2: `sha` to pin, and siblings (with `blobs=true`: size, blobId, lfs)."""
        repo = self.authorize(req, rtype, repo_id, files=False)
        commit = self.commit(repo, rev)
        blobs, expand = req.flag("blobs"), req.params.get("expand")
        if blobs and expand:
            raise HubError(400, None, "`blobs` and `expand` cannot be used together")
        info = {"_id": repo.object_id, "id": repo.id, "sha": commit.sha,
                "lastModified": commit.date, "private": repo.private, "gated": repo.gated,
                "disabled": repo.disabled, "downloads": 0, "likes": 0, "tags": [],
                "createdAt": repo.created_at,
                "siblings": [sibling(commit, p, blobs) for p in sorted(commit.files)],
                "usedStorage": sum(f["size"] for f in commit.files.values())}
        if "/" in repo.id:
            info["author"] = repo.id.split("/")[0]
        if rtype == "model":
            info["modelId"] = repo.id
        if expand:  # only the listed fields (§2)
            info = {k: v for k, v in info.items() if k in ("_id", "id", *expand)}
        return json_reply(info)

    def xet_read_token(self, req, rtype, repo_id, rev):
        """§9: a CAS token for the repo at a revision, with the access resolve needs (§5)."""
        repo = self.authorize(req, rtype, repo_id, files=True)
        commit = self.commit(repo, rev)
        return cas.read_token_reply(self.hub, rtype, repo, commit)

    def refs(self, req, rtype, repo_id):
        repo = self.authorize(req, rtype, repo_id, files=False)
        out = {"branches": [ref(n, f"refs/heads/{n}", s) for n, s in sorted(repo.branches.items())],
               "converts": [],
               "tags": [ref(n, f"refs/tags/{n}", s) for n, s in sorted(repo.tags.items())]}
        if req.flag("include_prs"):
            out["pullRequests"] = [ref(f"refs/pr/{n}", f"refs/pr/{n}", s)
                                   for n, s in sorted(repo.pulls.items(), key=lambda i: int(i[0]))]
        return json_reply(out)

    def tree(self, req, rtype, repo_id, rev, path):
        """§3: one level, or the whole subtree with its directories, in pages chained by an
        absolute `Link: <…cursor=…>; rel="next"`."""
        repo = self.authorize(req, rtype, repo_id, files=False)
        commit = self.commit(repo, rev)
        if path not in commit.dirs:
            raise self.entry_not_found(commit)
        expand = req.flag("expand")
        paths = list(walk(commit, path, req.flag("recursive")))
        page = min(self.hub.page_size, EXPAND_PAGE_SIZE) if expand else self.hub.page_size
        limit = req.param("limit")
        if limit and limit.isdigit() and 0 < int(limit) < page:
            page = int(limit)
        start = self.cursor_start(req.param("cursor"), paths)
        chunk = paths[start:start + page]
        headers = []
        if start + page < len(paths):
            headers.append(("Link", f'<{self.next_url(req, chunk[-1])}>; rel="next"'))
        return json_reply([entry(repo, commit, p, expand) for p in chunk], headers=headers)

    @staticmethod
    def cursor_start(cursor, paths):
        """Index after the entry an opaque cursor names (base64 of {"file_name": last path})."""
        if cursor is None:
            return 0
        try:
            last = json.loads(base64.b64decode(cursor, validate=True))["file_name"]
            return paths.index(last) + 1
        except (ValueError, KeyError, TypeError):
            raise HubError(400, None, "Invalid cursor") from None

    def next_url(self, req, last):
        cursor = base64.b64encode(json.dumps({"file_name": last}).encode()).decode()
        query = [(k, v) for k, v in parse_qsl(req.query or "", keep_blank_values=True)
                 if k != "cursor"]
        host = req.headers.get("Host") or self.hub.api_url.partition("://")[2]
        return f"http://{host}{req.raw_path}?{urlencode(query + [('cursor', cursor)])}"

    def paths_info(self, req, rtype, repo_id, rev):
        """§3: entries for the listed paths, missing ones silently dropped; the body is
        form-encoded (Python) or JSON (JS)."""
        repo = self.authorize(req, rtype, repo_id, files=False)
        commit = self.commit(repo, rev)
        try:
            if "json" in (req.headers.get("Content-Type") or ""):
                body = json.loads(req.body or b"{}")
                paths, expand = body.get("paths", []), body.get("expand") is True
            else:
                form = parse_qs(req.body.decode(), keep_blank_values=True)
                paths, expand = form.get("paths", []), form.get("expand", [""])[0] in TRUE_VALUES
        except (ValueError, AttributeError):
            raise HubError(400, None, "Invalid paths-info body") from None
        found = [p for p in paths if isinstance(p, str) and (p in commit.files or
                                                            (p and p in commit.dirs))]
        return json_reply([entry(repo, commit, p, expand) for p in found])

    # -- /{prefix}{repo}/resolve|raw/{rev}/{path} (§4)

    def files(self, req, segs):
        rtype, prefix = "model", []
        if segs[0] in ("datasets", "spaces"):
            rtype, prefix, segs = TYPE_PREFIXES[segs[0]], segs[:1], segs[1:]
        if req.method in ("GET", "HEAD") and len(segs) >= 2:
            repo_id, rest = self.split_repo(rtype, segs, FILE_VERBS)
            if len(rest) >= 3 and rest[0] in FILE_VERBS:
                moved = self.renamed(req, repo_id, prefix, rest)
                if moved:
                    return moved
                rev, path = split_revision(rest[1:])
                return self.resolve(req, rtype, repo_id, rest[0], rev, unquote("/".join(path)))
        raise HubError(404, None, "Not Found")

    def resolve(self, req, rtype, repo_id, verb, rev, path):
        repo = self.authorize(req, rtype, repo_id, files=True)
        commit = self.commit(repo, rev)
        f = commit.files.get(path)
        if f is None:
            raise self.entry_not_found(commit)
        if verb == "raw":  # §4: the git blob, i.e. the pointer of an LFS file
            return self.raw(req, commit, f)
        if f.get("xet") and cas.is_probe(req):  # XET_CLIENTS.md §1: no redirect
            return cas.fileinfo_reply(self.hub, rtype, repo, commit, f)
        if f["lfs"]:
            reply = self.lfs_redirect(commit, f)
            if f.get("xet"):  # §4.1: the bridge's redirect names the Xet file too
                reply.headers += cas.xet_headers(self.hub, rtype, repo, commit, f)
            return reply
        etag = f'"{f["sha1"]}"'
        if req.headers.get("If-None-Match") == etag:  # §4.2: observed 304 on resolve
            return Reply(304, [("X-Repo-Commit", commit.sha), ("ETag", etag)])
        # §4.1: served directly for 0-byte files and private, gated or namespace-less repos.
        if (f["size"] == 0 or repo.private or repo.gated or "/" not in repo.id or
                self.hub.direct_200):
            return self.file_content(req, commit, f)
        return self.cache_redirect(req, rtype, repo, commit, f)

    def cache_redirect(self, req, rtype, repo, commit, f):
        """§4.1: a relative 307 to /api/resolve-cache/…; its query (the resolve path and the
        etag) is dropped by Python, so the target ignores it."""
        location = f"/api/resolve-cache/{rtype}s/{repo.id}/{commit.sha}/{quote(f['path'])}"
        location += "?" + urlencode({req.path: "", "etag": f'"{f["sha1"]}"'})
        return redirect(307, location, "Temporary Redirect")

    def lfs_redirect(self, commit, f):
        """§4.1: a 302 to a signed URL on the CDN host. X-Linked-Etag is the content sha256;
        the reply's own ETag is not the content id. With --cdn-base the URL names the blob as
        laid out under DATA/blobs, on that server: BASE/<sha256[:2]>/<sha256>?<presign>."""
        sha256 = f["sha256"]
        if self.hub.cdn_base:
            base = urlsplit(self.hub.cdn_base)
            origin, path = f"{base.scheme}://{base.netloc}", base.path.rstrip("/")
            path += f"/{sha256[:2]}/{sha256}"
        else:
            origin, path = self.hub.cdn_url, f"/lfs/{sha256}"
        target, signature = self.hub.signer.sign(path, f["path"])
        self.hub.faults.url_issued(signature)
        return redirect(302, origin + target, "Found",
                        [("X-Repo-Commit", commit.sha), ("X-Linked-Etag", f'"{f["sha256"]}"'),
                         ("X-Linked-Size", str(f["size"])), ("Accept-Ranges", "bytes")],
                        etag=True)

    def file_content(self, req, commit, f):
        return self.hub.content(
            req, [("X-Repo-Commit", commit.sha), ("Content-Type", content_type(f["path"])),
                  ("Content-Disposition", content_disposition(f["path"]))],
            Body(path=self.store.blob_path(f["sha256"]), size=f["size"]), f'"{f["sha1"]}"')

    def raw(self, req, commit, f):
        if not f["lfs"]:
            return self.file_content(req, commit, f)
        pointer = repostore.lfs_pointer(f["sha256"], f["size"])
        return self.hub.content(
            req, [("X-Repo-Commit", commit.sha), ("Content-Type", "text/plain; charset=utf-8")],
            Body(pointer), f'"{f["lfs"]["pointer_sha1"]}"')

    def resolve_cache(self, req, rtype, segs):
        """/api/resolve-cache/{type}s/{repo}/{commit}/{path}, query ignored (§4.1)."""
        at = 2 if len(segs) > 2 and repostore.COMMIT_RE.match(segs[2]) else 1
        if req.method not in ("GET", "HEAD") or len(segs) <= at + 1:
            raise HubError(404, None, "Not Found")
        repo = self.authorize(req, rtype, "/".join(map(unquote, segs[:at])), files=True)
        sha = segs[at]
        if sha not in repo.commits:
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {sha}")
        commit = repo.commits[sha]
        f = commit.files.get(unquote("/".join(segs[at + 1:])))
        if f is None or f["lfs"]:
            raise self.entry_not_found(commit)
        return self.file_content(req, commit, f)

    # -- /_fake/ control endpoints (never faulted)

    def control(self, req):
        faults_, name = self.hub.faults, req.raw_path
        if name == "/_fake/faults" and req.method == "GET":
            return json_reply(faults_.describe())
        if name == "/_fake/faults" and req.method == "POST":
            try:
                faults_.replace(json.loads(req.body or b"null"))
            except ValueError as e:  # bad JSON or a RuleError
                return json_reply({"error": str(e)}, 400)
            return json_reply(faults_.describe())
        if name == "/_fake/reset" and req.method == "POST":
            faults_.reset()
            return json_reply({"ok": True})
        if name == "/_fake/log" and req.method == "GET":
            return json_reply(self.hub.log.entries())
        return json_reply({"error": "unknown control endpoint"}, 404)


def redirect(status, location, phrase, headers=(), etag=False):
    """An Express-style redirect: Location plus a short text body naming it."""
    body = f"{phrase}. Redirecting to {location}".encode()
    headers = [("Location", location), ("Content-Type", "text/plain; charset=utf-8"), *headers]
    if etag:
        headers.append(("ETag", express_etag(body)))
    return Reply(status, headers, Body(body))


def can_read_private(user, repo):
    """A token reads the private repos of its own namespace, those it lists under "repos", or
    every private repo when it has no "repos" list."""
    if user is None:
        return False
    return (repo.id.split("/")[0] == user.get("user") or "repos" not in user or
            repo.id in user["repos"])


def sibling(commit, path, blobs):
    """§2: siblings spell the LFS hash `sha256` (tree entries spell it `oid`)."""
    s = {"rfilename": path}
    if blobs:
        f = commit.files[path]
        s.update(size=f["size"], blobId=commit.oid(path))
        if f["lfs"]:
            s["lfs"] = {"sha256": f["sha256"], "size": f["size"],
                        "pointerSize": f["lfs"]["pointer_size"]}
    return s


def ref(name, full, sha):
    return {"name": name, "ref": full, "targetCommit": sha}


def walk(commit, path, recursive):
    """Entry paths under directory `path`: each directory followed by its subtree when
    recursive, then the files (the order is not part of the protocol, §3)."""
    dirs, files = commit.children(path)
    for d in dirs:
        yield d
        if recursive:
            yield from walk(commit, d, True)
    yield from files


def entry(repo, commit, path, expand):
    """A §3 tree entry; `oid` is the git id (for LFS the pointer's), `lfs.oid` the sha256."""
    f = commit.files.get(path)
    if f is not None:
        e = {"type": "file", "oid": commit.oid(path), "size": f["size"]}
        if f["lfs"]:
            e["lfs"] = {"oid": f["sha256"], "size": f["size"],
                        "pointerSize": f["lfs"]["pointer_size"]}
        if f.get("xet"):
            e["xetHash"] = f["xet"]["hash"]
    else:
        e = {"type": "directory", "oid": commit.dirs[path], "size": 0}
    e["path"] = path
    if expand:
        e["lastCommit"] = last_commit(repo, commit, path)
        if f is not None:
            e["securityFileStatus"] = {"status": "safe"}
    return e


def last_commit(repo, commit, path):
    """The oldest commit of the unbroken ancestry in which `path` has its current oid."""
    oid = commit.oid(path)
    while commit.parent and repo.commits[commit.parent].oid(path) == oid:
        commit = repo.commits[commit.parent]
    return {"id": commit.sha, "title": commit.title, "date": commit.date}


# --- CDN host ----------------------------------------------------------------------------------

class CdnApp:
    """The CDN host: GET/HEAD /lfs/{sha256}?<presign> with S3's answers (§4.2, §4.3)."""

    def __init__(self, hub):
        self.hub = hub

    def handle(self, req):
        rule = self.hub.take({"status"}, req)
        if rule:
            return self.hub.status_fault(rule, req)
        if req.headers.get("Authorization") is not None:  # §4.2: S3 refuses two auth schemes
            return s3_error(400, "InvalidArgument",
                            "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                            "parameter, Signature query string parameter or the Authorization "
                            "header should be specified")
        if req.raw_path.startswith("/xorb/"):
            return cas.xorb_reply(self.hub, req)
        problem, signature = self.hub.signer.check(req.raw_path, req.query)
        if problem:
            return s3_error(403, "AccessDenied", problem)
        uses = self.hub.faults.url_used(signature)
        rule = self.hub.take({"expire"}, req, lambda r: uses > r.params["after"])
        if rule:
            reply = s3_error(403, "AccessDenied", "Request has expired")
            reply.fired.append(rule.fault)
            return reply
        sha256 = req.segs[-1]
        path = self.hub.store.blob_path(sha256)
        if req.method not in ("GET", "HEAD") or not os.path.isfile(path):
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        # An S3-like ETag (md5-shaped), deliberately not the content's sha256.
        etag = f'"{hashlib.md5(sha256.encode()).hexdigest()}"'
        headers = [("Content-Type", "application/octet-stream"),
                   ("Content-Disposition", req.param("response-content-disposition") or "inline"),
                   ("Last-Modified", formatdate(0, usegmt=True))]
        return self.hub.content(req, headers, Body(path=path, size=os.path.getsize(path)), etag)

    def error(self, req, err):
        return s3_error(err.status, "InternalError", err.message)


# --- HTTP plumbing ------------------------------------------------------------------------------

class HubServer(ThreadingHTTPServer):
    """One listener; each connection gets a daemon thread, so none outlives the process."""
    daemon_threads = True

    def __init__(self, address, name, app):
        self.name, self.app = name, app
        super().__init__(address, Handler)

    def handle_error(self, request, client_address):
        """Clients may reset idle keep-alive connections: normal, not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """Parses a request, asks the host's app for a Reply, and sends it with the delivery
    faults (reset, truncate, stall, trickle, corrupt). Runs on the connection's thread."""
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections end, as on real servers

    def do_GET(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        req = Request(self.server.name, self.command, self.path, self.headers, body)
        app = self.server.app
        try:
            reply = app.handle(req)
        except HubError as e:
            reply = app.error(req, e)
        except Exception:  # a bug in the fake: report it, keep serving
            traceback.print_exc()
            reply = app.error(req, HubError(500, None, "fakehub internal error"))
        self.send(req, reply)

    do_HEAD = do_POST = do_GET

    def log_error(self, fmt, *args):
        """Requests go to LOGFILE; stderr gets only the stdlib's errors (malformed requests),
        not the normal end of an idle keep-alive connection."""
        if not fmt.startswith("Request timed out"):
            super().log_error(fmt, *args)

    def send(self, req, reply):
        hub = self.server.app.hub
        body = reply.body if req.method != "HEAD" else EMPTY
        headers = reply.headers + [("X-Request-Id", request_id()),
                                   ("Date", formatdate(usegmt=True))]
        if reply.status != 304 and "Transfer-Encoding" not in dict(headers):
            headers.append(("Content-Length", str(reply.body.size)))
        fired = list(reply.fired)
        delivery = hub.take(faults.DELIVERY, req)
        if delivery:
            fired.append(delivery.fault)
        corrupt = None
        if body.size:
            corrupt = hub.take({"corrupt"}, req, lambda r: covers(body, r))
            if corrupt:
                fired.append(corrupt.fault)
        entry = {"t": req.t, "host": req.host, "method": req.method, "path": req.raw_path,
                 "query": req.query, "authorization": req.headers.get("Authorization"),
                 "range": req.headers.get("Range"), "user_agent": req.headers.get("User-Agent"),
                 "status": reply.status, "bytes": 0, "fault": "+".join(fired) or None}
        self.deliver(head_bytes(reply.status, headers), body, delivery, corrupt, entry, hub)

    def deliver(self, head, body, delivery, corrupt, entry, hub):
        """Writes the head and body. The log line is written before the last write, so a
        client that has the whole reply always finds it logged."""
        rate = hub.cdn_rate if self.server.name == "cdn" else None
        cut = body.size
        if delivery and delivery.fault == "trickle":
            rate = delivery.params["rate"]
        elif delivery:
            cut = min(max(delivery.params["at_byte"], 0), body.size)
        chunk = max(1, min(CHUNK, int(rate) // 20)) if rate else CHUNK
        started, logged = time.monotonic(), False
        try:
            if cut == 0:
                hub.log.write(entry)
                logged = True
            self.wfile.write(head)
            for piece in body.chunks(cut, chunk):
                if corrupt:
                    piece = corrupted(piece, body.offset + entry["bytes"], corrupt)
                if entry["bytes"] + len(piece) >= cut:
                    hub.log.write(dict(entry, bytes=cut))
                    logged = True
                self.wfile.write(piece)
                entry["bytes"] += len(piece)
                if rate:
                    ahead = entry["bytes"] / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:  # the client went away
            self.close_connection = True
            if not logged:
                hub.log.write(entry)
            return
        if delivery and delivery.fault != "trickle":
            self.end_badly(delivery)

    def end_badly(self, rule):
        """reset: RST now (SO_LINGER 0); stall: wait, then close; truncate: close (FIN)."""
        self.close_connection = True
        if rule.fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            # detach() so the handler's own shutdown/close later act on nothing.
            os.close(self.connection.detach())
        elif rule.fault == "stall":
            time.sleep(rule.params["seconds"])


def covers(body, rule):
    return body.offset <= rule.params["at_byte"] < body.offset + body.size


def corrupted(piece, offset, rule):
    """`piece` (at file offset `offset`) with the rule's bytes inverted, same length."""
    first = max(rule.params["at_byte"], offset)
    last = min(rule.params["at_byte"] + rule.params["length"], offset + len(piece))
    if first >= last:
        return piece
    out = bytearray(piece)
    for i in range(first - offset, last - offset):
        out[i] ^= 0xFF
    return bytes(out)


def head_bytes(status, headers):
    lines = [f"HTTP/1.1 {status} {status_phrase(status)}"]
    # Header values may echo client input (a revision): no CR/LF, latin-1 only.
    lines += [f"{k}: {str(v).replace(chr(13), ' ').replace(chr(10), ' ')}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def request_id():
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"


# --- main --------------------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="data directory written by genrepo.py")
    ap.add_argument("--port-file", required=True, help="JSON with the ports, written when ready")
    ap.add_argument("--log", required=True, help="request log, one JSON line per request")
    ap.add_argument("--page-size", type=int, default=1000, help="tree entries per page (§3)")
    ap.add_argument("--api-host", default="127.0.0.1")
    ap.add_argument("--cdn-host", default="127.0.0.2")
    ap.add_argument("--cas-host", default="127.0.0.3", help="the Xet CAS host")
    ap.add_argument("--xet-token-ttl", type=int, default=3600,
                    help="lifetime of Xet CAS tokens, s")
    ap.add_argument("--url-ttl", type=int, default=3600, help="signed CDN URL lifetime, s")
    ap.add_argument("--cdn-rate", type=float, help="CDN bytes/s per connection")
    ap.add_argument("--tokens", help='JSON {"hf_…": {"user": …, "gated_approved": […]}}')
    ap.add_argument("--faults", help="JSON list of fault rules active from the start")
    ap.add_argument("--direct-200", action="store_true",
                    help="serve regular files with 200 instead of a 307 to resolve-cache")
    ap.add_argument("--cdn-base", metavar="URL",
                    help="send LFS redirects to URL/<sha256[:2]>/<sha256>?<presign>, a server "
                    "of DATA/blobs (default: our own CDN host)")
    args = ap.parse_args(argv)
    if args.page_size < 1 or args.url_ttl < 1 or args.xet_token_ttl < 1:
        ap.error("--page-size, --url-ttl and --xet-token-ttl must be positive")
    if args.cdn_base is not None and not valid_base_url(args.cdn_base):
        ap.error(f"--cdn-base takes http(s)://host[:port][/path], not {args.cdn_base!r}")
    return args


def valid_base_url(url):
    """True for an absolute http(s) URL with a host and no query or fragment."""
    try:
        u = urlsplit(url)
        return (u.scheme in ("http", "https") and bool(u.hostname) and not u.query and
                not u.fragment and u.port != 0)  # .port raises ValueError when malformed
    except ValueError:
        return False


def write_port_file(path, hub, api, cdn, cas_server):
    data = {"api": api.server_port, "cdn": cdn.server_port, "cas": cas_server.server_port,
            "api_url": hub.api_url, "cdn_url": hub.cdn_url, "cas_url": hub.cas_url,
            "pid": os.getpid()}
    repostore.write_atomic(path, json.dumps(data).encode())


def main(argv=None):
    args = parse_args(argv)
    # Handler threads inherit the mask; only the main thread takes these signals (sigwait).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    hub = Hub(args)
    api = HubServer((args.api_host, 0), "api", ApiApp(hub))
    cdn = HubServer((args.cdn_host, 0), "cdn", CdnApp(hub))
    cas_server = HubServer((args.cas_host, 0), "cas", cas.CasApp(hub))
    servers = (api, cdn, cas_server)
    hub.api_url = f"http://{args.api_host}:{api.server_port}"
    hub.cdn_url = f"http://{args.cdn_host}:{cdn.server_port}"
    hub.cas_url = f"http://{args.cas_host}:{cas_server.server_port}"
    loops = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1},
                              name=f"fakehub-{s.name}") for s in servers]
    for t in loops:
        t.start()
    # Whatever ends the main thread (a signal, or a port file that cannot be written) stops
    # the servers too: a hub whose ports nobody knows must not go on serving.
    try:
        try:
            write_port_file(args.port_file, hub, api, cdn, cas_server)
        except OSError as e:
            sys.exit(f"fakehub: cannot write the port file {args.port_file}: {e}")
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
        for t in loops:
            t.join()
        hub.log.close()


if __name__ == "__main__":
    main()
