#!/usr/bin/env bash
# Debian's Chromium for the browser tests (a test tool's own browser download fails offline),
# and CJK fonts so that Traditional Chinese renders in screenshots.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
fc-list 2>/dev/null | grep -qi "noto sans cjk" || missing+=(fonts-noto-cjk)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "Browser tests need Debian packages: ${missing[*]} (apt-get install them as root)." >&2
  exit 1
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
