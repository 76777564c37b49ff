#!/usr/bin/env bash
# Runs every Drover fuzz target for a bounded time on a copy of its seed corpus.
#   fuzz/run.sh BUILD_DIR [TARGET...]
# FUZZ_SECONDS (default 60) is the time per target. Exits non-zero if any target crashes
# (a crash input is left as crash-* in the work directory, which is printed).
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 BUILD_DIR [TARGET...]" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
shift
fuzz_dir=$(cd "$(dirname "$0")" && pwd)
seconds=${FUZZ_SECONDS:-60}
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(fuzz_units fuzz_codec fuzz_scenario fuzz_router fuzz_tokens fuzz_device_api fuzz_http_input fuzz_agent_input fuzz_operator_api
    fuzz_telemetry_batch fuzz_chunk fuzz_statsd fuzz_mmcli fuzz_tuf_metadata fuzz_audit fuzz_factory_identity fuzz_remediation_rules fuzz_device_config)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/drover-fuzz.XXXXXX")
echo "work directory: $work"
failed=()
for t in "${targets[@]}"; do
  bin="$build_dir/fuzz/$t"
  if [[ ! -x "$bin" ]]; then
    echo "$t: $bin not built" >&2
    failed+=("$t")
    continue
  fi
  # The fuzzer adds inputs to its corpus directory: work on a copy, never on the seeds.
  corpus="$work/$t/corpus"
  mkdir -p "$corpus"
  cp "$fuzz_dir/corpus/$t/"* "$corpus/"
  echo "== $t: ${seconds}s"
  rc=0
  (cd "$work/$t" && "$bin" -max_len=65536 -max_total_time="$seconds" -print_final_stats=1 \
     "$corpus" >"$work/$t/log" 2>&1) || rc=$?
  grep -E '^(#[0-9]+ +DONE|Done |stat::number_of_executed_units|stat::average_exec_per_sec|SUMMARY)' \
    "$work/$t/log" || true
  if [[ $rc -ne 0 ]]; then
    echo "$t: FAILED with status $rc (log: $work/$t/log)" >&2
    ls "$work/$t"/crash-* "$work/$t"/leak-* "$work/$t"/timeout-* "$work/$t"/oom-* 2>/dev/null >&2 || true
    failed+=("$t")
  fi
done

if [[ ${#failed[@]} -ne 0 ]]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
echo "all fuzz targets ran clean"
