"""The fake Xet CAS's storage in the data directory: xorbs, file reconstructions and the chunk
index that deduplicates across files, revisions and repos.

genrepo.py adds files (store_files(), under a file lock); fakehub.py reads them from any thread
(XetStore: everything stored is immutable and named by its hash, so caching is safe). Layout:
README.md, "Xet". Knows the spec's formats (xet.py); knows nothing of repos or HTTP.
"""
import fcntl
import hashlib
import json
import os
import threading

import repostore
import xet


def xet_dir(data_dir):
    return os.path.join(data_dir, "xet")


def xorb_path(data_dir, xorb_hex):
    return os.path.join(xet_dir(data_dir), "xorbs", xorb_hex[:2], xorb_hex)


def xorb_index_path(data_dir, xorb_hex):
    return xorb_path(data_dir, xorb_hex) + ".json"


def file_path(data_dir, file_hex):
    return os.path.join(xet_dir(data_dir), "files", file_hex[:2], file_hex + ".json")


def chunk_index_path(data_dir):
    return os.path.join(xet_dir(data_dir), "chunks.json")


class _Xorb:
    """A xorb being filled: serialized chunks and their index entries."""

    def __init__(self):
        self.parts, self.entries, self.size, self.raw = [], [], 0, 0

    def add(self, chunk_hash, piece):
        blob = xet.serialize_chunk(piece)
        self.entries.append([xet.hash_hex(chunk_hash), self.size, len(blob), len(piece)])
        self.parts.append(blob)
        self.size += len(blob)
        self.raw += len(piece)
        return len(self.entries) - 1


def store_files(data_dir, contents):
    """Stores each content (bytes) as a Xet file and returns their file hash strings, in order.

    Chunks already in the CAS (any earlier file, revision or repo) are referenced where they
    are; the new ones are packed in order into new xorbs of at most XORB_MAX_BYTES of chunk
    data. A file becomes terms: runs of consecutive chunks of one xorb. Data reaches its file
    before anything names it (xorbs, then file records, then the chunk index)."""
    os.makedirs(xet_dir(data_dir), exist_ok=True)
    with open(os.path.join(xet_dir(data_dir), "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        index_path = chunk_index_path(data_dir)
        index = {}
        if os.path.exists(index_path):
            with open(index_path, "rb") as f:
                index = json.load(f)
        pending = {}  # chunk hash string -> (open xorb number, chunk index)
        xorbs = [_Xorb()]
        plans = []
        for data in contents:
            plan = []
            for chunk_hash, piece in xet.chunks(data):
                key = xet.hash_hex(chunk_hash)
                where = index.get(key) or pending.get(key)
                if where is None:
                    if xorbs[-1].raw and xorbs[-1].raw + len(piece) > xet.XORB_MAX_BYTES:
                        xorbs.append(_Xorb())
                    where = pending[key] = (len(xorbs) - 1, xorbs[-1].add(chunk_hash, piece))
                plan.append((where, chunk_hash, len(piece)))
            plans.append((data, plan))
        names = []
        for x in xorbs:
            if not x.entries:
                names.append(None)
                continue
            name = xet.hash_hex(xet.xorb_hash((xet.hex_hash(e[0]), e[3]) for e in x.entries))
            names.append(name)
            if not os.path.exists(xorb_index_path(data_dir, name)):
                repostore.write_atomic(xorb_path(data_dir, name), b"".join(x.parts))
                repostore.write_atomic(xorb_index_path(data_dir, name),
                                       json.dumps({"chunks": x.entries}).encode())
        hashes = []
        for data, plan in plans:
            terms = []
            for (xorb, idx), _, size in plan:
                xorb = names[xorb] if isinstance(xorb, int) else xorb
                if terms and terms[-1][0] == xorb and terms[-1][2] == idx:
                    terms[-1][2] += 1
                    terms[-1][3] += size
                else:
                    terms.append([xorb, idx, idx + 1, size])
            file_hex = xet.hash_hex(xet.file_hash((h, size) for _, h, size in plan))
            record = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                      "terms": terms}
            repostore.write_atomic(file_path(data_dir, file_hex), json.dumps(record).encode())
            hashes.append(file_hex)
        for key, (xorb, idx) in pending.items():
            index[key] = [names[xorb], idx]
        repostore.write_atomic(index_path, json.dumps(index).encode())
        return hashes


class XetStore:
    """Read side for the server: file records and xorb chunk tables, cached (immutable)."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._files = {}  # file hash string -> record; under _lock
        self._xorbs = {}  # xorb hash string -> chunk table; under _lock

    def _load(self, cache, key, path):
        with self._lock:
            hit = cache.get(key)
        if hit is not None:
            return hit
        try:
            with open(path, "rb") as f:
                value = json.load(f)
        except (FileNotFoundError, NotADirectoryError):
            return None
        with self._lock:
            cache[key] = value
        return value

    def file(self, file_hex):
        """{"size", "sha256", "terms": [[xorb, start, end, unpacked length]]}, or None."""
        if len(file_hex) != 64 or not all(c in "0123456789abcdef" for c in file_hex):
            return None
        return self._load(self._files, file_hex, file_path(self.data_dir, file_hex))

    def chunk_table(self, xorb_hex):
        """[[chunk hash, byte offset, serialized length, raw length]] of a xorb, or None."""
        table = self._load(self._xorbs, xorb_hex, xorb_index_path(self.data_dir, xorb_hex))
        return table["chunks"] if table else None

    def xorb_path(self, xorb_hex):
        return xorb_path(self.data_dir, xorb_hex)
