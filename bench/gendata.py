#!/usr/bin/python3
"""Generates the benchmark repo with tests/fakehub/genrepo.py, cached under the bench data dir.

    gendata.py DATA_ROOT --shards 4 --shard-size BYTES [--seed 0]   # prints the data dir

genrepo draws a shard's tensor bytes with one `Random.randbytes(n)` call, which on Python 3.11
overflows for n >= 256 MiB (getrandbits takes a C int of bits). Here the same generator is
drawn in 64 MiB pieces instead: getrandbits emits 32-bit words least significant first, so
pieces that are multiples of 4 bytes concatenate to exactly the bytes one call would give.
The repo is the one genrepo would write; only the drawing is split.

The data dir is named by its parameters and written to a temporary name first, then renamed,
so a present dir is always complete.
"""
import argparse
import os
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "fakehub"))

import genrepo  # noqa: E402

REPO = "bench/model"
PIECE = 64 << 20  # a multiple of 4 bytes: see the module comment


class PiecewiseRandom(random.Random):
    """random.Random whose randbytes() draws at most PIECE bytes per getrandbits call."""

    def randbytes(self, n):
        return b"".join(super(PiecewiseRandom, self).randbytes(min(PIECE, n - i))
                        for i in range(0, n, PIECE))


def data_dir_name(shards, shard_size, seed):
    return f"model-{shards}x{shard_size}-seed{seed}"


def ensure(root, shards, shard_size, seed=0):
    """The data dir for these parameters under `root`, generating it if absent."""
    final = Path(root) / data_dir_name(shards, shard_size, seed)
    if final.is_dir():
        return final
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    genrepo.rng_for = lambda s, path: PiecewiseRandom(f"{s}:{path}")
    genrepo.generate(tmp, REPO, shards=shards, shard_size=shard_size, seed=seed)
    os.rename(tmp, final)
    return final


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root")
    ap.add_argument("--shards", type=int, required=True)
    ap.add_argument("--shard-size", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(ensure(a.root, a.shards, a.shard_size, a.seed))


if __name__ == "__main__":
    main()
