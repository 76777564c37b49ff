#!/usr/bin/env bash
# The twin over the network, printed as a markdown section: the 240-device scenario of the
# end-to-end test (tests/sim/data/network.json) run in process (the baseline: the twin's
# devices call DeviceService directly) and with --network (real agents, HTTP over loopback,
# the real server stack), median wall time and check-ins per wall second of each, and
# whether the two outcomes agree.
#   bench/sim_network.sh [BUILD_DIR]            prints the section
#   bench/sim_network.sh [BUILD_DIR] --update   also puts it into docs/benchmarks.md
# Environment: SIM_NET_RUNS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build=${1:-build-bench}
update=${2:-}
runs=${SIM_NET_RUNS:-3}
drover=$build/src/app/drover
scenario=tests/sim/data/network.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

outcome() {
  python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))
keys=('rollout_state','devices_eligible','devices_updated','devices_failed','devices_fell_back','devices_cancelled','devices_unreachable','devices_bricked')
print(json.dumps([r[k] for k in keys] + [[h['hardware_revision'], h['reason']] for h in r['halted_strata']]))" "$1"
}

for i in $(seq "$runs"); do
  "$drover" sim "$scenario" --quiet --report-json "$tmp/twin-$i.json" > /dev/null
  /usr/bin/time -f "%M" -o "$tmp/net-rss-$i" \
    "$drover" sim "$scenario" --quiet --network --report-json "$tmp/net-$i.json" > /dev/null
done
twin_wall=$(for i in $(seq "$runs"); do field "$tmp/twin-$i.json" wall_seconds; done | median)
net_wall=$(for i in $(seq "$runs"); do field "$tmp/net-$i.json" wall_seconds; done | median)
twin_cps=$(for i in $(seq "$runs"); do field "$tmp/twin-$i.json" checkins_per_wall_second; done | median)
net_cps=$(for i in $(seq "$runs"); do field "$tmp/net-$i.json" checkins_per_wall_second; done | median)
net_rss=$(for i in $(seq "$runs"); do awk '{print $1/1024}' "$tmp/net-rss-$i"; done | median)
net_checkins=$(field "$tmp/net-1.json" checkins)
net_reports=$(field "$tmp/net-1.json" status_reports)
agree=$(for i in $(seq "$runs"); do outcome "$tmp/twin-$i.json"; outcome "$tmp/net-$i.json"; done | sort -u | wc -l)
outcome_text=$(python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))
print(f\"{r['devices_updated']} updated, {r['devices_fell_back']} fell back, {r['devices_failed']} failed, {r['devices_cancelled']} not offered, {r['devices_bricked']} bricked; halted: \" + ', '.join(h['hardware_revision'] for h in r['halted_strata']))" "$tmp/net-1.json")

section=$(cat <<MD
## The twin over the network (\`bench/sim_network.sh\`)

\`drover sim tests/sim/data/network.json\` (240 devices, 3 hardware revisions, ethernet,
LTE and satellite links, the build does not boot on rev-c), $runs runs each, median. Baseline
in the same run: the in-process twin, whose devices call \`DeviceService\` directly. With
\`--network\` every device is a real agent (own Ed25519 key and state directory on
\`/dev/shm\`, HTTP over loopback to the real server stack in the same process); a poll longer
than the 15-minute token lifetime logs in again (challenge, Ed25519 signature, token), and a
device sleeping more than a minute drops its connection, so most check-ins are a TCP
connect, two login requests and the check-in.

| | wall time | check-ins per wall second | |
|---|---|---|---|
| in-process twin (baseline) | ${twin_wall} s | ${twin_cps} | |
| \`--network\`: real agents over HTTP | ${net_wall} s | ${net_cps} | peak RSS ${net_rss} MiB |

- the network run made $net_checkins check-ins and $net_reports status reports over HTTP;
- outcome: $outcome_text;
- twin and network outcomes identical in every run: $([ "$agree" = 1 ] && echo yes || echo NO).

Measured at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%Y-%m-%dT%H:%MZ).
Reproduce: \`bench/sim_network.sh build-bench --update\` (this section), or \`make bench\`.
MD
)
echo "$section"

if [[ "$update" == "--update" ]]; then put_section sim-network "$section"; fi
