#!/usr/bin/env bash
# Install Debian's Chromium and ChromeDriver for the browser tests (inbox page) when missing.
# A no-op when both are present; needs root and apt-get (CI and dev machines).
set -u
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  echo "ensure-browser: chromium and chromedriver present"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-browser: apt-get not available; install chromium and chromium-driver by hand" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "ensure-browser: installing chromium and chromium-driver"
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]
