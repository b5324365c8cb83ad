#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a short time each (the quick
# tier of spec/security.md §4 Z): lists the targets with `go test -list`,
# then runs each alone with -fuzz=^Name$ -fuzztime=$FUZZTIME. The seed
# corpora also run as ordinary tests in every `go test`.
#
#   FUZZTIME=3s  (default) time per target; the nightly tier uses 10m.
#   FUZZ_PKGS    packages to search (default ./...).
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-3s}
pkgs=${FUZZ_PKGS:-./...}
tags=${GO_TEST_TAGS:-}
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT

targets=0
failed=()
for pkg in $(go list ${tags:+-tags "$tags"} -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' $pkgs); do
  names=$(go test ${tags:+-tags "$tags"} -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for name in $names; do
    targets=$((targets + 1))
    printf 'fuzz %s %s (%s)\n' "$pkg" "$name" "$fuzztime"
    # -parallel bounds the fuzzing workers on a 2-core runner. A failing
    # input is written to the package's testdata/fuzz, to reproduce it.
    if ! go test ${tags:+-tags "$tags"} -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -parallel 2 \
        "$pkg" >"$cache/out" 2>&1; then
      cat "$cache/out"
      failed+=("$pkg $name")
    fi
  done
done
echo "fuzz: $targets targets, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  printf '  FAIL %s\n' "${failed[@]}"
  exit 1
fi
