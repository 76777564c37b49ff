#!/usr/bin/env bash
# The audit log's costs (bench/audit_bench.cc), printed as a markdown section:
#   opening a log of 10,000 and 100,000 entries (what `drover serve` does at every start)
#   against the floor of re-deriving its Merkle tree, and against checking every signature
#   (`drover audit verify`); one durable append on SQLite against a bare SQLite insert of
#   the same bytes with the same sync.
#   bench/audit.sh [BUILD_DIR]            prints the section
#   bench/audit.sh [BUILD_DIR] --update   also puts it into docs/benchmarks.md
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build=${1:-build-bench}
update=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$build/bench/audit_bench" --benchmark_min_time=1 --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true --benchmark_format=json > "$tmp/audit.json"
table=$(python3 - "$tmp/audit.json" <<'PY'
import json, sys
rows = {b["name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"] if b.get("aggregate_name") == "median"}
def t(name): return rows[name + "_median"]["real_time"]
out = ["| entries | baseline: re-derive the tree | open the log (every start) | ratio | verify every signature | ratio |",
       "|---|---|---|---|---|---|"]
for n in ("10000", "100000"):
    b = t(f"BM_BaselineRederiveTree/{n}"); o = t(f"BM_OpenLog/{n}"); v = t(f"BM_VerifyEverySignature/{n}")
    out.append(f"| {int(n):,} | {b:.1f} ms | {o:.1f} ms | {o/b:.2f}x | {v:.0f} ms | {v/b:.1f}x |")
b = t("BM_BaselineSqliteInsert"); r = t("BM_RecordOnSqlite")
out += ["", "| one durable append | baseline: bare SQLite insert, synchronous FULL | audit record (entry, tree, signed checkpoint, row, checkpoint file) | ratio |",
        "|---|---|---|---|",
        f"| wall time, median | {b:.0f} µs | {r:.0f} µs | {r/b:.2f}x |"]
print("\n".join(out))
PY
)
commit=$(git rev-parse --short HEAD)
section="## The audit log (\`bench/audit.sh\`)

Google Benchmark, \`$build/bench/audit_bench\`, medians of 3 repetitions; commit $commit,
measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores of $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //').
Opening reads every entry from the store (memory), appends its leaf to the tree and checks
the newest checkpoint's root and signature — one signed root covers every entry; a log that
does not verify is then read record by record to name the first that fails. Verifying every
signature is \`drover audit verify\`. An append is what every mutating operator request and
rollout change waits for (\`drover serve\` keeps SQLite at synchronous FULL).

$table"
echo "$section"
if [[ "$update" == --update ]]; then
  put_section audit "$section"
  echo "docs/benchmarks.md updated" >&2
fi
