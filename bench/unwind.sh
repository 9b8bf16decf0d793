#!/usr/bin/env bash
# bench/unwind.sh — stacks without frame pointers: bpfprof next to
# `perf record --call-graph dwarf` (and `perf record -g`, the frame-pointer
# baseline), in one run, on the same workload (issue 3).
#
#   sudo bench/unwind.sh          (also run by make bench; DURATION=20, at most 30)
#
# Workload: build/fixtures/cfichains mix (no frame pointers anywhere: a shared
# library, recursion 230 deep over 20 KiB of stack, three threads, a signal
# handler; tests/fixtures/README.md). Each tool samples the whole machine at
# 99 Hz for DURATION seconds, one after the other:
#   baseline      the workload alone (its rate is the reference)
#   bpfprof       bpfprof record -F 99 -d D -o out.folded
#   perf dwarf    perf record -F 99 -a --call-graph dwarf   (+ perf script, timed apart)
#   perf fp       perf record -F 99 -a -g                   (+ perf script)
# For each: completeness (share of the workload's samples whose stack reaches
# main, wk_main or sg_main), CPU seconds of the tool (user+sys, GNU time),
# BPF run time (kernel.bpf_stats_enabled, bpftool run_time_ns, bpfprof only),
# the workload's rate loss, bytes written, peak RSS, and bpfprof's unwind
# table memory (memlock of BPF maps named unw*; "-" while there are none).
# Machines here are noisy: compare the ratios, not the absolute numbers.
set -euo pipefail
BUILD=${BPFPROF_BUILD:-build}
D=${DURATION:-20}
[ "$D" -gt 30 ] && D=30
BIN=$BUILD/bpfprof
FIX=$BUILD/fixtures/cfichains
OUT=$(mktemp -d /tmp/bpfprof-unwind-XXXXXX)

[ "$(id -u)" -eq 0 ] || { echo "unwind bench: needs root (BPF and perf -a)" >&2; exit 1; }
command -v perf >/dev/null || { echo "unwind bench: perf is missing (package linux-perf)" >&2; exit 1; }
[ -x "$FIX" ] || { echo "unwind bench: $FIX missing (make fixtures)" >&2; exit 1; }

old_stats=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
cleanup() {
	sysctl -qw kernel.bpf_stats_enabled="$old_stats"
	[ -n "${WL_PID:-}" ] && kill "$WL_PID" 2>/dev/null || true
	rm -rf "$OUT"
}
trap cleanup EXIT

TFMT="%U %S %M %e" # user sys maxrss(KB) wall

wl_start() { "$FIX" mix "$((D + 3))" >"$OUT/wl.$1" & WL_PID=$!; sleep 1; }
# The workload's rate (leaf iterations per second), in RATE.
wl_wait() { wait "$WL_PID"; WL_PID=; RATE=$(sed -n 's/^cfichains: //p' "$OUT/wl.$1"); }

# Other bpfprof instances may run on this machine: ours are the prof_* programs
# that were not loaded before it started (ids in $OUT/progs.before).
prog_ids() { bpftool prog show 2>/dev/null | awk '/^[0-9]+: .* name prof_/ {sub(/:$/, "", $1); print $1}'; }
# "RUN_TIME_NS MAP_ID,MAP_ID,..." of our programs.
our_progs() {
	bpftool prog show 2>/dev/null | awk -v before="$(tr '\n' ' ' < "$OUT/progs.before")" '
		BEGIN {split(before, b, " "); for (i in b) old[b[i]] = 1}
		/^[0-9]+: / {id = $1; sub(/:$/, "", id); ours = ($0 ~ / name prof_/) && !(id in old)}
		ours {for (i=1;i<=NF;i++) {if ($i=="run_time_ns") s+=$(i+1); if ($i=="map_ids") m = m "," $(i+1)}}
		END {print s+0, (m == "" ? "," : m)}'
}
# Memlock bytes of the maps named unw* among @1 (comma-separated ids), or "-".
unw_memlock() {
	bpftool map show 2>/dev/null | awk -v ids="$1" '
		BEGIN {split(ids, a, ","); for (i in a) if (a[i] != "") mine[a[i]] = 1}
		/^[0-9]+: / {id = $1; sub(/:$/, "", id); unw = 0
			for (i=1;i<=NF;i++) if ($i=="name" && $(i+1) ~ /^unw/ && (id in mine)) unw = 1}
		unw {for (i=1;i<=NF;i++) if ($i=="memlock") {v=$(i+1); sub(/B$/,"",v); s+=v; n++}}
		END {if (n) print s; else print "-"}'
}

