#!/usr/bin/python3
"""Writes deterministic Hub repos (files, commits, refs) into a fake Hub data directory.

    genrepo.py DATA --repo org/name [--type model] [--revision main] [--tag v1] [--pr 1]
               [--private] [--gated [auto|manual]] [--disabled] [--shards 3]
               [--shard-size BYTES] [--seed 0] [--hostile-path ../etc/passwd]
               [--many-files N] [--many-distinct N] [--xet]
               [--from-commit-of REV --change-file PATH --change-tensor NAME] [--title TEXT]

Prints the new commit's sha. Importable: generate() does the same; repostore.read_files() and
repostore.content_sha256s() give a revision's contents back. Layout: README.md.
"""
import argparse
import datetime
import fnmatch
import hashlib
import json
import os
import random
import sys
import unicodedata

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import repostore  # noqa: E402
import xetstore  # noqa: E402

MiB = 1 << 20
DEFAULT_SHARD_SIZE = 3 * MiB
MIN_SHARD_SIZE = 4096
# The Hub stores in LFS what its default .gitattributes matches, and anything above 10 MiB.
LFS_THRESHOLD = 10 * MiB
LFS_PATTERNS = ("*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.gz", "*.h5", "*.joblib",
                "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.parquet", "*.pb",
                "*.pickle", "*.pkl", "*.pt", "*.pth", "*.safetensors", "*.tar", "*.tflite",
                "*.tgz", "*.xz", "*.zip", "*.zst", "*tfevents*")
# randbytes() draws at most this much per call; a multiple of 4 bytes (see there).
RAND_PIECE = 64 * MiB
FIRST_COMMIT_TIME = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
AUTHOR = b"fakehub <fakehub@example.invalid>"


def is_lfs(path, size):
    name = path.rpartition("/")[2]
    return size > LFS_THRESHOLD or any(fnmatch.fnmatchcase(name, p) for p in LFS_PATTERNS)


def rng_for(seed, path):
    """One generator per (seed, file), so adding a file never changes another's bytes."""
    return random.Random(f"{seed}:{path}")


def randbytes(rng, n, piece=RAND_PIECE):
    """rng.randbytes(n), the same bytes, drawn `piece` bytes at a time: one call overflows
    from 256 MiB on (Python 3.11's getrandbits takes a C int of bits). getrandbits emits
    32-bit words least significant first and takes a short last word's high bits, so pieces
    that are multiples of 4 bytes concatenate to exactly what one call would give."""
    assert piece > 0 and piece % 4 == 0
    if n <= piece:
        return rng.randbytes(n)
    return b"".join(rng.randbytes(min(piece, n - i)) for i in range(0, n, piece))


def dumps(obj):
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode()


# --- safetensors -------------------------------------------------------------------------------

DTYPE_SIZES = {"F32": 4, "F16": 2, "I64": 8, "U8": 1}


