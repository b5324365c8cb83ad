#!/usr/bin/env bash
# Supply-chain checks (spec/security.md H6): the module cache matches
# go.sum (`go mod verify`), and govulncheck finds no known vulnerability
# reachable from keywarden's code. govulncheck needs its database at
# vuln.go.dev; where that cannot be reached (CI has only the module proxy)
# it is skipped with a notice, never failed. staticcheck runs in test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

govulncheck_version=v1.9.0
vulndb=${GOVULNDB:-https://vuln.go.dev}

echo "go mod verify"
go mod verify

reachable() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 5 "$vulndb/index/db.json.gz"
  else
    timeout 5 bash -c "exec 3<>/dev/tcp/${vulndb#https://}/443" 2>/dev/null
  fi
}

if reachable 2>/dev/null; then
  echo "govulncheck $govulncheck_version"
  tags=$(echo "${GO_TEST_TAGS:-}" | tr -s ' ' ',' | sed 's/^,//; s/,$//')
  go run "golang.org/x/vuln/cmd/govulncheck@$govulncheck_version" -db "$vulndb" ${tags:+-tags "$tags"} ./...
else
  echo "NOTICE: govulncheck skipped: the vulnerability database $vulndb cannot be reached from here."
  echo "        Run scripts/supply-chain.sh where it can (or set GOVULNDB to a mirror)."
fi
