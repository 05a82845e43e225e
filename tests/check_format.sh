#!/bin/sh
# The C sources as .clang-format (STYLE.md) lays them out: clang-format 14 --dry-run on every
# .c and .h of the source tree. With --fix, rewrites them instead (the `format` target).
# Exits 77 (skipped) when clang-format is not installed.
cd "$(dirname "$0")/.." || exit 2
command -v clang-format >/dev/null 2>&1 || { echo "clang-format not installed"; exit 77; }
files=$(find util cache fetch fs cli tests -name '*.[ch]' -not -path '*/corpus/*' | sort)
if [ "$1" = "--fix" ]; then
  exec clang-format -i $files
fi
if clang-format --dry-run --Werror $files; then
  echo "format: ok"
else
  echo "format: run 'ninja -C build format' (clang-format -i) and commit the result"
  exit 1
fi
