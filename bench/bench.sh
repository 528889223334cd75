#!/usr/bin/env bash
# make bench: wrk over HTTPS keep-alive against the demo gateway: a single-device query (a cache
# hit after the first request) beside /healthz (no auth, no lookup) in the same run. The ratio
# says what the query path costs on top of TLS + HTTP. Raw wrk output goes to bench/results/.
#   bench/bench.sh BINARY   (env: DURATION=10s THREADS=2 CONNECTIONS=32)
set -euo pipefail
bin=$1
here=$(cd "$(dirname "$0")/.." && pwd)
dur=${DURATION:-10s}
threads=${THREADS:-2}
conns=${CONNECTIONS:-32}
out=$here/bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$here/conf/demo.json" "$out/bench.json" "$port" "$here" <<'PY'
import json, sys, os
cfg = json.load(open(sys.argv[1]))
here = sys.argv[4]
cfg["listen"]["port"] = int(sys.argv[3])
cfg["listen"]["cert_file"] = os.path.join(here, "certs/server.pem")
cfg["listen"]["key_file"] = os.path.join(here, "certs/server-key.pem")
cfg["adapters"][0]["file"] = os.path.join(here, "conf/demo-inventory.json")
cfg["state_dir"] = "/tmp/mdmgw-bench-state"
cfg["log_level"] = "warn"
json.dump(cfg, open(sys.argv[2], "w"))
PY
chmod 600 "$out/bench.json"
"$bin" run -c "$out/bench.json" >"$out/gateway.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
	curl -sfk "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done

auth="Authorization: Basic $(printf 'demo:mdmgw-demo' | base64)"
query="https://127.0.0.1:$port/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria=macaddress&value=0026B424FEB4&filter=all"
health="https://127.0.0.1:$port/healthz"
curl -sf --cacert "$here/certs/ca.pem" -H "$auth" "$query" >"$out/query-answer.xml"

run() { # name url [header]
	wrk -t"$threads" -c"$conns" -d"$dur" --latency ${3:+-H "$3"} "$2" >"$out/$1.txt"
	awk '/Requests\/sec/ {print $2}' "$out/$1.txt"
}
p99() { awk '$1 == "99%" {print $2}' "$out/$1.txt"; }

q=$(run query "$query" "$auth")
h=$(run healthz "$health")
grep -q 'Non-2xx' "$out/query.txt" && { echo "bench: non-2xx answers in the query run" >&2; exit 1; }
printf 'query    %10s req/s  p99 %s\n' "$q" "$(p99 query)"
printf 'healthz  %10s req/s  p99 %s\n' "$h" "$(p99 healthz)"
echo "raw output: $out"
awk -v q="$q" -v h="$h" 'BEGIN { printf "bench query/healthz %.3f\n", q / h }'
