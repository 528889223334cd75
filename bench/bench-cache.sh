#!/usr/bin/env bash
# make bench-cache: wrk over HTTPS keep-alive against four servers answering the same bytes:
#   a  bare libmicrohttpd server (bench/bare_server --body): TLS + HTTP, nothing else
#   b  the gateway answering a single-device query from its in-process tiers (L1)
#   c  the gateway with L1 off (cache.l1_ttl 0s), answering the same query from memcached
#   d  bare libmicrohttpd server doing one blocking memcached get per request
# Same TLS priorities, thread pool (2), keep-alive connections, request and answer bytes.
# RUNS rounds of a b c d (interleaved, so drift hits all alike); medians reported; raw wrk output
# and everything needed to read it kept in bench/results/<UTC timestamp>/. Ends with
#   ratio b/a <x>
#   ratio c/d <y>
# Usage: bench/bench-cache.sh GATEWAY_BIN BARE_BIN
# Env: DURATION (10s), THREADS (wrk threads, 2), CONNECTIONS (64), RUNS (3), SERVER_THREADS (2),
#      CASES (default "a b c d"; a subset for trials, the missing ratios print n/a),
#      PERF=1 (one more run of each under perf record, after the measured ones).
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 GATEWAY_BIN BARE_BIN" >&2
	exit 2
fi
gw_bin=$(realpath "$1")
bare_bin=$(realpath "$2")
here=$(cd "$(dirname "$0")/.." && pwd)
dur=${DURATION:-10s}
threads=${THREADS:-2}
conns=${CONNECTIONS:-64}
runs=${RUNS:-3}
sthreads=${SERVER_THREADS:-2}
cases=${CASES:-a b c d}
out=$here/bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"

die() {
	echo "bench-cache: $*" >&2
	exit 1
}
has_case() { [[ " $cases " == *" $1 "* ]]; }

for t in wrk memcached curl python3; do
	command -v "$t" >/dev/null || die "$t is not installed (make deps)"
done
[ -x "$gw_bin" ] || die "$gw_bin: not an executable"
[ -x "$bare_bin" ] || die "$bare_bin: not an executable"
[ -f "$here/certs/server.pem" ] || die "no certs/server.pem (make certs)"

# --- processes: every one started here is stopped by its pid at exit ------------------------------
pids=()
declare -A spid # server pid by case
state=$(mktemp -d /tmp/mdmgw-bench-cache.XXXXXX)
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r p_mc p_a p_b p_c p_d < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(5)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')

wait_port() { # port seconds pid log: until something accepts on 127.0.0.1:port
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$3" 2>/dev/null || { cat "$4" >&2; die "process $3 exited (log: $4)"; }
		python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' \
			"$1" 2>/dev/null && return 0
		sleep 0.1
	done
	die "nothing listens on port $1 after $2 s (log: $4)"
}
wait_healthz() { # port pid log
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$2" 2>/dev/null || { cat "$3" >&2; die "process $2 exited (log: $3)"; }
		curl -sf --cacert "$here/certs/ca.pem" "https://127.0.0.1:$1/healthz" >/dev/null 2>&1 &&
			return 0
		sleep 0.1
	done
	die "no /healthz on port $1 after 10 s (log: $3)"
}

# --- memcached ------------------------------------------------------------------------------------
mc_user=()
[ "$(id -u)" = 0 ] && mc_user=(-u nobody)
memcached -l 127.0.0.1 -p "$p_mc" -U 0 -m 64 -t 2 "${mc_user[@]}" >"$out/memcached.log" 2>&1 &
mc_pid=$!
pids+=("$mc_pid")
wait_port "$p_mc" 5 "$mc_pid" "$out/memcached.log"

