"""The fake Hub's Xet side (HUB_PROTOCOL.md §9, hub-docs docs/xet/api.md, auth.md,
download-protocol.md; XET_CLIENTS.md for the JS client): the resolve probe's file info, read
tokens, the CAS host (reconstructions v1 and v2) and the xorb ranges the CDN host serves
under signed expiring URLs.

Runs on the handler threads of fakehub.py; every member is thread-safe or read-only after
start. Storage is xetstore.XetStore; the HTTP plumbing (Reply, Body, faults) is fakehub.py's.
"""
import base64
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from urllib.parse import parse_qsl, quote, urlencode

import fakehub

XET_FILEINFO = "application/vnd.xet-fileinfo+json"
KEY_PAIR_ID = "K2FAKEHUBXETKEY"


def is_probe(req):
    """The JS client's resolve probe asks for the Xet file info (XET_CLIENTS.md §1)."""
    return XET_FILEINFO in (req.headers.get("Accept") or "")


def link_header(hub, rtype, repo, commit, xet_hash):
    """§4.1: the xet-auth (read token at the commit) and reconstruction-info links."""
    token_url = f"{hub.api_url}/api/{rtype}s/{repo.id}/xet-read-token/{commit.sha}"
    return (f'<{token_url}>; rel="xet-auth", '
            f'<{hub.cas_url}/v1/reconstructions/{xet_hash}>; rel="xet-reconstruction-info"')


def xet_headers(hub, rtype, repo, commit, f):
    """What a resolve reply adds for a Xet file, redirect or probe."""
    return [("X-Xet-Hash", f["xet"]["hash"]),
            ("Link", link_header(hub, rtype, repo, commit, f["xet"]["hash"]))]


def fileinfo_reply(hub, rtype, repo, commit, f):
    """The probe's answer: 200 without a redirect, the xet content type, the size and etag in
    X-Linked-*, the links; the body (never read by the JS client) as third-party notes give
    it."""
    h = f["xet"]["hash"]
    body = {"hash": h, "refreshUrl": f"{hub.api_url}/api/{rtype}s/{repo.id}/xet-read-token/"
                                     f"{commit.sha}",
            "reconstructionUrl": f"{hub.cas_url}/v1/reconstructions/{h}",
            "etag": f["sha256"], "size": f["size"]}
    reply = fakehub.json_reply(body, headers=[
        ("X-Repo-Commit", commit.sha), ("X-Linked-Etag", f'"{f["sha256"]}"'),
        ("X-Linked-Size", str(f["size"])), ("ETag", f'"{f["sha256"]}"'),
        *xet_headers(hub, rtype, repo, commit, f)])
    reply.headers[0] = ("Content-Type", XET_FILEINFO)
    return reply


class Tokens:
    """CAS access tokens: the repo, the commit and the expiry, MACed; valid `ttl` seconds."""

    def __init__(self, ttl):
        self.ttl = ttl
        self._secret = secrets.token_bytes(32)

    def _mac(self, claims):
        return hmac.new(self._secret, claims.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, rtype, repo_id, sha):
        exp = math.ceil(time.time()) + self.ttl  # valid at least `ttl` seconds
        claims = base64.urlsafe_b64encode(json.dumps(
            {"t": rtype, "r": repo_id, "c": sha, "exp": exp}).encode()).decode().rstrip("=")
        return f"xet_{claims}.{self._mac(claims)}", exp

    def check(self, token):
        """(claims, None), or (None, why it is refused)."""
        m = re.fullmatch(r"xet_([A-Za-z0-9_-]+)\.([0-9a-f]{32})", token or "")
        if not m or not hmac.compare_digest(m.group(2), self._mac(m.group(1))):
            return None, "Invalid token"
        claims = json.loads(base64.urlsafe_b64decode(m.group(1) + "=" * (-len(m.group(1)) % 4)))
        if time.time() >= claims["exp"]:
            return None, "Token expired"
        return claims, None


def read_token_reply(hub, rtype, repo, commit):
    """auth.md: {accessToken, exp, casUrl}, the same values in X-Xet-* headers (§9)."""
    token, exp = hub.xet_tokens.issue(rtype, repo.id, commit.sha)
    hub.faults.url_issued(token)
    return fakehub.json_reply({"accessToken": token, "exp": exp, "casUrl": hub.cas_url},
                              headers=[("X-Xet-Access-Token", token),
                                       ("X-Xet-Token-Expiration", str(exp)),
                                       ("X-Xet-Cas-Url", hub.cas_url)])


