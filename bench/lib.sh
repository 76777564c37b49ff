# Shared by the benchmark scripts (sourced, from the repository's root).

# The median of the numbers on standard input, one per line.
median() { sort -g | awk '{a[NR]=$1} END {m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.2f\n", m}'; }

# A top-level field of a JSON file (a simulation report).
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

# Puts SECTION into FILE (default docs/benchmarks.md) between <!-- NAME:begin --> and
# <!-- NAME:end -->, replacing what was there (or appending both markers when they are missing).
#   put_section NAME SECTION [FILE]
put_section() {
  python3 - "${3:-docs/benchmarks.md}" "$1" "$2" <<'PY'
import sys
path, name, section = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
block = begin + "\n" + section.strip() + "\n" + end
if begin in text:
    text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
else:
    text = text.rstrip() + "\n\n" + block + "\n"
open(path, "w").write(text)
PY
}

# For the network benchmarks: a scratch directory and the processes to stop on exit
# (append to pids), a free loopback port, wrk's figures, and nginx on a static check-in
# answer (the machine's ceiling for "an HTTP answer over loopback").
start_scratch() {
  tmp=$(mktemp -d)
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
  ulimit -n 20000
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wrk --latency output: requests per second, and the 99th percentile in ms.
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
p99() { awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' "$1"; }
# Starts nginx on port $1 serving $tmp/www/checkin.json (a no-offer answer).
start_nginx() {
  mkdir -p "$tmp/www" "$tmp/nginx-logs"
  printf '{"offer":null,"commands":[],"next_checkin_s":1800}' > "$tmp/www/checkin.json"
  cat > "$tmp/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx-logs/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path $tmp/nginx-logs;
  server {
    listen 127.0.0.1:$1;
    location / { root $tmp/www; default_type application/json; }
  }
}
CONF
  nginx -c "$tmp/nginx.conf" -p "$tmp" &
  pids+=("$!")
  sleep 0.5
}
