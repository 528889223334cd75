#!/usr/bin/env bash
# make bench-fanout: the gateway in front of a slow vendor (the SCCM AdminService simulator,
# tests/sim/sccm_sim.py, with its latency fault), driven by wrk for cache hits and by
# bench/burst (libcurl multi, one fresh HTTPS connection per request) for bursts of misses:
#   A  hit p99 under slow misses: wrk on one cached MAC alone, then again while COLD_A other
#      MACs wait for a vendor answering in 1000 ms. Prints "hit p99 ratio <loaded/baseline>".
#   B  dogpile: DOGPILE concurrent queries for one cold MAC. Prints "dogpile vendor calls <n>"
#      (the simulator's SMS_R_System count; one lookup asks it once) and how many got 200.
#   C  cold burst: COLD_C distinct cold MACs at once, vendor latency 50 ms. Prints
#      "cold 1000 ms <total> (ideal <ideal>)" with the formulas, then the same URLs again (now
#      cache hits) as the floor that TLS and HTTP alone set on this machine.
# Every run checks that the answers were real (the device in <deviceList>, statuses 200) and the
# script exits non-zero when a check fails. Raw output in bench/results/<UTC timestamp>/.
# Usage: bench/bench-fanout.sh GATEWAY_BIN BURST_BIN
# Env: DURATION (wrk, 10s), A_RUNS (wrk runs per side of run A, 2), THREADS (wrk threads, 2), CONNECTIONS (wrk connections, 32),
#      MAX_CONNECTIONS (the adapter's max_connections, 64), COLD_A (500), DOGPILE (1000),
#      COLD_C (1000), SLOW_MS (1000, runs A and B), FAST_MS (50, run C).
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 GATEWAY_BIN BURST_BIN" >&2
	exit 2
fi
gw_bin=$(realpath "$1")
burst_bin=$(realpath "$2")
here=$(cd "$(dirname "$0")/.." && pwd)
dur=${DURATION:-10s}
threads=${THREADS:-2}
conns=${CONNECTIONS:-32}
maxconn=${MAX_CONNECTIONS:-64}
cold_a=${COLD_A:-500}
a_runs=${A_RUNS:-2} # wrk runs on each side of run A
dogpile=${DOGPILE:-1000}
cold_c=${COLD_C:-1000}
slow_ms=${SLOW_MS:-1000}
fast_ms=${FAST_MS:-50}
out=$here/bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"

die() {
	echo "bench-fanout: $*" >&2
	exit 1
}
say() { echo "bench-fanout: $*" >&2; }

for t in wrk curl python3 openssl; do
	command -v "$t" >/dev/null || die "$t is not installed (make deps)"
done
[ -x "$gw_bin" ] || die "$gw_bin: not an executable"
[ -x "$burst_bin" ] || die "$burst_bin: not an executable"
[ -f "$here/certs/server.pem" ] || die "no certs/server.pem (make certs)"
for v in "$cold_a" "$dogpile" "$cold_c" "$maxconn" "$slow_ms" "$fast_ms"; do
	[[ $v =~ ^[1-9][0-9]*$ ]] || die "COLD_A, DOGPILE, COLD_C, MAX_CONNECTIONS, SLOW_MS, FAST_MS: positive integers"
done
# The gateway's listen.max_connections_per_ip (1024 by default) bounds one burst.
((dogpile <= 1000 && cold_c <= 1000 && cold_a + conns <= 1000)) ||
	die "DOGPILE and COLD_C at most 1000, COLD_A + CONNECTIONS at most 1000 (one client address)"

