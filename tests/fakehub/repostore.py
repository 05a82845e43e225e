"""The fake Hub's data directory: content-addressed blobs plus one JSON manifest per repo.

genrepo.py writes it, fakehub.py reads it (any thread; manifests are reloaded when genrepo
replaces them, so a test can move a branch under a running server). Layout: README.md.
Knows git object ids and LFS pointers; knows nothing of HTTP.
"""
import hashlib
import json
import os
import re
import threading

REPO_TYPES = ("model", "dataset", "space")
DEFAULT_BRANCH = "main"
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
# Client-side repo id rules of HUB_PROTOCOL.md §1 (with is_valid_repo_id()).
REPO_ID_RE = re.compile(r"^(?:[A-Za-z0-9_.-]{1,96}/)?[A-Za-z0-9_.-]{1,96}$")
FORMAT = 1


def git_blob_sha1(data):
    """The git object id of a blob: sha1 of b"blob <size>\\0" + content (HUB_PROTOCOL.md §4.1)."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def lfs_pointer(sha256, size):
    """The git-lfs pointer that git stores in place of an LFS file's content."""
    return (f"version https://git-lfs.github.com/spec/v1\n"
            f"oid sha256:{sha256}\nsize {size}\n").encode()


def is_valid_repo_id(repo_id):
    return bool(REPO_ID_RE.match(repo_id) and "--" not in repo_id and ".." not in repo_id and
                not repo_id.endswith(".git") and
                all(part[0] not in "-." and part[-1] not in "-." for part in repo_id.split("/")))


def parent_dir(path):
    """'a/b/c' -> 'a/b'; 'a' -> '' (the root). Hostile names ('/x', 'a//b') follow the same rule."""
    return path.rpartition("/")[0]


def manifest_path(data_dir, repo_type, repo_id):
    # "--" cannot occur in a valid repo id (§1), so the name is unambiguous, as in the HF cache.
    return os.path.join(data_dir, "repos", f"{repo_type}s--{repo_id.replace('/', '--')}.json")


def blob_path(data_dir, sha256):
    return os.path.join(data_dir, "blobs", sha256[:2], sha256)