class XorbSigner:
    """CloudFront-style signed xorb URLs (download-protocol.md): the byte ranges they authorize
    in X-Xet-Signed-Range, Expires, a Policy, a Signature over all of it, Key-Pair-Id."""

    def __init__(self, ttl):
        self.ttl = ttl
        self._secret = secrets.token_bytes(32)

    def _mac(self, path, params):
        canonical = "&".join(f"{k}={v}" for k, v in sorted(params) if k != "Signature")
        return hmac.new(self._secret, f"{path}\n{canonical}".encode(), hashlib.sha256).hexdigest()

    def sign(self, base, path, spans):
        """An absolute URL for GETs of `spans` ([(first, last)] inclusive) of `path`."""
        expires = math.ceil(time.time()) + self.ttl  # valid at least `ttl` seconds
        signed = "bytes=" + ",".join(f"{a}-{b}" for a, b in spans)
        policy = base64.b64encode(json.dumps({"Statement": [{"Resource": path, "Condition": {
            "DateLessThan": {"AWS:EpochTime": expires}}}]}).encode()).decode()
        params = [("X-Xet-Signed-Range", signed), ("Expires", str(expires)), ("Policy", policy),
                  ("Key-Pair-Id", KEY_PAIR_ID)]
        params.insert(3, ("Signature", self._mac(path, params)))
        return f"{base}{path}?{urlencode(params, quote_via=quote)}"

    def check(self, path, query):
        """(signed spans, signature, None) for a valid URL, else (None, signature, problem)."""
        params = parse_qsl(query or "", keep_blank_values=True)
        given = dict(params)
        signature = given.get("Signature")
        if not signature or not hmac.compare_digest(signature, self._mac(path, params)):
            return None, None, "Invalid signature"
        if time.time() >= int(given["Expires"]):
            return None, signature, "Request has expired"
        return parse_spans(given["X-Xet-Signed-Range"]), signature, None


def parse_spans(value):
    """`bytes=a-b[,c-d…]` as [(a, b)], each explicit and ordered; None when malformed."""
    m = re.fullmatch(r"bytes=(\d+-\d+(?:,\s*\d+-\d+)*)", (value or "").strip())
    if not m:
        return None
    spans = [tuple(int(x) for x in part.strip().split("-")) for part in m.group(1).split(",")]
    return spans if all(a <= b for a, b in spans) else None


def cas_error(status, message):
    return fakehub.json_reply({"error": message}, status)


def merged(ranges):
    """Chunk ranges [(start, end)] sorted, overlapping or adjacent ones joined."""
    out = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


class CasApp:
    """The CAS host: GET /v1/reconstructions/{file hash} and /v2/… with a Bearer token and an
    optional Range in file bytes (api.md)."""

    def __init__(self, hub):
        self.hub = hub

    def handle(self, req):
        rule = self.hub.take({"status"}, req)
        if rule:
            return self.hub.status_fault(rule, req)
        m = re.fullmatch(r"/(v1|v2)/reconstructions/([^/]*)", req.raw_path)
        if not m or req.method not in ("GET", "HEAD"):
            return cas_error(404, "Not Found")
        scheme, _, token = (req.headers.get("Authorization") or "").partition(" ")
        claims, problem = self.hub.xet_tokens.check(token.strip() if scheme == "Bearer" else "")
        if claims is None:
            return cas_error(401, problem)
        uses = self.hub.faults.url_used(token.strip())
        rule = self.hub.take({"expire"}, req, lambda r: uses > r.params["after"])
        if rule:
            reply = cas_error(401, "Token expired")
            reply.fired.append(rule.fault)
            return reply
        file_hex = m.group(2)
        if not re.fullmatch(r"[0-9a-f]{64}", file_hex):
            return cas_error(400, "Invalid file id")
        rec = self.hub.xet.file(file_hex)
        repo = self.hub.store.repo(claims["t"], claims["r"])
        if rec is None or repo is None or file_hex not in repo.xet_hashes():
            return cas_error(404, "File not found")
        first, last = 0, rec["size"] - 1
        if req.headers.get("Range") is not None:
            # api.md: bytes={start}-{end}, end inclusive; an open end reads to EOF.
            r = re.fullmatch(r"bytes=(\d+)-(\d*)", req.headers["Range"].strip())
            if not r or (r.group(2) and int(r.group(2)) < int(r.group(1))):
                return cas_error(400, "Invalid range")
            first = int(r.group(1))
            if r.group(2):
                last = min(last, int(r.group(2)))
        if first >= rec["size"] and req.headers.get("Range") is not None:
            return cas_error(416, "Requested range not satisfiable")  # an empty file: no terms
        return fakehub.json_reply(self.plan(rec, first, last, m.group(1)))

    def plan(self, rec, first, last, version):
        """The reconstruction of file bytes first..last: the terms trimmed to the chunks that
        hold them, and how to fetch those chunks (v1 fetch_info or v2 xorbs)."""
        terms, offset, pos = [], None, 0  # pos: file offset of chunk i
        for xorb, start, end, _ in rec["terms"]:
            table = self.hub.xet.chunk_table(xorb)
            piece = None  # this term's part in the reply: [xorb, start, end, size]
            for i in range(start, end):
                size = table[i][3]
                if pos + size > first and pos <= last:  # chunk i holds wanted bytes
                    if offset is None:
                        offset = first - pos
                    if piece is None:
                        piece = [xorb, i, i, 0]
                        terms.append(piece)
                    piece[2], piece[3] = i + 1, piece[3] + size
                pos += size
        out = {"offset_into_first_range": offset or 0,
               "terms": [{"hash": x, "unpacked_length": n, "range": {"start": s, "end": e}}
                         for x, s, e, n in terms]}
        by_xorb = {}
        for x, s, e, _ in terms:
            by_xorb.setdefault(x, []).append((s, e))
        if version == "v1":
            out["fetch_info"] = {x: [self.fetch_entry_v1(x, s, e) for s, e in merged(rs)]
                                 for x, rs in by_xorb.items()}
        else:
            out["xorbs"] = {x: [self.fetch_entry_v2(x, merged(rs))] for x, rs in by_xorb.items()}
        return out

    def byte_span(self, xorb, start, end):
        table = self.hub.xet.chunk_table(xorb)
        return table[start][1], table[end - 1][1] + table[end - 1][2] - 1

    def fetch_entry_v1(self, xorb, start, end):
        a, b = self.byte_span(xorb, start, end)
        url = self.hub.xorb_signer.sign(self.hub.cdn_url, f"/xorb/default/{xorb}", [(a, b)])
        return {"range": {"start": start, "end": end}, "url": url,
                "url_range": {"start": a, "end": b}}

    def fetch_entry_v2(self, xorb, ranges):
        spans = [self.byte_span(xorb, s, e) for s, e in ranges]
        url = self.hub.xorb_signer.sign(self.hub.cdn_url, f"/xorb/default/{xorb}", spans)
        return {"url": url, "ranges": [{"chunks": {"start": s, "end": e},
                                        "bytes": {"start": a, "end": b}}
                                       for (s, e), (a, b) in zip(ranges, spans)]}

    def error(self, req, err):
        return cas_error(err.status, err.message)


