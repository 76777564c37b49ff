#!/usr/bin/env bash
# The health gates' pass at fleet size (docs/gates.md, "Health gates"): health_gate_bench on
# GATE_DEVICES devices, half of them updated a day ago, the pass pairing up to 1,000 of them
# from a real time-series store on two metrics (memory slope, the temperature's anomaly rate);
# check-ins alone (the baseline) and beside the pass, over GATE_RUNS processes.
#   bench/health_gate.sh [BUILD_DIR]            prints the section
#   bench/health_gate.sh [BUILD_DIR] --update   also puts it into docs/benchmarks.md
# Environment: GATE_RUNS (default 5), GATE_DEVICES (default 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build=${1:-build-bench}
update=${2:-}
runs=${GATE_RUNS:-5}
devices=${GATE_DEVICES:-2000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for i in $(seq "$runs"); do
  "$build/bench/health_gate_bench" --devices "$devices" --dir "$tmp/tsdb-$i" > "$tmp/run-$i.json"
  rm -rf "$tmp/tsdb-$i"
done
values() {  # field scale
  for i in $(seq "$runs"); do
    python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]] * float(sys.argv[3]))" \
      "$tmp/run-$i.json" "$1" "$2"
  done
}
row() {  # label field scale decimals
  local v
  v=$(values "$2" "$3")
  echo "| $1 | $(echo "$v" | median) | $(echo "$v" | sort -g | head -1 | xargs printf "%.${4}f") | $(echo "$v" | sort -g | tail -1 | xargs printf "%.${4}f") |"
}

section=$(cat <<MD
## The health gates' pass (\`bench/health_gate.sh\`)

\`health_gate_bench --devices $devices\`, $runs processes: $devices devices in one stratum,
each with five days of readings every 10 minutes of \`memory_available_bytes\` and
\`temperature_celsius\` ($(field "$tmp/run-1.json" samples) samples) in a real time-series
store; a rollout whose canary (half the fleet) committed 25 hours ago, gated on memory slope
and the temperature's anomaly rate over 24 h windows (each anomaly window learnt over the
three days before it: four days of readings read per window). One engine tick pairs up to
1,000 devices, reading the store through \`TelemetryHealth\` — without the engine's lock:
planned under it, read, paired under it again. Baseline, the same run: check-ins of
not-yet-updated devices (no offer: the canary is full) with no pass running; then the same
check-ins from another thread for as long as the pass runs.

| | median | least | most |
|---|---|---|---|
$(row "devices paired in the pass (with a partner)" pairs 1 0)
$(row "the pass (one tick), ms" pass_s 1000 1)
$(row "baseline: a check-in alone, median µs" checkin_alone_median_us 1 2)
$(row "baseline: a check-in alone, 99th percentile µs" checkin_alone_p99_us 1 2)
$(row "beside the pass: a check-in, median µs" checkin_beside_median_us 1 2)
$(row "beside the pass: a check-in, 99th percentile µs" checkin_beside_p99_us 1 2)
$(row "beside the pass: the longest check-in, ms" checkin_beside_max_us 0.001 2)
$(row "beside the pass: check-ins answered during it" checkins_beside 1 0)

A check-in that waited for the pass's reads would take as long as the pass; the longest beside
it took
$(python3 -c "
import json
r=[json.load(open('$tmp/run-%d.json' % i)) for i in range(1, $runs + 1)]
v=sorted(x['checkin_beside_max_us'] / 1e6 / x['pass_s'] * 100 for x in r)
print('%.1f' % v[len(v)//2])
")% of the pass's time (median over the runs).
Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; commit
$(git rev-parse --short HEAD 2>/dev/null || echo unknown).
MD
)
echo "$section"
if [ "$update" = "--update" ]; then put_section health-gate "$section"; fi
