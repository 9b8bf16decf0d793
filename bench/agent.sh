#!/usr/bin/env bash
# bench/agent.sh — the always-on agent under process churn (issue 5).
#
#   sudo bench/agent.sh            (DURATION=600 by default; make bench runs it;
#                                   KEEP=1 keeps the store and logs in /tmp)
#
# The agent runs with a temporary store and 10 s intervals while the machine
# is busy: the burn fixture on one CPU and a churn of short-lived processes
# (a shell loop starting `ls`, `sort` and `gzip` about 30 times a second).
# Every 10 s its RSS is read, split into anonymous and file-backed pages
# (/proc/PID/status RssAnon/RssFile/RssShmem) with Private_Dirty from
# smaps_rollup; at the end: RSS at start and end, the slope of a
# least-squares line through the samples (MB per hour: flat means ~0) for
# each part, agent CPU seconds per wall second, store bytes per hour and per
# day, the latency of a query over the whole stored range (and of the last
# hour), and the mappings whose resident size grew most after the first
# minute. Then the store unit test's synthetic hour: bytes per day and the
# latency of a 1-hour query.
set -euo pipefail
BUILD=${BPFPROF_BUILD:-build}
D=${DURATION:-600}
BIN=$BUILD/bpfprof
OUT=$(mktemp -d /tmp/bpfprof-agentbench-XXXXXX)
PORT=$(( (RANDOM % 20000) + 30000 ))
cleanup() {
	[ -n "${CHURN:-}" ] && kill "$CHURN" 2>/dev/null || true
	[ -n "${AGENT:-}" ] && kill -TERM "$AGENT" 2>/dev/null || true
	wait 2>/dev/null || true
	if [ -n "${KEEP:-}" ]; then echo "agent bench: kept $OUT" >&2; else rm -rf "$OUT"; fi
}
trap cleanup EXIT
[ "$(id -u)" -eq 0 ] || { echo "agent bench: needs root" >&2; exit 1; }

"$BIN" agent --http-address "127.0.0.1:$PORT" --store "$OUT/store" --interval 10 ${AGENT_ARGS:-} 2>"$OUT/agent.log" &
AGENT=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
"$BUILD/fixtures/burn" "$((D + 5))" 1 >/dev/null &
( end=$((SECONDS + D)); while [ $SECONDS -lt $end ]; do
	ls /usr/lib >/dev/null; sort /etc/services >/dev/null; gzip -c /etc/services >/dev/null
	sleep 0.1; done ) &
CHURN=$!

cpu0=$(awk '{print $14 + $15}' /proc/$AGENT/stat)
t0=$(date +%s)
echo "agent bench: ${D}s, agent pid $AGENT, store $OUT/store" >&2
: >"$OUT/rss"
# Resident kB per mapping (file name or [anon]/[heap]/...), for the growth table.
smaps_by_map() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { name = NF >= 6 ? $6 : "[anon]" } /^Rss:/ { r[name] += $2 }
		END { for (n in r) print n, r[n] }' /proc/$AGENT/smaps
}
# One line: t VmRSS heap_in_use heap_free RssAnon RssFile RssShmem Private_Dirty
# symtab_bytes dwarf_bytes store_table_bytes row_copy_bytes (kB from /proc, bytes
# from /metrics).
while [ $(( $(date +%s) - t0 )) -lt "$D" ]; do
	el=$(( $(date +%s) - t0 ))
	m=$(curl -sf "http://127.0.0.1:$PORT/metrics" || true)
	echo "$el $(awk '/VmRSS/ {print $2}' /proc/$AGENT/status) $(awk '
		/^bpfprof_heap_bytes\{state="in_use"\}/ {u = $2} /^bpfprof_heap_bytes\{state="free"\}/ {f = $2}
		END {print u + 0, f + 0}' <<<"$m") $(awk '/^RssAnon|^RssFile|^RssShmem/ {printf "%s ", $2}' /proc/$AGENT/status)$(awk '/^Private_Dirty/ {print $2}' /proc/$AGENT/smaps_rollup) $(awk '
		/^bpfprof_symbol_cache_bytes\{kind="symtab"\}/ {s = $2} /^bpfprof_symbol_cache_bytes\{kind="dwarf"\}/ {d = $2}
		/^bpfprof_store_table_bytes / {t = $2} /^bpfprof_unwind_row_copy_bytes / {r = $2}
		END {print s + 0, d + 0, t + 0, r + 0}' <<<"$m")" >>"$OUT/rss"
	[ "$el" -ge 60 ] && [ ! -s "$OUT/smaps.1m" ] && smaps_by_map >"$OUT/smaps.1m"
	sleep 10