def write_atomic(path, data):
    """Writes bytes to `path` through a temporary file and a rename."""
    if os.path.dirname(path):  # a bare file name lives in the current directory
        os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}.{threading.get_ident()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def put_blob(data_dir, data):
    """Stores content once under its sha256; returns the sha256."""
    sha256 = hashlib.sha256(data).hexdigest()
    path = blob_path(data_dir, sha256)
    if not os.path.exists(path):
        write_atomic(path, data)
    return sha256


class Commit:
    """One commit of a manifest. `files` maps path -> file record (README.md, "Manifest");
    `dirs` maps every directory path ('' is the root) -> its git tree id."""

    def __init__(self, sha, rec):
        self.sha = sha
        self.parent = rec["parent"]
        self.title = rec["title"]
        self.date = rec["date"]
        self.files = {f["path"]: f for f in rec["files"]}
        self.dirs = dict(rec["dirs"], **{"": rec["tree"]})
        self._children = None

    def oid(self, path):
        """The tree `oid` of a path (§3: for LFS files, the pointer's blob id), or None."""
        f = self.files.get(path)
        if f is not None:
            return f["lfs"]["pointer_sha1"] if f["lfs"] else f["sha1"]
        return self.dirs.get(path)

    def children(self, path):
        """Direct entries of directory `path`: (directories, files), each sorted."""
        if self._children is None:  # built on first use; a racing rebuild is harmless
            index = {d: ([], []) for d in self.dirs}
            for d in self.dirs:
                if d:
                    index[parent_dir(d)][0].append(d)
            for p in self.files:
                index[parent_dir(p)][1].append(p)
            for dirs, files in index.values():
                dirs.sort()
                files.sort()
            self._children = index
        return self._children.get(path, ([], []))


class Repo:
    """A loaded manifest: repo attributes, refs and commits."""

    def __init__(self, manifest):
        self.manifest = manifest
        self.id = manifest["id"]
        self.type = manifest["type"]
        self.object_id = manifest["_id"]
        self.private = manifest["private"]
        self.gated = manifest["gated"]
        self.disabled = manifest["disabled"]
        self.created_at = manifest["createdAt"]
        self.branches = manifest["refs"]["branches"]
        self.tags = manifest["refs"]["tags"]
        self.pulls = manifest["refs"]["pulls"]
        self.commits = {sha: Commit(sha, rec) for sha, rec in manifest["commits"].items()}
        self.xet = manifest.get("xet", False)
        self._xet_hashes = None

    def xet_hashes(self):
        """Every Xet file hash (string) a commit of the repo names: what its CAS tokens read."""
        if self._xet_hashes is None:  # a racing rebuild is harmless
            self._xet_hashes = {f["xet"]["hash"] for c in self.commits.values()
                                for f in c.files.values() if f.get("xet")}
        return self._xet_hashes

    def resolve(self, rev):
        """The commit sha a revision names (§1: branch, tag, full sha, refs/pr/N, and the
        refs/heads/, refs/tags/ spellings; "HEAD" is the default branch), or None."""
        if rev == "HEAD":
            rev = DEFAULT_BRANCH
        if COMMIT_RE.match(rev):
            return rev if rev in self.commits else None
        for prefix, table in (("refs/heads/", self.branches), ("refs/tags/", self.tags),
                              ("refs/pr/", self.pulls)):
            if rev.startswith(prefix):
                return table.get(rev[len(prefix):])
        return self.branches.get(rev) or self.tags.get(rev)


def empty_manifest(repo_type, repo_id):
    if repo_type not in REPO_TYPES:
        raise ValueError(f"repo type must be one of {REPO_TYPES}")
    return {"format": FORMAT, "id": repo_id, "type": repo_type,
            "_id": hashlib.sha1(f"{repo_type}/{repo_id}".encode()).hexdigest()[:24],
            "private": False, "gated": False, "disabled": False, "createdAt": None,
            "refs": {"branches": {}, "tags": {}, "pulls": {}}, "commits": {}}


def read_manifest(data_dir, repo_type, repo_id):
    """The manifest dict, or None when the repo does not exist."""
    try:
        with open(manifest_path(data_dir, repo_type, repo_id), "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def write_manifest(data_dir, manifest):
    path = manifest_path(data_dir, manifest["type"], manifest["id"])
    write_atomic(path, json.dumps(manifest, indent=1, sort_keys=True).encode())


class Store:
    """Read side for the server: repos by (type, id), reloaded when their manifest changes."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._cache = {}  # (type, id) -> (stat key, Repo); under _lock

    def repo(self, repo_type, repo_id):
        """The Repo, or None when it does not exist (or its id could not exist)."""
        if not is_valid_repo_id(repo_id):
            return None
        path = manifest_path(self.data_dir, repo_type, repo_id)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            hit = self._cache.get((repo_type, repo_id))
        if hit and hit[0] == key:
            return hit[1]
        manifest = read_manifest(self.data_dir, repo_type, repo_id)
        if manifest is None:
            return None
        repo = Repo(manifest)
        with self._lock:
            self._cache[(repo_type, repo_id)] = (key, repo)
        return repo

    def blob_path(self, sha256):
        return blob_path(self.data_dir, sha256)


def _commit_of(data_dir, repo_id, revision, repo_type):
    manifest = read_manifest(data_dir, repo_type, repo_id)
    if manifest is None:
        raise KeyError(f"no {repo_type} repo {repo_id!r} in {data_dir}")
    repo = Repo(manifest)
    sha = repo.resolve(revision)
    if sha is None:
        raise KeyError(f"{repo_id!r} has no revision {revision!r}")
    return repo.commits[sha]


def read_files(data_dir, repo_id, revision=DEFAULT_BRANCH, repo_type="model"):
    """{path: content bytes} of every file of a revision."""
    commit = _commit_of(data_dir, repo_id, revision, repo_type)
    out = {}
    for path, f in commit.files.items():
        with open(blob_path(data_dir, f["sha256"]), "rb") as fh:
            out[path] = fh.read()
    return out


def content_sha256s(data_dir, repo_id, revision=DEFAULT_BRANCH, repo_type="model"):
    """{path: sha256 hex of the content} of every file of a revision."""
    commit = _commit_of(data_dir, repo_id, revision, repo_type)
    return {path: f["sha256"] for path, f in commit.files.items()}


def commit_sha(data_dir, repo_id, revision=DEFAULT_BRANCH, repo_type="model"):
    """The 40-hex commit a revision resolves to."""
    return _commit_of(data_dir, repo_id, revision, repo_type).sha