def xorb_reply(hub, req):
    """CDN host, GET /xorb/default/{xorb hash}?<signed>: exactly the signed byte ranges, one as
    206 with Content-Range, several as 206 multipart/byteranges (download-protocol.md); 403
    for a bad or expired signature or a range outside the signed set."""
    spans, signature, problem = hub.xorb_signer.check(req.raw_path, req.query)
    if problem:
        return fakehub.s3_error(403, "AccessDenied", problem)
    uses = hub.faults.url_used(signature)
    rule = hub.take({"expire"}, req, lambda r: uses > r.params["after"])
    if rule:
        reply = fakehub.s3_error(403, "AccessDenied", "Request has expired")
        reply.fired.append(rule.fault)
        return reply
    xorb = req.segs[-1]
    table = hub.xet.chunk_table(xorb) if re.fullmatch(r"[0-9a-f]{64}", xorb) else None
    if req.method not in ("GET", "HEAD") or table is None:
        return fakehub.s3_error(404, "NoSuchKey", "The specified key does not exist.")
    path = hub.xet.xorb_path(xorb)
    size = table[-1][1] + table[-1][2]
    wanted = parse_spans(req.headers.get("Range"))
    if wanted is None or not all(any(a <= c and d <= b for a, b in spans) for c, d in wanted):
        return fakehub.s3_error(403, "AccessDenied", "Range outside the signed ranges")
    headers = [("Content-Type", "application/octet-stream"), ("Accept-Ranges", "bytes"),
               ("ETag", f'"{xorb[:32]}"')]
    if hub.take({"ignore_range"}, req):
        return fakehub.Reply(200, headers, fakehub.Body(path=path, size=size), ["ignore_range"])
    if len(wanted) == 1:
        a, b = wanted[0]
        return fakehub.Reply(206, headers + [("Content-Range", f"bytes {a}-{b}/{size}")],
                             fakehub.Body(path=path, offset=a, size=b - a + 1))
    boundary = secrets.token_hex(16)
    parts = []
    with open(path, "rb") as f:
        for a, b in wanted:
            f.seek(a)
            parts.append(f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
                         f"Content-Range: bytes {a}-{b}/{size}\r\n\r\n".encode() +
                         f.read(b - a + 1) + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    headers[0] = ("Content-Type", f"multipart/byteranges; boundary={boundary}")
    return fakehub.Reply(206, headers, fakehub.Body(body))

