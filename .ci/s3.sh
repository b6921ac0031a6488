#!/usr/bin/env bash
# Prints the endpoint URL of an S3-compatible server on loopback for the tests: moto's server
# mode (`moto_server`, from the test extras in .venv), started in the background when it is not
# already answering. Installs nothing. Prints "unavailable" when it cannot; under CI that is an
# error. `bash .ci/s3.sh stop` stops a server this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${SIMREG_S3_PORT:-9000}"
url="http://127.0.0.1:${port}"
pidfile="var/moto-server.pid"
python=".venv/bin/python"

service="S3-compatible server"
source .ci/unavailable.sh

# moto answers its own API path; anything else on the port is not ours to use.
answering() {
  "$python" - "$url" <<'PY' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1) as response:
    sys.exit(0 if response.status == 200 else 1)
PY
}

if [ "${1:-}" = "stop" ]; then
  if [ -f "$pidfile" ]; then
    pid="$(cat "$pidfile")"
    # Only the server this script started: a pid reused since by another program is left alone.
    if grep -q moto_server "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
    rm -f "$pidfile"
  fi
  exit 0
fi

if [ -n "${SIMREG_TEST_S3_ENDPOINT:-}" ]; then echo "$SIMREG_TEST_S3_ENDPOINT"; exit 0; fi
[ -x .venv/bin/moto_server ] || fail "moto_server is not in .venv (make install-test installs it)"
if ! answering; then
  mkdir -p var
  # setsid: the server outlives this script (make runs the tests next), in a group of its own.
  setsid .venv/bin/moto_server -H 127.0.0.1 -p "$port" >var/moto-server.log 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 60); do answering && break; sleep 0.5; done
  answering || fail "moto_server did not answer on $url (see var/moto-server.log)"
fi
echo "$url"
