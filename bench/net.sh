#!/usr/bin/env bash
# Network benchmarks, printed as a markdown section:
#   - device check-ins per second against drover serve on loopback, with wrk (keep-alive,
#     bench/checkin.lua: authenticated check-ins from 1,000 enrolled devices), and in the
#     same run wrk against nginx serving a static JSON file of the same size: the machine's
#     ceiling for "an HTTP answer over loopback";
#   - device logins per second (challenge, Ed25519 signature, token: what a device pays at a
#     check-in when its token has expired), against the check-ins of the same run;
#   - 10,000 idle keep-alive connections held by drover serve, and its RSS;
#   - drover-agent: stripped size, and RSS while idle between check-ins.
#   bench/net.sh [BUILD_DIR]            prints the section
#   bench/net.sh [BUILD_DIR] --update   also puts it into docs/benchmarks.md
# Environment: NET_RUNS (default 3), WRK_SECONDS (10), WRK_CONNECTIONS (64).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build=${1:-build-bench}
update=${2:-}
runs=${NET_RUNS:-3}
seconds=${WRK_SECONDS:-10}
conns=${WRK_CONNECTIONS:-64}
drover=$build/src/app/drover
start_scratch

rss_mib() { awk '/^VmRSS:/ {printf "%.1f\n", $2/1024}' "/proc/$1/status"; }

port=$(free_port)
"$drover" serve --data "$tmp/data" --listen "127.0.0.1:$port" --enrollment-token bench \
  --threads 2 > "$tmp/serve.log" 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 50); do grep -q "listening on" "$tmp/serve.log" && break; sleep 0.1; done
"$build/bench/net_load" enroll "http://127.0.0.1:$port" 1000 "$tmp/tokens.lua"

nport=$(free_port)
start_nginx "$nport"

echo "== wrk: $runs runs of ${seconds}s each, $conns connections, 2 threads" >&2
for i in $(seq "$runs"); do
  DROVER_TOKENS="$tmp/tokens.lua" wrk -t2 -c"$conns" -d"${seconds}s" --latency \
    -s bench/checkin.lua "http://127.0.0.1:$port/" > "$tmp/drover-$i.txt" 2> "$tmp/drover-$i.err"
  wrk -t2 -c"$conns" -d"${seconds}s" --latency "http://127.0.0.1:$nport/checkin.json" \
    > "$tmp/nginx-$i.txt"
done
if [[ -s "$tmp/drover-1.err" ]]; then
  echo "check-ins were refused:" >&2
  head -3 "$tmp/drover-1.err" >&2
  exit 1
fi
drover_rps=$(for i in $(seq "$runs"); do rps "$tmp/drover-$i.txt"; done | median)
nginx_rps=$(for i in $(seq "$runs"); do rps "$tmp/nginx-$i.txt"; done | median)
drover_p99=$(for i in $(seq "$runs"); do p99 "$tmp/drover-$i.txt"; done | median)
nginx_p99=$(for i in $(seq "$runs"); do p99 "$tmp/nginx-$i.txt"; done | median)
ratio=$(awk -v a="$drover_rps" -v b="$nginx_rps" 'BEGIN {printf "%.2f", a/b}')
server_rss_after_load=$(rss_mib "$server")

echo "== logins: $runs runs of ${seconds}s each, 4 connections" >&2
for i in $(seq "$runs"); do
  "$build/bench/net_load" logins "http://127.0.0.1:$port" 200 4 "$seconds" > "$tmp/logins-$i.txt"
done
login_rps=$(for i in $(seq "$runs"); do awk '{print $4}' "$tmp/logins-$i.txt"; done | median)
login_p99=$(for i in $(seq "$runs"); do awk '{print $6}' "$tmp/logins-$i.txt"; done | median)
login_ratio=$(awk -v a="$login_rps" -v b="$drover_rps" 'BEGIN {printf "%.2f", a/b}')

echo "== 10,000 idle keep-alive connections" >&2
rss_before=$(rss_mib "$server")
"$build/bench/net_load" idle 127.0.0.1 "$port" 10000 6 > "$tmp/idle.txt" &
holder=$!
for _ in $(seq 100); do grep -q "^held" "$tmp/idle.txt" && break; sleep 0.1; done
sleep 1
rss_idle=$(rss_mib "$server")
held=$(sed -n 's/^held \([0-9]*\) connections, \([0-9]*\) answered.*/\2/p' "$tmp/idle.txt")
wait "$holder"
per_conn=$(awk -v a="$rss_idle" -v b="$rss_before" 'BEGIN {printf "%.1f", (a-b)*1024*1024/10000/1024}')

echo "== drover-agent" >&2
strip -o "$tmp/drover-agent" "$build/src/app/drover-agent"
agent_size=$(stat -c %s "$tmp/drover-agent" | awk '{printf "%.2f", $1/1024/1024}')
echo "v1" > "$tmp/app.bin"
cat > "$tmp/agent.json" <<JSON
{"server": "http://127.0.0.1:$port", "data_dir": "$tmp/agent",
 "device": {"id": "agent-1", "type": "bms-controller", "hardware_revision": "rev-a"},
 "enrollment_token": "bench", "installed": {"firmware": "4.2.0"},
 "module": {"type": "file", "target": "$tmp/app.bin"}}
