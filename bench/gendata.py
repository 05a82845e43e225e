#!/usr/bin/python3
"""Generates the benchmark repo with tests/fakehub/genrepo.py, cached under the bench data dir.

    gendata.py DATA_ROOT --shards 4 --shard-size BYTES [--seed 0]   # prints the data dir

The data dir is named by its parameters and written to a temporary name first, then renamed,
so a present dir is always complete.
"""
import argparse
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "fakehub"))

import genrepo  # noqa: E402

REPO = "bench/model"


def data_dir_name(shards, shard_size, seed):
    return f"model-{shards}x{shard_size}-seed{seed}"


def ensure(root, shards, shard_size, seed=0):
    """The data dir for these parameters under `root`, generating it if absent."""
    final = Path(root) / data_dir_name(shards, shard_size, seed)
    if final.is_dir():
        return final
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
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
