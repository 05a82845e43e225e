"""user.hffs.* extended attributes: what a script can ask a mount without `hffs status`."""
import errno
import hashlib
import os

import pytest

from conftest import wait_for

SHARD = "model-00001-of-00003.safetensors"


def test_file_and_root_attributes(hub, mount, cache_dir):
    m = mount("org/model", "--prefetch", "none")
    f = m.path / SHARD
    names = set(os.listxattr(f))
    assert names == {"user.hffs.content_id", "user.hffs.state", "user.hffs.bytes_cached",
                     "user.hffs.coverage"}
    sha = hub.sha256s("org/model")[SHARD]
    assert os.getxattr(f, "user.hffs.content_id").decode() == sha
    assert os.getxattr(f, "user.hffs.state") == b"missing"
    assert os.getxattr(f, "user.hffs.bytes_cached") == b"0"
    assert os.getxattr(f, "user.hffs.coverage") == b"0.0"
    data = f.read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha
    # Read whole: verified before the last read was answered; never cached by the kernel.
    assert os.getxattr(f, "user.hffs.state") == b"verified"
    assert os.getxattr(f, "user.hffs.bytes_cached") == str(len(data)).encode()
    assert os.getxattr(f, "user.hffs.coverage") == b"100.0"
    # A small (git) file's id is its git blob sha1.
    cfg = m.path / "config.json"
    blob = cfg.read_bytes()
    git = hashlib.sha1(b"blob %d\0" % len(blob) + blob).hexdigest()
    assert os.getxattr(cfg, "user.hffs.content_id").decode() == git

    root = set(os.listxattr(m.path))
    assert root == {"user.hffs.repo", "user.hffs.revision", "user.hffs.commit",
                    "user.hffs.endpoint", "user.hffs.cache_dir"}
    assert os.getxattr(m.path, "user.hffs.repo") == b"models/org/model"
    assert os.getxattr(m.path, "user.hffs.revision") == b"main"
    assert os.getxattr(m.path, "user.hffs.commit").decode() == hub.commit("org/model")
    assert os.getxattr(m.path, "user.hffs.cache_dir").decode() == str(cache_dir)
    assert os.getxattr(m.path, "user.hffs.endpoint").decode() == hub.api_url

    with pytest.raises(OSError) as e:
        os.getxattr(f, "user.hffs.nothing")
    assert e.value.errno == errno.ENODATA
    with pytest.raises(OSError) as e:
        os.getxattr(f, "user.other")
    assert e.value.errno == errno.ENODATA
    subdir = next(p for p in m.path.iterdir() if p.is_dir())
    assert os.listxattr(subdir) == []
