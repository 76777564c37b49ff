#!/usr/bin/env bash
# Device health and the fleet view at fleet size (docs/health.md, "Device health and the
# fleet view"): health_bench on HEALTH_DEVICES devices with a week of hourly readings each,
# over HEALTH_RUNS processes; medians and extremes, with the freshness scan of the same run as
# the baseline.
#   bench/health.sh [BUILD_DIR]            prints the section
#   bench/health.sh [BUILD_DIR] --update   also puts it into docs/benchmarks.md
# Environment: HEALTH_RUNS (default 3), HEALTH_DEVICES (default 10000).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build=${1:-build-bench}
update=${2:-}
runs=${HEALTH_RUNS:-3}
devices=${HEALTH_DEVICES:-10000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for i in $(seq "$runs"); do
  "$build/bench/health_bench" --devices "$devices" --dir "$tmp/tsdb-$i" --runs 5 > "$tmp/run-$i.json"
  rm -rf "$tmp/tsdb-$i"
done
row() {  # label field scale decimals
  local values
  values=$(for i in $(seq "$runs"); do
    python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]] * float(sys.argv[3]))" \
      "$tmp/run-$i.json" "$2" "$3"
  done)
  echo "| $1 | $(echo "$values" | median) | $(echo "$values" | sort -g | head -1 | xargs printf "%.${4}f") | $(echo "$values" | sort -g | tail -1 | xargs printf "%.${4}f") |"
}
ratio() {  # field field: the median over the runs of their ratio
  for i in $(seq "$runs"); do
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r[sys.argv[2]] / r[sys.argv[3]])" \
      "$tmp/run-$i.json" "$1" "$2"
  done | median
}

section=$(cat <<MD
## Device health and the fleet view (\`bench/health.sh\`)

\`health_bench --devices $devices\`, $runs processes of 5 runs each (the figure of a process is
its median): $devices devices in drover serve's registry, each with a week of hourly
\`memory_available_bytes\`, \`disk_free_bytes\`, \`battery_level_percent\` and \`reboots_total\`
(847 samples a device with \`temp_c\`; 1% leaking memory; every battery charged once a day (12 hours before the end) and draining
about 0.1 points an hour, so each device's drain is judged against its type's — for one
device, a read of 200 peers' batteries) in a real time-series store, judged by
\`health::HealthView\` as \`GET /api/v1/fleet/health\` and \`GET /api/v1/devices/{id}/health\`
do. Baseline, the same run: the telemetry service's freshness scan of the fleet (what \`GET
/api/v1/telemetry/freshness\` does), which the fleet view also makes. The write-heavy case: a
writer sends every device a batch a round (4 samples), alone and while the fleet view runs.

| | median | least | most |
|---|---|---|---|
$(row "baseline: the freshness scan, ms" freshness_scan_s 1000 1)
$(row "the fleet view, ms" fleet_view_s 1000 1)
$(row "one device's health, ms" device_health_ms 1 3)
$(row "the fleet view while every device sends, ms" fleet_view_under_ingest_s 1000 1)
$(row "ingest alone, samples/s" ingest_alone_samples_per_s 1 0)
$(row "ingest while the fleet view runs, samples/s" ingest_beside_fleet_view_samples_per_s 1 0)
$(row "devices predicted to run out within 30 days (of the 1% leaking)" predicted 1 0)
$(row "with the profile's checks on temp_c: every device judged, ms" fleet_checks_s 1000 1)
$(row "with the checks: one device's health, ms" device_health_checks_ms 1 3)
$(row "with the checks: probes found drifting (of the 100 drifting)" drifting 1 0)
$(row "with the checks: probes found frozen (of the 100 stuck)" frozen 1 0)

The fleet view costs $(ratio fleet_view_s freshness_scan_s)x the freshness scan (median ratio): it reads four
series of a week for every device and fits a line to three. Every device also sends a probe's
\`temp_c\` (its site's daily swing of 4 degrees, its own offset and noise 0.2; 100 devices a
site, one of each site's drifting 0.03 degree an hour from day 4, one stuck for the last 8
hours); with the profile declaring checks on it (a ceiling, \`frozen_after\` 6 hours, drift:
docs/health.md, "Checks a profile declares"), judging every device — a fifth series read, and
each site's 100 probes judged against each other hour by hour — costs
$(ratio fleet_checks_s fleet_view_s)x the fleet view without them, and one device's health reads 64 of its site's
probes. While every device sends, the fleet view (without the checks) takes
$(ratio fleet_view_under_ingest_s fleet_view_s)x as long (the two share the machine's two cores and the store's lock). Ingest
goes on beside it at the rates in the table — samples accepted and made durable over windows
of one length, alone and beside; the ratio of the medians is
$(ratio ingest_beside_fleet_view_samples_per_s ingest_alone_samples_per_s)x (it varies from process to process: see the least and the most).
Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; commit
$(git rev-parse --short HEAD 2>/dev/null || echo unknown).
MD
)
echo "$section"
if [ "$update" = "--update" ]; then put_section health-view "$section"; fi
