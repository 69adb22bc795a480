#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/test_browser.py) unless it is there already.
# Never `playwright install`: its browser download cannot work here; Playwright drives /usr/bin/chromium.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser.sh: /usr/bin/chromium is missing and there is no apt-get; install Chromium by hand" >&2
  exit 1
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
echo "install_browser.sh: installing Debian's chromium" >&2
if ! $SUDO apt-get install -y -q chromium </dev/null; then
  $SUDO apt-get update -q </dev/null
  $SUDO apt-get install -y -q chromium </dev/null
fi
test -x /usr/bin/chromium
