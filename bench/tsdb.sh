#!/usr/bin/env bash
# The time-series store's benchmarks, printed as a markdown section:
#   bytes a sample on the real series of data/nab-subset (83,380 samples after the 24
#   repeated timestamps are dropped), against, in the same run, VictoriaMetrics (import, force
#   flush and merge, then values.bin + timestamps.bin) and Prometheus (promtool tsdb
#   create-blocks-from openmetrics, then the blocks' chunk files) on the identical samples;
#   ingest: a fleet's batches through TimeSeriesStore::append with the log synced, heads
#   sealed and checkpoints written, in samples per CPU second of the whole process, against
#   the write-ahead log alone (the same records appended and synced, nothing else);
#   reads: every sample decoded back, per CPU second.
#   bench/tsdb.sh [BUILD_DIR]            prints the section
#   bench/tsdb.sh [BUILD_DIR] --update   also puts it into docs/benchmarks.md
# Environment: TSDB_SERIES (10000), TSDB_SAMPLES (600 a series), TSDB_RUNS (3; medians).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
build=${1:-build-bench}
update=${2:-}
series=${TSDB_SERIES:-10000}
per_series=${TSDB_SAMPLES:-600}
runs=${TSDB_RUNS:-3}
start_scratch
for tool in victoria-metrics promtool curl; do
  command -v "$tool" > /dev/null || { echo "$tool is missing: make bench installs it" >&2; exit 1; }
done

echo "== bytes a sample: Drover" >&2
"$build/bench/tsdb_bench" bytes data/nab-subset > "$tmp/ours.json"

echo "== bytes a sample: the same samples as VictoriaMetrics import them and Prometheus's blocks" >&2
python3 - data/nab-subset "$tmp" <<'PY'
import calendar, datetime, glob, json, sys
src, tmp = sys.argv[1], sys.argv[2]
vm = open(f"{tmp}/nab.jsonl", "w")
om = open(f"{tmp}/nab.om", "w")
for path in sorted(glob.glob(f"{src}/*/*.csv")):
    name = path.split("/")[-1][:-4]
    ts, vs, last = [], [], None
    for line in open(path).read().splitlines()[1:]:
        if not line: continue
        t, v = line.split(",")
        s = calendar.timegm(datetime.datetime.strptime(t, "%Y-%m-%d %H:%M:%S").timetuple())
        if last is not None and s <= last: continue  # the store keeps each series in time order
        last = s
        ts.append(s * 1000); vs.append(float(v))
        om.write(f'nab{{series="{name}"}} {v} {s}\n')
    vm.write(json.dumps({"metric": {"__name__": "nab", "series": name}, "values": vs, "timestamps": ts}) + "\n")
om.write("# EOF\n")
PY
port=$(free_port)
victoria-metrics -storageDataPath="$tmp/vm" -httpListenAddr="127.0.0.1:$port" -retentionPeriod=100y \
  > "$tmp/vm.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && break; sleep 0.1; done
curl -sf --data-binary "@$tmp/nab.jsonl" "http://127.0.0.1:$port/api/v1/import"
curl -sf "http://127.0.0.1:$port/internal/force_flush" > /dev/null
curl -sf "http://127.0.0.1:$port/internal/force_merge" > /dev/null
vm_samples=0
for _ in $(seq 100); do  # the merge runs in the background: wait until every sample is there
  vm_samples=$(curl -sf "http://127.0.0.1:$port/api/v1/export" -d 'match[]=nab' -d start=0 |
    python3 -c 'import json,sys; print(sum(len(json.loads(l)["values"]) for l in sys.stdin if l.strip()))')
  [[ "$vm_samples" == 83380 ]] && break
  sleep 0.2
done
curl -sf "http://127.0.0.1:$port/api/v1/export" -d 'match[]=nab' -d start=0 > "$tmp/vm-export.jsonl"
vm_changed=$(python3 - "$tmp" <<'PY'
import json, sys
tmp = sys.argv[1]
sent = {json.loads(l)["metric"]["series"]: json.loads(l) for l in open(f"{tmp}/nab.jsonl")}
changed = 0
for line in open(f"{tmp}/vm-export.jsonl"):
    got = json.loads(line)
    want = sent[got["metric"]["series"]]
    back = dict(zip(got["timestamps"], got["values"]))
    changed += sum(1 for t, v in zip(want["timestamps"], want["values"]) if back.get(t) != v)
print(changed)
PY
)
sleep 2
vm_bytes=$(find "$tmp/vm/data" \( -name values.bin -o -name timestamps.bin \) -printf '%s\n' | awk '{s+=$1} END {print s}')
promtool tsdb create-blocks-from openmetrics --max-block-duration=744h "$tmp/nab.om" "$tmp/prom" > /dev/null
prom_bytes=$(find "$tmp/prom" -path '*/chunks/*' -type f -printf '%s\n' | awk '{s+=$1} END {print s}')