JSON
# One sample is noisy (which pages the first check-ins touched): the median of $runs starts.
for i in $(seq "$runs"); do
  "$tmp/drover-agent" --config "$tmp/agent.json" 2> "$tmp/agent.log" &
  agent=$!
  pids+=("$agent")
  sleep 3
  rss_mib "$agent" >> "$tmp/agent-rss.txt"
  grep -q "started as agent-1" "$tmp/agent.log"
  kill "$agent"
  wait "$agent" 2>/dev/null || true
done
agent_rss=$(median < "$tmp/agent-rss.txt")
# The same with telemetry on: every collector on this machine's /proc and /sys each second,
# the StatsD socket, a batch compressed and sent each second — its code and buffers touched.
cat > "$tmp/agent-telemetry.json" <<JSON
{"server": "http://127.0.0.1:$port", "data_dir": "$tmp/agent-t",
 "device": {"id": "agent-2", "type": "bms-controller", "hardware_revision": "rev-a"},
 "enrollment_token": "bench", "installed": {"firmware": "4.2.0"},
 "module": {"type": "file", "target": "$tmp/app.bin"},
 "telemetry": {"interval": "1s", "send_every": "1s", "statsd_socket": "$tmp/statsd.sock"}}
JSON
for i in $(seq "$runs"); do
  "$tmp/drover-agent" --config "$tmp/agent-telemetry.json" 2> "$tmp/agent-t.log" &
  agent=$!
  pids+=("$agent")
  # A program's StatsD lines meanwhile: ten datagrams a second of a counter, a gauge and
  # a timing with tags.
  python3 - "$tmp/statsd.sock" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
end = time.time() + 3.8
while time.time() < end:
    try:
        s.sendto(b"app.requests:1|c|#route:/api\napp.queue:7|g\napp.latency:12.5|ms|#route:/api",
                 sys.argv[1])
    except OSError:
        pass  # the socket is not bound yet
    time.sleep(0.1)
PY
  sleep 4
  rss_mib "$agent" >> "$tmp/agent-t-rss.txt"
  grep -q "started as agent-2, idle, telemetry on" "$tmp/agent-t.log"
  kill "$agent"
  wait "$agent" 2>/dev/null || true
done
agent_t_rss=$(median < "$tmp/agent-t-rss.txt")

verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t) ? "met" : "**not met**" }'; }
verdict_le() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t) ? "met" : "**not met**" }'; }
section=$(cat <<MD
## Over the network (\`bench/net.sh\`)

Loopback, both ends on the same 2 cores (wrk takes its share of them too). \`drover serve
--threads 2\` on its SQLite store; 1,000 devices enrolled and logged in; wrk (keep-alive,
$conns connections, 2 threads, ${seconds} s, median of $runs runs) sends each request as the
next device, with its bearer token and the body a device sends when nothing changed
(\`bench/checkin.lua\`): every request is authenticated, parsed and answered by
\`DeviceService\`. Baseline in the same run: nginx (\`worker_processes 2\`, access log off)
serving a static JSON file of the same size as the answer.

| | requests/s | p99 latency | target |
|---|---|---|---|
| drover serve: authenticated check-ins | **$(printf "%.0f" "$drover_rps")** | $drover_p99 ms | ≥ 25,000/s: $(verdict "$drover_rps" 25000) |
| nginx: static file (baseline) | $(printf "%.0f" "$nginx_rps") | $nginx_p99 ms | |
| ratio | **$ratio×** nginx | | ≥ 0.3×: $(verdict "$ratio" 0.3) |

A device whose token has expired logs in before it checks in: a challenge, an Ed25519
signature (made by the load generator, on the same cores), and the token request, which the
server answers after verifying the signature. \`bench/net_load logins\`: 200 devices, 4
keep-alive connections, ${seconds} s, median of $runs runs.

| | logins/s | p99 latency of a login | vs check-ins |
|---|---|---|---|
| drover serve: device logins | **$(printf "%.0f" "$login_rps")** | $login_p99 ms | $login_ratio× |

| drover serve | RSS |
|---|---|
| after the wrk runs | $server_rss_after_load MiB |
| before opening 10,000 idle keep-alive connections | $rss_before MiB |
| holding them ($held of 10,000 answered, then idle) | **$rss_idle MiB** (≈ $per_conn KiB per connection) |

| drover-agent | measured | target |
|---|---|---|
| stripped binary | $agent_size MiB | |
| RSS, idle between check-ins (median of $runs starts) | **$agent_rss MiB** | ≤ 8 MB: $(verdict_le "$agent_rss" 7.63) |
| RSS with telemetry on (all collectors each second, StatsD lines ten times a second, a batch sent each second; median of $runs starts) | **$agent_t_rss MiB** | ≤ 8 MB: $(verdict_le "$agent_t_rss" 7.63) |

Measured at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%Y-%m-%dT%H:%MZ).
Reproduce: \`make bench\` (everything), or \`bench/net.sh build-bench --update\` (this section).
MD
)
echo "$section"
if [[ "$update" == "--update" ]]; then put_section network "$section"; fi
