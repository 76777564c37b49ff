#!/usr/bin/env bash
# make agent-arm64, checked: the agent cross-built for 64-bit ARM runs under qemu-user
# against a real drover serve on this machine, enrolls with its own key, checks in and
# carries an update through download, signature and hash checks, install and health check,
# so the arm64 build's crypto, compression and HTTP are exercised, not only its start.
# Usage: arm_agent_test.sh SOURCE_DIR BUILD_DIR ARM64_AGENT
set -euo pipefail
src=$1
build=$2
agent=$3
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -x $agent ]] || fail "no arm64 agent at $agent: make agent-arm64 builds it (make test does)"
command -v qemu-aarch64 > /dev/null || fail "qemu-aarch64 missing: scripts/install-deps.sh --arm64"
readelf -h "$agent" | grep -q 'Machine:.*AArch64' || fail "$agent is not an arm64 program"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
drover=$build/src/app/drover

qemu-aarch64 "$agent" --version | grep -q '^drover-agent ' || fail "drover-agent --version under qemu"

# The server on a port of the system's choosing, read from its first line.
export DROVER_TOKEN
DROVER_TOKEN=$("$drover" token create --data "$work/server" --name test --init 2> /dev/null)
"$drover" serve --data "$work/server" --listen 127.0.0.1:0 --enrollment-token arm-token \
  --poll-interval 2s --busy-poll-interval 1s --tick-interval 1s > "$work/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  port=$(sed -n 's|^drover serve: listening on http://127.0.0.1:\([0-9]*\),.*|\1|p' "$work/serve.log")
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n ${port:-} ]] || { cat "$work/serve.log"; fail "the server did not start"; }
export DROVER_SERVER=http://127.0.0.1:$port
echo '{"name": "lab", "time_zone": "UTC",
 "maintenance_windows": [{"days": "daily", "start": "00:00", "length": "24h"}]}' > "$work/site.json"
"$drover" site put "$work/site.json" > /dev/null

mkdir -p "$work/board"
cat > "$work/agent.json" << JSON
{
  "server": "$DROVER_SERVER",
  "data_dir": "$work/board",
  "device": {"id": "arm-board-1", "type": "gateway", "hardware_revision": "rpi4", "site": "lab"},
  "enrollment_token": "arm-token",
  "component": "firmware",
  "installed": {"firmware": "1.0.0"},
  "poll": {"default": "2s", "backoff_initial": "1s", "backoff_max": "5s"},
  "commit_timeout": "1m",
  "health_checks": [{"command": ["test", "-s", "$work/board/firmware.bin"], "timeout": "10s"}],
  "module": {"type": "file", "target": "$work/board/firmware.bin", "restart": ["true"]}
}
JSON
qemu-aarch64 "$agent" --config "$work/agent.json" > "$work/agent.log" 2>&1 &
pids+=($!)

# One check-in: the device is enrolled and seen, with the inventory it reported.
seen=""
for _ in $(seq 120); do
  if "$drover" --json device show arm-board-1 > "$work/device.json" 2> /dev/null &&
     grep -q '"last_seen": *[1-9]' "$work/device.json"; then
    seen=yes
    break
  fi
  sleep 0.5
done
[[ -n $seen ]] || { cat "$work/agent.log"; fail "the arm64 agent never checked in"; }
grep -q '"enrolled_by": *"pre-shared token"' "$work/device.json" ||
  fail "not enrolled: $(cat "$work/device.json")"
grep -q '"firmware": *"1.0.0"' "$work/device.json" || fail "no inventory: $(cat "$work/device.json")"

# An update: downloaded, verified and installed by the arm64 build.
head -c 300000 /dev/urandom > "$work/firmware-2.0.0.bin"
"$drover" artifact upload "$work/firmware-2.0.0.bin" --name firmware --version 2.0.0 \
  --device-type gateway > /dev/null
cat > "$work/plan.json" << 'JSON'
{"name": "arm", "artifact": {"name": "firmware", "version": "2.0.0"},
 "filter": {"device_types": ["gateway"]}, "stages": [{"name": "all", "percent": 100}],
 "gate": {"max_failure_rate": 0, "min_sample": 1}, "on_failure": "pause"}
JSON
"$drover" rollout create "$work/plan.json" --start > /dev/null
timeout 120 "$drover" rollout status rollout-0001 --watch --interval 1 > "$work/watch.log" ||
  { cat "$work/watch.log" "$work/agent.log"; fail "the rollout to the arm64 agent did not complete"; }
cmp -s "$work/firmware-2.0.0.bin" "$work/board/firmware.bin" ||
  fail "the installed file is not the artifact"
"$drover" --json device show arm-board-1 | grep -q '"firmware": *"2.0.0"' ||
  fail "the device does not report firmware 2.0.0"
echo "arm_agent_test: the arm64 agent checked in under qemu and installed firmware 2.0.0"
