# Sourced by scripts/test.sh: headless Chromium for the dashboard's browser
# tests (driven by chromedp with this system binary; nothing is downloaded
# by the tests). Idempotent: installs the Debian package only if missing.
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
# With this set, the browser tests fail instead of skipping when Chromium
# cannot be started.
export KEYWARDEN_REQUIRE_CHROMIUM=1
