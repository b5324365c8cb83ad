# strace for the C2 battery test (internal/battery, flush before forward),
# sourced by scripts/test.sh under set -euo pipefail. Installs strace if
# missing; KEYWARDEN_REQUIRE_STRACE=1 makes the test fail, not skip, without it.
if ! command -v strace >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq strace >/dev/null
fi
export KEYWARDEN_REQUIRE_STRACE=1