done
smaps_by_map >"$OUT/smaps.end"
t1=$(date +%s)
cpu1=$(awk '{print $14 + $15}' /proc/$AGENT/stat)
hz=$(getconf CLK_TCK)
sleep 11 # let the last interval reach the store
bytes=$(du -sb "$OUT/store" | cut -f1)
qt() { local s; s=$(date +%s.%N); curl -sf -o /dev/null "http://127.0.0.1:$PORT/debug/pprof/profile?start=$1&end=$2";
	echo "$(date +%s.%N) - $s" | bc; }
q_all=$(qt "$t0" "$(date +%s)")
q_hour=$(qt "$(( $(date +%s) - 3600 ))" "$(date +%s)")
metrics=$(curl -sf "http://127.0.0.1:$PORT/metrics")

awk -v d="$((t1 - t0))" -v cpu="$((cpu1 - cpu0))" -v hz="$hz" -v bytes="$bytes" \
	-v qa="$q_all" -v qh="$q_hour" '
	{ x[NR] = $1; y[NR] = $2 / 1024; u[NR] = $3 / 1048576; f[NR] = $4 / 1048576
	  a[NR] = $5 / 1024; fl[NR] = $6 / 1024; sh[NR] = $7 / 1024; pd[NR] = $8 / 1024
	  symt[NR] = $9 / 1048576; dw[NR] = $10 / 1048576; tb[NR] = $11 / 1048576
	  n = NR }
	END {
		for (i = 1; i <= n; i++) { sx += x[i]; sy += y[i]; sxx += x[i] * x[i]; sxy += x[i] * y[i] }
		slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
		printf "\n| measure | value |\n|---|---|\n"
		printf "| run | %d s, %d RSS samples |\n", d, n
		printf "| RSS first / last / max | %.1f / %.1f / %.1f MB |\n", y[1], y[n], max(y, n)
		printf "| RSS slope (least squares) | %+.2f MB per hour |\n", slope * 3600
		# The first minute is start-up: the symbol tables of every running
		# program, the BPF maps, the first store segment. The slope after it
		# is the trend the issue asks about.
		for (i = 1; i < n; i++) if (x[i] >= 60) break
		printf "| RSS at 1 min / end, slope after the first minute | %.1f / %.1f MB, %+.2f MB per hour |\n", \
			y[i], y[n], slope2(x, y, i, n) * 3600
		for (k = 1; k < n; k++) if (x[k] >= d / 2) break
		printf "| RSS slope, second half | %+.2f MB per hour |\n", slope2(x, y, k, n) * 3600
		printf "| RssAnon / RssFile / RssShmem / Private_Dirty, first -> last | %.1f / %.1f / %.1f / %.1f -> %.1f / %.1f / %.1f / %.1f MB |\n", \
			a[1], fl[1], sh[1], pd[1], a[n], fl[n], sh[n], pd[n]
		printf "| slope after the first minute, RssAnon / RssFile / Private_Dirty | %+.2f / %+.2f / %+.2f MB per hour |\n", \
			slope2(x, a, i, n) * 3600, slope2(x, fl, i, n) * 3600, slope2(x, pd, i, n) * 3600
		printf "| heap in use / free, first -> last | %.1f / %.1f -> %.1f / %.1f MB |\n", u[1], f[1], u[n], f[n]
		printf "| symbol tables / DWARF (estimated) / store tables, first -> last | %.1f / %.1f / %.1f -> %.1f / %.1f / %.1f MB |\n", \
			symt[1], dw[1], tb[1], symt[n], dw[n], tb[n]
		printf "| slope after the first minute, heap in use / symbol tables / DWARF / store tables | %+.2f / %+.2f / %+.2f / %+.2f MB per hour |\n", \
			slope2(x, u, i, n) * 3600, slope2(x, symt, i, n) * 3600, slope2(x, dw, i, n) * 3600, slope2(x, tb, i, n) * 3600
		printf "| agent CPU | %.4f s per wall second |\n", cpu / hz / d
		printf "| store | %d bytes: %.1f MB per hour, %.1f MB per day |\n", bytes, bytes / d * 3600 / 1e6, bytes / d * 86400 / 1e6
		printf "| query, whole run (%d s) | %.3f s |\n", d, qa
		printf "| query, last hour | %.3f s |\n", qh
	}
	function max(a, n,   m, i) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
	function slope2(x, v, lo, hi,   j, k, sx, sv, sxx, sxv) {
		for (j = lo; j <= hi; j++) { sx += x[j]; sv += v[j]; sxx += x[j] * x[j]; sxv += x[j] * v[j]; k++ }
		return (k * sxv - sx * sv) / (k * sxx - sx * sx)
	}