# --- processes: every one started here is stopped by its pid at exit ------------------------------
pids=()
state=$(mktemp -d /tmp/mdmgw-bench-fanout.XXXXXX)
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# --- the simulator's data set: generated devices, plus the fixed ones of tests/sim ----------------
# Device i (1..ndev) has MAC 02:00:00:xx:xx:xx = i (locally administered), ResourceId 16800000 + i,
# one baseline in state 1 (compliant) and a client summary checked in now. MACs are handed out in
# order: 1 is run A's warm MAC, then run A's cold ones, run B's, run C's.
warm_i=1
a_first=2
b_i=$((a_first + cold_a))
c_first=$((b_i + 1))
ndev=$((c_first + cold_c - 1 + 100))
((ndev >= 1000)) || ndev=1000
python3 - "$here/tests/sim/sccm_data.json" "$out/sim-data.json" "$ndev" <<'PY'
import json, sys, time
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = json.load(open(src))
classes = [k for k in data if not k.startswith("_")]
now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
for i in range(1, n + 1):
    rid = 16800000 + i
    mac = "02:00:00:%02X:%02X:%02X" % (i >> 16, (i >> 8) & 255, i & 255)
    data["SMS_R_System"].append({
        "@odata.etag": 'W/"%d"' % rid, "ResourceId": rid, "Name": "BENCH-%06d" % i,
        "MACAddresses": [mac], "Client": 1, "Active": 1, "Obsolete": 0, "Decommissioned": 0,
        "SMSUniqueIdentifier": "GUID:B3C0F000-0000-4000-8000-%012X" % i, "ResourceType": 5,
        "IPAddresses": ["10.%d.%d.%d" % (100 + (i >> 16), (i >> 8) & 255, i & 255)],
        "__LAZYPROPERTIES": []})
    data["SMS_G_System_CI_ComplianceState"].append({
        "@odata.etag": 'W/"bc%d"' % i, "ResourceID": rid,
        "CI_UniqueID": "ScopeId_1A2B3C4D-0000-0000-0000-000000000001/"
                       "Baseline_0e1f2a3b-0000-0000-0000-000000000001/2",
        "ComplianceState": 1, "LocalizedDisplayName": "Compliance", "CI_ID": 16777301})
    data["SMS_G_System_CH_ClientSummary"].append({
        "@odata.etag": 'W/"bs%d"' % i, "ResourceID": rid, "LastPolicyRequest": now,
        "ClientActiveStatus": 1})
data["_doc"] = ("Generated by bench/bench-fanout.sh from tests/sim/sccm_data.json (its devices kept"
                " as they are) plus %d devices BENCH-000001.. with MACs 02:00:00:00:00:01.., "
                "ResourceIds 16800001.., one compliant baseline and a client summary each." % n)
with open(dst, "w") as f:
    json.dump(data, f)
print("bench-fanout: data set: %s" % ", ".join(
    "%s %d rows" % (c, len(data[c])) for c in classes), file=sys.stderr)
PY

mac_of() { printf '020000%06X' "$1"; }
qurl() { # i: the single-device query for device i
	printf 'https://127.0.0.1:%s/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria=macaddress&value=%s&filter=all' \
		"$port" "$(mac_of "$1")"
}
urls() { # first count [repeat]: device first..first+count-1, or device first count times
	local i
	if [ "${3:-}" = repeat ]; then
		for ((i = 0; i < $2; i++)); do qurl "$1" && echo; done
	else
		for ((i = $1; i < $1 + $2; i++)); do qurl "$i" && echo; done
	fi
}

# --- the simulator ----------------------------------------------------------------------------------
bash "$here/tests/sim/make_certs.sh" "$out/simcerts" >"$out/simcerts.log" 2>&1 ||
	{ cat "$out/simcerts.log" >&2; die "tests/sim/make_certs.sh failed"; }
MDMGW_BENCH_SCCM_PW=$(head -c 18 /dev/urandom | base64) # 24 characters
export MDMGW_BENCH_SCCM_PW
python3 "$here/tests/sim/sccm_sim.py" --port 0 --cert "$out/simcerts/server.pem" \
	--key "$out/simcerts/server-key.pem" --data "$out/sim-data.json" --user 'CORP\svc' \
	--password "$MDMGW_BENCH_SCCM_PW" --auth basic >"$out/sim.out" 2>"$out/sim.log" &
sim_pid=$!
pids+=("$sim_pid")
sim_port=
for ((i = 0; i < 100; i++)); do
	kill -0 "$sim_pid" 2>/dev/null || { cat "$out/sim.log" >&2; die "the simulator exited"; }
	sim_port=$(awk '$1 == "READY" { print $2; exit }' "$out/sim.out")
	[ -n "$sim_port" ] && break
	sleep 0.1
