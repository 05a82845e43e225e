"""The fake Hub as the integration tests use it: the standard set of repos, and the fixture
class of tests/fakehub with the few helpers the tests share."""
import genrepo
from fakehub_fixture import FakeHub

MiB = 1 << 20


def generate_standard_repos(data_dir):
    """Small repos (a few MiB each) covering the shapes the tests need."""
    genrepo.generate(data_dir, "org/model", shards=3, shard_size=3 * MiB + 12345, seed=1,
                     tags=("v1",))
    genrepo.generate(data_dir, "org/private", private=True, shards=1, shard_size=MiB, seed=2)
    genrepo.generate(data_dir, "org/gated", gated="manual", shards=1, shard_size=MiB, seed=3)
    genrepo.generate(data_dir, "org/hostile-dotdot", shards=1, shard_size=MiB, seed=4,
                     hostile_paths=("../etc/passwd",))
    genrepo.generate(data_dir, "org/hostile-abs", shards=1, shard_size=MiB, seed=5,
                     hostile_paths=("/abs/path",))
    # Two revisions sharing every file but two: v1 (tag) and main.
    genrepo.generate(data_dir, "org/shared", shards=2, shard_size=2 * MiB, seed=6, tags=("v1",))
    genrepo.generate(data_dir, "org/shared", from_commit_of="v1",
                     change_files=("config.json", "model-00002-of-00002.safetensors"))
    # A dataset with no model of its id, for the type hint of a 404.
    genrepo.generate(data_dir, "org/ds", repo_type="dataset", shards=1, shard_size=MiB // 4,
                     seed=7)
    # Its LFS files stored on the fake's Xet CAS too.
    genrepo.generate(data_dir, "org/xet", shards=2, shard_size=MiB, seed=7, xet=True)
    # The same files as org/xet (but README.md) under another repo id.
    genrepo.generate(data_dir, "org/xet-copy", shards=2, shard_size=MiB, seed=7, xet=True)
    # Files of several blocks on Xet: block fetches whose plans start inside a chunk.
    genrepo.generate(data_dir, "org/xet-big", shards=2, shard_size=3 * MiB + 777, seed=8,
                     xet=True)
    return data_dir


class Hub(FakeHub):
    def log(self):
        """Every request so far, oldest first."""
        return self.log_entries()
