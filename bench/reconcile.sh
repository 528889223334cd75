#!/usr/bin/env bash
# bench/reconcile.sh GATEWAY_BIN RESPONDER_BIN: the issue 6 benchmarks (`make bench-reconcile`).
# The reconciler against 100k simulated devices (50k SCCM + 50k cloud MDM): cycle wall and CPU
# time, RSS per device, a 5000-device page of the NAC's non-compliant poll, and the time from a
# cycle's last listing page to the CoA packet at a NAS. The measuring is bench/reconcile.py; this
# script checks the tools, makes the results directory and keeps the environment beside the
# figures. See bench/README.md. Exit 0: every figure measured; 1: a part the gateway does not
# offer yet (named in the output, no figure printed for it); 2: the run failed.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
gw_bin="${1:?usage: reconcile.sh GATEWAY_BIN RESPONDER_BIN}"
resp_bin="${2:?usage: reconcile.sh GATEWAY_BIN RESPONDER_BIN}"

die() {
	echo "bench-reconcile: $*" >&2
	exit 2
}

for tool in python3 curl openssl; do
	command -v "$tool" >/dev/null || die "$tool is needed"
done
[[ -x "$gw_bin" ]] || die "no gateway binary $gw_bin"
[[ -x "$resp_bin" ]] || die "no responder binary $resp_bin"
gw_bin="$(cd "$(dirname "$gw_bin")" && pwd)/$(basename "$gw_bin")"
resp_bin="$(cd "$(dirname "$resp_bin")" && pwd)/$(basename "$resp_bin")"

out="$here/bench/results/$(date -u +%Y%m%dT%H%M%SZ)-reconcile"
mkdir -p "$out"
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "host: $(uname -srm), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "memory: $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"
	echo "gateway: $gw_bin ($("$gw_bin" version 2>&1 | head -1))"
	echo "git: $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo none)"
	echo "python: $(python3 --version 2>&1), curl: $(curl --version | head -1)"
	echo "settings: DEVICES=${DEVICES:-100000} SHARE=${SHARE:-0.1} SEED=${SEED:-1} CYCLES=${CYCLES:-3} POLLS=${POLLS:-20} FLIPS=${FLIPS:-20}"
	echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/env.txt"

rc=0
python3 "$here/bench/reconcile.py" --gateway "$gw_bin" --responder "$resp_bin" --out "$out" || rc=$?
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/env.txt"
echo "raw output: $out" >&2
exit "$rc"