done
[ -n "$sim_port" ] || die "the simulator did not say READY in 10 s (log: $out/sim.log)"
sim="https://127.0.0.1:$sim_port"
simctl() { # route (fault?name=..&value=.., reset): POST to the control API
	curl -sf --cacert "$out/simcerts/ca.pem" -d '' -o /dev/null "$sim/_sim/$1" ||
		die "simulator control $1 failed"
}
sim_counts() { # file
	curl -sf --cacert "$out/simcerts/ca.pem" -o "$1" "$sim/_sim/counts" ||
		die "simulator counts failed"
}
route_count() { # file route
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["counts"]["by_route"].get(sys.argv[2], 0))' "$1" "$2"
}
# The simulator answers with our credentials before the gateway is asked to.
curl -sf --cacert "$out/simcerts/ca.pem" -u "CORP\\svc:$MDMGW_BENCH_SCCM_PW" -o "$out/sim-check.json" \
	"$sim/AdminService/wmi/SMS_R_System?\$filter=MACAddresses/any(m:%20m%20eq%20'02:00:00:00:00:01')" ||
	die "the simulator refused a query with the bench credentials"
grep -q '"ResourceId": 16800001' "$out/sim-check.json" || die "the simulator does not know device 1"

# --- the gateway ------------------------------------------------------------------------------------
python3 - "$here" "$out/fanout.json" "$port" "$sim_port" "$out/simcerts/ca.pem" "$maxconn" \
	"$state" <<'PY'
import json, os, sys
here, dst, port, sim_port, ca, maxconn, state = sys.argv[1:]
cfg = json.load(open(os.path.join(here, "conf/demo.json")))
cfg["listen"].update(port=int(port), threads=2,
                     cert_file=os.path.join(here, "certs/server.pem"),
                     key_file=os.path.join(here, "certs/server-key.pem"))
cfg["api"]["lookup_timeout"] = "60s"
# The SCCM adapter alone (no demo inventory): every lookup is one vendor lookup to count.
cfg["adapters"] = [{
    "name": "sccm", "type": "sccm", "url": "https://127.0.0.1:%s/AdminService" % sim_port,
    "ca_file": ca, "auth": "basic", "user": "CORP\\svc",
    "password": {"env": "MDMGW_BENCH_SCCM_PW"}, "max_connections": int(maxconn),
    "breaker_failures": 0}]
cfg["state_dir"] = os.path.join(state, "state")
cfg["log_level"] = "warn"
with open(dst, "w") as f:
    json.dump(cfg, f, indent=2)
PY
chmod 600 "$out/fanout.json"
"$gw_bin" check-config -c "$out/fanout.json" >"$out/check-config.log" 2>&1 || {
	cat "$out/check-config.log" >&2
	die "config refused (see $out/check-config.log; an \"sccm\" adapter needs a gateway built with the SCCM adapter)"
}
"$gw_bin" run -c "$out/fanout.json" >"$out/gateway.log" 2>&1 &
gw_pid=$!
pids+=("$gw_pid")
for ((i = 0; i < 100; i++)); do
	kill -0 "$gw_pid" 2>/dev/null || { cat "$out/gateway.log" >&2; die "the gateway exited"; }
	curl -sf --cacert "$here/certs/ca.pem" "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
((i < 100)) || die "no /healthz on port $port after 10 s (log: $out/gateway.log)"