def shard_tensors(layer, data_size):
    """Tensors totalling exactly `data_size` bytes. Wider dtypes come first so each tensor
    starts aligned to its element size: safetensors data has no holes between tensors."""
    f32_rows = data_size // 2 // (256 * 4)
    f16_rows = (data_size - f32_rows * 1024) // 2 // (128 * 2)
    rest = data_size - f32_rows * 1024 - f16_rows * 256
    i64 = min(64, rest // 8)
    return [(f"model.layers.{layer}.mlp.down_proj.weight", "F32", [f32_rows, 256]),
            (f"model.layers.{layer}.self_attn.q_proj.weight", "F16", [f16_rows, 128]),
            (f"model.layers.{layer}.rotary.position_ids", "I64", [i64]),
            (f"model.layers.{layer}.attn_mask", "U8", [rest - i64 * 8])]


def tensor_bytes(dtype, n, rng):
    """n bytes of a tensor, shaped like real data where it matters for compression: F32 values
    of magnitude 2^-7..2^-3 (random sign and mantissa, a narrow exponent: what Xet's byte
    grouping compresses), U8 text (8-byte words from a 256-word vocabulary: what LZ4
    compresses), the rest random."""
    if dtype == "F32":
        words = np.frombuffer(randbytes(rng, n), dtype="<u4")
        exponent = (np.uint32(120) + ((words >> np.uint32(23)) & np.uint32(3))) << np.uint32(23)
        return ((words & np.uint32(0x807FFFFF)) | exponent).astype("<u4").tobytes()
    if dtype == "U8":
        vocab = np.frombuffer(randbytes(rng, 256 * 8), dtype=np.uint8).reshape(256, 8) % 26 + 97
        vocab[:, 7] = 32  # a space ends each word
        ids = np.frombuffer(randbytes(rng, (n + 7) // 8), dtype=np.uint8)
        return vocab[ids].tobytes()[:n]
    return randbytes(rng, n)


def tensor_nbytes(dtype, shape):
    n = DTYPE_SIZES[dtype]
    for dim in shape:
        n *= dim
    return n


def safetensors_bytes(tensors, rng):
    """A safetensors file: u64 LE header length, JSON header (space-padded to 8 bytes, as the
    reference writer does), then the tensors' bytes back to back."""
    header, offset, parts = {"__metadata__": {"format": "pt"}}, 0, []
    for name, dtype, shape in tensors:
        n = tensor_nbytes(dtype, shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        parts.append(tensor_bytes(dtype, n, rng))
        offset += n
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)
    return len(hjson).to_bytes(8, "little") + hjson + b"".join(parts)


def safetensors_layout(data):
    """[(name, dtype, shape)] of a safetensors file, in data order."""
    return [t[:3] for t in safetensors_spans(data)]


def safetensors_spans(data):
    """[(name, dtype, shape, first byte, end byte)] of a safetensors file, in data order, the
    offsets counted from the file's start."""
    hlen = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + hlen])
    header.pop("__metadata__", None)
    items = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    return [(name, t["dtype"], t["shape"], 8 + hlen + t["data_offsets"][0],
             8 + hlen + t["data_offsets"][1]) for name, t in items]


def with_tensor_changed(data, name, rng):
    """The safetensors file `data` with tensor `name` given new values (same dtype and shape),
    or None when it holds no such tensor."""
    for tname, dtype, shape, first, end in safetensors_spans(data):
        if tname == name:
            return data[:first] + tensor_bytes(dtype, end - first, rng) + data[end:]
    return None


# --- repo contents -----------------------------------------------------------------------------

def gitattributes():
    lines = [f"{p} filter=lfs diff=lfs merge=lfs -text" for p in LFS_PATTERNS]
    return ("\n".join(lines) + "\n").encode()


def tokenizer_json(rng):
    """A tokenizers-format file of ~1.2 MiB: a regular (non-LFS) file spanning several 1 MiB
    blocks."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    while len(vocab) < 48000:
        vocab.setdefault("".join(rng.choices(letters, k=rng.randint(3, 10))), len(vocab))
    return dumps({"version": "1.0", "truncation": None, "padding": None,
                  "added_tokens": [{"id": i, "content": t, "special": True}
                                   for t, i in list(vocab.items())[:3]],
                  "normalizer": None, "pre_tokenizer": {"type": "ByteLevel"},
                  "decoder": {"type": "ByteLevel"},
                  "model": {"type": "BPE", "unk_token": "<unk>", "vocab": vocab, "merges": []}})


def model_files(seed, shards, shard_size):
    """config, tokenizer, generation config, a sharded safetensors checkpoint and its index."""
    names = [f"model-{i:05d}-of-{shards:05d}.safetensors" for i in range(1, shards + 1)]
    files, weight_map, total = {}, {}, 0
    for i, name in enumerate(names):
        data_size = shard_size if i < shards - 1 or shards == 1 else shard_size * 2 // 3 + 7
        tensors = shard_tensors(i, data_size)
        files[name] = safetensors_bytes(tensors, rng_for(seed, name))
        weight_map.update((t[0], name) for t in tensors)
        total += data_size
    files["model.safetensors.index.json"] = dumps(
        {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))})
    files["config.json"] = dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                                  "hidden_size": 256, "num_hidden_layers": shards,
                                  "vocab_size": 48000, "torch_dtype": "float32",
                                  "fakehub_seed": seed})
    files["tokenizer.json"] = tokenizer_json(rng_for(seed, "tokenizer.json"))
    files["tokenizer_config.json"] = dumps({"tokenizer_class": "PreTrainedTokenizerFast",
                                            "bos_token": "<s>", "eos_token": "</s>",
                                            "unk_token": "<unk>", "model_max_length": 2048})
    files["generation_config.json"] = dumps({"bos_token_id": 1, "eos_token_id": 2,
                                             "max_new_tokens": 64})
    files["tiny.bin"] = randbytes(rng_for(seed, "tiny.bin"), 1)  # a 1-byte LFS file
    return files


def dataset_files(seed, shards, shard_size):
    rng = rng_for(seed, "data/train.jsonl")
    rows = [json.dumps({"id": i, "text": f"row {i} {rng.random():.6f}"}) for i in range(2000)]
    files = {"data/train.jsonl": ("\n".join(rows) + "\n").encode()}
    for i in range(1, shards + 1):
        name = f"data/train-{i:05d}-of-{shards:05d}.bin"
        files[name] = randbytes(rng_for(seed, name), shard_size // 2 + i)
    return files


def space_files(seed):
    return {"app.py": b"import gradio as gr\n\ngr.Interface(str, 'text', 'text').launch()\n",
            "requirements.txt": f"gradio\n# seed {seed}\n".encode()}


def common_files(repo_id, repo_type, seed):
    """Files every generated repo holds: the awkward names and shapes of HUB_PROTOCOL.md §10."""
    card = {"model": "license: apache-2.0", "dataset": "license: cc-by-4.0",
            "space": "sdk: gradio\napp_file: app.py"}[repo_type]
    nfc = unicodedata.normalize("NFC", "docs/read me \u00e9.txt")
    nfd = unicodedata.normalize("NFD", nfc)  # a distinct name: the tree's bytes count
    return {
        ".gitattributes": gitattributes(),
        "README.md": f"---\n{card}\n---\n# {repo_id}\n\nGenerated by genrepo.py, seed {seed}.\n"
                     .encode(),
        "empty.txt": b"",
        # 'nested' and 'nested/deep' hold only directories
        "nested/deep/dir/file.txt": f"deep file, seed {seed}\n".encode(),
        nfc: "NFC name\n".encode(),
        nfd: "NFD name\n".encode(),
        "odd/a#b%c+d.txt": b"hash percent plus\n",
        "odd/what?.txt": b"question mark\n",
        "long/" + "n" * 236 + ".txt": b"a 240-byte name\n",
    }


# What a repo holds only for the tests' sake (odd names, an empty and a 1-byte file).
FIXTURE_ONLY = ("empty.txt", "nested/", "docs/", "odd/", "long/", "tiny.bin")


def many_files(n, seed, distinct=1000):
    """n files of a few bytes each, 100 to a directory three levels deep
    ("many/00/00/f0000000.txt"): a huge tree that is quick to write. They hold `distinct`
    contents (1000 by default, as a tree of many small files shares many; n for a tree of
    all-different files)."""
    return {f"many/{i // 10000 % 100:02d}/{i // 100 % 100:02d}/f{i:07d}.txt":
            f"{seed}:{i % distinct}\n".encode() for i in range(n)}


def repo_files(repo_id, repo_type, seed, shards, shard_size, nmany=0, plain=False,
               many_distinct=1000):
    """plain: only what a real repo of the type holds (a demo), without the test fixtures."""
    files = common_files(repo_id, repo_type, seed)
    files.update(many_files(nmany, seed, many_distinct))
    if repo_type == "model":
        files.update(model_files(seed, shards, shard_size))
    elif repo_type == "dataset":
        files.update(dataset_files(seed, shards, shard_size))
    else:
        files.update(space_files(seed))
    if plain:
        files = {p: d for p, d in files.items() if not p.startswith(FIXTURE_ONLY)}
    return files


def changed_content(path, old, generation):
    """New content for a changed file, still of its kind: same tensor layout for safetensors,
    valid JSON for .json, otherwise a line appended."""
    rng = rng_for(f"change{generation}", path)
    if old is not None and path.endswith(".safetensors"):
        return safetensors_bytes(safetensors_layout(old), rng)
    if old is not None and path.endswith(".json"):
        return dumps(dict(json.loads(old), fakehub_change=generation))
    return (old or b"") + f"change {generation}\n".encode()


# --- git objects -------------------------------------------------------------------------------

def git_object_sha1(kind, body):
    return hashlib.sha1(b"%s %d\0" % (kind, len(body)) + body).hexdigest()


def dir_oids(file_oids):
    """{dir path: git tree id} for every directory ('' is the root) implied by the file paths,
    built bottom-up as git does. Directories are what repostore.parent_dir() chains give."""
    dirs = {""}
    for path in file_oids:
        d = repostore.parent_dir(path)
        while d not in dirs:
            dirs.add(d)
            d = repostore.parent_dir(d)
    entries = {d: [] for d in dirs}
    for path, oid in file_oids.items():
        entries[repostore.parent_dir(path)].append((path, oid, False))
    oids = {}
    for d in sorted(dirs, key=lambda p: -p.count("/") - bool(p)):  # deepest first, root last
        body = b""
        # git orders entries by name, a tree's name compared as if it ended with "/".
        for path, oid, is_dir in sorted(entries[d], key=lambda e: (e[0] + "/" * e[2]).encode()):
            name = path[len(d) + 1:] if d else path
            body += b"%s %s\0" % (b"40000" if is_dir else b"100644", name.encode())
            body += bytes.fromhex(oid)
        oids[d] = git_object_sha1(b"tree", body)
        if d:
            entries[repostore.parent_dir(d)].append((d, oids[d], True))
    return oids


def commit_object(tree, parent, when, title):
    ts = int(when.timestamp())
    body = b"tree %s\n" % tree.encode()
    if parent:
        body += b"parent %s\n" % parent.encode()
    body += b"author %s %d +0000\ncommitter %s %d +0000\n\n%s\n" % (
        AUTHOR, ts, AUTHOR, ts, title.encode())
    return git_object_sha1(b"commit", body)


def iso(when):
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --- generation --------------------------------------------------------------------------------

def file_record(data_dir, path, data):
    """The manifest record of a file; stores its content (its Xet form: store_on_xet())."""
    rec = {"path": path, "size": len(data), "sha256": repostore.put_blob(data_dir, data),
           "sha1": repostore.git_blob_sha1(data), "lfs": None, "xet": None}
    if is_lfs(path, len(data)):
        pointer = repostore.lfs_pointer(rec["sha256"], len(data))
        rec["lfs"] = {"pointer_sha1": repostore.git_blob_sha1(pointer),
                      "pointer_size": len(pointer)}
    return rec


def store_on_xet(data_dir, records):
    """Gives every LFS record without a Xet form one, storing its content in the Xet CAS (all
    new chunks of the commit packed together, as one upload would)."""
    todo = [r for r in records.values() if r["lfs"] and not r.get("xet")]
    hashes = xetstore.store_files(data_dir, [read_blob(data_dir, r["sha256"]) for r in todo])
    for rec, file_hex in zip(todo, hashes):
        rec["xet"] = {"hash": file_hex}


def read_blob(data_dir, sha256):
    with open(repostore.blob_path(data_dir, sha256), "rb") as f:
        return f.read()


def generate(data_dir, repo_id, *, repo_type="model", revision=repostore.DEFAULT_BRANCH,
             tags=(), pr=None, private=None, gated=None, disabled=None, shards=3,
             shard_size=DEFAULT_SHARD_SIZE, seed=0, hostile_paths=(), from_commit_of=None,
             change_files=(), change_tensors=(), title=None, many_files=0, plain=False,
             xet=None, many_distinct=1000):
    """Adds one commit to a repo (creating it) and returns its sha.

    The commit holds freshly generated files, or with `from_commit_of` the files of that
    revision with `change_files` changed or added (every other blob shared). Its parent is
    `from_commit_of`, else the head of branch `revision`. It moves branch `revision`, or only
    refs/pr/`pr` when `pr` is given, and every tag in `tags`. private/gated/disabled: None keeps
    the repo's setting (new repos: False); gated takes "auto" or "manual". many_files adds
    that many files of a few bytes under many/ (fresh files only), holding many_distinct
    contents. `change_tensors` names
    tensors given new values in whichever safetensors file holds them (with from_commit_of).
    xet=True makes the repo a Xet repo (None keeps it): every LFS file of this and later
    commits is then also stored in the Xet CAS (README.md, "Xet")."""
    if not repostore.is_valid_repo_id(repo_id):
        raise ValueError(f"invalid repo id {repo_id!r} (HUB_PROTOCOL.md §1)")
    if shard_size < MIN_SHARD_SIZE or shards < 1:
        raise ValueError(f"need shards >= 1 and shard_size >= {MIN_SHARD_SIZE}")
    if (change_files or change_tensors) and from_commit_of is None:
        raise ValueError("change_files and change_tensors need from_commit_of")
    manifest = (repostore.read_manifest(data_dir, repo_type, repo_id) or
                repostore.empty_manifest(repo_type, repo_id))
    repo = repostore.Repo(manifest)
    generation = len(manifest["commits"])
    if from_commit_of is not None:
        parent = repo.resolve(from_commit_of)
        if parent is None:
            raise ValueError(f"{repo_id} has no revision {from_commit_of!r}")
        # Copies: giving a carried file its Xet form must not rewrite the parent's record.
        records = {p: dict(r) for p, r in repo.commits[parent].files.items()}
        for path in change_files:
            old = read_blob(data_dir, records[path]["sha256"]) if path in records else None
            records[path] = file_record(data_dir, path, changed_content(path, old, generation))
        for name in change_tensors:
            rng = rng_for(f"change{generation}", name)
            hits = 0
            for path, rec in sorted(records.items()):
                if path.endswith(".safetensors"):
                    new = with_tensor_changed(read_blob(data_dir, rec["sha256"]), name, rng)
                    if new is not None:
                        records[path] = file_record(data_dir, path, new)
                        hits += 1
            if not hits:
                raise ValueError(f"no safetensors file of {from_commit_of!r} holds tensor {name!r}")
    else:
        parent = repo.branches.get(revision)
        records = {p: file_record(data_dir, p, d)
                   for p, d in repo_files(repo_id, repo_type, seed, shards, shard_size,
                                           many_files, plain, many_distinct).items()}
    for path in hostile_paths:
        records[path] = file_record(data_dir, path, b"hostile\n")
    if xet is not None:
        manifest["xet"] = bool(xet)
    if manifest.get("xet"):
        store_on_xet(data_dir, records)

    oids = {p: r["lfs"]["pointer_sha1"] if r["lfs"] else r["sha1"] for p, r in records.items()}
    dirs = dir_oids(oids)
    when = FIRST_COMMIT_TIME + datetime.timedelta(days=generation)
    title = title or ("Initial commit" if generation == 0 else f"Update {generation}")
    sha = commit_object(dirs[""], parent, when, title)
    manifest["commits"][sha] = {"parent": parent, "title": title, "date": iso(when),
                                "tree": dirs.pop(""), "dirs": dirs,
                                "files": [records[p] for p in sorted(records)]}
    refs = manifest["refs"]
    if pr is not None:
        refs["pulls"][str(pr)] = sha
    else:
        refs["branches"][revision] = sha
    for tag in tags:
        refs["tags"][tag] = sha
    for key, value in (("private", private), ("gated", gated), ("disabled", disabled)):
        if value is not None:
            manifest[key] = value
    manifest["createdAt"] = manifest["createdAt"] or iso(when)
    repostore.write_manifest(data_dir, manifest)
    return sha


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="the fake Hub's data directory")
    ap.add_argument("--repo", required=True, help="org/name, or a namespace-less name")
    ap.add_argument("--type", default="model", choices=repostore.REPO_TYPES)
    ap.add_argument("--revision", default=repostore.DEFAULT_BRANCH,
                    help="branch the commit moves (the base branch with --pr)")
    ap.add_argument("--tag", action="append", default=[], help="tag the commit (repeatable)")
    ap.add_argument("--pr", type=int, help="point refs/pr/N at the commit instead of the branch")
    ap.add_argument("--private", action="store_true", default=None)
    ap.add_argument("--gated", nargs="?", const="manual", choices=("auto", "manual"))
    ap.add_argument("--disabled", action="store_true", default=None)
    ap.add_argument("--shards", type=int, default=3)
    ap.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE,
                    help="tensor bytes per shard (the last shard holds about 2/3 of it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hostile-path", action="append", default=[],
                    help="add a file at this unsafe tree path (repeatable)")
    ap.add_argument("--from-commit-of", metavar="REV",
                    help="start from the files of REV instead of generating them")
    ap.add_argument("--change-file", action="append", default=[], metavar="PATH",
                    help="with --from-commit-of: change (or add) this file (repeatable)")
    ap.add_argument("--change-tensor", action="append", default=[], metavar="NAME",
                    help="with --from-commit-of: give this tensor new values (repeatable)")
    ap.add_argument("--xet", action="store_true", default=None,
                    help="a Xet repo: LFS files also stored in the fake Xet CAS")
    ap.add_argument("--title", help="commit title")
    ap.add_argument("--many-files", type=int, default=0, metavar="N",
                    help="add N files of a few bytes under many/ (a huge tree)")
    ap.add_argument("--many-distinct", type=int, default=1000, metavar="N",
                    help="the --many-files hold N distinct contents (default 1000)")
    ap.add_argument("--plain", action="store_true",
                    help="only what a real repo holds: no odd names or fixture files (demos)")
    a = ap.parse_args(argv)
    try:
        sha = generate(a.data, a.repo, repo_type=a.type, revision=a.revision, tags=a.tag,
                       pr=a.pr, private=a.private, gated=a.gated, disabled=a.disabled,
                       shards=a.shards, shard_size=a.shard_size, seed=a.seed,
                       hostile_paths=a.hostile_path, from_commit_of=a.from_commit_of,
                       change_files=a.change_file, change_tensors=a.change_tensor,
                       title=a.title, many_files=a.many_files, plain=a.plain, xet=a.xet,
                       many_distinct=a.many_distinct)
    except (ValueError, KeyError) as e:
        ap.error(str(e))
    print(sha)


if __name__ == "__main__":
    main()
