#!/usr/bin/env bash
# keywarden's whole test suite. Installs what the tests need (Node.js and the
# pinned ccxt used as an independent signer), idempotently, then runs the
# static checks and every Go test with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

need_apt=()
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# nginx is the reference the gateway's benchmark is measured against.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

ccxt_dir=internal/exchange/exchangetest/ccxt
if [ ! -f "$ccxt_dir/node_modules/ccxt/package.json" ] || \
   ! grep -q '"version": "4.5.84"' "$ccxt_dir/node_modules/ccxt/package.json" || \
   ! grep -q '"version": "4.5.82"' "$ccxt_dir/node_modules/ccxt-bitmex/package.json" 2>/dev/null; then
  log "installing ccxt (pinned by $ccxt_dir/package-lock.json)"
  npm ci --prefix "$ccxt_dir" --no-audit --no-fund --ignore-scripts --loglevel=error
fi
export KEYWARDEN_REQUIRE_CCXT=1
# Each file in scripts/setup installs or starts one thing the tests need
# (idempotently) and exports the variables that tell the tests it is there.
for setup in scripts/setup/*.sh; do
  [ -e "$setup" ] || continue
  log "setup: $(basename "$setup" .sh)"
  # shellcheck source=/dev/null
  . "$setup"
done
export KEYWARDEN_REQUIRE_NGINX=1

log "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

log "go vet"
go vet ${GO_TEST_TAGS:+-tags "$GO_TEST_TAGS"} ./...

log "staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ${GO_TEST_TAGS:+-tags "$GO_TEST_TAGS"} ./...

log "go mod tidy is clean"
cp go.mod /tmp/keywarden-go.mod.bak; cp go.sum /tmp/keywarden-go.sum.bak
go mod tidy
if ! git diff --quiet -- go.mod go.sum 2>/dev/null; then
  git --no-pager diff -- go.mod go.sum
  cp /tmp/keywarden-go.mod.bak go.mod; cp /tmp/keywarden-go.sum.bak go.sum
  echo "go.mod/go.sum are not tidy"; exit 1
fi

log "go test -race"
go test -json -race -count=1 -timeout 40m ${GO_TEST_TAGS:+-tags "$GO_TEST_TAGS"} ./... | tee "${KEYWARDEN_TEST_JSON:-/tmp/keywarden-test.json}" | go run ./scripts/testsummary
log "fuzz (short)"; GO_TEST_TAGS="${GO_TEST_TAGS:-}" scripts/fuzz.sh
log "supply chain"; GO_TEST_TAGS="${GO_TEST_TAGS:-}" scripts/supply-chain.sh