echo "== ingest and reads ($runs runs of $series series x $per_series samples)" >&2
for i in $(seq "$runs"); do
  "$build/bench/tsdb_bench" ingest "$series" "$per_series" > "$tmp/ingest-$i.json"
done
ingest_rate=$(for i in $(seq "$runs"); do field "$tmp/ingest-$i.json" samples_per_cpu_second; done | median)
log_rate=$(for i in $(seq "$runs"); do field "$tmp/ingest-$i.json" log_only_samples_per_cpu_second; done | median)
wall_rate=$(for i in $(seq "$runs"); do field "$tmp/ingest-$i.json" samples_per_wall_second; done | median)
read_rate=$(for i in $(seq "$runs"); do field "$tmp/ingest-$i.json" read_samples_per_cpu_second; done | median)

section=$(python3 - "$tmp" "$vm_samples" "$vm_bytes" "$prom_bytes" "$ingest_rate" "$log_rate" "$wall_rate" "$read_rate" "$series" "$per_series" "$runs" "$vm_changed" <<'PY'
import json, sys
tmp, vm_samples, vm_bytes, prom_bytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ingest, log_only, wall, read = (float(x) for x in sys.argv[5:9])
series, per_series, runs = sys.argv[9:12]
vm_changed = int(sys.argv[12])
ours = json.load(open(f"{tmp}/ours.json"))
n = ours["samples"]
mine = ours["bytes_per_sample"]
vm = vm_bytes / n
prom = prom_bytes / n
print("### Telemetry store (`bench/tsdb.sh`)")
print()
print(f"Bytes a sample on the {n:,} samples of the {ours['series']} real series in `data/nab-subset/`,")
print("all three stores given the identical samples in the same run (VictoriaMetrics counted "
      f"{vm_samples:,} of them after its merge):")
print()
print("| store | what is counted | bytes | bytes a sample | Drover's ratio to it |")
print("|---|---|---|---|---|")
print(f"| Drover | raw chunk files (`chunks/raw-*.chunks`) | {ours['raw_chunk_bytes']:,} | {mine:.3f} | — |")
print(f"| Drover | the same plus their indexes | {ours['raw_chunk_bytes'] + ours['raw_index_bytes']:,} | {ours['bytes_per_sample_with_index']:.3f} | — |")
print(f"| VictoriaMetrics | `values.bin` + `timestamps.bin` after force merge | {vm_bytes:,} | {vm:.3f} | {mine / vm:.2f}x |")
print(f"| Prometheus | blocks' `chunks/` (promtool, 31-day blocks) | {prom_bytes:,} | {prom:.3f} | {mine / prom:.2f}x |")
print()
print(f"Target: at most VictoriaMetrics (stretch 0.8x): **{mine / vm:.2f}x**. Drover's chunks are "
      "lossless (every value comes back bit for bit: `ChunkCodec.EveryRealSeriesComesBackBitForBitInFewBytes`); "
      f"VictoriaMetrics gave back {vm_changed:,} of the {n:,} values changed (it keeps about 12 "
      "significant digits: 51.846000000000004 comes back as 51.846), which makes its figure smaller. "
      "Prometheus's 31-day blocks are kinder to it than its default 2-hour ones (about 6.6 bytes a sample).")
print()
print(f"Ingest ({series} series in devices of 20 metrics, {per_series} samples each, batches of "
      f"30 samples a series; median of {runs} runs): **{ingest:,.0f} samples per CPU second** "
      f"(whole process: appends, log writes and syncs, sealing, checkpoints; target 2,000,000), "
      f"{wall:,.0f} per wall second. Baseline, same run: the write-ahead log alone (the same "
      f"records appended to a file and synced) {log_only:,.0f} per CPU second, so the store "
      f"costs {log_only / ingest:.2f}x the log's CPU. Reads: every sample decoded back at "
      f"**{read:,.0f} samples per CPU second**.")
PY
)
echo "$section"
if [[ "$update" == "--update" ]]; then put_section tsdb "$section"; fi
