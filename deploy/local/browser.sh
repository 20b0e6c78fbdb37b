#!/usr/bin/env bash
# The browser of the browser tests (tests/browser): Debian's `chromium` package, driven by Playwright's Python
# client with executable_path=/usr/bin/chromium. No browser is downloaded by Playwright (`playwright install` is
# never run); the distribution's package is used instead.
#
#   deploy/local/browser.sh          install chromium if /usr/bin/chromium is missing (idempotent), print its version
#
# Needs root (or passwordless sudo) for apt-get the first time only. INTAKE_CHROMIUM overrides the path checked.
set -euo pipefail

chromium=${INTAKE_CHROMIUM:-/usr/bin/chromium}

log() { printf '[browser] %s\n' "$*" >&2; }

if [ ! -x "$chromium" ]; then
  command -v apt-get >/dev/null || { log "error: $chromium is missing and apt-get is not available"; exit 1; }
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  log "installing Debian's chromium package"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
  [ -x "$chromium" ] || { log "error: chromium was installed but $chromium is missing"; exit 1; }
fi

"$chromium" --version
