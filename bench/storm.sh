#!/usr/bin/env bash
# The rollout-storm benchmark, printed as a markdown section: a real drover serve on its
# SQLite store (group commit), STORM_DEVICES enrolled devices and a real rollout running;
# bench/storm_load drives every device through its update as the real agent does (check-in,
# offer, downloading, installing, rebooting, a check-in from the new image, succeeded, an
# idle check-in) over STORM_CONNECTIONS keep-alive connections, while wrk sends no-change
# check-ins from IDLE_DEVICES devices the rollout does not touch. In the same run:
#   (a) the raw single-commit rate of SQLite on the same disk (storm_load commits),
#   (b) the same no-change check-ins with nothing else running (idle),
#   (c) nginx serving a static file of a check-in answer's size, with the same wrk.
# Commits and batch sizes come from the server's /metrics before and after the storm.
#   bench/storm.sh [BUILD_DIR]            prints the section
#   bench/storm.sh [BUILD_DIR] --update   also puts it into docs/benchmarks.md
# Where the machine's time went during the storm comes from /proc: the server's CPU time, and
# the machine's idle time (what the load generators and the kernel left over).
# Environment: STORM_DEVICES (10000), STORM_CONNECTIONS (64), STORM_MAX_SECONDS (300),
# IDLE_DEVICES (1000), WRK_SECONDS (5; 3 alongside the storm, which must outlast it),
# WRK_CONNECTIONS (16).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build=${1:-build-bench}
update=${2:-}
devices=${STORM_DEVICES:-10000}
connections=${STORM_CONNECTIONS:-64}
max_seconds=${STORM_MAX_SECONDS:-300}
idle_devices=${IDLE_DEVICES:-1000}
wrk_seconds=${WRK_SECONDS:-5}
during_seconds=${DURING_SECONDS:-3}
wrk_conns=${WRK_CONNECTIONS:-16}
drover=$build/src/app/drover
start_scratch

for tool in wrk nginx curl; do
  command -v "$tool" > /dev/null || { echo "$tool is missing: make bench installs it" >&2; exit 1; }
