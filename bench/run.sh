#!/usr/bin/env bash
# Runs every Drover benchmark and rewrites docs/benchmarks.md with the figures, the machine,
# the commands and the baselines measured in the same run.
#   bench/run.sh [BUILD_DIR]        (make bench builds Release into build-bench and calls this)
# Environment: RUNS_DEMO (default 5), RUNS_MILLION (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build=${1:-build-bench}
drover=$build/src/app/drover
runs_demo=${RUNS_DEMO:-5}
runs_million=${RUNS_MILLION:-3}
out=docs/benchmarks.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT


echo "== machine"
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
mem=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')
kernel=$(uname -r)
compiler=$(c++ --version | head -1)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

echo "== micro-benchmarks (check-in through DeviceService vs a hash lookup baseline)"
"$build/bench/checkin_bench" --benchmark_min_time=1 --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true --benchmark_format=json > "$tmp/micro.json"
micro_table=$(python3 - "$tmp/micro.json" <<'PY'
import json, sys
rows = {b["name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"] if b.get("aggregate_name") == "median"}
def ns(name): return rows[name + "_median"]["real_time"]
out = ["| devices | baseline: one `unordered_map` lookup | check-in, no rollout | ratio | check-in, rollout running | ratio |",
       "|---|---|---|---|---|---|"]
for n in ("100000", "1000000"):
    b = ns(f"BM_BaselineHashLookup/{n}"); i = ns(f"BM_CheckInIdleFleet/{n}"); r = ns(f"BM_CheckInDuringRollout/{n}")
    out.append(f"| {int(n):,} | {b:.0f} ns | {i:.0f} ns | {i/b:.2f}x | {r:.0f} ns | {r/b:.2f}x |")
print("\n".join(out))
PY
)
# A benchmark against its baseline from the same run, medians, one row per size:
# ratio_table FIRST_COLUMN BASELINE_LABEL LABEL BASELINE_BENCHMARK BENCHMARK DECIMALS RATIO_DECIMALS SIZE...
ratio_table() {
  python3 - "$tmp/micro.json" "$@" <<'PY'
import json, sys
path, first, base_label, label, base_bm, bm, d, rd, *sizes = sys.argv[1:]
rows = {b["name"]: b for b in json.load(open(path))["benchmarks"] if b.get("aggregate_name") == "median"}
def ms(name): return rows[name + "_median"]["real_time"]
out = [f"| {first} | baseline: {base_label} | {label} | ratio |", "|---|---|---|---|"]
for n in sizes:
    b = ms(f"{base_bm}/{n}"); s = ms(f"{bm}/{n}")
    out.append(f"| {int(n):,} | {b:.{d}f} ms | {s:.{d}f} ms | {s/b:.{rd}f}x |")
print("\n".join(out))
PY
}
summary_table=$(ratio_table devices '`census()` (the /metrics scan)' 'fleet summary' \
  BM_BaselineCensus BM_FleetSummary 1 1 100000 1000000)
timeline_table=$(ratio_table deployments '`list_deployments` (SQLite)' 'timeline, 120 points' \
  BM_BaselineListDeployments BM_RolloutTimeline 0 2 15000 100000)

echo "== demo scenario ($runs_demo runs)"
for i in $(seq "$runs_demo"); do
  /usr/bin/time -f "%e %M" -o "$tmp/demo-time-$i" "$drover" sim scenarios/demo.json --quiet \
    --report-json "$tmp/demo-$i.json" > /dev/null
done
demo_wall=$(for i in $(seq "$runs_demo"); do field "$tmp/demo-$i.json" wall_seconds; done | median)
demo_rss=$(for i in $(seq "$runs_demo"); do awk '{print $2/1024}' "$tmp/demo-time-$i"; done | median)
demo_cps=$(for i in $(seq "$runs_demo"); do field "$tmp/demo-$i.json" checkins_per_wall_second; done | median)
demo_checkins=$(field "$tmp/demo-1.json" checkins)
demo_t95=$(field "$tmp/demo-1.json" time_to_95_percent_s | awk '{printf "%.0f s (%.1f h)", $1, $1/3600}')

echo "== million scenario ($runs_million runs)"
for i in $(seq "$runs_million"); do
  /usr/bin/time -f "%e %M" -o "$tmp/million-time-$i" "$drover" sim scenarios/million.json --quiet \
    --report-json "$tmp/million-$i.json" > /dev/null
