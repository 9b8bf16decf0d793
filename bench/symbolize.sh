#!/usr/bin/env bash
# bench/symbolize.sh — `bpfprof symbolize` against llvm-symbolizer, binutils
# addr2line and eu-addr2line, on the same address batches, in one run.
#
#   make bench            (runs this after bench/run.sh)
#   BATCHES="10000 100000" bench/symbolize.sh
#
# Inputs: binaries with DWARF of different sizes: the inlines fixture (built
# -O2 -g), libc (its debug file from libc6-dbg under /usr/lib/debug) and,
# where it exists, a large shared library with full DWARF (pyenv's
# libpython3.11.so on our machines). For each batch size N, N addresses
# are drawn (fixed seed) inside the functions of each binary, a third each.
# Every tool resolves them with inline frames and function names (-i -f),
# cold (page cache dropped first) and warm (run again at once). Reported:
# addresses per second and peak RSS; ratios against the fastest of
# llvm-symbolizer and addr2line.
set -euo pipefail
BUILD=${BPFPROF_BUILD:-build}
BIN=$(readlink -f "$BUILD/bpfprof")
BATCHES=${BATCHES:-"10000 100000"}
OUT=$(mktemp -d /tmp/bpfprof-symbench-XXXXXX)
trap 'rm -rf "$OUT"' EXIT

LIBC=/usr/lib/x86_64-linux-gnu/libc.so.6
files=()
[ -x "$BUILD/fixtures/inlines" ] && files+=("$(readlink -f "$BUILD/fixtures/inlines")")
files+=("$LIBC")
for big in /root/.pyenv/versions/*/lib/libpython3*.so.1.0 /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1; do
	if [ -f "$big" ] && readelf -S "$big" 2>/dev/null | grep -q debug_info; then
		files+=("$big"); break
	fi
done

# The file whose symbol table lists the functions: the debug file where the binary is stripped.
symsrc() {
	local f=$1 id
	if readelf -S "$f" | grep -q '\.symtab'; then echo "$f"; return; fi
	id=$(readelf -n "$f" | sed -n 's/.*Build ID: //p')
	echo "/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug"
}

# N addresses inside the sized functions of $1, deterministic (seeded $RANDOM;
# bash arithmetic because Debian's awk, mawk, has no hex conversion).
gen_addrs() {
	local -a start size
	local n=$2 k i a s
	while read -r a s; do start+=("$a"); size+=("$s"); done < <(
		nm -S --defined-only "$(symsrc "$1")" 2>/dev/null |
			awk '$3 ~ /^[tTwW]$/ && $2 !~ /^0+$/ {print $1, $2}')
	RANDOM=42
	for ((i = 0; i < n; i++)); do
		k=$(( (RANDOM * 32768 + RANDOM) % ${#start[@]} ))
		printf '0x%x\n' $(( 16#${start[k]} + (RANDOM * 32768 + RANDOM) % 16#${size[k]} ))
	done
}

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

run_tool() { # tool file addrs -> appends "seconds maxrss_kb" to $OUT/$tool.$mode
	local tool=$1 f=$2 a=$3 mode=$4 t
	t="$OUT/t.$tool"
	case $tool in
	bpfprof) /usr/bin/time -f "%e %M" -o "$t" "$BIN" symbolize -e "$f" -i -f <"$a" >"$OUT/o.$tool" ;;
	addr2line) /usr/bin/time -f "%e %M" -o "$t" addr2line -e "$f" -i -f <"$a" >"$OUT/o.$tool" ;;
	eu-addr2line) /usr/bin/time -f "%e %M" -o "$t" eu-addr2line -e "$f" -i -f <"$a" >"$OUT/o.$tool" ;;
	llvm-symbolizer) /usr/bin/time -f "%e %M" -o "$t" llvm-symbolizer --obj="$f" --inlining \
		--functions=linkage --output-style=GNU <"$a" >"$OUT/o.$tool" ;;
	esac
	cat "$t" >>"$OUT/$tool.$mode"
}

tools=(bpfprof llvm-symbolizer addr2line eu-addr2line)
echo "symbolize bench: ${#files[@]} binaries: ${files[*]}" >&2
for n in $BATCHES; do
	per=$(( n / ${#files[@]} ))
	for f in "${files[@]}"; do gen_addrs "$f" "$per" >"$OUT/a.$(basename "$f").$n"; done
	for tool in "${tools[@]}"; do
		rm -f "$OUT/$tool.cold" "$OUT/$tool.warm"
		for f in "${files[@]}"; do
			drop_caches
			run_tool "$tool" "$f" "$OUT/a.$(basename "$f").$n" cold
			run_tool "$tool" "$f" "$OUT/a.$(basename "$f").$n" warm
		done
	done
	total=$(( per * ${#files[@]} ))
	echo
	echo "### $total addresses (-i -f), $(date -u +%F)"
	echo
	echo "| tool            | cold addr/s | warm addr/s | peak RSS  |"
	echo "|-----------------|-------------|-------------|-----------|"
	for tool in "${tools[@]}"; do
		c=$(awk '{s += $1} END {print s}' "$OUT/$tool.cold")
		w=$(awk '{s += $1} END {print s}' "$OUT/$tool.warm")
		m=$(awk '{if ($2 > m) m = $2} END {print m}' "$OUT/$tool.cold" "$OUT/$tool.warm")
		printf "| %-15s | %11.0f | %11.0f | %6.1f MB |\n" "$tool" \
			"$(awk -v n=$total -v t="$c" 'BEGIN {print (t > 0 ? n / t : 0)}')" \
			"$(awk -v n=$total -v t="$w" 'BEGIN {print (t > 0 ? n / t : 0)}')" \
			"$(awk -v m="$m" 'BEGIN {print m / 1024}')"
		echo "$c $w" >"$OUT/$tool.sum.$n"
	done
	read -r bc bw <"$OUT/bpfprof.sum.$n"
	read -r lc lw <"$OUT/llvm-symbolizer.sum.$n"
	read -r ac aw <"$OUT/addr2line.sum.$n"
	awk -v bc="$bc" -v bw="$bw" -v lc="$lc" -v lw="$lw" -v ac="$ac" -v aw="$aw" 'BEGIN {
		fc = lc < ac ? lc : ac; fw = lw < aw ? lw : aw
		printf "\nthroughput ratio bpfprof / fastest of llvm-symbolizer and addr2line: cold %.2f, warm %.2f\n", fc / bc, fw / bw
	}'
done
