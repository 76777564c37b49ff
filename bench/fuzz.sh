#!/usr/bin/env bash
# The long fuzz runs: every libFuzzer target in an instrumented build (coverage, ASan, UBSan)
# for FUZZ_SECONDS each (default 600) on a copy of its seed corpus, printed as a markdown
# section — per target the time, executions, rate, corpus growth and findings (crash, leak,
# timeout or out-of-memory inputs).
#   bench/fuzz.sh [BUILD_DIR]            prints the section (BUILD_DIR default build-fuzz,
#                                        configured and built here when missing)
#   bench/fuzz.sh [BUILD_DIR] --update   also puts it into docs/security.md ("Fuzzing")
# A finding fails the script (exit 1) after the section is printed; its input stays in the
# work directory, which is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build=${1:-build-fuzz}
update=${2:-}
seconds=${FUZZ_SECONDS:-600}
if [[ ! -f "$build/build.ninja" ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_C_COMPILER=clang -DDROVER_FUZZ=ON -DDROVER_TESTS=OFF -DDROVER_BENCH=OFF > /dev/null
fi
targets=$(sed -n 's/^drover_fuzzer(\([a-z_]*\) .*/\1/p' fuzz/CMakeLists.txt)
# shellcheck disable=SC2086
cmake --build "$build" --target $targets > /dev/null
bin_dir=$(cd "$build/fuzz" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/drover-fuzz-long.XXXXXX")
echo "work directory: $work" >&2
rows=""
total_execs=0
total_findings=0
for t in $targets; do
  mkdir -p "$work/$t/corpus"
  cp fuzz/corpus/"$t"/* "$work/$t/corpus/"
  seeds=$(ls "$work/$t/corpus" | wc -l)
  echo "== $t: ${seconds}s" >&2
  start=$(date +%s)
  (cd "$work/$t" && ASAN_OPTIONS=detect_leaks=1 "$bin_dir/$t" -max_len=65536 \
     -max_total_time="$seconds" -print_final_stats=1 corpus > log 2>&1) || true
  wall=$(( $(date +%s) - start ))
  execs=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$work/$t/log")
  rate=$(awk '/^stat::average_exec_per_sec:/ {print $2}' "$work/$t/log")
  grown=$(ls "$work/$t/corpus" | wc -l)
  findings=$(ls "$work/$t" | grep -cE '^(crash|leak|timeout|oom)-' || true)
  total_execs=$(( total_execs + ${execs:-0} ))
  total_findings=$(( total_findings + findings ))
  rows+="| \`$t\` | $wall s | ${execs:-?} | ${rate:-?}/s | $seeds → $grown | $findings |"$'\n'
done
hours=$(python3 -c "print(f'{$seconds * $(echo "$targets" | wc -w) / 3600:.1f}')")
section="### Long fuzz runs (\`bench/fuzz.sh\`)

Every target for ${seconds} s (${hours} h in all) in an instrumented build (libFuzzer with
coverage, ASan and UBSan, \`-max_len=65536\`), on $(nproc) cores of
$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); commit $(git rev-parse --short HEAD),
run $(date -u +%Y-%m-%d). Findings are inputs that crashed, leaked, timed out or ran out of
memory: each is fixed and its input added to the target's corpus before this table is
published again.

| target | time | executions | rate | corpus (seeds → after) | findings |
|---|---|---|---|---|---|
${rows}
$(printf "%'d" "$total_execs") executions, $total_findings findings."
echo "$section"
if [[ "$update" == --update ]]; then
  put_section fuzz "$section" docs/security.md
  echo "docs/security.md updated" >&2
fi
[[ $total_findings -eq 0 ]]
