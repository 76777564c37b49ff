#!/usr/bin/env bash
# Telemetry end to end, printed as a markdown section (figures in docs/benchmarks.md):
#   on the wire: devices sending a truck's 20 metrics at 1 Hz through the agent's HTTP link
#   to a real drover serve (its embedded store in the scratch directory), samples per
#   second accepted and bytes a sample — raw (CBOR + zstd), the profile's one-minute
#   min/max/mean, and the baselines of the same samples as CBOR alone and as JSON;
#   store and forward: a device offline 7 days at 20 metrics every 10 s, its queue on disk,
#   then drained to the server: bytes on disk, time to drain, every sample accepted once.
#   bench/telemetry.sh [BUILD_DIR]            prints the section
#   bench/telemetry.sh [BUILD_DIR] --update   also puts it into docs/benchmarks.md
# Environment: TELEMETRY_DEVICES (4), TELEMETRY_SECONDS (10), TELEMETRY_DAYS (7).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build=${1:-build-bench}
update=${2:-}
devices=${TELEMETRY_DEVICES:-4}
duration=${TELEMETRY_SECONDS:-10}
days=${TELEMETRY_DAYS:-7}
start_scratch
port=$(free_port)
"$build/src/app/drover" serve --data "$tmp/server" --listen "127.0.0.1:$port" \
  --enrollment-token bench > "$tmp/serve.log" 2>&1 &
pids+=("$!")
for _ in $(seq 100); do grep -q "listening on" "$tmp/serve.log" && break; sleep 0.1; done
url="http://127.0.0.1:$port"

echo "== telemetry on the wire: $devices devices for ${duration}s" >&2
"$build/bench/telemetry_bench" wire "$url" "$devices" "$duration" > "$tmp/wire.json"
echo "== store and forward: $days days offline" >&2
"$build/bench/telemetry_bench" offline "$url" "$tmp/queue" "$days" > "$tmp/offline.json"

section=$(python3 - "$tmp/wire.json" "$tmp/offline.json" "$(nproc)" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))
o = json.load(open(sys.argv[2]))
cores = sys.argv[3]
print("### Telemetry end to end (`bench/telemetry.sh`)")
print()
print(f"{w['devices']} devices, each a thread sending a truck's 20 metrics at 1 Hz — per minute "
      "of data one raw batch, then the same minute as the profile's aggregates — through the "
      "agent's own HTTP link (token login, CBOR + zstd, `POST /api/device/v1/telemetry`) to a "
      f"real `drover serve` on the same {cores} cores, for {w['seconds']:.1f} s (key generation "
      f"and enrollment included): **{w['samples_per_second']:,.0f} raw samples a second** "
      "stored, each answer sent only once the batch was fsynced in the store's log "
      f"({w['accepted']:,} samples, every one accepted; {w['failures']} failures). The "
      "load generator's own encoding (and the baselines' below) runs on the same cores.")
print()
print("Bytes of request body per sample measured, the same samples in each row (HTTP "
      "headers, about 200 bytes a request each way, come on top: for the small aggregated "
      "batches that is as much again):")
print()
print("| encoding | bytes a sample | against raw CBOR + zstd |")
print("|---|---|---|")
raw = w["raw_bytes_per_sample"]
for name, key in [("raw, CBOR + zstd (what the agent sends)", "raw_bytes_per_sample"),
                  ("the profile's 1-minute min/max/mean, CBOR + zstd", "aggregated_bytes_per_measured_sample"),
                  ("baseline: raw, CBOR without zstd", "cbor_bytes_per_sample"),
                  ("baseline: raw, plain JSON", "json_bytes_per_sample")]:
    print(f"| {name} | {w[key]:.3f} | {w[key] / raw:.2f}x |")
print()
print(f"Store and forward: a device offline {o['days']} days at 20 metrics every 10 s "
      f"({o['appended']:,} samples, each round appended and fdatasynced to the queue: "
      f"{o['fill_seconds']:.1f} s in all): **{o['queue_bytes'] / 1048576:.1f} MiB on disk** "
      f"({o['queue_bytes_per_sample']:.2f} bytes a sample; the queue's cap, the agent's "
      f"default, is {o['cap_bytes'] / 1048576:.0f} MiB: {o['dropped']} dropped). On reconnect it drained in **{o['drain_seconds']:.1f} s** "
      f"({o['batches']} batches, {o['wire_bytes'] / 1048576:.1f} MiB on the wire). The server "
      f"accepted {o['accepted']:,} samples: every one appended, {o['duplicates']} duplicates, "
      f"{o['refused']} refused, {o['retries']} batches retried, {o['left']} left in the queue.")
PY
)
echo "$section"
if [[ "$update" == "--update" ]]; then put_section telemetry_e2e "$section"; fi