# --- the gateways (b: L1 in front of memcached; c: memcached only) -------------------------------
MDMGW_BENCH_HMAC_KEY=$(head -c 24 /dev/urandom | base64) # 32 characters
export MDMGW_BENCH_HMAC_KEY
write_config() { # file port l1_ttl
	python3 - "$here" "$1" "$2" "$3" "$p_mc" "$sthreads" "$state" <<'PY'
import json, os, sys
here, dst, port, l1, mc, threads, state = sys.argv[1:]
cfg = json.load(open(os.path.join(here, "conf/demo.json")))
cfg["listen"].update(port=int(port), threads=int(threads),
                     cert_file=os.path.join(here, "certs/server.pem"),
                     key_file=os.path.join(here, "certs/server-key.pem"))
cfg["adapters"][0]["file"] = os.path.join(here, "conf/demo-inventory.json")
cfg["state_dir"] = os.path.join(state, os.path.basename(dst) + ".state")
cfg["log_level"] = "warn"
cfg["cache"] = {"servers": ["127.0.0.1:" + mc], "hmac_key": {"env": "MDMGW_BENCH_HMAC_KEY"},
                "l1_ttl": l1, "fresh_ttl": "1h"}
with open(dst, "w") as f:
    json.dump(cfg, f, indent=2)
PY
	chmod 600 "$1"
}

auth="Authorization: Basic $(printf 'demo:mdmgw-demo' | base64)"
admin="Authorization: Basic $(printf 'demo-admin:mdmgw-admin' | base64)"
qpath='/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria=macaddress&value=0026B424FEB4&filter=all'
body=$out/body.xml

start_gateway() { # name port l1_ttl
	write_config "$out/$1.json" "$2" "$3"
	"$gw_bin" check-config -c "$out/$1.json" >"$out/$1-check.log" 2>&1 ||
		{ cat "$out/$1-check.log" >&2; die "($1) config refused (see $out/$1-check.log)"; }
	"$gw_bin" run -c "$out/$1.json" >"$out/$1-gateway.log" 2>&1 &
	spid[$1]=$!
	pids+=("${spid[$1]}")
	wait_healthz "$2" "${spid[$1]}" "$out/$1-gateway.log"
}
query() { # port file: the single-device query, body to file; fails on non-2xx
	curl -sf --cacert "$here/certs/ca.pem" -H "$auth" -o "$2" "https://127.0.0.1:$1$qpath"
}
metric() { # file name: sum of every series of that metric
	awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { print s + 0 }' "$1"
}
metrics() { # port file
	curl -sf --cacert "$here/certs/ca.pem" -H "$admin" -o "$2" "https://127.0.0.1:$1/metrics" ||
		die "GET /metrics on port $1 failed"
}
check_cache() { # name port tier(l1|l2) before after [warn]: dies (or, with warn, warns)
	local l1a l1b ana anb l2a l2b ada adb fail=die
	[ "${6:-}" = warn ] && fail=warn
	# In-process hits: records from L1, or the whole rendered answer from the answer tier
	# (mdmgw_answer_cache_hits_total, bounded by l1_ttl like L1 and off with it).
	l1a=$(metric "$4" mdmgw_cache_l1_hits_total) l1b=$(metric "$5" mdmgw_cache_l1_hits_total)
	ana=$(metric "$4" mdmgw_answer_cache_hits_total) anb=$(metric "$5" mdmgw_answer_cache_hits_total)
	l2a=$(metric "$4" mdmgw_cache_l2_hits_total) l2b=$(metric "$5" mdmgw_cache_l2_hits_total)
	ada=$(metric "$4" mdmgw_adapter_lookups_total) adb=$(metric "$5" mdmgw_adapter_lookups_total)
	echo "($1) answer-tier hits $ana -> $anb, l1 hits $l1a -> $l1b, l2 hits $l2a -> $l2b," \
		"adapter lookups $ada -> $adb" >>"$out/cache-checks.txt"
	[ "$adb" = "$ada" ] || $fail "($1) the adapter was asked ($ada -> $adb): not a cache hit" \
		"(memcached errors $(metric "$4" mdmgw_cache_l2_errors_total) ->" \
		"$(metric "$5" mdmgw_cache_l2_errors_total))"
	if [ "$3" = l1 ]; then
		[ $((l1b + anb)) -gt $((l1a + ana)) ] ||
			$fail "($1) in-process hits did not grow (L1 $l1a -> $l1b, answers $ana -> $anb)"
	else
		[ "$l2b" -gt "$l2a" ] || $fail "($1) memcached hits did not grow ($l2a -> $l2b)"
		[ $((l1b + anb)) = 0 ] ||
			$fail "($1) in-process hits with L1 disabled (L1 $l1b, answers $anb)"
	fi
	return 0
}
warn() {
	echo "bench-cache: warning: $*" >&2
	echo "warning: $*" >>"$out/cache-checks.txt"
}
warm_and_check() { # name port tier
	local i
	query "$2" "$out/$1-warm.xml" || die "($1) the query failed"
	metrics "$2" "$out/$1-metrics-warm.txt"
	for ((i = 0; i < 20; i++)); do query "$2" "$out/$1-answer.xml" || die "($1) query failed"; done
	metrics "$2" "$out/$1-metrics-checked.txt"
	check_cache "$1" "$2" "$3" "$out/$1-metrics-warm.txt" "$out/$1-metrics-checked.txt"
}