done
million_wall=$(for i in $(seq "$runs_million"); do field "$tmp/million-$i.json" wall_seconds; done | median)
million_process=$(for i in $(seq "$runs_million"); do awk '{print $1}' "$tmp/million-time-$i"; done | median)
million_rss=$(for i in $(seq "$runs_million"); do awk '{printf "%.2f\n", $2/1024/1024}' "$tmp/million-time-$i"; done | median)
million_cps=$(for i in $(seq "$runs_million"); do field "$tmp/million-$i.json" checkins_per_wall_second; done | median)
million_checkins=$(field "$tmp/million-1.json" checkins)
million_sim=$(field "$tmp/million-1.json" simulated_seconds | awk '{printf "%.0f", $1}')
same=$(for i in $(seq "$runs_million"); do python3 -c "
import json,sys; r=json.load(open(sys.argv[1])); [r.pop(k) for k in ('wall_seconds','checkins_per_wall_second')]; print(json.dumps(r, sort_keys=True))" "$tmp/million-$i.json"; done | sort -u | wc -l)

verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t) ? "met" : "**not met**" }'; }

cat > "$out" <<MD
# Benchmarks

Written by \`bench/run.sh\` (\`make bench\`); do not edit by hand. Figures are medians of
several runs on the machine below; the machines are noisy, so compare ratios to the
baseline measured in the same run rather than absolute times across machines.

- machine: $cpu, $(nproc) cores, $mem, Linux $kernel
- compiler: $compiler, Release build
- commit: $commit, measured $(date -u +%Y-%m-%dT%H:%MZ)

## Check-in cost (Google Benchmark, \`$build/bench/checkin_bench\`)

One check-in through the real \`DeviceService\` and \`RolloutEngine\` on the in-memory
store, for a random device of a fleet of that size. Baseline: one
\`std::unordered_map<std::string, int>\` lookup of a random device id in a table of the same
size — the memory-latency floor of any id-keyed registry on this machine.

$micro_table

### The fleet summary (\`GET /api/v1/fleet/summary\`, the web console's overview)

One \`DeviceService::summary()\`: a scan of the registry under its lock (check-ins wait
meanwhile), counting by state, enrollment, type, revision, site, connectivity, installed
version and check-in age; a quarter of the fleet has checked in. The server counts at most
once per 2 s, whatever the number of consoles open. Baseline: \`census()\`, the scan
\`/metrics\` makes (by state only).

$summary_table

### The rollout timeline (\`GET /api/v1/rollouts/{id}/timeline\`, the console's chart)

\`RolloutQueries::timeline\` over a rollout whose deployments are in a SQLite store, as
\`drover serve\` keeps them: every deployment read back and counted at 120 times. Baseline:
reading the deployments alone. The server reuses an answer for ten times what it cost and
at least 2 s (docs/api/operator.md).

$timeline_table

## The demo scenario (\`drover sim scenarios/demo.json --quiet\`, $runs_demo runs)

| figure | value | target |
|---|---|---|
| wall time, median | ${demo_wall} s | ≤ 5 s: $(verdict "$demo_wall" 5) |
| peak RSS, median | ${demo_rss} MiB | |
| check-ins through DeviceService | $demo_checkins (${demo_cps}/s wall) | |
| simulated time to 95% of healthy strata | ${demo_t95} | |

## The million scenario (\`drover sim scenarios/million.json --quiet\`, $runs_million runs)

1,000,000 devices in 1,000 sites, hourly check-ins, a four-stage rollout, 72 simulated
hours (plus drain), every check-in through the real service.

| figure | value | target |
|---|---|---|
| simulation wall time, median | ${million_wall} s | ≤ 60 s: $(verdict "$million_wall" 60) |
| process wall time incl. set-up, median | ${million_process} s | |
| peak RSS, median | ${million_rss} GiB | ≤ 3 GB: $(verdict "$million_rss" 2.79) |
| check-ins through DeviceService | $million_checkins over ${million_sim} simulated s | |
| check-ins per wall second, median | $million_cps | |
| identical reports across runs (wall fields aside) | $([ "$same" = 1 ] && echo yes || echo NO) | |

Reproduce: \`make bench\` (or \`bench/run.sh BUILD_DIR\` on a Release build).
MD
echo "== wrote $out"
cat "$out"

echo "== network (bench/net.sh)"
bench/net.sh "$build" --update > /dev/null

echo "== the rollout storm (bench/storm.sh)"
bench/storm.sh "$build" --update > /dev/null

echo "== the telemetry store (bench/tsdb.sh)"
bench/tsdb.sh "$build" --update > /dev/null
echo "== telemetry end to end (bench/telemetry.sh)"
bench/telemetry.sh "$build" --update > /dev/null

echo "== the twin over the network (bench/sim_network.sh)"
bench/sim_network.sh "$build" --update > /dev/null

echo "== the farm's 90 days (bench/field.sh)"
bench/field.sh "$build" --update > /dev/null

echo "== device health and the fleet view (bench/health.sh)"
bench/health.sh "$build" --update > /dev/null

echo "== the health gates' pass (bench/health_gate.sh)"
bench/health_gate.sh "$build" --update > /dev/null
