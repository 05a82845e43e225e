#!/bin/sh
# The layering of DESIGN.md, checked: FUSE only in fs/; curl only in the fetch/ files that
# drive it or name its codes; CURLE_ codes only in fetch/reason.c (the one CURLcode map);
# cJSON only in fetch/hub_json.c; lmdb.h only in cache/db.c; blake3.h only in
# cache/xet_hash.c; liblz4 only in fetch/xet_chunk.c; fetch/ and cache/ never include each
# other; the cache commands need no fetch/ (but repo-id parsing) and no fs/; no file over 700
# lines. Prints each violation; exits 1 if there is any.
cd "$(dirname "$0")/.." || exit 2
bad=0
check() { # pattern allowed-files-regex description
  hits=$(grep -rlE "$1" util cache fetch fs cli --include='*.[ch]' | grep -vE "$2")
  if [ -n "$hits" ]; then
    echo "layer violation ($3):"; echo "$hits" | sed 's/^/  /'; bad=1
  fi
}
check '#include <fuse' '^fs/' 'FUSE headers outside fs/'
check '#include <curl/' '^fetch/(http_exchange\.c|http_env\.c|reason\.c|xfer_engine\.c|xfer_hop\.[ch])$' \
  'curl outside the fetch/ files that use it'
# CURLE_OK only says "no error"; every other code is mapped in reason.c alone.
hits=$(grep -rnoE 'CURLE_[A-Z0-9_]+' util cache fetch fs cli --include='*.[ch]' |
  grep -v '^fetch/reason\.c:' | grep -v ':CURLE_OK$')
if [ -n "$hits" ]; then
  echo "layer violation (CURLE_ codes outside fetch/reason.c):"; echo "$hits" | sed 's/^/  /'
  bad=1
fi
check '#include <cjson/' '^fetch/hub_json\.c$' 'cJSON outside fetch/hub_json.c'
check '#include <lmdb\.h>' '^cache/db\.c$' 'lmdb.h outside cache/db.c'
check '#include <blake3\.h>' '^cache/xet_hash\.c$' 'blake3.h outside cache/xet_hash.c'
check '#include <lz4' '^fetch/xet_chunk\.c$' 'liblz4 outside fetch/xet_chunk.c'
check '#include "fetch/' '^(fetch|fs|cli)/' 'fetch/ included by cache/ or util/'
check '#include "cache/' '^(cache|fs|cli)/' 'cache/ included by fetch/ or util/'
check '#include "fs/' '^(fs|cli)/' 'fs/ included below it'
# The cache commands are offline maintenance: cache/ alone, but for fetch/'s repo-id parsing.
hits=$(grep -lE '#include "(fetch|fs)/' cli/cache_*.[ch] cli/cmd_cache.c |
  grep -vE '^cli/cache_target\.c$')
if [ -n "$hits" ]; then
  echo "layer violation (fetch/ or fs/ in the cache commands, beyond repo-id parsing):"
  echo "$hits" | sed 's/^/  /'; bad=1
fi
# A file holds one concern and stays under 700 lines (STYLE.md), in every layer.
long=$(find util fetch cache fs cli -name '*.[ch]' -exec wc -l {} + | grep -v ' total$' |
  awk '$1 > 700 { print $2 " (" $1 " lines)" }')
if [ -n "$long" ]; then
  echo "files over 700 lines:"; echo "$long" | sed 's/^/  /'; bad=1
fi
[ $bad -eq 0 ] && echo "layers: ok"
exit $bad
