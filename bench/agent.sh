#!/usr/bin/env bash
# bench/agent.sh — the always-on agent under process churn (issue 5).
#
#   sudo bench/agent.sh            (DURATION=600 by default; make bench runs it)
#
# The agent runs with a temporary store and 10 s intervals while the machine
# is busy: the burn fixture on one CPU and a churn of short-lived processes
# (a shell loop starting `ls`, `sort` and `gzip` about 30 times a second).
# Every 10 s its RSS is read; at the end: RSS at start and end, the slope of
# a least-squares line through the samples (MB per hour: flat means ~0),
# agent CPU seconds per wall second, store bytes per hour and per day, and
# the latency of a query over the whole stored range (and of the last hour).
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
	rm -rf "$OUT"
}
trap cleanup EXIT
[ "$(id -u)" -eq 0 ] || { echo "agent bench: needs root" >&2; exit 1; }

"$BIN" agent --http-address "127.0.0.1:$PORT" --store "$OUT/store" --interval 10 2>"$OUT/agent.log" &
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
while [ $(( $(date +%s) - t0 )) -lt "$D" ]; do
	echo "$(( $(date +%s) - t0 )) $(awk '/VmRSS/ {print $2}' /proc/$AGENT/status) $(curl -sf "http://127.0.0.1:$PORT/metrics" |
		awk '/^bpfprof_heap_bytes\{state="in_use"\}/ {u = $2} /^bpfprof_heap_bytes\{state="free"\}/ {f = $2} END {print u + 0, f + 0}')" >>"$OUT/rss"
	sleep 10
done
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
	{ x[NR] = $1; y[NR] = $2 / 1024; u[NR] = $3 / 1048576; f[NR] = $4 / 1048576; n = NR }
	END {
		for (i = 1; i <= n; i++) { sx += x[i]; sy += y[i]; sxx += x[i] * x[i]; sxy += x[i] * y[i] }
		slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
		printf "\n| measure | value |\n|---|---|\n"
		printf "| run | %d s, %d RSS samples |\n", d, n
		printf "| RSS first / last / max | %.1f / %.1f / %.1f MB |\n", y[1], y[n], max(y, n)
		printf "| RSS slope (least squares) | %+.2f MB per hour |\n", slope * 3600
		for (i = 1; i < n; i++) if (x[i] >= d / 2) break
		for (j = i; j <= n; j++) { hx += x[j]; hy += y[j]; hxx += x[j] * x[j]; hxy += x[j] * y[j]; m++ }
		printf "| RSS slope, second half | %+.2f MB per hour |\n", (m * hxy - hx * hy) / (m * hxx - hx * hx) * 3600
		printf "| heap in use / free, first -> last | %.1f / %.1f -> %.1f / %.1f MB |\n", u[1], f[1], u[n], f[n]
		printf "| agent CPU | %.4f s per wall second |\n", cpu / hz / d
		printf "| store | %d bytes: %.1f MB per hour, %.1f MB per day |\n", bytes, bytes / d * 3600 / 1e6, bytes / d * 86400 / 1e6
		printf "| query, whole run (%d s) | %.3f s |\n", d, qa
		printf "| query, last hour | %.3f s |\n", qh
	}
	function max(a, n,   m, i) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
' "$OUT/rss"
echo
echo "RSS (MB) every minute: $(awk 'NR % 6 == 1 {printf "%.1f ", $2 / 1024}' "$OUT/rss")"
echo "$metrics" | grep -E '^bpfprof_(samples_total|samples_dropped|store_|process_|heap_)' || true
