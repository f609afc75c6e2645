#!/usr/bin/env bash
# hack/fuzz.sh DEVENV FUZZTIME pkg:Target...
# Runs each fuzz target for FUZZTIME (a duration like 5s, or a count like 1000000x) on the
# throwaway Postgres devenv provides, printing go test's summary and the last execution count.
set -uo pipefail
devenv=$1 fuzztime=$2
shift 2
for t in "$@"; do
	pkg=${t%%:*} fn=${t#*:}
	out=$("$devenv" test -- go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" -timeout 60m "./$pkg" 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep -E '^(ok|FAIL|--- FAIL|panic)|Failing input|failure while|    [a-z_]+_test\.go:' || true
	printf '%s: %s\n' "$t" "$(printf '%s\n' "$out" | grep '^fuzz: elapsed' | tail -1)"
	if [ $rc -ne 0 ]; then
		printf '%s\n' "$out" | tail -40
		exit $rc
	fi
done