# Completeness from perf script text: samples of the workload's threads whose stack has a root.
perf_complete() {
	awk 'BEGIN {RS=""} $1=="cfichains" || $1=="cfi-worker" || $1=="cfi-signal" {
		n++; if ($0 ~ /[ \t](main|wk_main|sg_main) \(/) ok++ }
		END {printf "%d %d\n", ok+0, n+0}' "$1"
}
# The same from folded text: "comm;frames count".
folded_complete() {
	awk '$0 ~ /^cfichains;/ {c=$NF; n+=c; if ($0 ~ /;(main|wk_main|sg_main);/) ok+=c}
		END {printf "%d %d\n", ok+0, n+0}' "$1"
}

echo "unwind bench: $(nproc) CPUs, ${D}s per tool, workload: cfichains mix (no frame pointers)" >&2

# 1. baseline
wl_start base; wl_wait base; base_rate=$RATE

# 2. bpfprof record (BPF run time and table memory read just before it ends)
wl_start bpfprof
prog_ids > "$OUT/progs.before"
( sleep $((D - 1)); read -r ns maps < <(our_progs); echo "$ns" > "$OUT/bpfprof.bpfns"
	unw_memlock "$maps" > "$OUT/bpfprof.unwmem" ) &
SNAP=$!
/usr/bin/time -f "$TFMT" -o "$OUT/bpfprof.time" "$BIN" record -q -F 99 -d "$D" -o "$OUT/bpfprof.folded"
wait "$SNAP"
wl_wait bpfprof; bpfprof_rate=$RATE
folded_complete "$OUT/bpfprof.folded" > "$OUT/bpfprof.complete"

# 2b. bpfprof agent in its steady state: started (and its tables built) before
# the window; the window's CPU, BPF time and profile (/folded?seconds=D).
PORT=$((20000 + RANDOM % 20000))
prog_ids > "$OUT/progs.before"
"$BIN" agent --no-store --http-address "127.0.0.1:$PORT" 2>"$OUT/agent.log" & AG_PID=$!
sleep 3
wl_start agent
read -r ns0 _ < <(our_progs)
t0=$(awk '{print $14 + $15}' "/proc/$AG_PID/stat")
curl -s --max-time $((D + 15)) "http://127.0.0.1:$PORT/folded?seconds=$D" > "$OUT/agent.folded"
t1=$(awk '{print $14 + $15}' "/proc/$AG_PID/stat")
read -r ns1 maps < <(our_progs)
unw_memlock "$maps" > "$OUT/agent.unwmem"
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$AG_PID/status")
curl -s --max-time 5 "http://127.0.0.1:$PORT/healthz" > "$OUT/agent.healthz" || true
kill -TERM "$AG_PID"; wait "$AG_PID" || true
wl_wait agent; agent_rate=$RATE
tck=$(getconf CLK_TCK)
awk -v a="$t0" -v b="$t1" -v t="$tck" -v m="$hwm" -v d="$D" \
	'BEGIN {printf "%.2f 0 %d %d\n", (b-a)/t, m, d}' > "$OUT/agent.time"
echo $((ns1 - ns0)) > "$OUT/agent.bpfns"
folded_complete "$OUT/agent.folded" > "$OUT/agent.complete"

# 3. perf --call-graph dwarf, 4. perf -g
for mode in dwarf fp; do
	args=(--call-graph dwarf); [ "$mode" = fp ] && args=(-g)
	wl_start "perf$mode"
	/usr/bin/time -f "$TFMT" -o "$OUT/perf$mode.time" \
		perf record -q -F 99 -a "${args[@]}" -o "$OUT/perf$mode.data" -- sleep "$D" 2>/dev/null
	wl_wait "perf$mode"; eval "perf${mode}_rate=\$RATE"
	/usr/bin/time -f "$TFMT" -o "$OUT/perf$mode.script.time" \
		perf script -i "$OUT/perf$mode.data" -F comm,tid,ip,sym,dso > "$OUT/perf$mode.script" 2>/dev/null
	perf_complete "$OUT/perf$mode.script" > "$OUT/perf$mode.complete"
done

