#!/usr/bin/env bash
# Prints a DATABASE_URL for a local PostgreSQL, installing and starting Debian's server when this
# runs as root. Prints "unavailable" when that cannot be done; under CI that is an error.
set -euo pipefail
url="${TEST_POSTGRES_URL:-postgres://simreg:simreg@127.0.0.1:5432/simreg}"

service=PostgreSQL
source "$(dirname "${BASH_SOURCE[0]}")/unavailable.sh"

reachable() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if [ -n "${TEST_POSTGRES_URL:-}" ]; then echo "$url"; exit 0; fi
if ! reachable; then
  if [ "$(id -u)" != 0 ]; then fail "not running on 127.0.0.1:5432 and not root to start it"; fi
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } >&2 \
      || fail "apt-get could not install postgresql"
  fi
  version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
  pg_ctlcluster "$version" main start >&2 || fail "pg_ctlcluster $version main start failed"
  for _ in $(seq 1 30); do reachable && break; sleep 1; done
  reachable || fail "the server did not come up"
fi
if [ "$(id -u)" = 0 ]; then
  su postgres -c "psql -q -v ON_ERROR_STOP=1" >&2 <<'SQL' || fail "could not create the simreg roles"
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'simreg') THEN
    CREATE ROLE simreg LOGIN CREATEDB PASSWORD 'simreg';
  END IF;
END $$;
-- The app's role: owns nothing; migrate (run as simreg) grants it what it may do.
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'simreg_app') THEN
    CREATE ROLE simreg_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD 'simreg_app';
  END IF;
END $$;
SELECT 'CREATE DATABASE simreg OWNER simreg' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'simreg')\gexec
SQL
fi
echo "$url"
