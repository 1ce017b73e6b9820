#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium at /usr/bin/chromium for the Playwright login test
# (scripts/js/browser_login.mjs drives it with playwright-core, which downloads no browser).
# Idempotent: does nothing when /usr/bin/chromium is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  /usr/bin/chromium --version 2>/dev/null || true
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium > /dev/null
/usr/bin/chromium --version