auth="Authorization: Basic $(printf 'demo:mdmgw-demo' | base64)"
admin="Authorization: Basic $(printf 'demo-admin:mdmgw-admin' | base64)"
metric() { # name: sum of every series of that metric, read now
	curl -sf --cacert "$here/certs/ca.pem" -H "$admin" "https://127.0.0.1:$port/metrics" |
		awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { print s + 0 }'
}
query() { # i file: the single-device query for device i, body to file; prints the seconds taken
	curl -s --cacert "$here/certs/ca.pem" -H "$auth" -o "$2" -w '%{http_code} %{time_total}\n' \
		--max-time 120 "$(qurl "$1")"
}
check_answer() { # file i: the answer lists device i, registered
	python3 - "$1" "$(mac_of "$2")" <<'PY' || die "answer $1 does not list device $2 as registered"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
devs = root.findall("./deviceList/device")
ok = [d for d in devs if d.findtext("macaddress") == sys.argv[2]
      and d.findtext("attributes/register_status") == "true"]
sys.exit(0 if ok else 1)
PY
}
burst() { # name urlfile concurrency: burst's summary to name.txt; dies if it fails
	"$burst_bin" --cacert "$here/certs/ca.pem" --user demo:mdmgw-demo --concurrency "$3" \
		--timeout-ms 120000 "$2" >"$out/$1.txt" 2>"$out/$1.err" ||
		{ cat "$out/$1.err" >&2; die "($1) burst failed"; }
}
field() { awk -v k="$2" '$1 == k { print $2; exit }' "$out/$1.txt"; }	  # name key
ok200() { awk '$1 == "status" && $2 == 200 { print $3; f = 1 } END { if (!f) print 0 }' "$out/$1.txt"; }
check_200() { # name total: at least 99% of them 200
	local n
	n=$(ok200 "$1")
	((n * 100 >= $2 * 99)) ||
		die "($1) only $n of $2 answers were 200: $(grep -E '^(status|error) ' "$out/$1.txt" | tr '\n' ' ')"
}
p99_ms() { # wrk output file: its 99% latency in ms
	awk '$1 == "99%" { v = $2; u = v; sub(/^[0-9.]+/, "", u); x = v + 0
		m = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
		if (m < 0) exit 1; printf "%.3f\n", x * m; found = 1 }
		END { if (!found) exit 1 }' "$1" || die "no 99% latency in $1"
}
wrk_run() { # name i: wrk on device i's query
	wrk -t"$threads" -c"$conns" -d"$dur" --latency -H "$auth" "$(qurl "$2")" >"$out/$1.txt" 2>&1 ||
		die "($1) wrk failed: $out/$1.txt"
	grep -q '^Requests/sec:' "$out/$1.txt" || die "($1) no result from wrk: $out/$1.txt"
	! grep -q 'Non-2xx' "$out/$1.txt" || die "($1) non-2xx answers: $(grep 'Non-2xx' "$out/$1.txt")"
}
hz=$(getconf CLK_TCK)
cpu_ms() { awk -v hz="$hz" '{ sub(/^.*\) /, ""); printf "%d\n", ($12 + $13) * 1000 / hz }' "/proc/$1/stat"; }

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "host: $(uname -srm), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "wrk: -t$threads -c$conns -d$dur --latency"
	echo "gateway: $gw_bin, listen.threads 2, adapter sccm max_connections $maxconn, lookup_timeout 60s"
	echo "simulator: tests/sim/sccm_sim.py on 127.0.0.1:$sim_port, $ndev generated devices"
	echo "runs: A cold $cold_a at ${slow_ms} ms, B dogpile $dogpile at ${slow_ms} ms, C cold $cold_c at ${fast_ms} ms"
	echo "libmicrohttpd: $(pkg-config --modversion libmicrohttpd 2>/dev/null || echo '?')," \
		"libcurl: $(pkg-config --modversion libcurl 2>/dev/null || echo '?'), $(python3 --version)"
	echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/env.txt"

# --- run A: hit p99 while slow misses are pending ---------------------------------------------------
simctl "fault?name=latency&value=$slow_ms"
read -r code secs < <(query "$warm_i" "$out/a-warm.xml")
[ "$code" = 200 ] || die "(A) the warm query answered $code (log: $out/gateway.log)"
check_answer "$out/a-warm.xml" "$warm_i"
say "(A) warm query: $code in $secs s (vendor latency $slow_ms ms)"
lookups0=$(metric mdmgw_adapter_lookups_total)
read -r code secs2 < <(query "$warm_i" "$out/a-hit.xml")
if [ "$code" != 200 ] || ! cmp -s "$out/a-warm.xml" "$out/a-hit.xml"; then
	die "(A) the second query of the warm MAC answered $code, or other bytes"
fi
[ "$(metric mdmgw_adapter_lookups_total)" = "$lookups0" ] ||
	die "(A) the second query of the warm MAC asked the vendor: not a cache hit"