if has_case b || has_case c; then
	start_gateway b "$p_b" 60s
	warm_and_check b "$p_b" l1
	cp "$out/b-answer.xml" "$body"
	start_gateway c "$p_c" 0s
	warm_and_check c "$p_c" l2
	cmp -s "$out/c-answer.xml" "$body" || die "(c) answers other bytes than (b)"
else
	# Trials without the gateway: the answer saved by an earlier run, or make bench's.
	shopt -s nullglob
	saved=("$here"/bench/results/*/body.xml "$here"/bench/results/*/query-answer.xml)
	shopt -u nullglob
	prev=
	if ((${#saved[@]})); then prev=$(printf '%s\n' "${saved[@]}" | sort | tail -n 1); fi
	[ -n "$prev" ] || die "no saved answer to serve; run with (b) once"
	cp "$prev" "$body"
	echo "bench-cache: (b)/(c) not run; serving $prev" >&2
fi
grep -q '<deviceList>' "$body" || die "the saved answer holds no device list: $body"

# --- the bare servers -----------------------------------------------------------------------------
tls=(--cert "$here/certs/server.pem" --key "$here/certs/server-key.pem" --threads "$sthreads")
if has_case a; then
	"$bare_bin" --port "$p_a" "${tls[@]}" --body "$body" >"$out/a-bare.log" 2>&1 &
	spid[a]=$!
	pids+=("$!")
	wait_healthz "$p_a" "$!" "$out/a-bare.log"
	query "$p_a" "$out/a-answer.xml" || die "(a) the query failed"
	cmp -s "$out/a-answer.xml" "$body" || die "(a) answers other bytes"
fi
if has_case d; then
	# The value is the answer itself: same size as the XML body, served as it is.
	"$bare_bin" --port "$p_d" "${tls[@]}" --memcached "127.0.0.1:$p_mc" --key mdmgw-bench:answer \
		--store "$body" >"$out/d-bare.log" 2>&1 &
	spid[d]=$!
	pids+=("$!")
	wait_healthz "$p_d" "$!" "$out/d-bare.log"
	query "$p_d" "$out/d-answer.xml" || die "(d) the query failed"
	cmp -s "$out/d-answer.xml" "$body" || die "(d) answers other bytes"
fi

# What memcached holds (key sizes: the gateway's pointer and record, and (d)'s value).
python3 - "$p_mc" >"$out/memcached-keys.txt" 2>/dev/null <<'PY' || true
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2)
s.sendall(b"lru_crawler metadump all\r\n")
data = b""
while not data.endswith(b"END\r\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode(errors="replace"))
PY

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "host: $(uname -srm), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "wrk: -t$threads -c$conns -d$dur --latency, $runs rounds of: $cases"
	echo "server threads: $sthreads; memcached -t 2 on 127.0.0.1:$p_mc"
	echo "libmicrohttpd: $(pkg-config --modversion libmicrohttpd 2>/dev/null || echo '?')," \
		"libmemcached: $(pkg-config --modversion libmemcached 2>/dev/null || echo '?')," \
		"$(memcached -V 2>/dev/null || echo 'memcached ?')"
	echo "answer: $(wc -c <"$body") bytes"
	echo "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "gateway: $gw_bin"
	echo "bare: $bare_bin"
} >"$out/env.txt"

# --- the runs -------------------------------------------------------------------------------------
hz=$(getconf CLK_TCK)
cpu_ticks() { # pid: user + system CPU time so far, in clock ticks
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
declare -A port=([a]=$p_a [b]=$p_b [c]=$p_c [d]=$p_d)
for ((r = 1; r <= runs; r++)); do
	for x in a b c d; do
		has_case "$x" || continue
		f=$out/$x-run$r.txt
		# Every server gets the same request, Authorization header included (only b and c
		# check it).
		s0=$(cpu_ticks "${spid[$x]}") m0=$(cpu_ticks "$mc_pid")
		wrk -t"$threads" -c"$conns" -d"$dur" --latency -H "$auth" \
			"https://127.0.0.1:${port[$x]}$qpath" >"$f" 2>&1 || die "($x) wrk failed: $f"
		s1=$(cpu_ticks "${spid[$x]}") m1=$(cpu_ticks "$mc_pid")
		# CPU the server (and memcached) used during the run, in clock ticks.
		echo "server $((s1 - s0)) memcached $((m1 - m0)) hz $hz" >"$out/$x-run$r.cpu"
		grep -q '^Requests/sec:' "$f" || die "($x) no result from wrk: $f"
		if grep -q 'Non-2xx' "$f"; then
			log=$out/$x-bare.log
			[[ $x == [bc] ]] && log=$out/$x-gateway.log
			tail -n 20 "$log" >&2
			die "($x) non-2xx answers in run $r: $(grep 'Non-2xx' "$f" | sed 's/^ *//') (log: $log)"
		fi
		echo "bench-cache: round $r ($x): $(awk '/^Requests\/sec:/ {print $2}' "$f") req/s" >&2
	done
done

echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/env.txt"

# PERF=1: one more run of each under perf (after the measured ones, which it would slow down).
if [ "${PERF:-0}" = 1 ]; then
	command -v perf >/dev/null || die "PERF=1 needs perf (linux-perf)"
	for x in a b c d; do
		has_case "$x" || continue
		perf record -q --call-graph dwarf,8192 -F 499 -p "${spid[$x]}" -o "$out/$x-perf.data" \
			-- sleep "$dur" >"$out/$x-perf.log" 2>&1 &
		perf_pid=$!
		wrk -t"$threads" -c"$conns" -d"$dur" --latency -H "$auth" \
			"https://127.0.0.1:${port[$x]}$qpath" >"$out/$x-perf-wrk.txt" 2>&1 || true
		wait "$perf_pid" || echo "bench-cache: ($x) perf failed: $out/$x-perf.log" >&2
		perf report -i "$out/$x-perf.data" --children --sort symbol --stdio -g none \
			2>/dev/null | grep '%' | head -n 80 >"$out/$x-perf.txt" || true
		echo "bench-cache: ($x) profile: $out/$x-perf.txt (perf report -i $out/$x-perf.data)" >&2
	done
fi

# The cache tiers again: a whole benchmark without one adapter lookup. Only a warning: one
# memcached timeout (50 ms) on a busy machine sends one request to the adapter.
if has_case b; then
	metrics "$p_b" "$out/b-metrics-end.txt"
	check_cache b "$p_b" l1 "$out/b-metrics-checked.txt" "$out/b-metrics-end.txt" warn
fi
if has_case c; then
	metrics "$p_c" "$out/c-metrics-end.txt"
	check_cache c "$p_c" l2 "$out/c-metrics-checked.txt" "$out/c-metrics-end.txt" warn
fi

# --- the table ------------------------------------------------------------------------------------
python3 - "$out" "$runs" "$cases" <<'PY' | tee "$out/summary.txt"
import os, re, statistics, sys

out, runs, cases = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
names = {
    "a": "bare MHD, same bytes",
    "b": "gateway, L1 hit",
    "c": "gateway, memcached hit",
    "d": "bare MHD + memcached get",
}
UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}

def ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not m:
        raise SystemExit("bench-cache: cannot read latency %r" % text)
    return float(m.group(1)) * UNIT[m.group(2)]

def parse(path):
    rps = p50 = p99 = nreq = None
    errors = ""
    for line in open(path):
        f = line.split()
        if line.startswith("Requests/sec:"):
            rps = float(f[1])
        elif len(f) > 2 and f[1] == "requests" and f[2] == "in":
            nreq = int(f[0])
        elif len(f) == 2 and f[0] == "50%":
            p50 = ms(f[1])
        elif len(f) == 2 and f[0] == "99%":
            p99 = ms(f[1])
        elif line.strip().startswith("Socket errors:"):
            errors = line.strip()
    if rps is None or p50 is None or p99 is None or not nreq:
        raise SystemExit("bench-cache: %s: no req/s or latency distribution" % path)
    # CPU microseconds per request of the server and of memcached, from the .cpu file.
    c = open(path[:-len(".txt")] + ".cpu").read().split()
    hz = float(c[5])
    cpu = float(c[1]) / hz * 1e6 / nreq
    mcpu = float(c[3]) / hz * 1e6 / nreq
    return rps, p50, p99, cpu, mcpu, errors

med = {}
print("%-4s %-26s %9s %8s %8s %10s %10s   %s" % (
    "", "server", "req/s", "p50 ms", "p99 ms", "cpu us/req", "mc us/req", "req/s of each run"))
for x in "abcd":
    if x not in cases:
        continue
    rs = [parse(os.path.join(out, "%s-run%d.txt" % (x, r))) for r in range(1, runs + 1)]
    m = tuple(statistics.median(v[i] for v in rs) for i in range(5))
    med[x] = m
    print("(%s)  %-26s %9.0f %8.3f %8.3f %10.1f %10.1f   %s" % (
        x, names[x], m[0], m[1], m[2], m[3], m[4], " ".join("%.0f" % v[0] for v in rs)))
    for v in rs:
        if v[5]:
            print("     warning: (%s) %s" % (x, v[5]))
checks = os.path.join(out, "cache-checks.txt")
if os.path.exists(checks):
    for line in open(checks):
        if line.startswith("warning:"):
            print("     " + line.strip())
print("raw output: %s" % out)

def ratio(n, d):
    if n in med and d in med and med[d][0] > 0:
        return round(med[n][0] / med[d][0], 3)
    return None

ba, cd = ratio("b", "a"), ratio("c", "d")
fmt = lambda r: "n/a" if r is None else "%.3f" % r
if ba is None:
    print("target b/a >= 0.8, p99(b) <= 5 ms: not run")
else:
    print("target b/a >= 0.8, p99(b) <= 5 ms: %s" % (
        "met" if ba >= 0.8 and med["b"][2] <= 5.0 else "missed"))
if cd is None:
    print("target c/d >= 0.8: not run")
else:
    print("target c/d >= 0.8: %s" % ("met" if cd >= 0.8 else "missed"))
print("ratio b/a %s" % fmt(ba))
print("ratio c/d %s" % fmt(cd))
PY