done
metric() { curl -s "$url/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
# CPU seconds so far: of process $1 (user + system), and of the whole machine idle.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
idle_cpu() { awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" {print ($5 + $6) / hz}' /proc/stat; }
no_change() {  # wrk's no-change check-ins into $1, for $2 seconds
  DROVER_TOKENS="$tmp/idle.lua" wrk -t1 -c"$wrk_conns" -d"${2}s" --latency \
    -s bench/checkin.lua "$url/" > "$1" 2> "$1.err"
  if [[ -s "$1.err" ]]; then echo "no-change check-ins were refused:" >&2; head -3 "$1.err" >&2; exit 1; fi
}

port=$(free_port)
url="http://127.0.0.1:$port"
"$drover" serve --data "$tmp/data" --listen "127.0.0.1:$port" --enrollment-token bench \
  --threads 2 > "$tmp/serve.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
for _ in $(seq 50); do grep -q "listening on" "$tmp/serve.log" && break; sleep 0.1; done

echo "== enrolling $devices storm devices and $idle_devices idle ones" >&2
"$build/bench/net_load" enroll "$url" "$devices" "$tmp/storm.lua" storm bms-controller
"$build/bench/net_load" enroll "$url" "$idle_devices" "$tmp/idle.lua" idle meter
token=$("$drover" token create --data "$tmp/data" --name bench --role admin 2> /dev/null)
head -c 65536 /dev/urandom > "$tmp/firmware.bin"
export DROVER_SERVER="$url" DROVER_TOKEN="$token"
"$drover" artifact upload "$tmp/firmware.bin" --name firmware --version 4.3.0 \
  --device-type bms-controller > /dev/null
printf '{"name": "storm", "artifact": {"name": "firmware", "version": "4.3.0"},
  "stages": [{"name": "all", "percent": 100}]}' > "$tmp/plan.json"

echo "== (a) raw SQLite single commits, (b) idle no-change check-ins" >&2
raw=$("$build/bench/storm_load" commits "$tmp" 5 | python3 -c 'import json,sys; print(json.load(sys.stdin)["commits_per_second"])')
no_change "$tmp/idle.txt" "$wrk_seconds"

rollout=$("$drover" rollout create "$tmp/plan.json" --start --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
commits_before=$(metric drover_store_commits_total)
batches_before=$(metric drover_store_committed_batches_total)
server_cpu_before=$(cpu_of "$server_pid")
idle_before=$(idle_cpu)
echo "== the storm: $devices devices over $connections connections" >&2
"$build/bench/storm_load" storm "$url" "$tmp/storm.lua" "$connections" "$max_seconds" 4.2.0 4.3.0 \
  > "$tmp/storm.json" &
storm=$!
sleep 1
no_change "$tmp/during.txt" "$during_seconds"
storm_ok=yes
wait "$storm" || storm_ok=no
server_cpu_after=$(cpu_of "$server_pid")
idle_after=$(idle_cpu)
commits_after=$(metric drover_store_commits_total)
batches_after=$(metric drover_store_committed_batches_total)
cat "$tmp/storm.json" >&2
if [[ $storm_ok != yes ]]; then echo "the storm did not finish cleanly" >&2; exit 1; fi
state=$("$drover" rollout status "$rollout" --json 2> /dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' || echo unknown)

echo "== (c) nginx" >&2
nport=$(free_port)
start_nginx "$nport"
wrk -t1 -c"$wrk_conns" -d"${wrk_seconds}s" --latency "http://127.0.0.1:$nport/checkin.json" > "$tmp/nginx.txt"

read -r seconds reports_ps checkins_ps report_p50 report_p99 checkin_p50 checkin_p99 <<< "$(python3 -c '
import json,sys; r=json.load(open(sys.argv[1]))
print(r["seconds"], r["reports_per_second"], r["checkins_per_second"], r["report_p50_ms"], r["report_p99_ms"], r["checkin_p50_ms"], r["checkin_p99_ms"])' "$tmp/storm.json")"
commits=$((commits_after - commits_before))
batches=$((batches_after - batches_before))
idle_rps=$(rps "$tmp/idle.txt"); during_rps=$(rps "$tmp/during.txt"); nginx_rps=$(rps "$tmp/nginx.txt")
idle_p99=$(p99 "$tmp/idle.txt"); during_p99=$(p99 "$tmp/during.txt")
calc() { awk "BEGIN {printf \"$1\", $2}"; }
fsyncs_ps=$(calc "%.0f" "$commits / $seconds")
batch_mean=$(calc "%.1f" "$batches / $commits")
report_ratio=$(calc "%.2f" "$reports_ps / $raw")
keep_ratio=$(calc "%.2f" "$during_rps / $idle_rps")
server_cores=$(calc "%.2f" "($server_cpu_after - $server_cpu_before) / $seconds")
idle_cores=$(calc "%.2f" "($idle_after - $idle_before) / $seconds")
others_cores=$(calc "%.2f" "$(nproc) - $server_cores - $idle_cores")
per_fsync=$(calc "%.1f" "$reports_ps / ($commits / $seconds)")
overlap=""
if awk -v s="$seconds" -v w="$during_seconds" 'BEGIN { exit !(s < w + 1) }'; then
  overlap="
The storm ended before wrk's ${during_seconds} s did (it ran from 1 s in): the \"during\" rows
also count check-ins after it; lower DURING_SECONDS or raise STORM_DEVICES."
fi
bound=""
if awk -v r="$raw" -v i="$idle_rps" 'BEGIN { exit !(10 * r > i) }'; then
  bound="
What bounds the storm here is the processor, not the disk: each fsync carries $per_fsync status
reports, and ten times this disk's single-commit rate ($(calc "%.0f" "10 * $raw")/s) is more
than the server answers even no-change check-ins on these cores ($idle_rps/s, the same wrk
alone). The server, the storm's load generator and wrk share the $(nproc) cores, so what the
no-change check-ins keep during a flat-out storm is what the storm leaves of them."
fi
verdict() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN { ok = (dir == ">=") ? v >= t : v <= t; print ok ? "met" : "**not met**" }'; }

section=$(cat <<MD
## The rollout storm (\`bench/storm.sh\`)

\`drover serve --threads 2\` on its SQLite store (group commit, \`synchronous=FULL\`), over
loopback; everything on the same $(nproc) cores. $devices devices enrolled and a rollout of
one stage to all of them (rollout state afterwards: $state); \`bench/storm_load\` drives each
device through its update as the real agent does — a check-in that gets the offer, the
reports downloading, installing, rebooting, a check-in from the new image (a new
inventory, written), succeeded, an idle check-in — over $connections keep-alive connections,
one request at a time each. Meanwhile wrk (1 thread, $wrk_conns connections) sends no-change
check-ins from $idle_devices devices the rollout does not touch. Fsyncs are the group
commit's commits (one WAL fsync each), from \`/metrics\` before and after.

| | figure | target |
|---|---|---|
| storm | $devices devices updated in $(calc "%.1f" "$seconds") s | |
| status reports per second | $(calc "%.0f" "$reports_ps") (p50 $(calc "%.2f" "$report_p50") ms, p99 $(calc "%.2f" "$report_p99") ms) | |
| check-ins per second (storm devices) | $(calc "%.0f" "$checkins_ps") (p50 $(calc "%.2f" "$checkin_p50") ms, p99 $(calc "%.2f" "$checkin_p99") ms) | |
| commits (fsyncs) per second | $fsyncs_ps | |
| mean batches per commit | $batch_mean | |
| status reports per fsync | $per_fsync | |
| cores busy during the storm: server / load generators and kernel / idle | $server_cores / $others_cores / $idle_cores of $(nproc) | |
| (a) raw SQLite single commits per second, same disk | $(calc "%.0f" "$raw") | |
| status reports per second / raw commits per second | ${report_ratio}x | ≥ 10x: $(verdict "$report_ratio" 10 ">=") |
| (b) no-change check-ins per second, idle | $idle_rps (p99 $idle_p99 ms) | |
| no-change check-ins per second during the storm | $during_rps (p99 $during_p99 ms) | |
| during / idle | ${keep_ratio}x | ≥ 0.7x: $(verdict "$keep_ratio" 0.7 ">=") |
| p99 of a no-change check-in during the storm | $during_p99 ms | ≤ 10 ms: $(verdict "$during_p99" 10 "<=") |
| (c) nginx, static file, same wrk | $nginx_rps | |
$bound
$overlap

Measured at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%Y-%m-%dT%H:%MZ).
Reproduce: \`make bench\` (everything), or \`bench/storm.sh $build --update\` (this section).
MD
)
echo "$section"
if [[ $update == --update ]]; then put_section storm "$section"; fi
