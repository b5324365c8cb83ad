#!/usr/bin/env bash
# Re-fetches the pinned htmx release from npm and checks that the copy
# committed in internal/dashboard/static is byte-for-byte that release.
#
#   scripts/vendor-htmx.sh           check the committed file
#   scripts/vendor-htmx.sh --update  replace the committed files with the
#                                    npm release (after changing VERSION and
#                                    SHA256 below)
#
# Needs npm and network access to the npm registry; tests do not run it.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=2.0.11
SHA256=d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717
dest=internal/dashboard/static

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "htmx.org@$VERSION" >/dev/null && tar xzf "htmx.org-$VERSION.tgz")

got=$(sha256sum "$tmp/package/dist/htmx.min.js" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
  echo "npm's htmx.org@$VERSION dist/htmx.min.js has SHA-256 $got, want $SHA256" >&2
  exit 1
fi
if [ "${1:-}" = "--update" ]; then
  cp "$tmp/package/dist/htmx.min.js" "$dest/htmx.min.js"
  cp "$tmp/package/LICENSE" "$dest/htmx.LICENSE"
fi
have=$(sha256sum "$dest/htmx.min.js" | cut -d' ' -f1)
if [ "$have" != "$SHA256" ]; then
  echo "$dest/htmx.min.js has SHA-256 $have, want $SHA256 (htmx.org@$VERSION)" >&2
  exit 1
fi
cmp -s "$tmp/package/LICENSE" "$dest/htmx.LICENSE" || { echo "$dest/htmx.LICENSE differs from the release" >&2; exit 1; }
echo "htmx.org@$VERSION: $dest/htmx.min.js matches (sha256 $SHA256)"
