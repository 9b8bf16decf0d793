#!/usr/bin/env bash
# bench/run.sh — bpfprof's own cost next to perf's, in one run, on the same load.
#
#   sudo make bench            (DURATION=30 by default)
#
# Both CPUs are kept busy by the burn fixture (2 threads) while each profiler
# samples the whole machine at 99 Hz for DURATION seconds:
#   baseline      burn alone (its throughput is the reference)
#   record        bpfprof record -F 99 -d D -o out.pb.gz   (symbolized pprof at the end)
#   agent         bpfprof agent, scraped once for D s over HTTP (as Parca would)
#   perf          perf record -F 99 -a -g -o perf.data     (unsymbolized; symbolizing
#                 it is a further `perf script`, timed separately)
# For each: CPU seconds (user+sys) per wall second of the profiler process,
# peak RSS, the kernel-side run time of bpfprof's BPF program
# (kernel.bpf_stats_enabled), output size, and the workload's throughput loss.
# Machines here are noisy: compare the ratios, not the absolute numbers.
set -euo pipefail
BUILD=${BPFPROF_BUILD:-build}
D=${DURATION:-30}
BIN=$BUILD/bpfprof
BURN=$BUILD/fixtures/burn
OUT=$(mktemp -d /tmp/bpfprof-bench-XXXXXX)
trap 'rm -rf "$OUT"' EXIT

[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (BPF and perf -a)" >&2; exit 1; }
command -v perf >/dev/null || { echo "bench: perf is missing (package linux-perf)" >&2; exit 1; }

# time -f: user sys maxrss(KB) wall
TFMT="%U %S %M %e"

burn_start() { "$BURN" "$((D + 4))" 2 >"$OUT/burn.$1" & BURN_PID=$!; sleep 1; }
# Sets TP to the throughput burn reported (not in $(...): wait needs this shell).
burn_wait() { wait "$BURN_PID"; TP=$(sed -n 's/^burn: //p' "$OUT/burn.$1"); }

bpf_runtime_ns() {
	# Sum of run_time_ns of the loaded prof_sample programs (0 if none).
	bpftool prog show 2>/dev/null | awk '/name prof_sample/ {for (i=1;i<=NF;i++) if ($i=="run_time_ns") s+=$(i+1)} END {print s+0}'
}

old_stats=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
trap 'sysctl -qw kernel.bpf_stats_enabled=$old_stats; rm -rf "$OUT"' EXIT

echo "bench: $(nproc) CPUs, ${D}s per profiler, load: burn with 2 threads" >&2

# 1. baseline
burn_start base
burn_wait base; base_tp=$TP

# 2. bpfprof record (BPF run time measured by a sampler of bpftool in the background)
burn_start rec
( sleep $((D - 1)); bpf_runtime_ns > "$OUT/rec.bpfns" ) &
SNAP=$!
/usr/bin/time -f "$TFMT" -o "$OUT/rec.time" "$BIN" record -q -F 99 -d "$D" -o "$OUT/rec.pb.gz"
wait "$SNAP"
burn_wait rec; rec_tp=$TP

# 3. bpfprof agent, one scrape covering the run
PORT=$(( (RANDOM % 20000) + 30000 ))
burn_start agent
/usr/bin/time -f "$TFMT" -o "$OUT/agent.time" "$BIN" agent --http-address "127.0.0.1:$PORT" 2>"$OUT/agent.log" &
TPID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf -o "$OUT/agent.pb.gz" "http://127.0.0.1:$PORT/debug/pprof/profile?seconds=$D"
bpf_runtime_ns > "$OUT/agent.bpfns"
kill -TERM "$(pgrep -P "$TPID" -x bpfprof || echo "$TPID")" 2>/dev/null || true
wait "$TPID" || true
burn_wait agent; agent_tp=$TP

# 4. perf record -a -g, then perf script to get symbolized stacks
burn_start perf
/usr/bin/time -f "$TFMT" -o "$OUT/perf.time" perf record -q -F 99 -a -g -o "$OUT/perf.data" -- sleep "$D" 2>/dev/null
burn_wait perf; perf_tp=$TP
/usr/bin/time -f "$TFMT" -o "$OUT/perfscript.time" perf script -i "$OUT/perf.data" >"$OUT/perf.script" 2>/dev/null

row() { # name timefile throughput bpfns outfile
	read -r u s m e < "$2"
	local cpu; cpu=$(awk -v u="$u" -v s="$s" -v e="$e" 'BEGIN {printf "%.4f", (u+s)/e}')
	local bpf="-"
	[ -n "$4" ] && bpf=$(awk -v n="$(cat "$4")" -v d="$D" 'BEGIN {printf "%.4f", n/1e9/d}')
	local loss; loss=$(awk -v b="$base_tp" -v t="$3" 'BEGIN {if (t=="") print "-"; else printf "%.1f %%", 100*(b-t)/b}')
	local size="-"; [ -n "$5" ] && size=$(du -k "$5" | cut -f1)" KB"
	printf "| %-14s | %8s | %8s | %8s MB | %8s | %10s |\n" "$1" "$cpu" "$bpf" "$(awk -v m="$m" 'BEGIN {printf "%.1f", m/1024}')" "$loss" "$size"
	echo "$cpu $m" > "$OUT/$1.sum"
}

echo
echo "| profiler       | CPU s/s  | BPF s/s  | peak RSS    | load loss | output     |"
echo "|----------------|----------|----------|-------------|-----------|------------|"
row "bpfprof record" "$OUT/rec.time" "$rec_tp" "$OUT/rec.bpfns" "$OUT/rec.pb.gz"
row "bpfprof agent" "$OUT/agent.time" "$agent_tp" "$OUT/agent.bpfns" "$OUT/agent.pb.gz"
row "perf record" "$OUT/perf.time" "$perf_tp" "" "$OUT/perf.data"
read -r u s m e < "$OUT/perfscript.time"
echo "| (perf script)  | $(awk -v u="$u" -v s="$s" 'BEGIN {printf "%.2f s", u+s}') CPU to symbolize, peak RSS $(awk -v m="$m" 'BEGIN {printf "%.1f", m/1024}') MB |"
echo
read -r rc rm < "$OUT/bpfprof record.sum"
read -r ac am < "$OUT/bpfprof agent.sum"
read -r pc pm < "$OUT/perf record.sum"
awk -v rc="$rc" -v ac="$ac" -v pc="$pc" -v rm="$rm" -v am="$am" -v pm="$pm" 'BEGIN {
	printf "ratio CPU  bpfprof record / perf record: %.2f\n", (pc > 0 ? rc/pc : 0)
	printf "ratio CPU  bpfprof agent  / perf record: %.2f\n", (pc > 0 ? ac/pc : 0)
	printf "ratio RSS  bpfprof record / perf record: %.2f\n", rm/pm
	printf "ratio RSS  bpfprof agent  / perf record: %.2f\n", am/pm
}'
echo "baseline burn throughput: $base_tp iterations/s"