echo "warm query $secs s, then hit $secs2 s" >"$out/a-warm.txt"

# p99 at saturation on a small machine moves by 10-20 % from one wrk run to the next: each
# side is the mean of $a_runs runs.
mean() { awk '{ s += $1; n++ } END { printf "%.3f\n", n ? s / n : 0 }'; }
for ((r = 1; r <= a_runs; r++)); do
	wrk_run "a-baseline-$r" "$warm_i"
	p99_ms "$out/a-baseline-$r.txt"
done >"$out/a-baseline-p99.txt"
base=$(mean <"$out/a-baseline-p99.txt")
say "(A) baseline hit p99 $base ms (mean of: $(echo $(cat "$out/a-baseline-p99.txt")))"

urls "$a_first" "$cold_a" >"$out/a-urls.txt"
req0=$(metric mdmgw_requests_total)
"$burst_bin" --cacert "$here/certs/ca.pem" --user demo:mdmgw-demo --concurrency "$cold_a" \
	--timeout-ms 120000 "$out/a-urls.txt" >"$out/a-burst.txt" 2>"$out/a-burst.err" &
a_burst=$!
pids+=("$a_burst")
# Loaded means: every one of the cold queries has reached the gateway and waits for the vendor.
for ((i = 0; i < 300; i++)); do
	kill -0 "$a_burst" 2>/dev/null || die "(A) burst ended before its queries were pending"
	(($(metric mdmgw_requests_total) - req0 >= cold_a)) && break
	sleep 0.1
done
((i < 300)) || die "(A) the $cold_a cold queries did not all reach the gateway in 30 s"
say "(A) $cold_a cold queries pending; loaded run"
misses0=$(metric mdmgw_lookup_misses_total)
a_sim0=$(cpu_ms "$sim_pid")
for ((r = 1; r <= a_runs; r++)); do
	wrk_run "a-loaded-$r" "$warm_i"
	p99_ms "$out/a-loaded-$r.txt"
done >"$out/a-loaded-p99.txt"
a_sim1=$(cpu_ms "$sim_pid")
loaded=$(mean <"$out/a-loaded-p99.txt")
kill -0 "$a_burst" 2>/dev/null ||
	die "(A) the cold queries were answered before the loaded run ended: not a run under load (shorter DURATION, or higher SLOW_MS)"
[ "$(metric mdmgw_lookup_misses_total)" = "$misses0" ] ||
	say "(A) warning: lookups missed the cache during the loaded run (wrk's MAC should only hit)"
say "(A) loaded hit p99 $loaded ms (mean of: $(echo $(cat "$out/a-loaded-p99.txt"))); waiting for the cold queries"
wait "$a_burst" || { cat "$out/a-burst.err" >&2; die "(A) burst failed"; }
check_200 a-burst "$cold_a"
read -r code _ < <(query "$((a_first + cold_a - 1))" "$out/a-cold-last.xml")
[ "$code" = 200 ] || die "(A) the last cold MAC answered $code"
check_answer "$out/a-cold-last.xml" "$((a_first + cold_a - 1))"

# --- run B: one cold MAC asked by many at once --------------------------------------------------------
simctl reset
simctl "fault?name=latency&value=$slow_ms"
urls "$b_i" "$dogpile" repeat >"$out/b-urls.txt"
burst b-burst "$out/b-urls.txt" "$dogpile"
sim_counts "$out/b-counts.json"
b_calls=$(route_count "$out/b-counts.json" SMS_R_System)
b_200=$(ok200 b-burst)
read -r code _ < <(query "$b_i" "$out/b-answer.xml")
[ "$code" = 200 ] || die "(B) the dogpiled MAC answered $code"
check_answer "$out/b-answer.xml" "$b_i"
check_200 b-burst "$dogpile"

