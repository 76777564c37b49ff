#!/usr/bin/env bash
# The farm's 90 days on the field twin at full size (issue 14 §4, docs/health.md "The farm's
# 90 days"): 10,000 sensors, with drover serve's remediation rules (store: SQLite) and, as the
# baseline from the same run, without remediation; monthly device loss and wall time, over
# seeds 1..RUNS, medians and extremes.
#   bench/field.sh [BUILD_DIR]            prints the section
#   bench/field.sh [BUILD_DIR] --update   also puts it into docs/benchmarks.md
# Environment: FIELD_RUNS (default 3), FIELD_DEVICES (default 10000).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build=${1:-build-bench}
update=${2:-}
runs=${FIELD_RUNS:-3}
devices=${FIELD_DEVICES:-10000}
drover=$build/src/app/drover
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for i in $(seq "$runs"); do
  "$drover" field --devices "$devices" --seed "$i" --store "sqlite:$tmp/field-$i.db" --json \
    > "$tmp/run-$i.json"
done
# arm field [scale]: one figure of every run, one per line.
figures() {
  for i in $(seq "$runs"); do
    python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]][sys.argv[3]] * float(sys.argv[4]))" \
      "$tmp/run-$i.json" "$1" "$2" "${3:-1}"
  done
}
row() {  # label arm field scale
  local values; values=$(figures "$2" "$3" "$4")
  echo "| $1 | $(echo "$values" | median) | $(echo "$values" | sort -g | head -1 | xargs printf '%.2f') | $(echo "$values" | sort -g | tail -1 | xargs printf '%.2f') |"
}

section=$(cat <<MD
## The farm's 90 days (\`bench/field.sh\`)

\`drover field --devices $devices --store sqlite:PATH --json\`, seeds 1 to $runs: $devices soil
sensors for 90 simulated days with the farm's failure modes (docs/health.md, "The farm's 90
days"), once with \`drover serve\`'s remediation rules (the real \`Remediator\`, command queue,
device service check-ins and a SQLite store; the rules run every 5 simulated minutes) and once
without remediation — the baseline of the same run: the same device models with nobody acting.
A device quiet for 72 hours is lost.

| | median | least | most |
|---|---|---|---|
$(row "lost a month without remediation, %" without_remediation loss_per_month 100)
$(row "lost a month with the rules, %" with_rules loss_per_month 100)
$(row "of which hardware (dead board, link gone), %" with_rules hardware_loss_per_month 100)
$(row "data back after a fault, median minutes" with_rules mend_median_min 1)
$(row "data back after a fault, worst minutes" with_rules mend_worst_min 1)
$(row "commands run on a device with nothing wrong" with_rules healthy_commanded 1)
$(row "wall time with the rules, s" with_rules wall_s 1)
$(row "wall time without remediation (baseline), s" without_remediation wall_s 1)

Measured at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%Y-%m-%dT%H:%MZ), on $(nproc) cores.
Reproduce: \`bench/field.sh build-bench --update\` (this section), or \`make bench\`.
MD
)
echo "$section"

if [[ "$update" == "--update" ]]; then put_section field "$section"; fi