# name timefile rate bpfnsfile outfile completefile unwmemfile
row() {
	local u s m e ok n cpu bpf total loss size unw
	read -r u s m e < "$2"
	read -r ok n < "$6"
	cpu=$(awk -v u="$u" -v s="$s" 'BEGIN {printf "%.2f", u+s}')
	bpf=0; [ -n "$4" ] && bpf=$(awk -v x="$(cat "$4")" 'BEGIN {printf "%.2f", x/1e9}')
	total=$(awk -v c="$cpu" -v b="$bpf" 'BEGIN {printf "%.2f", c+b}')
	loss=$(awk -v b="$base_rate" -v t="$3" 'BEGIN {if (t=="" || b=="") print "-"; else printf "%.1f %%", 100*(b-t)/b}')
	size=$(stat -c %s "$5")
	unw="-"; [ -n "$7" ] && unw=$(cat "$7")
	[ "$unw" != "-" ] && unw=$(awk -v x="$unw" 'BEGIN {printf "%.1f MB", x/1048576}')
	printf "| %-10s | %8s / %-10s | %6s %% | %6s | %6s | %8s | %8s | %9s | %8s MB | %10s |\n" "$1" \
		"$ok" "$n" "$(awk -v a="$ok" -v b="$n" 'BEGIN {printf "%.1f", b ? 100*a/b : 0}')" \
		"$cpu" "$([ -n "$4" ] && echo "$bpf" || echo -)" "$total" "$loss" \
		"$(awk -v x="$size" 'BEGIN {printf "%.2f MB", x/1048576}')" \
		"$(awk -v m="$m" 'BEGIN {printf "%.1f", m/1024}')" "$unw"
	echo "$total $m $size $ok $n" > "$OUT/$1.sum"
}

echo
echo "| tool       | samples reaching root | complete | CPU s  | BPF s  | total s  | wl loss  | written   | peak RSS    | unw tables |"
echo "|------------|-----------------------|----------|--------|--------|----------|----------|-----------|-------------|------------|"
row bpfprof "$OUT/bpfprof.time" "$bpfprof_rate" "$OUT/bpfprof.bpfns" "$OUT/bpfprof.folded" "$OUT/bpfprof.complete" "$OUT/bpfprof.unwmem"
row agent "$OUT/agent.time" "$agent_rate" "$OUT/agent.bpfns" "$OUT/agent.folded" "$OUT/agent.complete" "$OUT/agent.unwmem"
row perf-dwarf "$OUT/perfdwarf.time" "$perfdwarf_rate" "" "$OUT/perfdwarf.data" "$OUT/perfdwarf.complete" ""
row perf-fp "$OUT/perffp.time" "$perffp_rate" "" "$OUT/perffp.data" "$OUT/perffp.complete" ""
for mode in dwarf fp; do
	read -r u s m e < "$OUT/perf$mode.script.time"
	echo "(perf $mode: perf script took $(awk -v u="$u" -v s="$s" 'BEGIN {printf "%.2f", u+s}') s CPU, peak RSS $(awk -v m="$m" 'BEGIN {printf "%.1f", m/1024}') MB)"
done
echo
read -r bt bm bs bo bn < "$OUT/bpfprof.sum"
read -r at am as_ ao an < "$OUT/agent.sum"
read -r dt dm ds do_ dn < "$OUT/perf-dwarf.sum"
# perf's stacks are unwound by perf script (or report): its CPU is part of the cost.
read -r su ss _ _ < "$OUT/perfdwarf.script.time"
dt=$(awk -v d="$dt" -v u="$su" -v s="$ss" 'BEGIN {printf "%.2f", d+u+s}')
awk -v bt="$bt" -v at="$at" -v dt="$dt" -v bm="$bm" -v am="$am" -v dm="$dm" -v bs="$bs" -v ds="$ds" \
	-v bo="$bo" -v bn="$bn" -v do_="$do_" -v dn="$dn" -v ao="$ao" -v an="$an" 'BEGIN {
	printf "perf dwarf total CPU (record + script): %.2f s\n", dt
	printf "ratio CPU (user+sys+BPF) bpfprof record / perf dwarf: %.3f   (start-up included)\n", (dt > 0 ? bt/dt : 0)
	printf "ratio CPU (user+sys+BPF) bpfprof agent  / perf dwarf: %.3f   (issue 3: <= 0.2)\n", (dt > 0 ? at/dt : 0)
	printf "ratio peak RSS           bpfprof agent  / perf dwarf: %.2f\n", (dm > 0 ? am/dm : 0)
	printf "completeness             bpfprof agent %.1f %%\n", (an ? 100*ao/an : 0)
	printf "ratio peak RSS           bpfprof / perf dwarf: %.2f\n", (dm > 0 ? bm/dm : 0)
	printf "ratio bytes written      bpfprof / perf dwarf: %.4f\n", (ds > 0 ? bs/ds : 0)
	printf "completeness             bpfprof %.1f %%, perf dwarf %.1f %%\n", (bn ? 100*bo/bn : 0), (dn ? 100*do_/dn : 0)
}'
awk '/^unwind_tables / {t=$2} /^unwind_rows / {r=$2} /^unwind_rows_capacity / {c=$2}
	END {if (t != "") printf "agent: unwind tables for every file mapped on the machine: %d files, %d rows, %.1f MB in use of %.1f MB\n", t, r, r*8/1e6, c*8/1e6}' "$OUT/agent.healthz"
echo "baseline workload rate: $base_rate leaf iterations/s"
