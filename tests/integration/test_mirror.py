"""--range-align (issue 18): every range on the wire starts and ends on a multiple of the
mirror's slice size, a resume after a broken transfer included."""
import json

MiB = 1 << 20


def lfs_files(hub, repo):
    """{path: (sha256, size)} of the LFS files at main, from the fake Hub's manifest."""
    manifest = json.loads((hub.data_dir / "repos" / f"models--{repo.replace('/', '--')}.json")
                          .read_text())
    files = manifest["commits"][manifest["refs"]["branches"]["main"]]["files"]
    return {f["path"]: (f["sha256"], f["size"]) for f in files if f["lfs"]}


def test_range_align_every_range_and_resume(hub, mount):
    """--range-align 2M straight to the fake Hub: reads at odd offsets and a transfer broken
    mid-range are all asked as ranges on 2 MiB boundaries (or up to EOF)."""
    lfs = lfs_files(hub, "org/model")
    expected = hub.files("org/model")
    path = sorted(lfs)[0]
    sha, size = lfs[path]
    hub.set_faults([{"host": "cdn", "fault": "reset", "at_byte": 300000, "count": 1}])
    m = mount("org/model", "--range-align", "2M", "--prefetch", "none")
    with open(m.path / path, "rb") as f:
        for off in (5, 2 * MiB + 777, MiB + 3):
            f.seek(off)
            assert f.read(100) == expected[path][off:off + 100]
    cdn = [e for e in hub.log() if e["host"] == "cdn" and sha in e["path"]]
    assert len(cdn) >= 3, cdn  # the broken one, its resume, the second half
    for e in cdn:
        first, last = map(int, e["range"].removeprefix("bytes=").split("-"))
        assert first % (2 * MiB) == 0, e
        assert (last + 1) % (2 * MiB) == 0 or last == size - 1, e