# --- run C: many distinct cold MACs at once, fast vendor ----------------------------------------------
simctl reset
simctl "fault?name=latency&value=$fast_ms"
urls "$c_first" "$cold_c" >"$out/c-urls.txt"
sim_cpu0=$(cpu_ms "$sim_pid") gw_cpu0=$(cpu_ms "$gw_pid")
burst c-burst "$out/c-urls.txt" "$cold_c"
sim_cpu1=$(cpu_ms "$sim_pid") gw_cpu1=$(cpu_ms "$gw_pid")
sim_counts "$out/c-counts.json"
check_200 c-burst "$cold_c"
for i in "$c_first" $((c_first + cold_c / 2)) $((c_first + cold_c - 1)); do
	read -r code _ < <(query "$i" "$out/c-answer-$i.xml")
	[ "$code" = 200 ] || die "(C) device $i answered $code"
	check_answer "$out/c-answer-$i.xml" "$i"
done
c_calls=$(route_count "$out/c-counts.json" SMS_R_System)
((c_calls == cold_c)) || say "(C) warning: the vendor saw $c_calls SMS_R_System queries for $cold_c cold MACs"
# The same URLs again: cache hits now, so what is left is fresh TLS connections and HTTP.
burst c-hits "$out/c-urls.txt" "$cold_c"
check_200 c-hits "$cold_c"
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/env.txt"

# --- the summary --------------------------------------------------------------------------------------
rounds=2
c_total=$(field c-burst total_ms)
ideal=$((fast_ms * rounds * ((cold_c + maxconn - 1) / maxconn)))
ideal_conn=$((fast_ms * rounds * ((cold_c * 2 + maxconn - 1) / maxconn)))
{
	echo "raw output: $out"
	printf '(A) hit p99 %s ms alone, %s ms with %d cold queries pending (vendor %d ms); cold burst: %s/%d 200, total %s ms; simulator CPU during the loaded run %d ms\n' \
		"$base" "$loaded" "$cold_a" "$slow_ms" "$(ok200 a-burst)" "$cold_a" "$(field a-burst total_ms)" \
		$((a_sim1 - a_sim0))
	printf '(B) %d queries of one cold MAC: vendor requests by class: %s\n' "$dogpile" \
		"$(python3 -c 'import json, sys; print(", ".join("%s %d" % kv for kv in sorted(json.load(open(sys.argv[1]))["counts"]["by_route"].items())))' "$out/b-counts.json")"
	printf '(B) burst: total %s ms, p50 %s ms, max %s ms\n' "$(field b-burst total_ms)" \
		"$(field b-burst p50_ms)" "$(field b-burst max_ms)"
	printf '(C) %d cold MACs: p50 %s ms, p99 %s ms; vendor SMS_R_System queries %s; CPU ms during the burst: gateway %d, simulator %d, burst %s\n' \
		"$cold_c" "$(field c-burst p50_ms)" "$(field c-burst p99_ms)" "$c_calls" \
		$((gw_cpu1 - gw_cpu0)) $((sim_cpu1 - sim_cpu0)) "$(field c-burst cpu_ms)"
	printf '(C) ideal = latency x rounds x ceil(N / C) = %d x %d x ceil(%d / %d) = %d ms\n' \
		"$fast_ms" "$rounds" "$cold_c" "$maxconn" "$ideal"
	printf '(C) with 2 connections per lookup in each round: %d x %d x ceil(%d x 2 / %d) = %d ms\n' \
		"$fast_ms" "$rounds" "$cold_c" "$maxconn" "$ideal_conn"
	printf '(C) the same %d queries again, all cache hits (TLS + HTTP floor): total %s ms\n' \
		"$cold_c" "$(field c-hits total_ms)"
	# The simulator is one Python process (one core at most): when it was busy for most of the
	# burst, the figure measures the simulator, not the gateway.
	awk -v s=$((sim_cpu1 - sim_cpu0)) -v t="$c_total" 'BEGIN { if (s >= 0.8 * t)
		printf "(C) warning: the simulator used %d ms of CPU in the %.0f ms: bound by the simulator\n", s, t }'
	awk -v l="$loaded" -v b="$base" 'BEGIN { printf "hit p99 ratio %.2f\n", (b > 0 ? l / b : 0) }'
	echo "dogpile vendor calls $b_calls (expected 1)"
	echo "dogpile 200 $b_200 of $dogpile"
	echo "cold $cold_c ms $c_total (ideal $ideal)"
} | tee "$out/summary.txt"
