#!/usr/bin/env bash
# Runs criterion test binaries and prints one closing line with the totals.
#   tests/run.sh unit|e2e|all BINARY...
# Unit tests run in parallel; end-to-end tests run one at a time because they
# measure CPU shares and must not compete with each other.
set -u
suite=$1; shift
passed=0 failed=0 skipped=0 rc=0
fails=$(mktemp)
for bin in "$@"; do
	jobs=$(nproc)
	case "$bin" in *e2e*) jobs=1 ;; esac
	log=$(mktemp)
	"$bin" --jobs "$jobs" 2>&1 | tee "$log"
	st=${PIPESTATUS[0]}
	line=$(grep -a 'Synthesis:' "$log" | tail -n 1)
	# Repeat what failed, with its assertion, where the summary can be seen.
	grep -a -B4 -E '^\[(FAIL|CRASH)' "$log" | grep -a -E 'FAIL|CRASH|Assertion|\[----\]   [^ ]' >>"$fails" || true
	rm -f "$log"
	t=$(sed -n 's/.*Tested: \([0-9]*\).*/\1/p' <<<"$line")
	p=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$line")
	f=$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$line")
	c=$(sed -n 's/.*Crashing: \([0-9]*\).*/\1/p' <<<"$line")
	if [ -z "$t" ]; then
		echo "$bin: no criterion summary (exit $st)"
		failed=$((failed + 1)); rc=1; continue
	fi
	s=$(( t - p - f ))
	[ "$s" -lt 0 ] && s=0
	passed=$((passed + p)); failed=$((failed + f + c)); skipped=$((skipped + s))
	[ "$st" -ne 0 ] && rc=1
done
if [ -s "$fails" ]; then
	echo "---- failures:"
	cat "$fails"
fi
rm -f "$fails"
echo "$suite: $passed passed, $failed failed, $skipped skipped"
exit $rc
