#!/bin/sh
# Installs the official JS Hub client that test_xet.py runs against the fake Xet CAS:
# @huggingface/hub (pinned; it brings @huggingface/xetchunk-wasm and blake3-jit) into
# $HFFS_NPM_DIR, else $XDG_CACHE_HOME/hffs-fakehub/npm, else ~/.cache/hffs-fakehub/npm.
# Idempotent. Exits 1 (saying why) when npm is missing or the install fails; the test then
# skips with that reason.
set -eu
version=2.17.5
dir=${HFFS_NPM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hffs-fakehub/npm}
pkg=$dir/node_modules/@huggingface/hub/package.json
if [ -f "$pkg" ] && grep -q "\"version\": \"$version\"" "$pkg"; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm_install.sh: npm not found" >&2
  exit 1
fi
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "@huggingface/hub@$version" >&2
