#!/usr/bin/env bash
# One fuzz target's smoke run (make test): every file of its corpus, then mutations for a
# few seconds, new inputs kept in a scratch directory that is removed afterwards.
#   fuzz/smoke.sh FUZZER CORPUS_DIR
set -euo pipefail
scratch=$(mktemp -d "${TMPDIR:-/tmp}/drover-fuzz-smoke.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
"$1" -seed=1 -runs=20000 -max_total_time=8 -rss_limit_mb=2048 -print_final_stats=1 \
  "$scratch" "$2" 2>&1 | tail -20
exit "${PIPESTATUS[0]}"
