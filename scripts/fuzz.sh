#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a short time each (the quick
# tier of spec/security.md §4 Z): lists the targets with `go test -list`,
# then runs each alone with -fuzz=^Name$ -fuzztime=$FUZZTIME, FUZZ_JOBS at a
# time with one fuzzing worker each. The seed corpora also run as ordinary
# tests in every `go test`.
#
#   FUZZTIME=3s  time per target (default 3s; the nightly tier uses 10m)
#   FUZZ_JOBS=2  targets run at once (default: the number of CPUs, at most 4)
#   FUZZ_PKGS    packages to search (default ./...)
set -euo pipefail
cd "$(dirname "$0")/.."

export FUZZTIME=${FUZZTIME:-3s}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$jobs" -gt 4 ] && jobs=4
pkgs=${FUZZ_PKGS:-./...}
export GO_TEST_TAGS=${GO_TEST_TAGS:-}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export out

# Only packages whose test files declare a fuzz function are asked for
# their list (go test -list builds the test binary).
list="$out/targets"
for dir in $(go list ${GO_TEST_TAGS:+-tags "$GO_TEST_TAGS"} -f '{{.Dir}}' $pkgs); do
  grep -qs '^func Fuzz' "$dir"/*_test.go || continue
  pkg=$(go list ${GO_TEST_TAGS:+-tags "$GO_TEST_TAGS"} "$dir")
  go test ${GO_TEST_TAGS:+-tags "$GO_TEST_TAGS"} -list '^Fuzz' "$pkg" | grep '^Fuzz' | sed "s|^|$pkg |" || true
done >"$list"
total=$(wc -l <"$list")
echo "fuzz: $total targets, $FUZZTIME each, $jobs at a time"

# fuzz_one runs one target; a failing input is written to the package's
# testdata/fuzz, to reproduce it.
# The go fuzzing engine sometimes ends a short run with "context deadline
# exceeded" and no failing input, when the time runs out while its worker is
# between inputs; such a run is tried once more, and a run that writes a
# failing input always fails.
fuzz_one() {
  pkg=$1 name=$2
  log="$out/$(echo "$pkg-$name" | tr '/' '_').log"
  for try in 1 2; do
    if go test ${GO_TEST_TAGS:+-tags "$GO_TEST_TAGS"} -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -parallel 1 \
        "$pkg" >"$log" 2>&1; then
      echo "ok   $pkg $name"
      return
    fi
    if [ "$try" = 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
      echo "retry $pkg $name (the fuzzing engine timed out without a failing input)"
      continue
    fi
    break
  done
  echo "FAIL $pkg $name"
  cat "$log"
  echo "$pkg $name" >>"$out/failed"
}
export -f fuzz_one

xargs -P "$jobs" -L 1 bash -c 'fuzz_one "$0" "$1"' <"$list"
failed=0
[ -f "$out/failed" ] && failed=$(wc -l <"$out/failed")
echo "fuzz: $total targets, $failed failed"
if [ "$failed" -gt 0 ]; then
  sed 's/^/  FAIL /' "$out/failed"
  exit 1
fi
