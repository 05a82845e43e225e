"""BLAKE3 keyed hashing for the fake Xet CAS, through BLAKE3's official C implementation.

Debian 12 has no Python blake3; its librust-blake3-dev ships upstream's C sources in the crate's
c/ folder (scripts/deps installs it). On first use this builds them, portable code only, into a
shared library in a cache directory (HFFS_BLAKE3_CACHE, else $XDG_CACHE_HOME/hffs-fakehub, else
~/.cache/hffs-fakehub), named by a digest of the sources, and loads it with ctypes. The build
goes to a temporary name and is renamed into place, so concurrent first uses are safe.
Knows nothing of Xet: keyed_hash() is plain BLAKE3 keyed mode.
"""
import ctypes
import glob
import hashlib
import os
import subprocess
import tempfile
import threading

SOURCES = ("blake3.c", "blake3_dispatch.c", "blake3_portable.c")
# Portable code only: one build for every x86-64 or arm64 machine, and fast enough here (the
# fake hashes a few MB per test).
DEFINES = ("-DBLAKE3_NO_SSE2", "-DBLAKE3_NO_SSE41", "-DBLAKE3_NO_AVX2", "-DBLAKE3_NO_AVX512",
           "-DBLAKE3_USE_NEON=0")
HASHER_SIZE = 4096  # >= sizeof(blake3_hasher) (1912 bytes in 1.3.1); the struct is opaque here
_lock = threading.Lock()
_lib = None


class Blake3Unavailable(RuntimeError):
    pass


def source_dir():
    """The c/ folder of the newest blake3 crate librust-blake3-dev installed."""
    found = sorted(glob.glob("/usr/share/cargo/registry/blake3-*/c/blake3.h"))
    if not found:
        raise Blake3Unavailable("BLAKE3's C sources are missing: install librust-blake3-dev "
                                "(scripts/deps)")
    return os.path.dirname(found[-1])


def cache_dir():
    base = (os.environ.get("HFFS_BLAKE3_CACHE") or
            os.path.join(os.environ.get("XDG_CACHE_HOME") or
                         os.path.join(os.path.expanduser("~"), ".cache"), "hffs-fakehub"))
    os.makedirs(base, exist_ok=True)
    return base


def build():
    """Path of the shared library, built now if the cache lacks it."""
    src = source_dir()
    digest = hashlib.sha256(" ".join(DEFINES).encode())
    for name in SOURCES + ("blake3.h", "blake3_impl.h"):
        with open(os.path.join(src, name), "rb") as f:
            digest.update(f.read())
    out = os.path.join(cache_dir(), f"libblake3-{digest.hexdigest()[:16]}.so")
    if os.path.exists(out):
        return out
    cc = os.environ.get("CC") or "cc"
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(out), suffix=".so.tmp")
    os.close(fd)
    cmd = [cc, "-shared", "-fPIC", "-O2", *DEFINES, "-o", tmp,
           *(os.path.join(src, s) for s in SOURCES)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise Blake3Unavailable(f"building BLAKE3 failed: {' '.join(cmd)}\n{r.stderr}")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def lib():
    global _lib
    with _lock:
        if _lib is None:
            handle = ctypes.CDLL(build())
            handle.blake3_hasher_init_keyed.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            handle.blake3_hasher_update.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                                    ctypes.c_size_t]
            handle.blake3_hasher_finalize.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                                      ctypes.c_size_t]
            _lib = handle
        return _lib


def keyed_hash(key, data):
    """BLAKE3 keyed hash (32 bytes) of `data` (bytes-like) under a 32-byte key."""
    if len(key) != 32:
        raise ValueError("a BLAKE3 key is 32 bytes")
    h = lib()
    state = ctypes.create_string_buffer(HASHER_SIZE)
    out = ctypes.create_string_buffer(32)
    h.blake3_hasher_init_keyed(state, bytes(key))
    h.blake3_hasher_update(state, bytes(data), len(data))
    h.blake3_hasher_finalize(state, out, 32)
    return out.raw