' "$OUT/rss"
echo
echo "RSS (MB) every minute: $(awk 'NR % 6 == 1 {printf "%.1f ", $2 / 1024}' "$OUT/rss")"
echo "RssAnon (MB) every minute: $(awk 'NR % 6 == 1 {printf "%.1f ", $5 / 1024}' "$OUT/rss")"
echo "RssFile (MB) every minute: $(awk 'NR % 6 == 1 {printf "%.1f ", $6 / 1024}' "$OUT/rss")"
echo "heap in use (MB) every minute: $(awk 'NR % 6 == 1 {printf "%.1f ", $3 / 1048576}' "$OUT/rss")"
echo "symbol tables (MB) every minute: $(awk 'NR % 6 == 1 {printf "%.1f ", $9 / 1048576}' "$OUT/rss")"
echo "DWARF, estimated (MB) every minute: $(awk 'NR % 6 == 1 {printf "%.1f ", $10 / 1048576}' "$OUT/rss")"
echo "store tables (MB) every minute: $(awk 'NR % 6 == 1 {printf "%.2f ", $11 / 1048576}' "$OUT/rss")"
echo "unwind row copies (MB) every minute: $(awk 'NR % 6 == 1 {printf "%.2f ", $12 / 1048576}' "$OUT/rss")"
echo "heap in use less the above (MB) every minute: $(awk 'NR % 6 == 1 {printf "%.2f ", ($3 - $9 - $10 - $11 - $12) / 1048576}' "$OUT/rss")"
echo "Mappings whose resident kB grew most after the first minute (kB at 1 min -> end):"
awk 'NR == FNR { a[$1] = $2; next } { d = $2 - a[$1]; if (d != 0) printf "  %+6d  %s (%d -> %d)\n", d, $1, a[$1], $2 }' \
	"$OUT/smaps.1m" "$OUT/smaps.end" | sort -rn | head -8
echo "$metrics" | grep -E '^bpfprof_(samples_total|samples_dropped|store_|process_|heap_)' || true
# A full hour cannot be stored in a 10-minute run: the store's unit test
# builds one (a busy 2-CPU host with churn, synthetic) and times its query.
if [ -x "$BUILD/tests/unit_tests" ]; then
	echo
	"$BUILD/tests/unit_tests" --filter 'store/realistic_hour*' --verbose 2>&1 |
		grep -o 'realistic hour.*' || true
fi
